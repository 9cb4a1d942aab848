package events

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/grey-distributed/grey/task"
)

// Content types a message body may have (Message.ContentType).
const (
	// ContentTypeJSON is a task.Spec as JSON, decoded strictly (the
	// default when a message has no content type).
	ContentTypeJSON = "application/json"
	// ContentTypeAvro is a TaskSubmission record (AvroSchema) in Avro
	// binary encoding, bare or in Avro's single-object encoding.
	ContentTypeAvro = "avro/binary"
)

// Header names of messages and events.
const (
	// HeaderTenant names the tenant. On a task message it is optional and
	// must match the tenant of the topic or routing key; on events Grey
	// sets it.
	HeaderTenant = "grey-tenant-id"
	// HeaderTaskID is the task's id, on events.
	HeaderTaskID = "grey-task-id"
	// HeaderAttempt is the number of the task's last attempt, on events
	// (consumers deduplicate results by task id and attempt).
	HeaderAttempt = "grey-attempt"
	// HeaderReason is the reason a message was dead-lettered
	// ("<reason>: <detail>", see Reason).
	HeaderReason = "grey-dlq-reason"
	// HeaderContentType is the content type header drivers read into
	// Message.ContentType where the broker has no property for it.
	HeaderContentType = "content-type"
	// HeaderTraceparent carries the W3C trace context.
	HeaderTraceparent = "traceparent"
	// HeaderEvent is a lifecycle event's transition (completed, failed,
	// cancelled): AMQP drivers route on it.
	HeaderEvent = "grey-event"
)

// AvroSchema is the Avro schema of a task submission (the file
// task_submission.avsc, reproduced in docs/EVENTS.md).
//
//go:embed task_submission.avsc
var AvroSchema string

var (
	avroSchema      = avro.MustParse(AvroSchema)
	avroFingerprint = mustFingerprint(avroSchema)
)

func mustFingerprint(s avro.Schema) []byte {
	fp, err := s.FingerprintUsing(avro.CRC64AvroLE)
	if err != nil {
		panic(err)
	}
	return fp
}

// avroConfig bounds what one decode may allocate, whatever lengths a
// hostile message claims.
var avroConfig = avro.Config{MaxByteSliceSize: 16 << 20, MaxSliceAllocSize: 1 << 16}.Freeze()

// AvroFingerprint returns the CRC-64-AVRO fingerprint of AvroSchema, as
// the single-object encoding carries it (little-endian, after 0xC3 0x01).
func AvroFingerprint() []byte { return append([]byte(nil), avroFingerprint...) }

// Reason classifies why a message was dead-lettered; it is the label of
// grey_events_dead_lettered_total and the first word of the
// grey-dlq-reason header.
type Reason string

// Dead-letter reasons.
const (
	// ReasonMalformed: the body is not a task submission (bad JSON, an
	// unknown field, several values).
	ReasonMalformed Reason = "malformed"
	// ReasonSchema: an Avro body that does not match AvroSchema.
	ReasonSchema Reason = "schema"
	// ReasonContentType: a content type Grey does not decode.
	ReasonContentType Reason = "content_type"
	// ReasonTooLarge: the message exceeds the consumer's size limit.
	ReasonTooLarge Reason = "too_large"
	// ReasonPayloadTooLarge: the payload exceeds the cluster's or the
	// tenant's limit.
	ReasonPayloadTooLarge Reason = "payload_too_large"
	// ReasonTenantMismatch: a header names another tenant than the topic
	// or routing key.
	ReasonTenantMismatch Reason = "tenant_mismatch"
	// ReasonUnknownTenant: the tenant does not exist (or the message has
	// no valid tenant).
	ReasonUnknownTenant Reason = "unknown_tenant"
	// ReasonUnknownKind: no executor or worker provides the kind.
	ReasonUnknownKind Reason = "unknown_kind"
	// ReasonInvalid: the submission was refused as invalid (bad priority,
	// missing parent...).
	ReasonInvalid Reason = "invalid"
	// ReasonRefused: the tenant may not submit it (kind not allowed).
	ReasonRefused Reason = "refused"
)

// Reasons lists every dead-letter reason.
var Reasons = []Reason{ReasonMalformed, ReasonSchema, ReasonContentType, ReasonTooLarge, ReasonPayloadTooLarge,
	ReasonTenantMismatch, ReasonUnknownTenant, ReasonUnknownKind, ReasonInvalid, ReasonRefused}

// DecodeError is a message that cannot become a task: it goes to the
// dead-letter destination with Reason and Detail.
type DecodeError struct {
	// Reason classifies the failure.
	Reason Reason
	// Detail says what is wrong, for the grey-dlq-reason header.
	Detail string
}

// Error implements error: "<reason>: <detail>", the grey-dlq-reason header.
func (e *DecodeError) Error() string { return string(e.Reason) + ": " + e.Detail }

func decodeErr(r Reason, format string, args ...any) *DecodeError {
	return &DecodeError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// DecodeSpec decodes a message body into a task submission by content
// type: JSON (task.Spec, unknown fields refused, exactly one value) or
// Avro (AvroSchema). Errors are *DecodeError. The spec is not validated
// beyond its encoding (the submit path validates it).
func DecodeSpec(contentType string, body []byte) (task.Spec, error) {
	switch mediaType(contentType) {
	case "", ContentTypeJSON, "text/json":
		return DecodeJSON(body)
	case ContentTypeAvro, "application/avro", "avro/binary+single", "application/vnd.apache.avro+binary":
		return DecodeAvro(body)
	default:
		return task.Spec{}, decodeErr(ReasonContentType, "content type %q is not decoded (want %s or %s)", truncate(contentType, 80), ContentTypeJSON, ContentTypeAvro)
	}
}

func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// DecodeJSON decodes a task.Spec from JSON strictly: unknown fields (a
// tenant_id among them: the tenant never comes from the body) and
// anything after the one object are refused.
func DecodeJSON(body []byte) (task.Spec, error) {
	var s task.Spec
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.EOF) {
			return task.Spec{}, decodeErr(ReasonMalformed, "empty body: want a JSON task submission")
		}
		msg := err.Error()
		if strings.Contains(msg, `unknown field "tenant`) {
			msg += " (the tenant comes from the topic or routing key, never from the body)"
		}
		return task.Spec{}, decodeErr(ReasonMalformed, "invalid JSON task submission: %s", truncate(msg, 300))
	}
	if _, err := dec.Token(); err != io.EOF {
		return task.Spec{}, decodeErr(ReasonMalformed, "the body must hold exactly one JSON object")
	}
	return s, nil
}

// avroSubmission is the Go shape of AvroSchema.
type avroSubmission struct {
	Kind         string            `avro:"kind"`
	Type         *string           `avro:"type"`
	Payload      *string           `avro:"payload"`
	PayloadRef   *string           `avro:"payload_ref"`
	Priority     *int              `avro:"priority"`
	StateKey     *string           `avro:"state_key"`
	DependsOn    []string          `avro:"depends_on"`
	Labels       map[string]string `avro:"labels"`
	Timeout      *string           `avro:"timeout"`
	RequireProof *bool             `avro:"require_proof"`
	RequireTEE   *string           `avro:"require_tee"`
	RunAt        *time.Time        `avro:"run_at"`
	Headers      map[string]string `avro:"headers"`
}

// DecodeAvro decodes a TaskSubmission (AvroSchema) in Avro binary
// encoding: either bare, or in the single-object encoding (0xC3 0x01, the
// schema's CRC-64-AVRO fingerprint, the record), whose fingerprint must be
// AvroSchema's. Bytes left over after the record are refused, so that a
// record of another schema is not taken for a submission.
func DecodeAvro(body []byte) (task.Spec, error) {
	switch {
	case len(body) >= 2 && body[0] == 0xC3 && body[1] == 0x01:
		if len(body) < 10 {
			return task.Spec{}, decodeErr(ReasonSchema, "truncated Avro single-object header")
		}
		if !bytes.Equal(body[2:10], avroFingerprint) {
			return task.Spec{}, decodeErr(ReasonSchema, "Avro schema fingerprint %x is not the TaskSubmission schema's (%x)",
				binary.LittleEndian.Uint64(body[2:10]), binary.LittleEndian.Uint64(avroFingerprint))
		}
		body = body[10:]
	case len(body) >= 5 && body[0] == 0x00:
		return task.Spec{}, decodeErr(ReasonSchema, "schema-registry framing (magic byte 0) is not supported: send the bare record or Avro's single-object encoding")
	}
	var a avroSubmission
	if err := avroConfig.Unmarshal(avroSchema, body, &a); err != nil {
		return task.Spec{}, decodeErr(ReasonSchema, "not a TaskSubmission Avro record: %s", truncate(err.Error(), 300))
	}
	// The binary encoding is canonical for what Grey writes: re-encoding
	// tells whether the record used the whole body.
	again, err := avroConfig.Marshal(avroSchema, a)
	if err != nil || len(again) != len(body) {
		return task.Spec{}, decodeErr(ReasonSchema, "not a TaskSubmission Avro record: %d bytes of %d make the record", len(again), len(body))
	}
	s := task.Spec{Kind: a.Kind, Priority: a.Priority, DependsOn: a.DependsOn, RequireProof: a.RequireProof, RunAt: a.RunAt}
	if a.Type != nil {
		s.Type = task.Type(*a.Type)
	}
	if a.Payload != nil {
		s.Payload = json.RawMessage(*a.Payload)
	}
	if a.PayloadRef != nil {
		s.PayloadRef = *a.PayloadRef
	}
	if a.StateKey != nil {
		s.StateKey = *a.StateKey
	}
	if len(a.Labels) > 0 {
		s.Constraints = &task.Constraints{Labels: a.Labels}
	}
	if a.Timeout != nil {
		d, err := time.ParseDuration(*a.Timeout)
		if err != nil || d < 0 {
			return task.Spec{}, decodeErr(ReasonMalformed, "timeout %q is not a duration (30s, 5m)", truncate(*a.Timeout, 40))
		}
		s.Timeout = task.Duration(d)
	}
	if a.RequireTEE != nil {
		s.RequireTEE = *a.RequireTEE
	}
	if len(a.Headers) > 0 {
		s.Headers = a.Headers
	}
	if len(s.DependsOn) == 0 {
		s.DependsOn = nil
	}
	return s, nil
}

// EncodeAvro encodes s as a TaskSubmission in Avro's single-object
// encoding (for producers written in Go, and tests). Fields the schema
// does not carry (retry, cpu, memory) are dropped.
func EncodeAvro(s task.Spec) ([]byte, error) {
	a := avroSubmission{Kind: s.Kind, Priority: s.Priority, DependsOn: s.DependsOn, RequireProof: s.RequireProof, Headers: s.Headers}
	if a.DependsOn == nil {
		a.DependsOn = []string{}
	}
	if a.Headers == nil {
		a.Headers = map[string]string{}
	}
	a.Labels = map[string]string{}
	if s.Constraints != nil && s.Constraints.Labels != nil {
		a.Labels = s.Constraints.Labels
	}
	str := func(v string) *string {
		if v == "" {
			return nil
		}
		return &v
	}
	a.Type, a.PayloadRef, a.StateKey, a.RequireTEE = str(string(s.Type)), str(s.PayloadRef), str(s.StateKey), str(s.RequireTEE)
	if len(s.Payload) > 0 {
		a.Payload = str(string(s.Payload))
	}
	if s.Timeout != 0 {
		a.Timeout = str(s.Timeout.D().String())
	}
	if s.RunAt != nil {
		t := s.RunAt.UTC().Truncate(time.Millisecond)
		a.RunAt = &t
	}
	rec, err := avroConfig.Marshal(avroSchema, a)
	if err != nil {
		return nil, fmt.Errorf("events: encode avro: %w", err)
	}
	out := make([]byte, 0, 10+len(rec))
	out = append(out, 0xC3, 0x01)
	out = append(out, avroFingerprint...)
	return append(out, rec...), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

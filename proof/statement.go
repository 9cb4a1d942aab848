package proof

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/grey-distributed/grey/task"
)

// Constants of the statement and envelope formats.
const (
	// StatementType is the in-toto Statement v1 type URI (the "_type" field).
	StatementType = "https://in-toto.io/Statement/v1"
	// PredicateType identifies Grey's task-execution predicate.
	PredicateType = "https://grey.dev/task-execution/v1"
	// PayloadType is the DSSE payload type of an in-toto statement.
	PayloadType = "application/vnd.in-toto+json"
	// SubjectName is the name of the statement's one subject, the output.
	SubjectName = "task-output"
	// DigestAlgorithm is the digest algorithm used for subject and input
	// digests (the key in the subject's digest set).
	DigestAlgorithm = "sha256"
)

// Statement is an in-toto Statement v1 carrying a Grey [Predicate]. It is a
// plain struct that marshals to the same JSON as the in-toto protobuf
// Statement (github.com/in-toto/attestation/go/v1), with a typed predicate
// and deterministic encoding; the tests check that the payload parses and
// validates as that protobuf.
type Statement struct {
	// Type is the statement type; always [StatementType].
	Type string `json:"_type"`
	// Subject is what the statement is about: one [SubjectName] entry with
	// the output's SHA-256.
	Subject []Subject `json:"subject"`
	// PredicateType is always [PredicateType].
	PredicateType string `json:"predicateType"`
	// Predicate describes the execution.
	Predicate Predicate `json:"predicate"`
}

// Subject is an in-toto resource descriptor reduced to name and digest set.
type Subject struct {
	// Name names the artifact ([SubjectName]).
	Name string `json:"name"`
	// Digest maps algorithm ("sha256") to the lower-case hex digest.
	Digest map[string]string `json:"digest"`
}

// Executor identifies what ran the task; its Digest is the measurement.
type Executor struct {
	// Name is the executor (kind implementation), e.g. "wasm".
	Name string `json:"name"`
	// Version is the executor's version (e.g. the greyd build).
	Version string `json:"version"`
	// Digest is the measurement: a digest of the code that ran, e.g.
	// "sha256:<hex>" of a wasm module or of the greyd binary.
	Digest string `json:"digest"`
}

// Predicate is the task-execution predicate ([PredicateType]).
type Predicate struct {
	// TaskID is the task's id.
	TaskID string `json:"task_id"`
	// TenantID owns the task.
	TenantID string `json:"tenant_id"`
	// Kind is the task's kind.
	Kind string `json:"kind"`
	// InputDigest is the lower-case hex SHA-256 of the payload bytes.
	InputDigest string `json:"input_digest"`
	// Executor is what ran the task (the measurement).
	Executor Executor `json:"executor"`
	// NodeID is the node that ran the task and signed the proof.
	NodeID string `json:"node_id"`
	// Platform is "software" ([PlatformSoftware]) or a TEE platform.
	Platform string `json:"platform"`
	// Attempt is the attempt number that produced the output (from 1).
	Attempt int `json:"attempt"`
	// StartedAt is when the attempt started (UTC).
	StartedAt time.Time `json:"started_at"`
	// FinishedAt is when the attempt finished (UTC).
	FinishedAt time.Time `json:"finished_at"`
	// TEEQuote is the attester's quote, when there is one (base64 in JSON).
	TEEQuote []byte `json:"tee_quote,omitempty"`
}

// Digest returns the lower-case hex SHA-256 of b.
func Digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// NewStatement returns the statement for a task whose output bytes are
// output. It sets the type, the subject (SHA-256 of output) and the
// predicate type; p.Platform defaults to [PlatformSoftware] and the times are
// converted to UTC. The caller fills p.InputDigest (see [Digest]).
func NewStatement(output []byte, p Predicate) *Statement {
	if p.Platform == "" {
		p.Platform = PlatformSoftware
	}
	p.StartedAt = p.StartedAt.UTC()
	p.FinishedAt = p.FinishedAt.UTC()
	return &Statement{
		Type:          StatementType,
		Subject:       []Subject{{Name: SubjectName, Digest: map[string]string{DigestAlgorithm: Digest(output)}}},
		PredicateType: PredicateType,
		Predicate:     p,
	}
}

// ForTask returns the statement for a finished task: output is t.Result,
// the input digest covers t.Payload, the attempt and times come from the
// task. exec and nodeID say what ran it and where.
func ForTask(t *task.Task, exec Executor, nodeID string) (*Statement, error) {
	if t.FinishedAt == nil {
		return nil, fmt.Errorf("task %s has not finished", t.ID)
	}
	p := Predicate{
		TaskID:      t.ID,
		TenantID:    t.TenantID,
		Kind:        t.Kind,
		InputDigest: Digest(t.Payload),
		Executor:    exec,
		NodeID:      nodeID,
		Attempt:     t.Attempt,
		FinishedAt:  *t.FinishedAt,
	}
	if t.StartedAt != nil {
		p.StartedAt = *t.StartedAt
	}
	return NewStatement(t.Result, p), nil
}

// OutputDigest returns the subject's SHA-256 ("" when there is none).
func (s *Statement) OutputDigest() string {
	for _, sub := range s.Subject {
		if sub.Name == SubjectName {
			return sub.Digest[DigestAlgorithm]
		}
	}
	return ""
}

// Validate checks the statement's structure: the type and predicate type,
// one task-output subject with a valid SHA-256, a valid input digest, a task
// id and a platform.
func (s *Statement) Validate() error {
	if s.Type != StatementType {
		return fmt.Errorf("statement _type is %q, want %q", s.Type, StatementType)
	}
	if s.PredicateType != PredicateType {
		return fmt.Errorf("predicateType is %q, want %q", s.PredicateType, PredicateType)
	}
	if len(s.Subject) != 1 || s.Subject[0].Name != SubjectName {
		return fmt.Errorf("statement must have exactly one subject named %q", SubjectName)
	}
	if err := checkHex(s.OutputDigest()); err != nil {
		return fmt.Errorf("output digest: %w", err)
	}
	if err := checkHex(s.Predicate.InputDigest); err != nil {
		return fmt.Errorf("input digest: %w", err)
	}
	if s.Predicate.TaskID == "" {
		return errors.New("predicate has no task_id")
	}
	if s.Predicate.Platform == "" {
		return errors.New("predicate has no platform")
	}
	return nil
}

func checkHex(d string) error {
	if len(d) != 2*sha256.Size {
		return fmt.Errorf("%q is not a hex SHA-256 (%d characters, want %d)", d, len(d), 2*sha256.Size)
	}
	if _, err := hex.DecodeString(d); err != nil || strings.ToLower(d) != d {
		return fmt.Errorf("%q is not a lower-case hex SHA-256", d)
	}
	return nil
}

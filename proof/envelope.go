package proof

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	gojson "github.com/goccy/go-json"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// Envelope is a DSSE envelope ({payloadType, payload, signatures: [{keyid,
// sig}]}, payload and sig in base64); it is the dsse library's type, so its
// JSON is what any DSSE tool reads.
type Envelope = dsse.Envelope

// Sign validates stmt, encodes it as JSON and returns a DSSE envelope with
// one ed25519 signature by key over PAE(PayloadType, payload).
func Sign(key *Key, stmt *Statement) (*Envelope, error) {
	if key == nil {
		return nil, errors.New("sign: no key")
	}
	if err := stmt.Validate(); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	// goccy/go-json writes what encoding/json writes (a test compares
	// them) at a fraction of the CPU: a node signs every batch it finishes.
	body, err := gojson.Marshal(stmt)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	es, err := dsse.NewEnvelopeSigner(dsseSigner{key})
	if err != nil {
		return nil, err
	}
	return es.SignPayload(context.Background(), PayloadType, body)
}

// Expect lists what the verifier knows independently of the envelope; each
// non-empty field must match the statement. Digests are lower-case or
// upper-case hex SHA-256, optionally prefixed "sha256:". The digests are
// those of TaskID's execution; without TaskID they need a one-task
// statement.
type Expect struct {
	// OutputDigest is the SHA-256 of the output bytes the verifier holds.
	OutputDigest string
	// InputDigest is the SHA-256 of the payload bytes the verifier holds.
	InputDigest string
	// TaskID is the task the proof must cover.
	TaskID string
	// TenantID is the tenant that must own the task.
	TenantID string
}

// Verify checks env and returns its statement. It checks, in order: the
// payload type; that a signature verifies with a key of ring (an unknown key
// id, a malformed signature or a signature that does not verify is an error
// naming the key); that the payload is a valid statement; and each non-empty
// field of want. The error names what differs.
func Verify(env *Envelope, ring KeyRing, want Expect) (*Statement, error) {
	if env == nil {
		return nil, errors.New("no envelope")
	}
	if env.PayloadType != PayloadType {
		return nil, fmt.Errorf("payload type is %q, want %q", env.PayloadType, PayloadType)
	}
	body, err := decodeBase64(env.Payload)
	if err != nil {
		return nil, errors.New("payload was modified: it is not valid base64")
	}
	if err := verifySignatures(env, body, ring); err != nil {
		return nil, err
	}
	var st Statement
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("payload is not an in-toto statement: %w", err)
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("invalid statement: %w", err)
	}
	if want.TenantID != "" && st.Predicate.TenantID != want.TenantID {
		return nil, fmt.Errorf("tenant id differs: envelope says %q, expected %q", st.Predicate.TenantID, want.TenantID)
	}
	if want.TaskID == "" && want.InputDigest == "" && want.OutputDigest == "" {
		return &st, nil
	}
	var e *Execution
	var out string
	switch {
	case want.TaskID != "":
		var ok bool
		if e, out, ok = st.Find(want.TaskID); !ok {
			return nil, fmt.Errorf("task id differs: the envelope covers %s, not %q", taskList(&st), want.TaskID)
		}
	case len(st.Predicate.Executions) == 1:
		e, out = &st.Predicate.Executions[0], st.Subject[0].Digest[DigestAlgorithm]
	default:
		return nil, fmt.Errorf("the envelope covers %d tasks: name the task whose digests to check", len(st.Predicate.Executions))
	}
	for _, c := range []struct{ what, got, want string }{
		{"output digest", out, want.OutputDigest},
		{"input digest", e.InputDigest, want.InputDigest},
	} {
		if c.want != "" && c.got != normDigest(c.want) {
			return nil, fmt.Errorf("%s differs: envelope says %s, task has %s", c.what, c.got, normDigest(c.want))
		}
	}
	return &st, nil
}

// taskList names a statement's tasks for an error (the first few).
func taskList(st *Statement) string {
	ids := make([]string, 0, 3)
	for i, e := range st.Predicate.Executions {
		if i == 3 {
			ids = append(ids, fmt.Sprintf("and %d more", len(st.Predicate.Executions)-3))
			break
		}
		ids = append(ids, fmt.Sprintf("%q", e.TaskID))
	}
	return "task " + strings.Join(ids, ", ")
}

func normDigest(d string) string {
	d = strings.ToLower(strings.TrimSpace(d))
	return strings.TrimPrefix(d, DigestAlgorithm+":")
}

// verifySignatures succeeds when at least one signature verifies with a key
// of ring. A signature with an empty keyid is tried against every key.
func verifySignatures(env *Envelope, body []byte, ring KeyRing) error {
	if len(env.Signatures) == 0 {
		return errors.New("envelope has no signatures")
	}
	pae := dsse.PAE(env.PayloadType, body)
	var errs []error
	for _, s := range env.Signatures {
		sig, err := decodeBase64(s.Sig)
		if err != nil || len(sig) != ed25519.SignatureSize {
			errs = append(errs, fmt.Errorf("signature by key %q is malformed (not a base64 ed25519 signature)", s.KeyID))
			continue
		}
		if s.KeyID == "" {
			for _, pub := range ring {
				if ed25519.Verify(pub, pae, sig) {
					return nil
				}
			}
			errs = append(errs, errors.New("signature without key id does not verify with any key in the key ring"))
			continue
		}
		pub, ok := ring[s.KeyID]
		if !ok {
			errs = append(errs, fmt.Errorf("unknown key id %q: not in the key ring (%d keys)", s.KeyID, len(ring)))
			continue
		}
		if ed25519.Verify(pub, pae, sig) {
			return nil
		}
		errs = append(errs, fmt.Errorf("signature does not verify with key %s: the payload was modified, or the signature was not made by that key", s.KeyID))
	}
	return errors.Join(errs...)
}

// Short is the seed's short form of a proof: a view over the envelope for
// one task.
type Short struct {
	// TaskID is the task.
	TaskID string `json:"task_id"`
	// Platform is the predicate's platform.
	Platform string `json:"platform"`
	// Measurement is the task's executor digest.
	Measurement string `json:"measurement"`
	// Signature is the base64 signature of the envelope's first signature.
	Signature string `json:"signature"`
	// Timestamp is the task's finished_at in Unix seconds.
	Timestamp int64 `json:"timestamp"`
}

// DecodeStatement returns env's statement without verifying anything:
// call [Verify] to trust it.
func DecodeStatement(env *Envelope) (*Statement, error) {
	body, err := decodeBase64(env.Payload)
	if err != nil {
		return nil, errors.New("payload is not valid base64")
	}
	var st Statement
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("payload is not an in-toto statement: %w", err)
	}
	return &st, nil
}

// ShortForm returns the short form of env for taskID ("" = the first
// task). It does not verify the envelope: call [Verify] first.
func ShortForm(env *Envelope, taskID string) (Short, error) {
	if env == nil {
		return Short{}, errors.New("no envelope")
	}
	if len(env.Signatures) == 0 {
		return Short{}, errors.New("envelope has no signatures")
	}
	st, err := DecodeStatement(env)
	if err != nil {
		return Short{}, err
	}
	if len(st.Predicate.Executions) == 0 {
		return Short{}, errors.New("statement has no executions")
	}
	e := &st.Predicate.Executions[0]
	if taskID != "" {
		var ok bool
		if e, _, ok = st.Find(taskID); !ok {
			return Short{}, fmt.Errorf("the envelope does not cover task %q", taskID)
		}
	}
	return Short{
		TaskID:      e.TaskID,
		Platform:    st.Predicate.Platform,
		Measurement: e.Executor.Digest,
		Signature:   env.Signatures[0].Sig,
		Timestamp:   e.FinishedAt.Unix(),
	}, nil
}

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
	// DigestAlgorithm is the digest algorithm used for subject and input
	// digests (the key in the subject's digest set).
	DigestAlgorithm = "sha256"
)

// Statement is an in-toto Statement v1 carrying a Grey [Predicate]. It is a
// plain struct that marshals to the same JSON as the in-toto protobuf
// Statement (github.com/in-toto/attestation/go/v1), with a typed predicate
// and deterministic encoding; the tests check that the payload parses and
// validates as that protobuf.
//
// One statement covers the tasks of one tenant that a node finished
// together (often one): subject i is task i's output, named
// [SubjectPrefix]+task id, and Predicate.Executions[i] describes how it was
// made. Signing a batch once is what keeps proofs cheap; a verifier looks
// up the one task it cares about ([Statement.Find]).
type Statement struct {
	// Type is the statement type; always [StatementType].
	Type string `json:"_type"`
	// Subject lists the outputs, one per execution, in the same order.
	Subject []Subject `json:"subject"`
	// PredicateType is always [PredicateType].
	PredicateType string `json:"predicateType"`
	// Predicate describes the executions.
	Predicate Predicate `json:"predicate"`
}

// SubjectPrefix starts every subject's name; the task id follows.
const SubjectPrefix = "task-output/"

// Subject is an in-toto resource descriptor reduced to name and digest set.
type Subject struct {
	// Name is [SubjectPrefix] followed by the task id.
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

// Predicate is the task-execution predicate ([PredicateType]): who ran the
// executions, where, and each execution.
type Predicate struct {
	// TenantID owns every task of the statement.
	TenantID string `json:"tenant_id"`
	// NodeID is the node that ran the tasks and signed the proof.
	NodeID string `json:"node_id"`
	// Platform is "software" ([PlatformSoftware]) or a TEE platform.
	Platform string `json:"platform"`
	// Executions describe the tasks, in subject order.
	Executions []Execution `json:"executions"`
	// TEEQuote is the attester's quote, when there is one (base64 in JSON).
	TEEQuote []byte `json:"tee_quote,omitempty"`
}

// Execution is one task's attempt that produced its subject's output.
type Execution struct {
	// TaskID is the task's id.
	TaskID string `json:"task_id"`
	// Kind is the task's kind.
	Kind string `json:"kind"`
	// InputDigest is the lower-case hex SHA-256 of the payload bytes.
	InputDigest string `json:"input_digest"`
	// Executor is what ran the task (the measurement).
	Executor Executor `json:"executor"`
	// Attempt is the attempt number that produced the output (from 1).
	Attempt int `json:"attempt"`
	// StartedAt is when the attempt started (UTC).
	StartedAt time.Time `json:"started_at"`
	// FinishedAt is when the attempt finished (UTC).
	FinishedAt time.Time `json:"finished_at"`
	// LeasedBy is the subject of the authenticated principal that leased
	// the attempt (docs/AUTH.md), when the lease recorded one.
	LeasedBy string `json:"leased_by,omitempty"`
	// Objects are the stored objects of the execution (docs/PROOFS.md,
	// storage proofs): the payload object it read and the result object
	// Grey wrote for it, each by key relative to the tenant's prefix.
	Objects []Object `json:"objects,omitempty"`
	// Model names the model an inference task ran and what ran it (absent
	// for other kinds, so their statements are unchanged).
	Model *Model `json:"model,omitempty"`
}

// Model is the model of an inference execution: the version that ran
// (its artifact's digest is the content address pushed to the registry)
// and the runtime and framework that ran it.
type Model struct {
	// Name of the model.
	Name string `json:"name"`
	// Version that ran (an alias resolved).
	Version string `json:"version"`
	// Digest is "sha256:<hex>" of the model's artifact.
	Digest string `json:"digest"`
	// Framework is "pytorch" or "tensorflow".
	Framework string `json:"framework"`
	// FrameworkVersion is the framework's version in the runtime.
	FrameworkVersion string `json:"framework_version,omitempty"`
	// Runtime is the runtime implementation ("grey-python", "oip", …).
	Runtime string `json:"runtime"`
	// RuntimeVersion is its version.
	RuntimeVersion string `json:"runtime_version,omitempty"`
	// Device the model ran on ("cpu", "cuda:0").
	Device string `json:"device,omitempty"`
	// BatchRows is the rows of the model call the task's request ran in,
	// when it shared the call with other requests (dynamic batching): a
	// replay pads the request to as many rows, since with some BLAS
	// libraries a row's output bits depend on the call's row count.
	BatchRows int64 `json:"batch_rows,omitempty"`
	// Server is the remote model server that ran it (credentials
	// removed), when the runtime is one (KServe, Triton, TF Serving).
	Server string `json:"server,omitempty"`
	// ServerDigest is the digest that server reported for the model,
	// equal to Digest; "" when it reports none: Digest then names the
	// artifact Grey resolved, not bytes Grey saw run.
	ServerDigest string `json:"server_digest,omitempty"`
}

// The roles of a stored object in an execution.
const (
	// ObjectPayload is the payload object the task named by payload_ref.
	ObjectPayload = "payload"
	// ObjectResult is the stored result (over the inline limit).
	ObjectResult = "result"
)

// Object is a stored object an execution read or Grey wrote for it.
type Object struct {
	// Name is the object's key relative to the tenant's prefix
	// ("uploads/<id>", "results/<task id>").
	Name string `json:"name"`
	// Role is ObjectPayload or ObjectResult.
	Role string `json:"role"`
	// Size is the object's length in bytes.
	Size int64 `json:"size"`
	// Digest maps "sha256" to the lower-case hex SHA-256 of its bytes.
	Digest map[string]string `json:"digest"`
}

// Run describes one finished execution to be proven: what a worker knows
// when an attempt completes.
type Run struct {
	// TaskID is the task's id.
	TaskID string
	// Kind is the task's kind.
	Kind string
	// Payload is the input bytes exactly as leased.
	Payload []byte
	// Output is the result bytes exactly as reported (canonical JSON).
	Output []byte
	// Attempt is the attempt number.
	Attempt int
	// Executor is what ran it (the measurement).
	Executor Executor
	// StartedAt and FinishedAt bound the attempt.
	StartedAt, FinishedAt time.Time
	// LeasedBy is the lease's principal subject ("" when none).
	LeasedBy string
	// Objects are the stored objects of the run (see Execution.Objects).
	Objects []Object
	// Model is the model of an inference run (nil for other kinds).
	Model *Model
}

// Digest returns the lower-case hex SHA-256 of b.
func Digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// InputDigest is the input digest a proof of t must carry: the payload
// object's SHA-256 (of its bytes as stored and served) when t named its
// payload by payload_ref, else JSONDigest of the inline payload.
func InputDigest(t *task.Task) string {
	if t.PayloadObject != nil {
		return t.PayloadObject.SHA256
	}
	return JSONDigest(t.Payload)
}

// OutputDigest is the output digest a proof of t must carry: the result
// object's SHA-256 (of its bytes as stored and served by GET
// /api/v1/tasks/{id}/result) when the result is stored by reference, else
// JSONDigest of the inline result.
func OutputDigest(t *task.Task) string {
	if t.ResultRef != nil {
		return t.ResultRef.SHA256
	}
	return JSONDigest(t.Result)
}

// runDigests are the digests of a run, by the rules of InputDigest and
// OutputDigest: a stored object's bytes, else the inline JSON value's.
func runDigests(r *Run) (in, out string) {
	in, out = JSONDigest(r.Payload), JSONDigest(r.Output)
	for _, o := range r.Objects {
		switch o.Role {
		case ObjectPayload:
			in = o.Digest[DigestAlgorithm]
		case ObjectResult:
			out = Digest(r.Output)
		}
	}
	return in, out
}

// NewStatement returns the statement for runs of one tenant on one node.
// platform "" means [PlatformSoftware]; times are converted to UTC.
func NewStatement(tenantID, nodeID, platform string, runs ...Run) *Statement {
	if platform == "" {
		platform = PlatformSoftware
	}
	st := &Statement{
		Type:          StatementType,
		Subject:       make([]Subject, len(runs)),
		PredicateType: PredicateType,
		Predicate:     Predicate{TenantID: tenantID, NodeID: nodeID, Platform: platform, Executions: make([]Execution, len(runs))},
	}
	for i, r := range runs {
		in, out := runDigests(&r)
		st.Subject[i] = Subject{Name: SubjectPrefix + r.TaskID, Digest: map[string]string{DigestAlgorithm: out}}
		st.Predicate.Executions[i] = Execution{
			TaskID: r.TaskID, Kind: r.Kind, InputDigest: in, Executor: r.Executor,
			Attempt: r.Attempt, StartedAt: r.StartedAt.UTC(), FinishedAt: r.FinishedAt.UTC(), LeasedBy: r.LeasedBy, Objects: r.Objects,
			Model: r.Model,
		}
	}
	return st
}

// ForTask returns the one-task statement for a finished task: output is
// t.Result, the input digest covers t.Payload, the attempt and times come
// from the task. exec and nodeID say what ran it and where.
func ForTask(t *task.Task, exec Executor, nodeID string) (*Statement, error) {
	if t.FinishedAt == nil {
		return nil, fmt.Errorf("task %s has not finished", t.ID)
	}
	r := Run{TaskID: t.ID, Kind: t.Kind, Payload: t.Payload, Output: t.Result, Attempt: t.Attempt, Executor: exec, FinishedAt: *t.FinishedAt}
	if t.StartedAt != nil {
		r.StartedAt = *t.StartedAt
	}
	for _, a := range t.Attempts {
		if a.N == t.Attempt {
			r.LeasedBy = a.Principal
		}
	}
	return NewStatement(t.TenantID, nodeID, "", r), nil
}

// StoredObjects names the stored objects of a task: its payload object
// (t.PayloadObject) and, when inlineMax > 0 and output is longer, the
// result object Grey stores at task.ResultKey. A proof that names them is
// a storage proof (docs/PROOFS.md).
func StoredObjects(taskID string, payload *task.DataRef, output []byte, inlineMax int) []Object {
	var objs []Object
	if payload != nil {
		objs = append(objs, Object{Name: payload.Ref, Role: ObjectPayload, Size: payload.Size, Digest: map[string]string{DigestAlgorithm: payload.SHA256}})
	}
	if inlineMax > 0 && len(output) > inlineMax {
		objs = append(objs, Object{Name: task.ResultKey(taskID), Role: ObjectResult, Size: int64(len(output)), Digest: map[string]string{DigestAlgorithm: Digest(output)}})
	}
	return objs
}

// Find returns the execution of taskID and its output digest.
func (s *Statement) Find(taskID string) (e *Execution, outputDigest string, ok bool) {
	for i := range s.Predicate.Executions {
		if s.Predicate.Executions[i].TaskID == taskID && i < len(s.Subject) {
			return &s.Predicate.Executions[i], s.Subject[i].Digest[DigestAlgorithm], true
		}
	}
	return nil, "", false
}

// Validate checks the statement's structure: the type and predicate type,
// one subject per execution named after its task with a valid SHA-256,
// distinct task ids, valid input digests, a tenant and a platform.
func (s *Statement) Validate() error {
	if s.Type != StatementType {
		return fmt.Errorf("statement _type is %q, want %q", s.Type, StatementType)
	}
	if s.PredicateType != PredicateType {
		return fmt.Errorf("predicateType is %q, want %q", s.PredicateType, PredicateType)
	}
	p := &s.Predicate
	if len(p.Executions) == 0 {
		return errors.New("predicate has no executions")
	}
	if len(s.Subject) != len(p.Executions) {
		return fmt.Errorf("statement has %d subjects for %d executions", len(s.Subject), len(p.Executions))
	}
	if p.TenantID == "" {
		return errors.New("predicate has no tenant_id")
	}
	if p.Platform == "" {
		return errors.New("predicate has no platform")
	}
	seen := make(map[string]bool, len(p.Executions))
	for i, e := range p.Executions {
		if e.TaskID == "" {
			return fmt.Errorf("execution %d has no task_id", i)
		}
		if seen[e.TaskID] {
			return fmt.Errorf("task %s appears twice", e.TaskID)
		}
		seen[e.TaskID] = true
		if s.Subject[i].Name != SubjectPrefix+e.TaskID {
			return fmt.Errorf("subject %d is named %q, want %q", i, s.Subject[i].Name, SubjectPrefix+e.TaskID)
		}
		if err := checkHex(s.Subject[i].Digest[DigestAlgorithm]); err != nil {
			return fmt.Errorf("task %s output digest: %w", e.TaskID, err)
		}
		if err := checkHex(e.InputDigest); err != nil {
			return fmt.Errorf("task %s input digest: %w", e.TaskID, err)
		}
		for _, o := range e.Objects {
			if o.Name == "" || (o.Role != ObjectPayload && o.Role != ObjectResult) || o.Size < 0 {
				return fmt.Errorf("task %s names a malformed object %q (role %q)", e.TaskID, o.Name, o.Role)
			}
			if err := checkHex(o.Digest[DigestAlgorithm]); err != nil {
				return fmt.Errorf("task %s object %s digest: %w", e.TaskID, o.Name, err)
			}
		}
		if m := e.Model; m != nil {
			h, ok := strings.CutPrefix(m.Digest, DigestAlgorithm+":")
			if m.Name == "" || m.Version == "" || !ok || m.BatchRows < 0 {
				return fmt.Errorf("task %s names a malformed model %q:%q (digest %q)", e.TaskID, m.Name, m.Version, m.Digest)
			}
			if err := checkHex(h); err != nil {
				return fmt.Errorf("task %s model digest: %w", e.TaskID, err)
			}
		}
	}
	return nil
}

func checkHex(d string) error {
	if len(d) != 2*sha256.Size {
		return fmt.Errorf("%q is not a hex SHA-256 (%d characters, want %d)", d, len(d), 2*sha256.Size)
	}
	for i := 0; i < len(d); i++ {
		if c := d[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("%q is not a lower-case hex SHA-256", d)
		}
	}
	return nil
}

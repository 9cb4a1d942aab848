package worker

import (
	"context"
	"encoding/json"
	"io"
	"time"

	"github.com/grey-distributed/grey/proof"
	"github.com/grey-distributed/grey/task"
)

// Coordinator is the server side of the lease protocol. The engine implements
// it in-process; the Go client implements it over HTTP
// (POST /api/v1/workers/lease, /heartbeat, /complete). A Pool works the same
// with either, so the in-process worker and a remote one share one protocol.
type Coordinator interface {
	// Lease grants up to req.Max tasks matching the worker's kinds and
	// labels, waiting up to req.Wait for work to appear (long poll).
	Lease(ctx context.Context, req *LeaseRequest) (*LeaseResponse, error)
	// Heartbeat extends the worker's leases and tells it which it lost.
	Heartbeat(ctx context.Context, req *HeartbeatRequest) (*HeartbeatResponse, error)
	// Complete records starts and outcomes, fenced by attempt number.
	Complete(ctx context.Context, req *CompleteRequest) (*CompleteResponse, error)
}

// PayloadFetcher is the part of the lease protocol that hands a worker the
// payload object of a task it holds the lease of (Assignment.PayloadFetch).
// The engine implements it in-process, the Go client over HTTP (GET
// /api/v1/workers/tasks/{id}/payload) and the server's router either way,
// so in-process and remote workers fetch through the same method.
type PayloadFetcher interface {
	// FetchPayload streams the payload object of req's task: NotFound when
	// the task is unknown or another tenant's than the caller may lease,
	// FailedPrecondition (409) when req's worker does not hold its current lease (another
	// worker, another attempt, an expired lease). The caller closes the
	// reader and checks its bytes against the lease's PayloadObject.
	FetchPayload(ctx context.Context, req *PayloadRequest) (io.ReadCloser, error)
}

// PayloadRequest names the lease a payload is fetched under.
type PayloadRequest struct {
	// TaskID of the leased task.
	TaskID task.ID `json:"task_id"`
	// Attempt of the lease.
	Attempt int `json:"attempt"`
	// WorkerID holding the lease.
	WorkerID string `json:"worker_id"`
}

// LeaseRequest asks for work.
type LeaseRequest struct {
	// WorkerID identifies the worker (stable across its leases).
	WorkerID string `json:"worker_id"`
	// Kinds the worker can execute.
	Kinds []string `json:"kinds"`
	// Labels the worker offers (matched against task constraints).
	Labels map[string]string `json:"labels,omitempty"`
	// Platform is the worker's execution platform (software, sgx, ...).
	Platform string `json:"platform,omitempty"`
	// Max is the most tasks to return (1–1000).
	Max int `json:"max"`
	// Wait is how long to hold the request open when nothing is ready.
	Wait task.Duration `json:"wait,omitempty"`
	// Warm lists the digests ("sha256:<hex>") of the models the worker has
	// loaded (at most MaxWarm): the scheduler prefers it for inference
	// tasks of those models.
	Warm []string `json:"warm,omitempty"`
}

// MaxWarm bounds LeaseRequest.Warm.
const MaxWarm = 256

// Assignment is a leased task as handed to a worker.
type Assignment struct {
	// TaskID of the leased task.
	TaskID task.ID `json:"task_id"`
	// TenantID owning it.
	TenantID string `json:"tenant_id"`
	// Kind to execute.
	Kind string `json:"kind"`
	// Payload is the input.
	Payload json.RawMessage `json:"payload,omitempty"`
	// PayloadObject, when the task named its payload by payload_ref, is
	// that object (key, size, SHA-256); Payload holds its bytes, or
	// PayloadBinary when they are in the binary form. A proof of the
	// attempt names it.
	PayloadObject *task.DataRef `json:"payload_object,omitempty"`
	// PayloadBinary, instead of Payload, holds the bytes of a payload
	// object in the binary form (task.IsBinaryPayload: an Open Inference
	// Protocol binary tensor body), as stored. Only kinds that read that
	// form get it (the engine refuses it at submit for the others). The
	// engine leases such objects by reference (PayloadFetch) and the pool
	// fills this field from the fetched bytes before the handler runs; in
	// a lease's JSON it would be base64, never a JSON number array.
	PayloadBinary []byte `json:"payload_binary,omitempty"`
	// PayloadFetch says the payload object's bytes are not in the lease:
	// the worker fetches them by PayloadFetcher.FetchPayload (GET
	// /api/v1/workers/tasks/{id}/payload) and checks them against
	// PayloadObject's size and SHA-256 before the handler runs. The engine
	// leases this way every payload object of a kind that reads the binary
	// form, so the leader neither reads those bodies nor holds them.
	PayloadFetch bool `json:"payload_fetch,omitempty"`
	// ResultInlineMax, when positive, is the largest result the server
	// keeps inline: a larger one is stored at task.ResultKey(TaskID), and
	// a proof of the attempt names that object.
	ResultInlineMax int `json:"result_inline_max,omitempty"`
	// Attempt number; echo it in every report.
	Attempt int `json:"attempt"`
	// Timeout bounds this attempt's execution.
	Timeout task.Duration `json:"timeout"`
	// LeaseDeadline is when the lease lapses without a heartbeat.
	LeaseDeadline time.Time `json:"lease_deadline"`
	// Headers carry the task's metadata.
	Headers map[string]string `json:"headers,omitempty"`
	// Prove asks the worker to sign a proof of the completed attempt and
	// send it with the completed report (Report.Proof).
	Prove bool `json:"prove,omitempty"`
	// Principal is the subject of the principal the lease was granted to
	// ("" when none): the proof of the attempt names it.
	Principal string `json:"principal,omitempty"`
}

// LeaseResponse carries the granted tasks.
type LeaseResponse struct {
	// Tasks granted, possibly none.
	Tasks []Assignment `json:"tasks"`
	// LeaseTTL is how long a lease lives without a heartbeat.
	LeaseTTL task.Duration `json:"lease_ttl"`
}

// LeaseRef names one lease.
type LeaseRef struct {
	// TaskID of the leased task.
	TaskID task.ID `json:"task_id"`
	// Attempt of the lease.
	Attempt int `json:"attempt"`
}

// HeartbeatRequest lists the leases a worker still holds.
type HeartbeatRequest struct {
	// WorkerID identifies the worker.
	WorkerID string `json:"worker_id"`
	// Leases still being worked on.
	Leases []LeaseRef `json:"leases"`
}

// HeartbeatResponse lists leases the worker no longer holds (cancelled,
// expired, or unknown); it must stop working on them.
type HeartbeatResponse struct {
	// Lost leases, each with the reason.
	Lost []LostLease `json:"lost"`
}

// LostLease is a lease the worker must give up.
type LostLease struct {
	LeaseRef
	// Reason is cancelled, expired, or unknown.
	Reason string `json:"reason"`
}

// Report is one event of a leased task.
type Report struct {
	// TaskID of the task.
	TaskID task.ID `json:"task_id"`
	// Attempt of the lease; reports for another attempt are refused.
	Attempt int `json:"attempt"`
	// Status is running (started), completed or failed.
	Status task.Status `json:"status"`
	// Result of a completed task.
	Result json.RawMessage `json:"result,omitempty"`
	// ResultBinary, instead of Result, is a result in the binary form
	// (task.IsBinaryPayload), longer than the assignment's
	// ResultInlineMax: the server stores it by reference as it is (base64
	// in this report's JSON).
	ResultBinary []byte `json:"result_binary,omitempty"`
	// Error of a failed attempt.
	Error *task.Error `json:"error,omitempty"`
	// Proof is the 1-based index in CompleteRequest.Proofs of the envelope
	// that proves this completed attempt (0: none).
	Proof int `json:"proof,omitempty"`
	// TraceParent is the W3C traceparent of the attempt's grey.execute
	// span (when it was sampled): the server's grey.complete span becomes
	// its child.
	TraceParent string `json:"traceparent,omitempty"`

	tenant string     // for grouping proofs by tenant
	run    *proof.Run // what to prove, when the assignment asked
	// At is when the worker observed the event.
	At time.Time `json:"at"`
	// StartedAt, on a completed or failed report, is when the attempt
	// started. The server records it as the start when no running report
	// came first: a worker leaves out a running report that would travel
	// in the same batch as the attempt's outcome.
	StartedAt *time.Time `json:"started_at,omitempty"`
}

// CompleteRequest carries a batch of reports.
type CompleteRequest struct {
	// WorkerID identifies the worker.
	WorkerID string `json:"worker_id"`
	// Reports in the order they happened.
	Reports []Report `json:"reports"`
	// Proofs are DSSE envelopes of the completed reports that asked for
	// one; each covers up to proof.MaxBatch tasks of one tenant.
	Proofs []json.RawMessage `json:"proofs,omitempty"`
}

// ReportResult says whether one report was recorded.
type ReportResult struct {
	// TaskID of the report.
	TaskID task.ID `json:"task_id"`
	// Accepted is false when the report was refused (stale attempt, ...).
	Accepted bool `json:"accepted"`
	// Reason a refused report was refused.
	Reason string `json:"reason,omitempty"`
}

// CompleteResponse answers a CompleteRequest, one result per report.
type CompleteResponse struct {
	// Results in request order.
	Results []ReportResult `json:"results"`
}

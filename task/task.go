package task

import (
	"encoding/json"
	"time"
)

// Type is the execution model of a task.
type Type string

// The task types of DESIGN §5.
const (
	// Stateless tasks run independently (the default).
	Stateless Type = "stateless"
	// Stateful tasks share a StateKey: one runs at a time per key, in order.
	Stateful Type = "stateful"
	// Pipeline tasks run when all tasks in DependsOn completed.
	Pipeline Type = "pipeline"
)

// Priority bounds; higher runs first within a tenant.
const (
	MinPriority     = 0
	MaxPriority     = 10
	DefaultPriority = 5
)

// Constraints restrict where a task may run.
type Constraints struct {
	// Labels must all be present, with equal values, on the worker
	// (e.g. gpu=true, tee=sgx).
	Labels map[string]string `json:"labels,omitempty"`
	// CPU is the requested CPU in cores (used for cost attribution).
	CPU float64 `json:"cpu,omitempty"`
	// MemoryMB is the requested memory in MiB.
	MemoryMB int64 `json:"memory_mb,omitempty"`
	// GPU is the requested GPUs (used for cost attribution); 0 = none,
	// except that a gpu=true label alone counts as one.
	GPU float64 `json:"gpu,omitempty"`
}

// Satisfied reports whether a worker with labels may run a task with c.
func (c Constraints) Satisfied(labels map[string]string) bool {
	for k, v := range c.Labels {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// Error is the error recorded for a failed attempt.
type Error struct {
	// Message says what went wrong.
	Message string `json:"message"`
	// Retryable says whether another attempt may succeed.
	Retryable bool `json:"retryable"`
	// Code is a short machine-readable class (timeout, lease_expired,
	// dependency_failed, executor, unknown_kind, ...).
	Code string `json:"code,omitempty"`
}

// Attempt records one execution attempt.
type Attempt struct {
	// N is the attempt number, from 1.
	N int `json:"n"`
	// WorkerID is the worker that held the lease.
	WorkerID string `json:"worker_id"`
	// Principal is the subject of the authenticated principal that took
	// the lease (docs/AUTH.md); "" for leases taken without one.
	Principal string `json:"principal,omitempty"`
	// LeasedAt is when the lease was granted.
	LeasedAt time.Time `json:"leased_at"`
	// StartedAt is when the worker reported the start.
	StartedAt *time.Time `json:"started_at,omitempty"`
	// FinishedAt is when the attempt ended.
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// Error is why the attempt failed, if it did.
	Error *Error `json:"error,omitempty"`
}

// Lease is the current lease on an active task.
type Lease struct {
	// WorkerID holds the lease.
	WorkerID string `json:"worker_id"`
	// Principal is the subject of the principal that took the lease: only
	// it may heartbeat or report the attempt. "" when taken without one.
	Principal string `json:"principal,omitempty"`
	// Attempt fences outcomes: only this attempt's report is accepted.
	Attempt int `json:"attempt"`
	// Deadline is when the lease expires without a heartbeat.
	Deadline time.Time `json:"deadline"`
}

// Task is one unit of work and everything Grey knows about it.
type Task struct {
	// ID is a UUIDv7.
	ID ID `json:"id"`
	// TenantID owns the task.
	TenantID string `json:"tenant_id"`
	Spec
	// Status is the lifecycle state.
	Status Status `json:"status"`
	// Attempt is the number of the latest attempt (0 before the first lease).
	Attempt int `json:"attempt"`
	// Lease is set while the task is leased or running.
	Lease *Lease `json:"lease,omitempty"`
	// Result is the output of a completed task (absent when ResultRef is
	// set: the client fetches it from GET /api/v1/tasks/{id}/result).
	Result json.RawMessage `json:"result,omitempty"`
	// PayloadObject is the object PayloadRef named, as read at submit
	// (its size and SHA-256); the lease hands workers its bytes.
	PayloadObject *DataRef `json:"payload_object,omitempty"`
	// ResultRef names the stored result of a completed task whose result
	// was over the inline limit (tasks.max_payload_bytes).
	ResultRef *DataRef `json:"result_ref,omitempty"`
	// Error is the last error (the reason of a failed task).
	Error *Error `json:"error,omitempty"`
	// Attempts is the history of attempts.
	Attempts []Attempt `json:"attempts,omitempty"`
	// CreatedAt is when the task was accepted.
	CreatedAt time.Time `json:"created_at"`
	// UpdatedAt is the last state change.
	UpdatedAt time.Time `json:"updated_at"`
	// StartedAt is when the latest attempt started.
	StartedAt *time.Time `json:"started_at,omitempty"`
	// FinishedAt is when the task reached a terminal status.
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// NextAttemptAt is when a retrying task becomes eligible again.
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	// ProofID names the signed proof of a completed task (the SHA-256 of
	// its DSSE envelope, which may cover other tasks of the tenant finished
	// in the same batch); GET /tasks/{id}/proof serves it. Empty when the
	// task has no proof.
	ProofID string `json:"proof_id,omitempty"`
	// Usage is what the task used so far (set by the state machine).
	Usage *Usage `json:"usage,omitempty"`
	// CostTags label the task for cost attribution (grey-tenant-id,
	// grey-task-id, grey-environment and configured extras); filled in on
	// read.
	CostTags map[string]string `json:"cost_tags,omitempty"`
	// CostUSD is the task's cost under the configured price table, once
	// finished; filled in on read.
	CostUSD *float64 `json:"cost_usd,omitempty"`
	// WaitingReason says why a pending task does not run yet (not stored;
	// filled in by the API from the scheduler's view).
	WaitingReason string `json:"waiting_reason,omitempty"`
	// Index is the Raft index of the last change.
	Index uint64 `json:"index"`
}

// Clone returns a copy that shares no mutable memory with t.
func (t *Task) Clone() *Task { return t.CloneGrow(0) }

// CloneGrow is Clone with room for n more attempts in the copy's
// Attempts, so that appending them does not copy the slice again.
func (t *Task) CloneGrow(n int) *Task {
	c := *t
	if t.Lease != nil {
		l := *t.Lease
		c.Lease = &l
	}
	if t.Error != nil {
		e := *t.Error
		c.Error = &e
	}
	switch {
	case n > 0:
		c.Attempts = append(make([]Attempt, 0, len(t.Attempts)+n), t.Attempts...)
	case t.Attempts != nil:
		c.Attempts = append([]Attempt(nil), t.Attempts...)
	}
	if t.Usage != nil {
		u := *t.Usage
		c.Usage = &u
	}
	if t.PayloadObject != nil {
		p := *t.PayloadObject
		c.PayloadObject = &p
	}
	if t.ResultRef != nil {
		r := *t.ResultRef
		c.ResultRef = &r
	}
	return &c
}

// Spec is what a client submits.
type Spec struct {
	// Kind selects the executor or worker type.
	Kind string `json:"kind"`
	// Type is stateless (default), stateful or pipeline.
	Type Type `json:"type,omitempty"`
	// Payload is the task's input, any JSON value.
	Payload json.RawMessage `json:"payload,omitempty"`
	// PayloadRef, instead of Payload, names an object of the tenant's task
	// data holding the payload's JSON bytes: the payload_ref that
	// POST /api/v1/uploads returned ("uploads/<id>"), or another task's
	// stored result ("results/<task id>"). See ParseRef.
	PayloadRef string `json:"payload_ref,omitempty"`
	// Priority is 0–10, default 5; higher first within a tenant.
	Priority *int `json:"priority,omitempty"`
	// IdempotencyKey makes a resubmission return the existing task.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// StateKey serialises stateful tasks: one runs at a time per key, FIFO.
	StateKey string `json:"state_key,omitempty"`
	// DependsOn lists parents that must complete first.
	DependsOn []ID `json:"depends_on,omitempty"`
	// Constraints restrict where it runs.
	Constraints *Constraints `json:"constraints,omitempty"`
	// Timeout bounds one attempt's run time; 0 = the configured default.
	Timeout Duration `json:"timeout,omitempty"`
	// Retry overrides the global retry policy.
	Retry *RetryPolicy `json:"retry,omitempty"`
	// RequireProof asks for a signed proof artifact (nil = the tenant's or
	// the cluster's setting).
	RequireProof *bool `json:"require_proof,omitempty"`
	// RequireTEE names the TEE platform (sgx, tdx, sev-snp, nitro) the task
	// must run on; it waits until a worker on that platform leases it and
	// never runs elsewhere.
	RequireTEE string `json:"require_tee,omitempty"`
	// RunAt delays the first attempt.
	RunAt *time.Time `json:"run_at,omitempty"`
	// Headers carry metadata (e.g. traceparent) to the worker.
	Headers map[string]string `json:"headers,omitempty"`
}

// Prio returns the effective priority.
func (s *Spec) Prio() int {
	if s.Priority == nil {
		return DefaultPriority
	}
	return *s.Priority
}

// PlatformLabel is the worker label that carries the worker's execution
// platform (software, sgx, tdx, sev-snp, nitro). The server sets it from the
// lease request; a task's RequireTEE becomes a constraint on it.
const PlatformLabel = "grey.platform"

// TEEPlatforms are the platforms RequireTEE may name.
var TEEPlatforms = []string{"sgx", "tdx", "sev-snp", "nitro"}

// Labels returns the required worker labels (nil when none), including the
// PlatformLabel constraint of RequireTEE.
func (s *Spec) Labels() map[string]string {
	var l map[string]string
	if s.Constraints != nil {
		l = s.Constraints.Labels
	}
	if s.RequireTEE == "" {
		return l
	}
	m := make(map[string]string, len(l)+1)
	for k, v := range l {
		m[k] = v
	}
	m[PlatformLabel] = s.RequireTEE
	return m
}

// Usage is what one task used, recorded as its attempts finish.
type Usage struct {
	// ExecSeconds is wall time spent executing, over all attempts.
	ExecSeconds float64 `json:"exec_seconds"`
	// CPUSeconds is ExecSeconds × the requested CPU (1 when unset).
	CPUSeconds float64 `json:"cpu_seconds"`
	// GPUSeconds is ExecSeconds × the requested GPUs (see Spec.GPU).
	GPUSeconds float64 `json:"gpu_seconds,omitempty"`
	// BytesIn is the payload size.
	BytesIn int64 `json:"bytes_in"`
	// BytesOut is the result size.
	BytesOut int64 `json:"bytes_out"`
}

// CPU returns the requested CPU (1 when unset).
func (s *Spec) CPU() float64 {
	if s.Constraints == nil || s.Constraints.CPU <= 0 {
		return 1
	}
	return s.Constraints.CPU
}

// GPULabel is the worker label of a node with a GPU (a runtime with a CUDA
// device); a task asking for it is charged one GPU unless it asks for more.
const GPULabel = "gpu"

// GPU returns the requested GPUs: Constraints.GPU when set, else 1 when
// the task requires the gpu=true label, else 0.
func (s *Spec) GPU() float64 {
	if s.Constraints == nil {
		return 0
	}
	if s.Constraints.GPU > 0 {
		return s.Constraints.GPU
	}
	if s.Constraints.Labels[GPULabel] == "true" {
		return 1
	}
	return 0
}

// ModelDigestHeader is the header in which the server stamps, at submit,
// the digest ("sha256:<hex>") of the model an inference task resolved to.
// The scheduler prefers workers that report that model warm. Only the
// server sets it: names under ReservedHeaderPrefix are refused at submit.
const ModelDigestHeader = ReservedHeaderPrefix + "model-digest"

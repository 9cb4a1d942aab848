package state

import (
	"encoding/json"
	"time"

	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/tenant"
)

// The write requests. Each carries Now, the leader's clock when it proposed
// the write; the store never reads a clock itself.

// SubmitRequest adds tasks, all or none.
type SubmitRequest struct {
	Now time.Time `json:"now"`
	// Tasks are complete (id, tenant, status pending, created_at stamped).
	Tasks []*task.Task `json:"tasks"`
	// AutoCreate, when set, creates the tenant if it does not exist.
	AutoCreate *tenant.Tenant `json:"auto_create,omitempty"`
	// Enforce applies the tenant's quota.
	Enforce bool `json:"enforce,omitempty"`
}

// SubmitResult returns the stored tasks in request order.
type SubmitResult struct {
	Tasks []*task.Task
	// Created is false where an idempotency key matched an existing task.
	Created []bool
}

// Ref names one attempt of one task.
type Ref struct {
	TaskID  string `json:"task_id"`
	Attempt int    `json:"attempt"`
}

// LeaseRequest grants leases; Attempt is the new attempt number.
type LeaseRequest struct {
	Now      time.Time `json:"now"`
	WorkerID string    `json:"worker_id"`
	// Principal is the subject of the principal taking the leases,
	// recorded with each lease and attempt.
	Principal string    `json:"principal,omitempty"`
	Deadline  time.Time `json:"deadline"`
	Items     []Ref     `json:"items"`
}

// LeaseResult lists the granted and refused leases.
type LeaseResult struct {
	Leased  []*task.Task
	Refused []string
}

// StartItem reports that the worker began an attempt.
type StartItem struct {
	Ref
	At time.Time `json:"at"`
}

// StartRequest records starts.
type StartRequest struct {
	Now      time.Time `json:"now"`
	WorkerID string    `json:"worker_id"`
	// Principal is the subject of the caller's principal; when set, only
	// leases taken by the same principal are affected.
	Principal string      `json:"principal,omitempty"`
	Items     []StartItem `json:"items"`
}

// CompleteItem is a successful outcome.
type CompleteItem struct {
	Ref
	Result json.RawMessage `json:"result,omitempty"`
	// ResultRef, instead of Result, names the stored result (over the
	// inline limit) in the tenant's task data.
	ResultRef *task.DataRef `json:"result_ref,omitempty"`
	// Proof is the 1-based index of the item's proof envelope in the
	// request's Proofs (0: none).
	Proof int       `json:"proof,omitempty"`
	At    time.Time `json:"at"`
	// StartedAt is when the attempt started, for a task whose start was
	// not recorded (its worker reported the outcome without a separate
	// start): nil counts the start at At.
	StartedAt *time.Time `json:"started_at,omitempty"`
}

// CompleteRequest records successful outcomes.
type CompleteRequest struct {
	Now      time.Time `json:"now"`
	WorkerID string    `json:"worker_id"`
	// Principal is the subject of the caller's principal; when set, only
	// leases taken by the same principal are affected.
	Principal string         `json:"principal,omitempty"`
	Items     []CompleteItem `json:"items"`
	// Proofs are the signed envelopes (JSON) the items refer to; one may
	// cover several items. The engine sends them as raw proof-blob commands
	// ahead of this one in the same batch entry (no JSON, no base64), and
	// the FSM fills them in; a command that carries them itself (base64)
	// is applied the same way.
	Proofs [][]byte `json:"proofs,omitempty"`
	// Blobs, when set, replace Proofs: the FSM's blobs of the batch,
	// packed or not (ProofBlob).
	Blobs []ProofBlob `json:"-"`
}

// FailItem is an unsuccessful attempt. RetryAt, set by the leader from the
// task's retry policy, makes the task retrying; nil makes it failed.
type FailItem struct {
	Ref
	Error   task.Error `json:"error"`
	RetryAt *time.Time `json:"retry_at,omitempty"`
	At      time.Time  `json:"at"`
	// StartedAt is when the attempt started, for a task whose start was
	// not recorded (its worker reported the outcome without a separate
	// start); nil leaves the start unrecorded.
	StartedAt *time.Time `json:"started_at,omitempty"`
}

// FailRequest records failed attempts reported by a worker. The same shape
// serves the leader's own retries (expired leases, timeouts), with an empty
// WorkerID.
type FailRequest struct {
	Now      time.Time `json:"now"`
	WorkerID string    `json:"worker_id,omitempty"`
	// Principal is the subject of the caller's principal; when set, only
	// leases taken by the same principal are affected.
	Principal string     `json:"principal,omitempty"`
	Items     []FailItem `json:"items"`
}

// HeartbeatRequest extends the worker's leases to Deadline.
type HeartbeatRequest struct {
	Now      time.Time `json:"now"`
	WorkerID string    `json:"worker_id"`
	// Principal is the subject of the caller's principal; when set, only
	// leases taken by the same principal are affected.
	Principal string    `json:"principal,omitempty"`
	Deadline  time.Time `json:"deadline"`
	Items     []Ref     `json:"items"`
}

// Lost is a lease a worker no longer holds.
type Lost struct {
	Ref
	Reason string
}

// CancelRequest cancels one task of a tenant.
type CancelRequest struct {
	Now      time.Time `json:"now"`
	TenantID string    `json:"tenant_id"`
	TaskID   string    `json:"task_id"`
	Reason   string    `json:"reason,omitempty"`
}

// GCRequest removes terminal tasks finished before Before, at most Max,
// keeping those that a sink named in Hold has not acknowledged.
type GCRequest struct {
	Now    time.Time `json:"now"`
	Before time.Time `json:"before"`
	Max    int       `json:"max"`
	// Hold names the sinks that must have acknowledged a task (the
	// archive) before it leaves the state.
	Hold []string `json:"hold,omitempty"`
}

// Outcome says what happened to one item of a batch write.
type Outcome struct {
	TaskID   string
	Accepted bool
	Reason   string
}

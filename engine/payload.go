package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"time"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/worker"
)

// PayloadOpener is a TaskData that streams an object of a tenant's task
// data (taskdata.Store implements it); without it FetchPayload reads the
// object whole.
type PayloadOpener interface {
	// Open opens key of tenant's task data and returns its size.
	Open(ctx context.Context, tenant, key string) (io.ReadCloser, int64, error)
}

var _ worker.PayloadFetcher = (*Engine)(nil)

// assignPayload is what a lease hands the worker for t's payload: inline
// (leasePayload), or, for a payload object of a kind that reads the binary
// form, nothing but fetch = true: such bodies are the large ones (tensors),
// so the leader neither reads them at lease time nor carries them base64
// in the lease; the worker fetches them (FetchPayload) and checks them
// against t.PayloadObject. Deciding by kind, not by the bytes, is what
// lets the leader skip the read.
func (e *Engine) assignPayload(ctx context.Context, t *task.Task) (payload json.RawMessage, binary []byte, fetch bool, err error) {
	if t.PayloadObject != nil && e.cfg.Data != nil && e.cfg.BinaryPayloads[t.Kind] {
		return nil, nil, true, nil
	}
	payload, binary, err = e.leasePayload(ctx, t)
	return payload, binary, false, err
}

// FetchPayload implements worker.PayloadFetcher: it streams the payload
// object of the task req names to the worker holding its current lease.
// The caller's principal (none: the node's own pool) must hold the worker
// role for the task's tenant and kind, else the task is NotFound, as an
// unknown one is; a task whose current lease is not req's (another worker,
// another attempt, expired, or no lease) is FailedPrecondition (409).
func (e *Engine) FetchPayload(ctx context.Context, req *worker.PayloadRequest) (io.ReadCloser, error) {
	rc, _, err := e.OpenPayload(ctx, req)
	return rc, err
}

// OpenPayload is FetchPayload returning the object's recorded reference
// too (its size and SHA-256: the API's Content-Length and digest header).
func (e *Engine) OpenPayload(ctx context.Context, req *worker.PayloadRequest) (io.ReadCloser, *task.DataRef, error) {
	if req.WorkerID == "" || len(req.WorkerID) > 200 {
		return nil, nil, greyerr.Invalid("worker_id", "is required (at most 200 bytes)")
	}
	if !task.ValidID(req.TaskID) {
		return nil, nil, greyerr.New(greyerr.NotFound, "task %s not found", req.TaskID)
	}
	if req.Attempt < 1 {
		return nil, nil, greyerr.Invalid("attempt", "must be at least 1")
	}
	if !e.IsLeader() {
		// Leases are granted and checked on the leader; a follower's state
		// may not show a lease just granted yet.
		return nil, nil, &greyerr.Error{Code: greyerr.Unavailable, Message: "not the leader", RetryAfter: time.Second}
	}
	principal, scope := leaseCaller(ctx)
	t := e.store.Lookup(req.TaskID)
	if t == nil || principal != "" && !scope.Allows(t.TenantID, t.Kind) {
		return nil, nil, greyerr.New(greyerr.NotFound, "task %s not found", req.TaskID)
	}
	now := time.Now()
	switch {
	case t.Lease == nil || !t.Status.Active():
		return nil, nil, greyerr.New(greyerr.FailedPrecondition, "task %s is %s: no lease to fetch its payload under", t.ID, t.Status)
	case t.Lease.WorkerID != req.WorkerID || t.Attempt != req.Attempt:
		return nil, nil, greyerr.New(greyerr.FailedPrecondition, "task %s: the lease of attempt %d is not worker %s's", t.ID, req.Attempt, req.WorkerID)
	case principal != "" && t.Lease.Principal != "" && t.Lease.Principal != principal:
		return nil, nil, greyerr.New(greyerr.FailedPrecondition, "task %s: the lease was taken by another principal", t.ID)
	case !now.Before(t.Lease.Deadline):
		return nil, nil, greyerr.New(greyerr.FailedPrecondition, "task %s: the lease of attempt %d has expired", t.ID, t.Attempt)
	}
	if t.PayloadObject == nil {
		return nil, nil, greyerr.New(greyerr.NotFound, "task %s has no payload object (its payload is inline in the lease)", t.ID)
	}
	if e.cfg.Data == nil {
		return nil, nil, greyerr.New(greyerr.Unimplemented, "task %s names its payload by reference and this server has no task data store", t.ID)
	}
	if o, ok := e.cfg.Data.(PayloadOpener); ok {
		rc, _, err := o.Open(ctx, t.TenantID, t.PayloadObject.Ref)
		if err != nil {
			return nil, nil, err
		}
		return rc, t.PayloadObject, nil
	}
	b, err := e.cfg.Data.Read(ctx, t.TenantID, t.PayloadObject)
	if err != nil {
		return nil, nil, err
	}
	return io.NopCloser(bytes.NewReader(b)), t.PayloadObject, nil
}

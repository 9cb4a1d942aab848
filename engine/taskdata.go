package engine

import (
	"context"
	"encoding/json"
	"time"

	"github.com/grey-distributed/grey/cluster"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
)

// TaskData is the store of large task data the engine uses (package
// taskdata implements it over a blob bucket; the engine imports no
// driver).
type TaskData interface {
	// ResolvePayload checks a payload_ref of tenant and reads the object:
	// its key, size and SHA-256 (403 outside the tenant's prefix, 400
	// missing, 413 over quota).
	ResolvePayload(ctx context.Context, field, tenant, ref string) (*task.DataRef, error)
	// Read returns ref's bytes, checked against its size and SHA-256.
	Read(ctx context.Context, tenant string, ref *task.DataRef) ([]byte, error)
	// StoreResult stores a result at task.ResultKey(taskID).
	StoreResult(ctx context.Context, tenant string, taskID task.ID, result []byte) (*task.DataRef, error)
	// InlineMax is the largest result kept inline.
	InlineMax() int
	// SweepResults deletes the stored results of tasks that are gone.
	SweepResults(ctx context.Context, live func(tenant, taskID string) bool) (int, error)
}

// Data is the engine's task data store (nil when it has none).
func (e *Engine) Data() TaskData { return e.cfg.Data }

// PayloadDataResolver is a TaskData that also hands back the bytes it read
// while resolving a payload_ref, so that a kind's submit hook can check
// them without a second read (taskdata.Store implements it).
type PayloadDataResolver interface {
	// ResolvePayloadData is ResolvePayload returning the object's bytes
	// too.
	ResolvePayloadData(ctx context.Context, field, tenant, ref string) (*task.DataRef, []byte, error)
}

// resolvePayloads reads the objects the specs name by payload_ref. A task
// of a kind with a submit hook is checked by it as an inline payload is:
// the hook sees the object's bytes as the payload (an inference task naming
// a model its tenant lacks is refused at submit either way), and what it
// stamps on the spec (labels, headers) is kept; the payload stays a
// reference.
func (e *Engine) resolvePayloads(ctx context.Context, tenant string, ts []*task.Task, batch bool) error {
	for i, t := range ts {
		if t.PayloadRef == "" {
			continue
		}
		prefix := itemPrefix(batch, i)
		field := prefix + "payload_ref"
		if e.cfg.Data == nil {
			e := greyerr.New(greyerr.Unimplemented, "this server has no task data store (tasks.data_url), so payload_ref is not available")
			e.Field = field
			return e
		}
		hook := e.cfg.SubmitHooks[t.Kind]
		var (
			ref  *task.DataRef
			data []byte
			err  error
		)
		if r, ok := e.cfg.Data.(PayloadDataResolver); ok {
			ref, data, err = r.ResolvePayloadData(ctx, field, tenant, t.PayloadRef)
		} else {
			ref, err = e.cfg.Data.ResolvePayload(ctx, field, tenant, t.PayloadRef)
			if err == nil && hook != nil {
				data, err = e.cfg.Data.Read(ctx, tenant, ref)
			}
		}
		if err != nil {
			return err
		}
		if task.IsBinaryPayload(data) && !e.cfg.BinaryPayloads[t.Kind] {
			return greyerr.Invalid(field, "object %q is a binary body (it starts with %q), which kind %q does not read: give it to an inference task, or upload JSON", ref.Ref, task.BinaryPayloadPrefix, t.Kind)
		}
		t.PayloadRef = ref.Ref
		t.PayloadObject = ref
		if hook != nil {
			sp := t.Spec
			sp.Payload = data
			if err := runHook(ctx, hook, tenant, prefix, &sp); err != nil {
				return err
			}
			sp.Payload = t.Spec.Payload
			t.Spec = sp
		}
	}
	return nil
}

// leasePayload fills in the payload of a leased task that names it by
// reference: the worker gets the bytes as if they were inline, or, for an
// object in the binary form (task.IsBinaryPayload), as binary.
func (e *Engine) leasePayload(ctx context.Context, t *task.Task) (payload json.RawMessage, binary []byte, err error) {
	if t.PayloadObject == nil {
		return t.Payload, nil, nil
	}
	if e.cfg.Data == nil {
		return nil, nil, greyerr.New(greyerr.Unimplemented, "task %s names its payload by reference and this server has no task data store", t.ID)
	}
	b, err := e.cfg.Data.Read(ctx, t.TenantID, t.PayloadObject)
	if err != nil {
		return nil, nil, err
	}
	if task.IsBinaryPayload(b) {
		return nil, b, nil
	}
	return b, nil, nil
}

// failLeased fails a leased attempt whose payload cannot be read: a
// missing or changed object does not get better with retries.
func (e *Engine) failLeased(ctx context.Context, workerID, principal string, t *task.Task, err error, now time.Time) {
	retry := greyerr.CodeOf(err) == greyerr.Unavailable
	te := task.Error{Message: "reading the payload object failed: " + err.Error(), Code: "payload_unavailable", Retryable: retry}
	req := &state.FailRequest{Now: now, WorkerID: workerID, Principal: principal,
		Items: []state.FailItem{e.failItem(state.Ref{TaskID: t.ID, Attempt: t.Attempt}, te, now, now)}}
	if _, aerr := cluster.Apply(ctx, e.node, cluster.Fail(req)); aerr != nil {
		e.logger.Warn("failing a task whose payload cannot be read", "task_id", t.ID, "err", aerr)
	}
}

// Result returns the result bytes of the tenant's task: inline, or read
// from the task data store (checked against its recorded SHA-256).
func (e *Engine) Result(ctx context.Context, tenant, id string) ([]byte, *task.Task, error) {
	t, err := e.Get(ctx, tenant, id)
	if err != nil {
		return nil, nil, err
	}
	if t.Status != task.Completed {
		return nil, t, greyerr.New(greyerr.FailedPrecondition, "task %s is %s, not completed", id, t.Status)
	}
	if t.ResultRef == nil {
		return t.Result, t, nil
	}
	if e.cfg.Data == nil {
		return nil, t, greyerr.New(greyerr.Unimplemented, "task %s's result is stored and this server has no task data store", id)
	}
	b, err := e.cfg.Data.Read(ctx, tenant, t.ResultRef)
	return b, t, err
}

// sweepResults deletes the stored results of collected tasks (the leader,
// after each collection).
func (e *Engine) sweepResults(ctx context.Context) {
	if e.cfg.Data == nil {
		return
	}
	n, err := e.cfg.Data.SweepResults(ctx, func(tenant, id string) bool {
		if e.store.Lookup(id) != nil {
			return true
		}
		if e.cfg.Archive.Store == nil {
			return false
		}
		// An archived task's stored result stays while the archive keeps it.
		_, err := e.cfg.Archive.Store.Get(ctx, tenant, id)
		return !greyerr.Is(err, greyerr.NotFound)
	})
	if err != nil {
		e.logger.Warn("sweeping stored results of collected tasks", "err", err)
		return
	}
	if n > 0 {
		e.logger.Debug("deleted stored results of collected tasks", "count", n)
	}
}

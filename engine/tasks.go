package engine

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/cluster"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/telemetry/tracing"
)

// MaxBatch is the largest number of tasks in one submit.
const MaxBatch = 1000

// SubmitResult is the outcome of a submit.
type SubmitResult struct {
	// Tasks in request order.
	Tasks []*task.Task
	// Created is false where an idempotency key matched an existing task.
	Created []bool
}

// runHook runs a kind's submit hook on sp, prefixing the field of a
// coded error (tasks[i].) and coding any other error as a 400 naming the
// payload.
func runHook(ctx context.Context, hook SubmitHook, tenant, prefix string, sp *task.Spec) error {
	err := hook(ctx, tenant, sp)
	if err == nil {
		return nil
	}
	var ge *greyerr.Error
	if errors.As(err, &ge) {
		if prefix != "" && ge.Field != "" {
			c := *ge
			c.Field = prefix + ge.Field
			return &c
		}
		return err
	}
	return greyerr.Invalid(prefix+"payload", "%v", err)
}

// Submit validates and stores tasks for tenant, all or none. Field names in
// errors are prefixed with "tasks[i]." when batch is true. It runs in a
// grey.submit span; each stored task's headers get the span's trace context
// and baggage (unless the spec carries its own traceparent).
func (e *Engine) Submit(ctx context.Context, tenant string, specs []task.Spec, batch bool) (*SubmitResult, error) {
	ctx, span := tracing.Start(ctx, tracing.SpanSubmit, trace.WithAttributes(tracing.TenantID.String(tenant), tracing.TaskCount.Int(len(specs))))
	res, err := e.submit(ctx, tenant, specs, batch)
	if span.IsRecording() && len(specs) == 1 {
		span.SetAttributes(tracing.Kind.String(specs[0].Kind))
		if res != nil {
			span.SetAttributes(tracing.TaskID.String(res.Tasks[0].ID))
		}
	}
	tracing.End(span, err)
	return res, err
}

func (e *Engine) submit(ctx context.Context, tenant string, specs []task.Spec, batch bool) (*SubmitResult, error) {
	if len(specs) == 0 {
		return nil, greyerr.Invalid("tasks", "at least one task is required")
	}
	if len(specs) > MaxBatch {
		return nil, greyerr.Invalid("tasks", "at most %d tasks per batch, got %d", MaxBatch, len(specs))
	}
	if !task.ValidTenant(tenant) {
		return nil, greyerr.Invalid("tenant", "%q is not a valid tenant id", tenant)
	}
	if err := e.archiveBacklogFull(); err != nil {
		return nil, err
	}
	lim := e.Limits()
	now := time.Now().UTC()
	req := &state.SubmitRequest{Now: now, Tasks: make([]*task.Task, len(specs))}
	traceHeaders := tracing.SubmitHeaders(ctx)
	for i := range specs {
		// The task is made first and its spec checked and completed in
		// place: no second copy of the spec per task.
		t := &task.Task{TenantID: tenant, Spec: specs[i], Status: task.Pending, CreatedAt: now, UpdatedAt: now}
		sp := &t.Spec
		if err := sp.Validate("", lim); err != nil {
			return nil, inItem(err, batch, i)
		}
		if !e.KnownKind(sp.Kind) {
			return nil, inItem(greyerr.Invalid("kind", "unknown kind %q: no executor or worker provides it (known: %s; list extra kinds in tasks.kinds or start a worker for it first)", sp.Kind, strings.Join(e.Kinds(), ", ")), batch, i)
		}
		if e.cfg.ValidatePayload != nil && sp.PayloadRef == "" {
			if err := e.cfg.ValidatePayload(sp.Kind, sp.Payload); err != nil {
				return nil, inItem(greyerr.Invalid("payload", "%v", err), batch, i)
			}
		}
		if hook := e.cfg.SubmitHooks[sp.Kind]; hook != nil && sp.PayloadRef == "" {
			if err := runHook(ctx, hook, tenant, itemPrefix(batch, i), sp); err != nil {
				return nil, err
			}
		}
		id, err := task.NewID()
		if err != nil {
			return nil, greyerr.Wrap(greyerr.Internal, err, "new task id")
		}
		t.ID = id
		if d := e.cfg.KindTimeouts[sp.Kind]; sp.Timeout == 0 && d > 0 {
			if e.cfg.MaxTimeout > 0 {
				d = min(d, e.cfg.MaxTimeout)
			}
			sp.Timeout = task.Duration(d)
		}
		if sp.RunAt != nil {
			r := sp.RunAt.UTC()
			sp.RunAt = &r
		}
		sp.Headers = tracing.AddHeaders(sp.Headers, traceHeaders)
		req.Tasks[i] = t
	}
	if err := e.resolvePayloads(ctx, tenant, req.Tasks, batch); err != nil {
		return nil, err
	}
	giveBack, err := e.admit(tenant, req.Tasks, now)
	if err != nil {
		return nil, err
	}
	req.AutoCreate = e.autoCreate(tenant)
	req.Enforce = !e.cfg.Tenants.DisableQuotas
	res, err := cluster.Apply(ctx, e.node, cluster.Submit(req))
	if err != nil {
		if notApplied(err) {
			giveBack() // refused (a quota race, a parent gone): nothing was created
		}
		if batch {
			return nil, err
		}
		return nil, unbatchField(err)
	}
	return &SubmitResult{Tasks: res.Tasks, Created: res.Created}, nil
}

func unbatchField(err error) error { return err }

// itemPrefix is the field prefix of a batch's item i ("tasks[3].";
// nothing outside a batch). Errors alone need it: it is built only then.
func itemPrefix(batch bool, i int) string {
	if !batch {
		return ""
	}
	return "tasks[" + strconv.Itoa(i) + "]."
}

// inItem names a batch's item i in err's field ("kind" becomes
// "tasks[3].kind") and returns err.
func inItem(err error, batch bool, i int) error {
	var ge *greyerr.Error
	if batch && errors.As(err, &ge) {
		ge.Field = itemPrefix(batch, i) + ge.Field
	}
	return err
}

// Get returns the tenant's task with its waiting reason filled in, from
// the state or, once collected from there, from the archive.
func (e *Engine) Get(ctx context.Context, tenant, id string) (*task.Task, error) {
	if !task.ValidID(id) {
		return nil, greyerr.New(greyerr.NotFound, "task %s not found", id)
	}
	t, err := e.store.Get(tenant, id)
	if greyerr.Is(err, greyerr.NotFound) {
		rec, aerr := e.archived(ctx, tenant, id)
		if aerr != nil {
			return nil, aerr
		}
		return e.costOf(rec.Task), nil
	}
	if err != nil {
		return nil, err
	}
	return e.decorate(t), nil
}

func (e *Engine) decorate(t *task.Task) *task.Task {
	t = e.costOf(t)
	if t.Status != task.Pending && t.Status != task.Retrying {
		return t
	}
	reason := e.store.Blocked(t.ID)
	if reason == "" && t.Status == task.Pending && t.RequireTEE != "" {
		reason = e.teeWait(t)
	}
	if reason == "" && t.Status == task.Pending && t.RunAt != nil && t.RunAt.After(time.Now()) {
		reason = "scheduled for " + t.RunAt.Format(time.RFC3339Nano)
	}
	if reason == "" && t.Status == task.Pending {
		reason = "queued"
	}
	if reason == "" {
		return t
	}
	t.WaitingReason = reason
	return t
}

// ListOptions filter List.
type ListOptions struct {
	// Filter selects tasks: statuses, kind, finish-time range, labels.
	archive.Filter
	// Limit is the page size, 1 to 1000 (0: 100).
	Limit int
	// Cursor is the NextCursor of an earlier page with the same filter.
	Cursor string
}

// List returns a page of the tenant's tasks, newest first: those in the
// state and, with an archive, those archived (one merged, tenant-scoped
// list; a task in both appears once). The cursor is opaque and bound to
// the tenant and the filter.
func (e *Engine) List(ctx context.Context, tenant string, opts ListOptions) ([]*task.Task, string, error) {
	if opts.Limit == 0 {
		opts.Limit = 100
	}
	if opts.Limit < 0 || opts.Limit > 1000 {
		return nil, "", greyerr.Invalid("limit", "must be between 1 and 1000")
	}
	for _, s := range opts.Statuses {
		if !s.Valid() {
			return nil, "", greyerr.Invalid("status", "unknown status %q", s)
		}
	}
	if !opts.FinishedFrom.IsZero() && !opts.FinishedTo.IsZero() && !opts.FinishedFrom.Before(opts.FinishedTo) {
		return nil, "", greyerr.Invalid("finished_from", "must be before finished_to")
	}
	for k := range opts.Labels {
		if k == "" {
			return nil, "", greyerr.Invalid("label", "a label filter is key=value with a non-empty key")
		}
	}
	before := ""
	if opts.Cursor != "" {
		c, err := archive.DecodeCursor(opts.Cursor, tenant, opts.Filter)
		if err != nil {
			return nil, "", err
		}
		before = c.Before
	}
	return e.listMerged(ctx, tenant, opts, before)
}

// Cancel cancels the tenant's task. A running task's worker learns it at
// its next heartbeat and its context is cancelled.
func (e *Engine) Cancel(ctx context.Context, tenant, id string) (*task.Task, error) {
	if !task.ValidID(id) {
		return nil, greyerr.New(greyerr.NotFound, "task %s not found", id)
	}
	if _, err := e.store.Get(tenant, id); err != nil {
		return nil, err
	}
	res, err := cluster.Apply(ctx, e.node, cluster.Cancel(&state.CancelRequest{Now: time.Now().UTC(), TenantID: tenant, TaskID: id}))
	if err != nil {
		return nil, err
	}
	return res, nil
}

// Wait returns the tenant's task once it is terminal, or as it is when
// timeout passes or ctx ends.
func (e *Engine) Wait(ctx context.Context, tenant, id string, timeout time.Duration) (*task.Task, error) {
	t, err := e.Get(ctx, tenant, id)
	if err != nil || t.Status.Terminal() {
		return t, err
	}
	ch := e.hub.wait(id)
	defer e.hub.unwait(id, ch)
	// Re-read: it may have finished between Get and registering.
	if t, err = e.Get(ctx, tenant, id); err != nil || t.Status.Terminal() {
		return t, err
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case t := <-ch:
		return e.decorate(t), nil
	case <-timer.C:
	case <-ctx.Done():
	}
	return e.Get(context.Background(), tenant, id)
}

// WatchOptions filter a watch.
type WatchOptions struct {
	// Statuses to deliver (all when empty).
	Statuses []task.Status
	// Kind to deliver (all when empty).
	Kind string
	// Buffer is the channel size; a reader that falls this far behind is
	// dropped (Overflowed).
	Buffer int
}

// Watch subscribes to the tenant's task changes from now on. Call Unwatch
// when done.
func (e *Engine) Watch(tenant string, opts WatchOptions) (*Watcher, error) {
	w := &Watcher{tenant: tenant, kind: opts.Kind, statuses: map[task.Status]bool{}}
	for _, s := range opts.Statuses {
		if !s.Valid() {
			return nil, greyerr.Invalid("status", "unknown status %q", s)
		}
		w.statuses[s] = true
	}
	buf := opts.Buffer
	if buf <= 0 {
		buf = 1 << 16
	}
	w.ch = make(chan *task.Task, buf)
	e.hub.watch(w)
	return w, nil
}

// Unwatch ends a watch.
func (e *Engine) Unwatch(w *Watcher) { e.hub.unwatch(w) }

// SubmitSlot admits one submit request of tenant, waiting while the tenant
// already has Config.SubmitSlots in progress; call the returned release when done.
// The API takes it before decoding the body, so one tenant's flood of large
// batches can neither hog the CPU spent decoding nor queue the Raft log
// (and every other tenant's submits and the workers' leases) deeply.
func (e *Engine) SubmitSlot(ctx context.Context, tenant string) (func(), error) {
	e.slotsMu.Lock()
	ch := e.slots[tenant]
	if ch == nil {
		ch = make(chan struct{}, e.cfg.SubmitSlots)
		e.slots[tenant] = ch
	}
	e.slotsMu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, greyerr.Wrap(greyerr.Unavailable, ctx.Err(), "submit not started")
	}
}

// notApplied reports whether a failed Apply certainly created nothing: the
// state machine refused the command (a quota race, a parent collected
// meanwhile). Other failures may or may not have applied (an Apply that
// lost its leader or its deadline), so their tokens stay spent.
func notApplied(err error) bool {
	switch greyerr.CodeOf(err) {
	case greyerr.ResourceExhausted, greyerr.FailedPrecondition, greyerr.InvalidArgument,
		greyerr.NotFound, greyerr.PermissionDenied, greyerr.TooLarge, greyerr.AlreadyExists:
		return true
	}
	return false
}

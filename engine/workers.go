package engine

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/cluster"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/proof"
	"github.com/grey-distributed/grey/scheduler"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/telemetry/tracing"
	"github.com/grey-distributed/grey/worker"
)

var _ worker.Coordinator = (*Engine)(nil)

// MaxLease is the most tasks one lease call grants.
const MaxLease = 1000

// electionWait bounds how long a lease call waits for a leader to appear.
const electionWait = 2 * time.Second

// MaxLeaseWait bounds a lease long poll.
const MaxLeaseWait = 60 * time.Second

// Lease implements worker.Coordinator.
func (e *Engine) Lease(ctx context.Context, req *worker.LeaseRequest) (*worker.LeaseResponse, error) {
	if req.WorkerID == "" || len(req.WorkerID) > 200 {
		return nil, greyerr.Invalid("worker_id", "is required (at most 200 bytes)")
	}
	if len(req.Kinds) == 0 {
		return nil, greyerr.Invalid("kinds", "at least one kind is required")
	}
	if req.Max < 1 || req.Max > MaxLease {
		return nil, greyerr.Invalid("max", "must be between 1 and %d", MaxLease)
	}
	if req.Wait < 0 || req.Wait.D() > MaxLeaseWait {
		return nil, greyerr.Invalid("wait", "must be between 0 and %s", MaxLeaseWait)
	}
	if len(req.Warm) > worker.MaxWarm {
		return nil, greyerr.Invalid("warm", "at most %d model digests", worker.MaxWarm)
	}
	for _, d := range req.Warm {
		if len(d) == 0 || len(d) > 200 {
			return nil, greyerr.Invalid("warm", "model digests are 1–200 bytes")
		}
	}
	if p := req.Platform; p != "" && p != proof.PlatformSoftware && !slices.Contains(task.TEEPlatforms, p) {
		return nil, greyerr.Invalid("platform", "must be %s or one of %s, got %q", proof.PlatformSoftware, strings.Join(task.TEEPlatforms, ", "), p)
	}
	// The caller's principal limits the work to the tenants and kinds it
	// holds the worker role for (admin and the node's own pool: all); a
	// call without one is the engine's own (tests, in-process callers).
	p := auth.FromContext(ctx)
	var allow func(tenant, kind string) bool
	var subject string
	if p != nil {
		subject = p.Subject
		scope := p.LeaseScope()
		if scope.Empty() {
			return nil, greyerr.New(greyerr.PermissionDenied, "principal %s holds the worker role on no tenant", p.Subject)
		}
		if scope != nil {
			allow = scope.Allows
		}
	}
	e.RegisterKinds(req.Kinds...)
	labels := e.leaseLabels(req)
	resp := &worker.LeaseResponse{Tasks: []worker.Assignment{}, LeaseTTL: task.Duration(e.cfg.LeaseTTL)}
	start := time.Now()
	deadline := start.Add(req.Wait.D())
	for {
		if !e.sched.Enabled() {
			// Not leading (yet): during an election wait within the long
			// poll rather than make the worker back off.
			// Waiting for an election is bounded: a server cut off from
			// the majority never learns a leader, and its workers must
			// move to another server.
			// A server that has just won (it leads but is still catching
			// up) keeps the poll open: its scheduler opens within moments,
			// and a refusal would send the worker into a backoff.
			leader := e.node.LeaderID()
			self := leader != "" && leader == e.node.ID()
			if time.Until(deadline) <= 0 || (!self && time.Since(start) > electionWait) || (leader != "" && !self) {
				return nil, &greyerr.Error{Code: greyerr.Unavailable, Message: "not the leader", RetryAfter: time.Second}
			}
			select {
			case <-time.After(20 * time.Millisecond):
				continue
			case <-ctx.Done():
				return resp, nil
			}
		}
		wake := e.sched.Wake()
		now := time.Now().UTC()
		taken := e.sched.Take(scheduler.TakeRequest{Kinds: req.Kinds, Labels: labels, Max: req.Max, Now: now, Allow: allow,
			WorkerID: req.WorkerID, Warm: req.Warm})
		if len(taken) > 0 {
			leased, err := e.grant(ctx, req.WorkerID, subject, taken, now)
			if err != nil {
				return nil, err
			}
			traced := tracing.Enabled()
			// Sized once: an Assignment is large, and a lease of a few
			// hundred tasks would otherwise copy the slice many times over.
			resp.Tasks = make([]worker.Assignment, 0, len(leased))
			for _, t := range leased {
				payload, binary, fetch, perr := e.assignPayload(ctx, t)
				if perr != nil {
					e.failLeased(ctx, req.WorkerID, subject, t, perr, now)
					continue
				}
				prove, _ := e.proofPolicy(t)
				headers := t.Headers
				if traced && tracing.HasTraceContext(t.Headers) {
					headers = leaseSpan(ctx, req.WorkerID, t, now)
				}
				resp.Tasks = append(resp.Tasks, worker.Assignment{
					TaskID: t.ID, TenantID: t.TenantID, Kind: t.Kind, Payload: payload, PayloadBinary: binary, PayloadFetch: fetch, PayloadObject: t.PayloadObject, ResultInlineMax: e.resultInlineMax(),
					Attempt: t.Attempt, Timeout: task.Duration(e.timeoutOf(t)),
					LeaseDeadline: t.Lease.Deadline, Headers: headers, Prove: prove, Principal: t.Lease.Principal,
				})
			}
			if len(resp.Tasks) > 0 {
				return resp, nil
			}
		}
		left := time.Until(deadline)
		if left <= 0 {
			return resp, nil
		}
		timer := time.NewTimer(left)
		select {
		case <-wake:
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return resp, nil
		}
		timer.Stop()
	}
}

// leaseSpan records a grey.lease span for a leased task, child of the
// task's stored trace context and linked to the lease call's span, from
// the take (at) to now. It returns the headers for the Assignment: the
// task's, with the lease span as parent when the span is sampled (so the
// worker's grey.execute span is its child). Only tasks that carry a trace
// context get one, and not when that trace is not sampled (the sampler is
// parent-based).
func leaseSpan(ctx context.Context, workerID string, t *task.Task, at time.Time) map[string]string {
	if tracing.UnsampledHeaders(t.Headers) {
		return t.Headers
	}
	parent := tracing.ExtractTrace(context.Background(), t.Headers)
	opts := []trace.SpanStartOption{
		trace.WithTimestamp(at),
		trace.WithAttributes(tracing.TaskAttrs(t.TenantID, t.ID, t.Kind)...),
		trace.WithAttributes(tracing.Attempt.Int(t.Attempt), tracing.WorkerID.String(workerID)),
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	sctx, span := tracing.Tracer().Start(parent, tracing.SpanLease, opts...)
	span.End()
	if !span.SpanContext().IsSampled() {
		return t.Headers // not sampled: the stored parent says so already
	}
	h := make(map[string]string, len(t.Headers))
	for k, v := range t.Headers {
		h[k] = v
	}
	tracing.Inject(sctx, h)
	return h
}

// grant proposes leases for taken tasks and returns those granted; the rest
// go back to the scheduler.
func (e *Engine) grant(ctx context.Context, workerID, principal string, taken []*task.Task, now time.Time) ([]*task.Task, error) {
	lr := &state.LeaseRequest{Now: now, WorkerID: workerID, Principal: principal, Deadline: now.Add(e.cfg.LeaseTTL), Items: make([]state.Ref, len(taken))}
	for i, t := range taken {
		lr.Items[i] = state.Ref{TaskID: t.ID, Attempt: t.Attempt + 1}
	}
	res, err := cluster.Apply(ctx, e.node, cluster.Lease(lr))
	if err != nil {
		e.sched.Return(taken)
		return nil, err
	}
	r := res
	if len(r.Refused) > 0 {
		refused := make(map[string]bool, len(r.Refused))
		for _, id := range r.Refused {
			refused[id] = true
		}
		var back []*task.Task
		for _, t := range taken {
			if refused[t.ID] {
				back = append(back, t)
			}
		}
		e.sched.Return(back)
	}
	return r.Leased, nil
}

// Heartbeat implements worker.Coordinator. Leases are extended through Raft
// only when they are past half their life, so frequent heartbeats are cheap.
func (e *Engine) Heartbeat(ctx context.Context, req *worker.HeartbeatRequest) (*worker.HeartbeatResponse, error) {
	if req.WorkerID == "" {
		return nil, greyerr.Invalid("worker_id", "is required")
	}
	now := time.Now().UTC()
	resp := &worker.HeartbeatResponse{Lost: []worker.LostLease{}}
	principal, scope := leaseCaller(ctx)
	hr := &state.HeartbeatRequest{Now: now, WorkerID: req.WorkerID, Principal: principal, Deadline: now.Add(e.cfg.LeaseTTL)}
	for _, l := range req.Leases {
		t := e.store.Lookup(l.TaskID)
		switch {
		case t == nil:
			resp.Lost = append(resp.Lost, worker.LostLease{LeaseRef: l, Reason: "unknown"})
		case t.Status == task.Cancelled:
			resp.Lost = append(resp.Lost, worker.LostLease{LeaseRef: l, Reason: "cancelled"})
		case !t.Status.Active() || t.Attempt != l.Attempt || t.Lease == nil || t.Lease.WorkerID != req.WorkerID:
			resp.Lost = append(resp.Lost, worker.LostLease{LeaseRef: l, Reason: "expired"})
		case principal != "" && (t.Lease.Principal != "" && t.Lease.Principal != principal || !scope.Allows(t.TenantID, t.Kind)):
			// Another principal's lease: not extended, and the caller
			// learns nothing more about it.
			resp.Lost = append(resp.Lost, worker.LostLease{LeaseRef: l, Reason: "unknown"})
		case t.Lease.Deadline.Sub(now) < e.cfg.LeaseTTL/2:
			hr.Items = append(hr.Items, state.Ref{TaskID: l.TaskID, Attempt: l.Attempt})
		}
	}
	if len(hr.Items) == 0 {
		return resp, nil
	}
	res, err := cluster.Apply(ctx, e.node, cluster.Heartbeat(hr))
	if err != nil {
		return nil, err
	}
	for _, l := range res {
		resp.Lost = append(resp.Lost, worker.LostLease{LeaseRef: worker.LeaseRef{TaskID: l.TaskID, Attempt: l.Attempt}, Reason: "expired"})
	}
	return resp, nil
}

// Complete implements worker.Coordinator: starts, completions and failures
// of one batch go into one Raft entry.
func (e *Engine) Complete(ctx context.Context, req *worker.CompleteRequest) (*worker.CompleteResponse, error) {
	if req.WorkerID == "" {
		return nil, greyerr.Invalid("worker_id", "is required")
	}
	if len(req.Reports) > 10*MaxLease {
		return nil, greyerr.Invalid("reports", "at most %d reports per request", 10*MaxLease)
	}
	if len(req.Proofs) > len(req.Reports) {
		return nil, greyerr.Invalid("proofs", "%d proofs for %d reports", len(req.Proofs), len(req.Reports))
	}
	now := time.Now().UTC()
	principal, scope := leaseCaller(ctx)
	starts := &state.StartRequest{Now: now, WorkerID: req.WorkerID, Principal: principal}
	dones := &state.CompleteRequest{Now: now, WorkerID: req.WorkerID, Principal: principal}
	fails := &state.FailRequest{Now: now, WorkerID: req.WorkerID, Principal: principal}
	used := map[int]int{} // worker's proof index → index in dones.Proofs (1-based)
	proofIndex := func(k int) int {
		if j, ok := used[k]; ok {
			return j
		}
		dones.Proofs = append(dones.Proofs, req.Proofs[k-1])
		used[k] = len(dones.Proofs)
		return used[k]
	}
	type slot struct{ cmd, idx int }
	slots := make([]slot, len(req.Reports))
	for i, r := range req.Reports {
		at := r.At.UTC()
		if at.IsZero() || at.After(now) {
			at = now
		}
		ref := state.Ref{TaskID: r.TaskID, Attempt: r.Attempt}
		if scope != nil {
			if t := e.store.Lookup(r.TaskID); t != nil && !scope.Allows(t.TenantID, t.Kind) {
				// A task of a tenant or kind the principal may not
				// lease: refused without touching it, as if unknown.
				ref.TaskID = ""
			}
		}
		switch r.Status {
		case task.Running:
			slots[i] = slot{0, len(starts.Items)}
			starts.Items = append(starts.Items, state.StartItem{Ref: ref, At: at})
		case task.Completed:
			if code, msg := e.checkProof(e.store.Lookup(r.TaskID), r.Proof, req.Proofs); code != "" {
				slots[i] = slot{2, len(fails.Items)}
				fails.Items = append(fails.Items, e.failItem(ref, task.Error{Message: msg, Code: code, Retryable: true}, now, at))
				continue
			}
			// A result over the inline limit is stored before the
			// completion is applied (the proof's check comes first, so
			// a refused attempt never writes the object).
			var resultRef *task.DataRef
			result := r.Result
			if len(r.ResultBinary) > 0 {
				// A binary result is only ever stored by reference: it is
				// no JSON to keep inline.
				if d := e.cfg.Data; len(r.Result) > 0 || d == nil || len(r.ResultBinary) <= d.InlineMax() || !task.IsBinaryPayload(r.ResultBinary) {
					return nil, greyerr.Invalid("reports["+strconv.Itoa(i)+"].result_binary", "a binary result comes alone, in the binary form, longer than the inline limit, to a server with a task data store")
				}
				result = r.ResultBinary
			}
			if d := e.cfg.Data; d != nil && len(result) > d.InlineMax() {
				t := e.store.Lookup(r.TaskID)
				if t == nil || ref.TaskID == "" || t.Lease == nil || t.Attempt != r.Attempt || t.Status.Terminal() {
					// Not this attempt's to store (stale, cancelled, unknown):
					// the state machine refuses it without the object
					// being touched.
					slots[i] = slot{2, len(fails.Items)}
					fails.Items = append(fails.Items, e.failItem(ref, task.Error{Message: "result of an attempt that no longer holds its lease", Code: "lease_lost"}, now, at))
					continue
				}
				rr, err := d.StoreResult(ctx, t.TenantID, t.ID, result)
				if err != nil {
					code, retry := "result_store", greyerr.CodeOf(err) == greyerr.Unavailable
					if greyerr.CodeOf(err) == greyerr.TooLarge {
						code = "result_too_large"
					}
					slots[i] = slot{2, len(fails.Items)}
					fails.Items = append(fails.Items, e.failItem(ref, task.Error{Message: "storing the result failed: " + err.Error(), Code: code, Retryable: retry}, now, at))
					continue
				}
				resultRef = rr
			} else if e.cfg.MaxPayloadBytes > 0 && len(r.Result) > e.cfg.MaxPayloadBytes {
				slots[i] = slot{2, len(fails.Items)}
				fails.Items = append(fails.Items, e.failItem(ref, task.Error{Message: "result exceeds the payload limit", Code: "result_too_large"}, now, at))
				continue
			}
			item := state.CompleteItem{Ref: ref, Result: r.Result, At: at, StartedAt: utcPtr(r.StartedAt)}
			if resultRef != nil {
				item.Result, item.ResultRef = nil, resultRef
			}
			if r.Proof > 0 {
				item.Proof = proofIndex(r.Proof)
			}
			slots[i] = slot{1, len(dones.Items)}
			dones.Items = append(dones.Items, item)
		case task.Failed:
			te := task.Error{Message: "failed", Retryable: true}
			if r.Error != nil {
				te = *r.Error
			}
			it := e.failItem(ref, te, now, at)
			it.StartedAt = utcPtr(r.StartedAt)
			slots[i] = slot{2, len(fails.Items)}
			fails.Items = append(fails.Items, it)
		default:
			return nil, greyerr.Invalid("reports["+strconv.Itoa(i)+"].status", "must be running, completed or failed")
		}
	}
	// One entry: the proofs the completions refer to go first, as raw
	// blobs (the completion names them by position; dones.Proofs is not
	// encoded in its JSON), then the starts, completions and failures.
	var batch cluster.Batch
	var outSlots [3]cluster.Slot[[]state.Outcome]
	if len(dones.Items) > 0 {
		if e.packedProofs() {
			scratch, _ := e.packScratch.Get().(*[]byte)
			if scratch == nil {
				scratch = new([]byte)
			}
			for _, env := range dones.Proofs {
				var blob state.ProofBlob
				blob, *scratch = state.PackProofBuf(env, *scratch)
				batch.PackedBlob(blob)
			}
			e.packScratch.Put(scratch)
		} else {
			for _, env := range dones.Proofs {
				batch.Blob(env)
			}
		}
	}
	dones.Proofs = nil
	if len(starts.Items) > 0 {
		outSlots[0] = cluster.Add(&batch, cluster.Start(starts))
	}
	if len(dones.Items) > 0 {
		outSlots[1] = cluster.Add(&batch, cluster.Complete(dones))
	}
	if len(fails.Items) > 0 {
		outSlots[2] = cluster.Add(&batch, cluster.Fail(fails))
	}
	resp := &worker.CompleteResponse{Results: make([]worker.ReportResult, len(req.Reports))}
	if batch.Len() == 0 {
		return resp, nil
	}
	res, err := cluster.ApplyBatch(ctx, e.node, &batch)
	if err != nil {
		return nil, err
	}
	var outs [3][]state.Outcome
	for k, sl := range outSlots {
		outs[k] = sl.Of(res)
	}
	for i, s := range slots {
		o := outs[s.cmd][s.idx]
		resp.Results[i] = worker.ReportResult{TaskID: req.Reports[i].TaskID, Accepted: o.Accepted, Reason: o.Reason}
	}
	if tracing.Enabled() {
		e.completeSpans(ctx, req, resp, now)
	}
	return resp, nil
}

// resultInlineMax is the largest result a worker reports that stays
// inline (0: no task data store, results are never stored).
func (e *Engine) resultInlineMax() int {
	if e.cfg.Data == nil {
		return 0
	}
	return e.cfg.Data.InlineMax()
}

// leaseCaller is the subject of ctx's principal ("" without one) and what
// it may lease (nil: everything).
func leaseCaller(ctx context.Context) (string, *auth.LeaseScope) {
	if p := auth.FromContext(ctx); p != nil {
		return p.Subject, p.LeaseScope()
	}
	return "", nil
}

// completeSpans records a grey.complete span for each outcome report (not
// for starts) of a task that carries a sampled trace context, as applied,
// child of the worker's grey.execute span (or, without one, of the task's
// context) and linked to the complete call's span.
func (e *Engine) completeSpans(ctx context.Context, req *worker.CompleteRequest, resp *worker.CompleteResponse, at time.Time) {
	var links []trace.Link
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		links = []trace.Link{{SpanContext: sc}}
	}
	for i, r := range req.Reports {
		if r.Status != task.Completed && r.Status != task.Failed {
			continue
		}
		t := e.store.Lookup(r.TaskID)
		if t == nil || !tracing.HasTraceContext(t.Headers) || tracing.UnsampledHeaders(t.Headers) {
			continue
		}
		// The worker's grey.execute span is the parent when it sent one;
		// else the task's stored trace context (the submit).
		parent := tracing.ExtractTrace(context.Background(), t.Headers)
		if r.TraceParent != "" {
			if p := tracing.ExtractTrace(context.Background(), map[string]string{tracing.HeaderTraceparent: r.TraceParent}); trace.SpanContextFromContext(p).IsValid() {
				parent = p
			}
		}
		_, span := tracing.Tracer().Start(parent, tracing.SpanComplete,
			trace.WithTimestamp(at), trace.WithLinks(links...),
			trace.WithAttributes(tracing.TaskAttrs(t.TenantID, t.ID, t.Kind)...),
			trace.WithAttributes(tracing.Attempt.Int(r.Attempt), tracing.WorkerID.String(req.WorkerID),
				tracing.Status.String(string(t.Status)), tracing.Accepted.Bool(resp.Results[i].Accepted)))
		if span.IsRecording() {
			if reason := resp.Results[i].Reason; reason != "" {
				span.SetAttributes(tracing.Reason.String(reason))
			}
			if r.Status == task.Failed && r.Error != nil {
				span.SetAttributes(tracing.ErrorCode.String(r.Error.Code))
				span.SetStatus(codes.Error, r.Error.Message)
			}
		}
		span.End()
	}
}

// utcPtr is *t in UTC, or nil.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// failItem decides retry or failure for a failed attempt.
func (e *Engine) failItem(ref state.Ref, te task.Error, now, at time.Time) state.FailItem {
	it := state.FailItem{Ref: ref, Error: te, At: at}
	if t := e.store.Lookup(ref.TaskID); t != nil && t.Attempt == ref.Attempt {
		it.RetryAt = e.retryAt(t, te.Retryable, now)
	}
	return it
}

package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/proof"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/telemetry/tracing"
)

// Options configure a Pool.
type Options struct {
	// WorkerID identifies the worker (default: hostname-pid-random).
	WorkerID string
	// Kinds to lease (default: the kinds with handlers).
	Kinds []string
	// Labels offered to task constraints.
	Labels map[string]string
	// Warm, if set, lists the model digests the worker has loaded; each
	// lease request reports them (LeaseRequest.Warm) so inference tasks
	// of those models are routed here first.
	Warm func() []string
	// Platform is reported with leases (default: the Signer's platform,
	// else "software").
	Platform string
	// Signer signs proofs of completed attempts whose assignment asks for
	// one. Without it completions carry no proof, and the server refuses
	// those of tasks that require one (code proof_missing).
	Signer *proof.Signer
	// ProofLinger is how long a batch of reports that holds completions to
	// prove waits for more before it is signed and sent, so one signature
	// covers more tasks (default 2ms; negative: no wait).
	ProofLinger time.Duration
	// Executor is the measurement of handlers that are not Measurers
	// (default: "grey-worker" with the digest of the running binary).
	Executor *proof.Executor
	// Concurrency is how many tasks run at once (default 16).
	Concurrency int
	// LeaseWait is the long-poll wait of a lease call (default 30s).
	LeaseWait time.Duration
	// HeartbeatInterval is how often leases are renewed and checked for
	// cancellation (default 1s).
	HeartbeatInterval time.Duration
	// MaxReportBatch bounds reports per Complete call (default 1000).
	MaxReportBatch int
	// ShutdownGrace is how long running tasks may finish after the pool's
	// context ends; then they are cancelled and released (default 30s).
	ShutdownGrace time.Duration
	// Logger receives the pool's logs.
	Logger *slog.Logger
}

// Pool leases tasks from a Coordinator and runs them with handlers.
type Pool struct {
	coord    Coordinator
	opts     Options
	handlers map[string]Handler

	mu      sync.Mutex
	active  map[string]*running // task id → run
	reports chan Report
	slots   chan struct{}
	idle    chan runJob // runners waiting for a task

	selfOnce sync.Once
	self     proof.Executor // measurement of the binary (binaryExecutor)
}

type running struct {
	ref    LeaseRef
	tenant string
	cancel context.CancelFunc
	cause  error // why the pool cancelled it (nil: not cancelled, or timed out)
	lost   bool
}

// stop cancels the run for cause (the first cause wins). Callers hold
// the pool's mu.
func (r *running) stop(cause error) {
	if r.cause == nil {
		r.cause = cause
	}
	r.cancel()
}

var errLeaseLost = errors.New("lease lost")

// NewPool returns a pool over c.
func NewPool(c Coordinator, opts Options) *Pool {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 16
	}
	if opts.LeaseWait <= 0 {
		opts.LeaseWait = 30 * time.Second
	}
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = time.Second
	}
	if opts.MaxReportBatch <= 0 {
		opts.MaxReportBatch = 1000
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = 30 * time.Second
	}
	if opts.ProofLinger == 0 {
		opts.ProofLinger = 2 * time.Millisecond
	}
	if opts.Platform == "" {
		opts.Platform = proof.PlatformSoftware
		if opts.Signer != nil {
			opts.Platform = opts.Signer.Platform()
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.WorkerID == "" {
		h, _ := os.Hostname()
		opts.WorkerID = fmt.Sprintf("%s-%d-%04x", h, os.Getpid(), rand.IntN(1<<16))
	}
	return &Pool{coord: c, opts: opts, handlers: make(map[string]Handler), active: make(map[string]*running)}
}

// Handle registers h for kind. Call before Run.
func (p *Pool) Handle(kind string, h Handler) { p.handlers[kind] = h }

// HandleFunc registers f for kind. Call before Run.
func (p *Pool) HandleFunc(kind string, f func(ctx context.Context, j *Job) (any, error)) {
	p.Handle(kind, HandlerFunc(f))
}

// WorkerID returns the pool's worker id.
func (p *Pool) WorkerID() string { return p.opts.WorkerID }

// Run leases and executes tasks until ctx ends, then drains: no new leases,
// running tasks get ShutdownGrace to finish, the rest are cancelled and
// released (reported as retryable failures), and every outcome is flushed.
func (p *Pool) Run(ctx context.Context) error {
	kinds := p.opts.Kinds
	if len(kinds) == 0 {
		for k := range p.handlers {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
	}
	if len(kinds) == 0 {
		return errors.New("worker pool: no handlers registered")
	}
	for _, k := range kinds {
		if p.handlers[k] == nil {
			return fmt.Errorf("worker pool: no handler for kind %q", k)
		}
	}
	if p.opts.Signer != nil && p.opts.Executor == nil {
		// Measuring the binary hashes the whole executable (greyd is
		// ~120 MB: a few hundred ms). Done now, while the pool starts,
		// not by the first proof: that held up the first tasks of a fresh
		// node by ~100 ms (the noisy-neighbour bench's quiet tenant p99).
		go p.binaryExecutor()
	}
	p.reports = make(chan Report, 4*p.opts.Concurrency+p.opts.MaxReportBatch)
	p.slots = make(chan struct{}, p.opts.Concurrency)
	p.idle = make(chan runJob)

	// Handlers run under their own context so the drain can outlive ctx.
	runCtx, cancelRuns := context.WithCancelCause(context.Background())
	defer cancelRuns(nil)
	// Cancelling runCtx cancels every running task through the active
	// map, not through context children (see execute).
	defer context.AfterFunc(runCtx, func() { p.cancelActive(context.Cause(runCtx)) })()
	reporterDone := make(chan struct{})
	go func() { defer close(reporterDone); p.reportLoop() }()
	hbCtx, stopHB := context.WithCancel(context.Background())
	hbDone := make(chan struct{})
	go func() { defer close(hbDone); p.heartbeatLoop(hbCtx) }()

	var wg sync.WaitGroup
	p.leaseLoop(ctx, runCtx, kinds, &wg)

	// Drain.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(p.opts.ShutdownGrace):
		p.opts.Logger.Warn("shutdown grace over; releasing running tasks", "running", len(p.slots))
		cancelRuns(errShutdown)
		<-done
	}
	close(p.idle) // every task is done: the runners end
	stopHB()
	<-hbDone
	close(p.reports)
	<-reporterDone
	return nil
}

var errShutdown = errors.New("worker shutting down")

// runJob is a leased task for a runner goroutine.
type runJob struct {
	a  Assignment
	wg *sync.WaitGroup
}

// dispatch hands j to an idle runner, or starts one. Runners live as long
// as the pool (at most Concurrency of them, as each holds a slot while it
// runs): a goroutine per task paid for growing a fresh stack on every
// task.
func (p *Pool) dispatch(ctx context.Context, j runJob) {
	select {
	case p.idle <- j:
	default:
		go p.runner(ctx, j)
	}
}

func (p *Pool) runner(ctx context.Context, j runJob) {
	base := context.WithoutCancel(ctx) // once per runner, not per task
	for ok := true; ok; j, ok = <-p.idle {
		p.execute(ctx, base, j.a)
		<-p.slots
		j.wg.Done()
	}
}

func (p *Pool) leaseLoop(ctx, runCtx context.Context, kinds []string, wg *sync.WaitGroup) {
	failures := 0
	backlog := false // the last lease returned as many tasks as asked
	for ctx.Err() == nil {
		// Wait for at least one free slot.
		select {
		case p.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		free := 1
	fill:
		for free < cap(p.slots) {
			select {
			case p.slots <- struct{}{}:
				free++
			default:
				break fill
			}
		}
		if backlog && free < cap(p.slots)/4 {
			// The last lease was full, so work is queued: let a few more
			// slots free up (briefly) rather than lease one task per call.
			free = p.gather(ctx, free, cap(p.slots)/4, time.Millisecond)
		}
		var warm []string
		if p.opts.Warm != nil {
			warm = p.opts.Warm()
			if len(warm) > MaxWarm {
				warm = warm[:MaxWarm]
			}
		}
		resp, err := p.coord.Lease(ctx, &LeaseRequest{
			WorkerID: p.opts.WorkerID, Kinds: kinds, Labels: p.opts.Labels, Platform: p.opts.Platform,
			Max: free, Wait: task.Duration(p.opts.LeaseWait), Warm: warm,
		})
		got := 0
		if resp != nil {
			got = len(resp.Tasks)
		}
		backlog = err == nil && got == free
		for i := got; i < free; i++ {
			<-p.slots
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			d := backoffDelay(failures)
			p.opts.Logger.Warn("lease failed", "err", err, "retry_in", d)
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return
			}
			continue
		}
		failures = 0
		for i := range resp.Tasks {
			wg.Add(1)
			p.dispatch(runCtx, runJob{a: resp.Tasks[i], wg: wg})
		}
	}
}

// gather takes more free slots until it holds want or wait passes; it
// returns how many it holds.
func (p *Pool) gather(ctx context.Context, free, want int, wait time.Duration) int {
	t := time.NewTimer(wait)
	defer t.Stop()
	for free < want {
		select {
		case p.slots <- struct{}{}:
			free++
		case <-t.C:
			return free
		case <-ctx.Done():
			return free
		}
	}
	return free
}

func backoffDelay(n int) time.Duration {
	p := task.RetryPolicy{BaseDelay: task.Duration(100 * time.Millisecond), MaxDelay: task.Duration(5 * time.Second)}
	d := p.Cap(n)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// cancelActive cancels every running task with cause.
func (p *Pool) cancelActive(cause error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.active {
		r.stop(cause)
	}
}

// execute runs a; base is context.WithoutCancel(parent).
func (p *Pool) execute(parent, base context.Context, a Assignment) {
	// The task's one context keeps parent's values but is not registered
	// as its child: with thousands of tasks running, adding and removing
	// each in parent's child set cost more than the noop task itself.
	// Cancelling parent reaches the task through cancelActive instead,
	// which records why in the run (context.Cause of a deadline context
	// cannot carry it).
	var ctx context.Context
	var cancel context.CancelFunc
	if a.Timeout > 0 {
		ctx, cancel = context.WithTimeout(base, a.Timeout.D())
	} else {
		ctx, cancel = context.WithCancel(base)
	}
	defer cancel()
	run := &running{ref: LeaseRef{TaskID: a.TaskID, Attempt: a.Attempt}, tenant: a.TenantID, cancel: cancel}
	p.mu.Lock()
	p.active[a.TaskID] = run
	if parent.Err() != nil {
		// Cancelled before this task was in the active map.
		run.stop(context.Cause(parent))
	}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.active, a.TaskID)
		p.mu.Unlock()
	}()

	started := time.Now().UTC()
	p.reports <- Report{TaskID: a.TaskID, Attempt: a.Attempt, Status: task.Running, At: started}
	h := p.handlers[a.Kind]
	// A task that carries a trace context runs its handler in a
	// grey.execute span, child of that context (none when the trace is not
	// sampled), with the grey.tenant_id baggage member; the handler's
	// context names the task for logs.
	hctx := tracing.Extract(ctx, a.Headers)
	var span trace.Span = noop.Span{}
	if trace.SpanContextFromContext(hctx).IsValid() {
		hctx = tracing.WithTenantBaggage(hctx, a.TenantID)
		if !tracing.Unsampled(hctx) {
			hctx, span = tracing.Start(hctx, tracing.SpanExecute, trace.WithSpanKind(trace.SpanKindConsumer),
				trace.WithAttributes(tracing.TaskAttrs(a.TenantID, a.TaskID, a.Kind)...),
				trace.WithAttributes(tracing.Attempt.Int(a.Attempt), tracing.WorkerID.String(p.opts.WorkerID)))
		}
	}
	defer span.End()
	hctx = tracing.WithTask(hctx, a.TenantID, a.TaskID)
	var res any
	var err error
	if a.PayloadFetch {
		err = p.fetchPayload(hctx, &a)
	}
	if err == nil {
		res, err = safeWork(hctx, h, &Job{Assignment: a})
	}
	p.mu.Lock()
	lost, cause := run.lost, run.cause
	p.mu.Unlock()
	if lost {
		span.SetAttributes(tracing.Reason.String("lease lost"))
		return // cancelled or expired: the server refuses any outcome
	}
	r := Report{TaskID: a.TaskID, Attempt: a.Attempt, At: time.Now().UTC(), StartedAt: &started}
	if span.SpanContext().IsSampled() {
		tp := map[string]string{}
		tracing.Inject(hctx, tp)
		r.TraceParent = tp[tracing.HeaderTraceparent]
	}
	if err == nil {
		b, bin, merr := EncodeResultFor(res, a.ResultInlineMax)
		if merr != nil {
			err = Permanent(fmt.Errorf("encode result: %w", merr))
		} else {
			r.Status, r.tenant = task.Completed, a.TenantID
			if bin {
				r.ResultBinary = b
			} else {
				r.Result = b
			}
			if a.Prove && p.opts.Signer != nil {
				r.run = &proof.Run{TaskID: a.TaskID, Kind: a.Kind, Payload: a.Payload, Output: b,
					Attempt: a.Attempt, StartedAt: started, FinishedAt: r.At, LeasedBy: a.Principal,
					Objects: proof.StoredObjects(a.TaskID, a.PayloadObject, b, a.ResultInlineMax)}
				// A Measured result says what ran it; else the handler
				// (or the binary) does.
				m := measuredOf(res)
				if m != nil && m.Executor != nil {
					r.run.Executor = *m.Executor
				} else {
					r.run.Executor = p.measure(h, &a)
				}
				if m != nil {
					r.run.Model = m.Model
				}
			}
		}
	}
	if err != nil {
		r.Status = task.Failed
		r.Error = classify(ctx, cause, err)
		span.SetStatus(codes.Error, r.Error.Message)
		span.SetAttributes(tracing.ErrorCode.String(r.Error.Code))
		p.opts.Logger.LogAttrs(hctx, slog.LevelDebug, "task failed", slog.String("task_id", a.TaskID), slog.String("tenant_id", a.TenantID),
			slog.String("kind", a.Kind), slog.Int("attempt", a.Attempt), slog.String("code", r.Error.Code), slog.Bool("retryable", r.Error.Retryable), slog.String("err", r.Error.Message))
	}
	if span.IsRecording() { // the attribute escapes even into a no-op span
		span.SetAttributes(tracing.Status.String(string(r.Status)))
	}
	p.reports <- r
}

// binaryExecutor measures the worker binary once.
func (p *Pool) binaryExecutor() proof.Executor {
	p.selfOnce.Do(func() {
		var err error
		if p.self, err = proof.BinaryExecutor("grey-worker"); err != nil {
			p.opts.Logger.Warn("cannot measure the worker binary; proofs name no digest", "err", err)
			p.self = proof.Executor{Name: "grey-worker", Version: "unknown", Digest: "unknown"}
		}
	})
	return p.self
}

// measure is what a proof names as having run a's task.
func (p *Pool) measure(h Handler, a *Assignment) proof.Executor {
	if m, ok := Unwrapped[Measurer](h); ok {
		return m.Measure(&Job{Assignment: *a})
	}
	if p.opts.Executor != nil {
		return *p.opts.Executor
	}
	return p.binaryExecutor()
}

// prove signs the proofs of a batch's completed reports that asked for one:
// one envelope per tenant and proof.MaxBatch tasks. A report whose proof
// cannot be signed becomes a retryable failure (code proof_error).
func (p *Pool) prove(req *CompleteRequest) {
	groups := map[string][]int{}
	var order []string
	for i := range req.Reports {
		r := &req.Reports[i]
		if r.run == nil || r.Status != task.Completed {
			continue
		}
		if groups[r.tenant] == nil {
			order = append(order, r.tenant)
		}
		groups[r.tenant] = append(groups[r.tenant], i)
	}
	for _, tenant := range order {
		idx := groups[tenant]
		for len(idx) > 0 {
			n := min(len(idx), proof.MaxBatch)
			chunk := idx[:n]
			idx = idx[n:]
			runs := make([]proof.Run, n)
			for k, i := range chunk {
				runs[k] = *req.Reports[i].run
			}
			env, err := p.opts.Signer.Sign(context.Background(), tenant, runs...)
			if err != nil {
				p.opts.Logger.Error("signing proofs failed; the attempts fail and will be retried", "tenant", tenant, "tasks", n, "err", err)
				for _, i := range chunk {
					r := &req.Reports[i]
					r.Status, r.Result, r.ResultBinary = task.Failed, nil, nil
					r.Error = &task.Error{Code: "proof_error", Retryable: true, Message: "signing the proof failed: " + err.Error()}
				}
				continue
			}
			req.Proofs = append(req.Proofs, env)
			for _, i := range chunk {
				req.Reports[i].Proof = len(req.Proofs)
			}
		}
	}
}

func safeWork(ctx context.Context, h Handler, j *Job) (res any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return h.Work(ctx, j)
}

// measuredOf returns v as a *Measured, or nil when it is not one.
func measuredOf(v any) *Measured {
	switch m := v.(type) {
	case Measured:
		return &m
	case *Measured:
		return m
	}
	return nil
}

// BinaryEncoder is implemented by results that have a binary form besides
// their JSON (an inference response: task.IsBinaryPayload bytes carrying
// its tensors as they are). EncodeResultFor uses it for a result that will
// be stored by reference anyway.
type BinaryEncoder interface {
	// BinaryDataBytes is the length of the binary form's data part (the
	// tensors' bytes), known without encoding: the binary form is longer.
	BinaryDataBytes() int
	// EncodeBinary returns the binary form; it must start with
	// task.BinaryPayloadPrefix.
	EncodeBinary() ([]byte, error)
}

// EncodeResultFor encodes a handler's result for an attempt whose server
// keeps results up to inlineMax bytes inline (0: no store): a value that
// implements BinaryEncoder and whose data part alone is longer than
// inlineMax is encoded in the binary form (binary true; being longer still,
// it is always stored by reference, never inline); anything else as JSON
// (EncodeResult). Small results stay inline JSON, and cost no binary
// encoding.
func EncodeResultFor(v any, inlineMax int) (b []byte, binary bool, err error) {
	if inlineMax > 0 {
		val := v
		if m := measuredOf(v); m != nil {
			val = m.Value
		}
		if be, ok := val.(BinaryEncoder); ok && be.BinaryDataBytes() > inlineMax {
			b, err := be.EncodeBinary()
			if err != nil {
				return nil, false, err
			}
			if !task.IsBinaryPayload(b) || len(b) <= inlineMax {
				return nil, false, fmt.Errorf("%T's binary form lacks the %q line or is shorter than its data", val, task.BinaryPayloadPrefix)
			}
			return b, true, nil
		}
	}
	b, err = EncodeResult(v)
	return b, false, err
}

// EncodeResult encodes a handler's result as the bytes the server will
// store: JSON in encoding/json's canonical form (compact, HTML-escaped), so
// the digest a proof signs is the digest of the stored result.
// A Measured result encodes as its Value.
func EncodeResult(v any) (json.RawMessage, error) {
	if m := measuredOf(v); m != nil {
		v = m.Value
	}
	switch r := v.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		if len(r) == 0 {
			return nil, nil
		}
		return json.Marshal(r)
	case []byte:
		return json.Marshal(json.RawMessage(r))
	}
	return json.Marshal(v)
}

// classify codes a handler's error; ctx is the task's context and cause
// why the pool cancelled it (nil when it did not).
func classify(ctx context.Context, cause, err error) *task.Error {
	te := &task.Error{Message: err.Error(), Retryable: !IsPermanent(err), Code: "executor"}
	var ce CodedError
	if errors.As(err, &ce) {
		te.Code = ce.Code()
	}
	switch {
	case errors.Is(cause, errShutdown):
		te.Code, te.Retryable, te.Message = "worker_shutdown", true, "released: worker shut down before the task finished"
	case cause == nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		te.Code, te.Retryable = "timeout", true
		te.Message = "attempt exceeded its timeout: " + err.Error()
	}
	return te
}

// reportLoop sends reports in batches: whatever accumulated while the last
// call was in flight goes in the next one.
func (p *Pool) reportLoop() {
	for r := range p.reports {
		// Room for what is queued now and what may join while the proof
		// lingers, so the batch is not regrown report by report.
		batch := make([]Report, 1, min(p.opts.MaxReportBatch, len(p.reports)+64))
		batch[0] = r
		batch = p.collect(batch, 0)
		if p.opts.Signer != nil && p.opts.ProofLinger > 0 && needsProof(batch) {
			// One signature covers more tasks if the batch waits a moment.
			batch = p.collect(batch, p.opts.ProofLinger)
		}
		p.send(dropStarts(batch))
	}
}

// dropStarts leaves out of batch each running report whose attempt's outcome
// is in the same batch, and keeps the start time on that outcome only (an
// earlier batch carried the others' running reports, which a channel keeps
// in order): the server records one state change instead of two.
func dropStarts(batch []Report) []Report {
	type ref struct {
		id      task.ID
		attempt int
	}
	var starts map[ref]bool
	for i := range batch {
		if r := &batch[i]; r.Status == task.Running {
			if starts == nil {
				starts = make(map[ref]bool)
			}
			starts[ref{r.TaskID, r.Attempt}] = false
		}
	}
	for i := range batch {
		r := &batch[i]
		if r.Status == task.Running {
			continue
		}
		k := ref{r.TaskID, r.Attempt}
		if _, ok := starts[k]; ok && r.StartedAt != nil {
			starts[k] = true
		} else {
			r.StartedAt = nil
		}
	}
	out := batch[:0]
	for _, r := range batch {
		if r.Status == task.Running && starts[ref{r.TaskID, r.Attempt}] {
			continue
		}
		out = append(out, r)
	}
	return out
}

// needsProof reports whether a batch holds a completion to prove.
func needsProof(batch []Report) bool {
	for i := range batch {
		if batch[i].run != nil {
			return true
		}
	}
	return false
}

// collect adds queued reports to batch, up to MaxReportBatch: those already
// queued when wait is 0, else those that arrive within wait.
func (p *Pool) collect(batch []Report, wait time.Duration) []Report {
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	for len(batch) < p.opts.MaxReportBatch {
		var r Report
		var ok bool
		if wait > 0 {
			select {
			case r, ok = <-p.reports:
			case <-timeout:
				return batch
			}
		} else {
			select {
			case r, ok = <-p.reports:
			default:
				return batch
			}
		}
		if !ok {
			return batch
		}
		batch = append(batch, r)
	}
	return batch
}

// send delivers a batch, retrying while the cluster is unavailable (for
// example during an election) for up to a minute.
func (p *Pool) send(batch []Report) {
	req := &CompleteRequest{WorkerID: p.opts.WorkerID, Reports: batch}
	if p.opts.Signer != nil {
		p.prove(req)
	}
	deadline := time.Now().Add(time.Minute)
	for n := 1; ; n++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		resp, err := p.coord.Complete(ctx, req)
		cancel()
		if err == nil {
			for _, r := range resp.Results {
				if !r.Accepted {
					p.opts.Logger.Debug("report refused", "task_id", r.TaskID, "reason", r.Reason)
				}
			}
			return
		}
		code := greyerr.CodeOf(err)
		if code == greyerr.InvalidArgument || time.Now().After(deadline) {
			p.opts.Logger.Error("reports dropped; the leases will expire and the tasks be retried", "reports", len(batch), "err", err)
			return
		}
		time.Sleep(backoffDelay(n))
	}
}

func (p *Pool) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(p.opts.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.mu.Lock()
		refs := make([]LeaseRef, 0, len(p.active))
		for _, r := range p.active {
			refs = append(refs, r.ref)
		}
		p.mu.Unlock()
		if len(refs) == 0 {
			continue
		}
		hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := p.coord.Heartbeat(hctx, &HeartbeatRequest{WorkerID: p.opts.WorkerID, Leases: refs})
		cancel()
		if err != nil {
			p.opts.Logger.Warn("heartbeat failed", "err", err)
			continue
		}
		p.mu.Lock()
		for _, l := range resp.Lost {
			if r := p.active[l.TaskID]; r != nil && r.ref.Attempt == l.Attempt {
				p.opts.Logger.Debug("lease lost; cancelling the task", "task_id", l.TaskID, "tenant_id", r.tenant, "attempt", l.Attempt, "reason", l.Reason)
				r.lost = true
				r.stop(fmt.Errorf("%w: %s", errLeaseLost, l.Reason))
			}
		}
		p.mu.Unlock()
	}
}

// fetchPayload fetches the payload object a lease names instead of
// carrying it (Assignment.PayloadFetch) through the coordinator, checks
// it against the lease's PayloadObject (size and SHA-256: the digest a
// proof names) and puts it in a as the lease would have: PayloadBinary in
// the binary form, else Payload. Bytes that do not match fail the task
// for good ("payload_digest_mismatch"): a retry would read the same
// object. A failed fetch is retried (a lost lease is dropped by the
// caller, as the server refuses its outcome anyway).
func (p *Pool) fetchPayload(ctx context.Context, a *Assignment) error {
	ref := a.PayloadObject
	if ref == nil {
		return Permanent(Fail("payload_unavailable", "the lease says fetch the payload but names no payload object", nil))
	}
	f, ok := p.coord.(PayloadFetcher)
	if !ok {
		return Permanent(Fail("payload_unavailable", "this worker's coordinator cannot fetch payload objects", nil))
	}
	rc, err := f.FetchPayload(ctx, &PayloadRequest{TaskID: a.TaskID, Attempt: a.Attempt, WorkerID: p.opts.WorkerID})
	if err != nil {
		return Fail("payload_unavailable", "fetching the payload object failed", err)
	}
	defer rc.Close()
	// One byte past the recorded size tells a longer object from the one
	// recorded without reading all of it.
	b, err := io.ReadAll(io.LimitReader(rc, ref.Size+1))
	if err != nil {
		return Fail("payload_unavailable", "reading the payload object failed", err)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); int64(len(b)) != ref.Size || got != ref.SHA256 {
		return Permanent(Fail("payload_digest_mismatch", fmt.Sprintf("payload object %q does not match its lease: got %d bytes, sha256 %s; the lease names %d bytes, sha256 %s",
			ref.Ref, len(b), got, ref.Size, ref.SHA256), nil))
	}
	if task.IsBinaryPayload(b) {
		a.PayloadBinary = b
	} else {
		a.Payload = b
	}
	a.PayloadFetch = false
	return nil
}

package events

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.opentelemetry.io/otel/trace"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/telemetry/tracing"
)

// SpanConsume is the span of one message a Consumer turns into a task,
// child of the message's traceparent; the submit's span is its child, so
// the trace goes on through execution to the published result.
const SpanConsume = "grey.events.consume"

// SubmitFunc submits one task for tenant (the server passes engine.Submit
// of a single spec). It returns once the task is committed in Raft; a spec
// whose idempotency key names an existing task returns that task.
type SubmitFunc func(ctx context.Context, tenant string, spec task.Spec) (*task.Task, error)

// ConsumerOptions configure a Consumer.
type ConsumerOptions struct {
	// Name names the source in metrics, logs and status ("kafka",
	// "rabbitmq").
	Name string
	// Submit submits a task (required).
	Submit SubmitFunc
	// SubmitBatch, if set, submits several tasks of one tenant at once,
	// all or none (engine.Submit with batch): the messages of one fetch
	// are grouped by tenant into one Raft entry per BatchSize, and a
	// refused batch is submitted again message by message through Submit.
	SubmitBatch func(ctx context.Context, tenant string, specs []task.Spec) ([]*task.Task, error)
	// BatchSize bounds the tasks of one SubmitBatch (0: 256; at most 1000).
	BatchSize int
	// MaxMessageBytes bounds a message's body; a larger one is
	// dead-lettered as too_large (0: 2 MiB, room for the default 1 MiB
	// payload limit and the rest of the spec).
	MaxMessageBytes int
	// FetchMax is the most messages one Fetch returns (0: 256).
	FetchMax int
	// Concurrency bounds submissions in flight (0: 64). Messages of one
	// fetch are submitted concurrently, so tasks may be created in another
	// order than the messages (the scheduler orders by priority and fair
	// share anyway).
	Concurrency int
	// MinBackoff and MaxBackoff bound the backoff between retries of an
	// unavailable broker or cluster, and a paused tenant's pause (0:
	// 100 ms and 10 s).
	MinBackoff, MaxBackoff time.Duration
	// LagInterval is how often the consumer asks the driver for the
	// per-tenant lag (0: 5 s).
	LagInterval time.Duration
	// Logger receives the consumer's log lines (nil: discarded).
	Logger *slog.Logger
	// Metrics receives the grey_events_* metrics (nil: none).
	Metrics *Metrics
}

func (o *ConsumerOptions) defaults() {
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 2 << 20
	}
	if o.FetchMax <= 0 {
		o.FetchMax = 256
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 256
	}
	if o.BatchSize > 1000 {
		o.BatchSize = 1000
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.LagInterval <= 0 {
		o.LagInterval = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Consumer turns a source's messages into tasks: it decodes each message
// (JSON or Avro), takes the tenant from Message.Tenant only, makes the
// message's Position the task's idempotency key (so a redelivered message
// names the task it already became), submits it and acknowledges it only
// once the submit returned. A quota refusal pauses the tenant and gives
// the message back (backpressure, never a drop); a message that can never
// become a task goes to the dead-letter destination with its Reason; an
// unavailable cluster or broker is retried with backoff.
//
// Run it on the Raft leader only (engine.Config.OnLeader): one consumer
// per cluster.
type Consumer struct {
	opts ConsumerOptions
	open func(ctx context.Context) (SourceDriver, error)
	own  bool // Run opens and closes drivers through open

	runMu sync.Mutex // one Run at a time

	mu        sync.Mutex
	running   bool
	lastErr   string
	errAt     time.Time
	failures  int
	lag       map[string]int64
	lagAt     time.Time
	paused    map[string]*pauseState
	backoffs  map[string]*backoff.ExponentialBackOff // per paused-before tenant, until a submit succeeds
	consumed  int64
	dead      int64
	lastFetch time.Time
}

type pauseState struct {
	until  time.Time
	timer  *time.Timer
	d      SourceDriver
	tenant string
}

// NewConsumer returns a consumer of d; Run uses d and does not close it.
func NewConsumer(d SourceDriver, opts ConsumerOptions) (*Consumer, error) {
	if d == nil {
		return nil, errors.New("events: NewConsumer: nil driver")
	}
	return newConsumer(func(context.Context) (SourceDriver, error) { return d, nil }, false, opts)
}

// NewConsumerFunc returns a consumer that opens its driver with open when
// Run starts (retrying with backoff while open fails: a broker that is
// down at start makes the source degraded, not the server) and closes it
// when Run returns, so that a node that stops leading leaves the consumer
// group and its unacknowledged messages go to the next leader.
func NewConsumerFunc(open func(ctx context.Context) (SourceDriver, error), opts ConsumerOptions) (*Consumer, error) {
	if open == nil {
		return nil, errors.New("events: NewConsumerFunc: nil open")
	}
	return newConsumer(open, true, opts)
}

func newConsumer(open func(ctx context.Context) (SourceDriver, error), own bool, opts ConsumerOptions) (*Consumer, error) {
	if opts.Submit == nil {
		return nil, errors.New("events: ConsumerOptions.Submit is required")
	}
	if opts.Name == "" {
		opts.Name = "events"
	}
	opts.defaults()
	return &Consumer{opts: opts, open: open, own: own, paused: map[string]*pauseState{}, backoffs: map[string]*backoff.ExponentialBackOff{}}, nil
}

// Name returns the source's name.
func (c *Consumer) Name() string { return c.opts.Name }

// SourceStatus is a consumer's state, for /api/v1/cluster/events.
type SourceStatus struct {
	// Name is the source's name (kafka, rabbitmq).
	Name string `json:"name"`
	// Running says whether this node runs the consumer (it leads).
	Running bool `json:"running"`
	// Lag is, per tenant, the messages published and not yet
	// acknowledged, as of LagAt.
	Lag   map[string]int64 `json:"lag,omitempty"`
	LagAt time.Time        `json:"lag_at,omitempty"`
	// Paused lists the tenants held back by backpressure.
	Paused []string `json:"paused,omitempty"`
	// Consumed and DeadLettered count messages since this node started.
	Consumed     int64 `json:"consumed"`
	DeadLettered int64 `json:"dead_lettered"`
	// Failures counts consecutive failures to reach the broker.
	Failures    int       `json:"failures"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitempty"`
}

// Status reports the consumer.
func (c *Consumer) Status() SourceStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := SourceStatus{Name: c.opts.Name, Running: c.running, LagAt: c.lagAt, Consumed: c.consumed, DeadLettered: c.dead,
		Failures: c.failures, LastError: c.lastErr, LastErrorAt: c.errAt}
	if len(c.lag) > 0 {
		st.Lag = make(map[string]int64, len(c.lag))
		for k, v := range c.lag {
			st.Lag[k] = v
		}
	}
	for t := range c.paused {
		st.Paused = append(st.Paused, t)
	}
	sort.Strings(st.Paused)
	return st
}

// Degraded says why the source does not consume ("" when it does, or
// when this node does not run it).
func (c *Consumer) Degraded() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running || c.failures == 0 {
		return ""
	}
	return fmt.Sprintf("event source %s unavailable (%d failures, retrying with backoff): %s", c.opts.Name, c.failures, c.lastErr)
}

func (c *Consumer) failed(err error) {
	c.mu.Lock()
	c.failures++
	c.lastErr, c.errAt = err.Error(), time.Now()
	c.mu.Unlock()
}

func (c *Consumer) ok() {
	c.mu.Lock()
	c.failures = 0
	c.mu.Unlock()
}

func (c *Consumer) newBackoff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = c.opts.MinBackoff, c.opts.MaxBackoff
	return b
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Run consumes until ctx ends (leadership lost, shutdown) and returns
// nil then; it returns an error only for a consumer that cannot run
// (a second concurrent Run).
func (c *Consumer) Run(ctx context.Context) error {
	if !c.runMu.TryLock() {
		return errors.New("events: consumer " + c.opts.Name + " is already running")
	}
	defer c.runMu.Unlock()
	c.mu.Lock()
	c.running = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.running, c.failures = false, 0
		var resume []*pauseState
		for t, p := range c.paused {
			if p.timer.Stop() && !c.own {
				// The driver outlives this Run: it must not keep the
				// tenant paused for the next one.
				resume = append(resume, p)
			}
			delete(c.paused, t)
		}
		c.mu.Unlock()
		for _, p := range resume {
			p.d.Resume(p.tenant)
		}
		c.opts.Metrics.setPaused(c.opts.Name, 0)
	}()

	eb := c.newBackoff()
	var d SourceDriver
	for d == nil {
		var err error
		d, err = c.open(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.failed(err)
			c.opts.Logger.Warn("event source unavailable; retrying with backoff", "source", c.opts.Name, "err", err)
			if !sleep(ctx, eb.NextBackOff()) {
				return nil
			}
		}
	}
	if c.own {
		defer func() {
			if err := d.Close(); err != nil {
				c.opts.Logger.Warn("closing event source", "source", c.opts.Name, "err", err)
			}
		}()
	}
	c.ok()
	c.opts.Logger.Info("event source consuming", "source", c.opts.Name)

	lagCtx, stopLag := context.WithCancel(ctx)
	lagDone := make(chan struct{})
	go func() {
		defer close(lagDone)
		c.pollLag(lagCtx, d)
	}()
	defer func() {
		stopLag()
		<-lagDone
	}()

	eb.Reset()
	for ctx.Err() == nil {
		msgs, err := d.Fetch(ctx, c.opts.FetchMax)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.failed(err)
			c.opts.Logger.Warn("event source fetch failed; retrying with backoff", "source", c.opts.Name, "err", err)
			if !sleep(ctx, eb.NextBackOff()) {
				return nil
			}
			continue
		}
		eb.Reset()
		c.ok()
		if len(msgs) > 0 {
			c.handle(ctx, d, msgs)
		}
	}
	return nil
}

// pollLag records the driver's per-tenant lag every LagInterval.
func (c *Consumer) pollLag(ctx context.Context, d SourceDriver) {
	t := time.NewTicker(c.opts.LagInterval)
	defer t.Stop()
	for {
		lctx, cancel := context.WithTimeout(ctx, c.opts.LagInterval)
		lag, err := d.Lag(lctx)
		cancel()
		if err == nil {
			c.mu.Lock()
			old := c.lag
			c.lag, c.lagAt = lag, time.Now()
			c.mu.Unlock()
			c.opts.Metrics.setLag(c.opts.Name, old, lag)
		} else if ctx.Err() == nil && !greyerr.Is(err, greyerr.Unimplemented) {
			c.opts.Logger.Debug("event source lag", "source", c.opts.Name, "err", err)
		}
		select {
		case <-ctx.Done():
			c.opts.Metrics.setLag(c.opts.Name, lag, nil)
			return
		case <-t.C:
		}
	}
}

// outcome is what became of one message.
type outcome int

const (
	acked outcome = iota
	deadLettered
	retried
)

// handle turns one fetch's messages into tasks, then acknowledges,
// dead-letters and gives back what it must.
func (c *Consumer) handle(ctx context.Context, d SourceDriver, msgs []*Message) {
	type result struct {
		out    outcome
		reason *DecodeError
	}
	res := make([]result, len(msgs))
	sem := make(chan struct{}, c.opts.Concurrency)
	var wg sync.WaitGroup
	specs := make([]task.Spec, len(msgs))
	var byTenant map[string][]int // with SubmitBatch: valid messages per tenant, in order
	for i, m := range msgs {
		spec, derr := c.check(m)
		if derr != nil {
			res[i] = result{out: deadLettered, reason: derr}
			continue
		}
		if c.isPaused(m.Tenant) {
			res[i] = result{out: retried}
			continue
		}
		if c.opts.SubmitBatch != nil {
			if byTenant == nil {
				byTenant = map[string][]int{}
			}
			specs[i] = spec
			byTenant[m.Tenant] = append(byTenant[m.Tenant], i)
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int, m *Message, spec task.Spec) {
			defer func() { <-sem; wg.Done() }()
			out, reason := c.submit(ctx, d, m, spec)
			res[i] = result{out: out, reason: reason}
		}(i, m, spec)
	}
	for tenant, idx := range byTenant {
		for len(idx) > 0 {
			n := min(len(idx), c.opts.BatchSize)
			chunk := idx[:n]
			idx = idx[n:]
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				outs, reasons := c.submitBatch(ctx, d, tenant, msgs, specs, chunk)
				for j, i := range chunk {
					res[i] = result{out: outs[j], reason: reasons[j]}
				}
			}()
		}
	}
	wg.Wait()

	// Acknowledge, dead-letter and give back with a context that outlives
	// a lost leadership by a little: what was submitted should not be
	// redelivered needlessly.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var ack, again []*Message
	for i, m := range msgs {
		switch res[i].out {
		case acked:
			ack = append(ack, m)
		case retried:
			again = append(again, m)
		case deadLettered:
			if err := d.DeadLetter(actx, m, res[i].reason.Error()); err != nil {
				// Not acknowledged: the message comes again and is judged
				// again.
				c.opts.Logger.Warn("dead-lettering failed; the message will come again", "source", c.opts.Name, "tenant", m.Tenant, "position", m.Position, "err", err)
				again = append(again, m)
				continue
			}
			c.opts.Logger.Info("message dead-lettered", "source", c.opts.Name, "tenant", m.Tenant, "position", m.Position, "reason", res[i].reason.Error())
			c.opts.Metrics.deadLetter(c.opts.Name, res[i].reason.Reason)
			c.mu.Lock()
			c.dead++
			c.mu.Unlock()
		}
	}
	if len(ack) > 0 {
		if err := d.Ack(actx, ack); err != nil {
			// The tasks exist: a redelivered message names its task again
			// through its idempotency key and is acknowledged then. Give
			// them back so that they come again even if this member stays.
			c.opts.Logger.Warn("acknowledging messages failed; they come again (their tasks exist)", "source", c.opts.Name, "messages", len(ack), "err", err)
			again = append(again, ack...)
		} else {
			c.opts.Metrics.consume(c.opts.Name, len(ack))
			c.mu.Lock()
			c.consumed += int64(len(ack))
			c.mu.Unlock()
		}
	}
	if len(again) > 0 {
		if err := d.Retry(actx, again); err != nil {
			c.opts.Logger.Warn("giving messages back failed", "source", c.opts.Name, "messages", len(again), "err", err)
		}
	}
}

// check decides what can be decided without the cluster: size, tenant,
// encoding. It returns the spec to submit, or why m is dead-lettered.
func (c *Consumer) check(m *Message) (task.Spec, *DecodeError) {
	if !task.ValidTenant(m.Tenant) {
		return task.Spec{}, decodeErr(ReasonUnknownTenant, "the source %q names no valid tenant (%q)", truncate(m.Source, 200), truncate(m.Tenant, 80))
	}
	if h, ok := m.Headers[HeaderTenant]; ok && h != m.Tenant {
		return task.Spec{}, decodeErr(ReasonTenantMismatch, "header %s names tenant %q but the message was published to tenant %q's source; a message never chooses its tenant", HeaderTenant, truncate(h, 80), m.Tenant)
	}
	if len(m.Value) > c.opts.MaxMessageBytes {
		return task.Spec{}, decodeErr(ReasonTooLarge, "message is %d bytes, limit %d", len(m.Value), c.opts.MaxMessageBytes)
	}
	spec, err := DecodeSpec(m.ContentType, m.Value)
	if err != nil {
		var de *DecodeError
		if errors.As(err, &de) {
			return task.Spec{}, de
		}
		return task.Spec{}, decodeErr(ReasonMalformed, "%s", err)
	}
	// The position is the idempotency key: a message delivered again
	// (after a crash between the Raft commit and the ack) names the task
	// it already became.
	spec.IdempotencyKey = IdempotencyKey(m.Position)
	return spec, nil
}

// IdempotencyKey returns the idempotency key of the task a message at
// position becomes: the position itself when it is a valid key (1–200
// printable ASCII characters without spaces), else a digest of it.
func IdempotencyKey(position string) string {
	ok := len(position) > 0 && len(position) <= 200
	for i := 0; ok && i < len(position); i++ {
		ok = position[i] > 0x20 && position[i] < 0x7f
	}
	if ok {
		return position
	}
	return "evt:" + digest(position)
}

// submit submits one message's task, retrying while the cluster is
// unavailable; it pauses the tenant on a quota refusal.
func (c *Consumer) submit(ctx context.Context, d SourceDriver, m *Message, spec task.Spec) (outcome, *DecodeError) {
	ctx = tracing.Extract(ctx, m.Headers)
	ctx, span := tracing.Start(ctx, SpanConsume, trace.WithAttributes(tracing.TenantID.String(m.Tenant), tracing.Kind.String(spec.Kind)))
	defer span.End()
	eb := c.newBackoff()
	for {
		t, err := c.opts.Submit(ctx, m.Tenant, spec)
		if err == nil {
			if t != nil && span.IsRecording() {
				span.SetAttributes(tracing.TaskID.String(t.ID))
			}
			c.resetPause(m.Tenant)
			return acked, nil
		}
		if ctx.Err() != nil {
			return retried, nil
		}
		code := greyerr.CodeOf(err)
		switch code {
		case greyerr.ResourceExhausted:
			c.pause(d, m.Tenant, err)
			c.opts.Metrics.retry(c.opts.Name, "quota")
			return retried, nil
		case greyerr.InvalidArgument, greyerr.TooLarge, greyerr.PermissionDenied, greyerr.FailedPrecondition, greyerr.NotFound, greyerr.AlreadyExists, greyerr.Unauthenticated:
			span.SetAttributes(tracing.ErrorCode.String(string(code)))
			return deadLettered, refusal(err)
		}
		// Unavailable (no leader, shutting down), deadlines, anything
		// unexpected: the message is not lost, it is tried again.
		c.opts.Metrics.retry(c.opts.Name, "unavailable")
		c.opts.Logger.Debug("submit failed; retrying", "source", c.opts.Name, "tenant", m.Tenant, "position", m.Position, "err", err)
		wait := eb.NextBackOff()
		var ge *greyerr.Error
		if errors.As(err, &ge) && ge.RetryAfter > wait {
			wait = min(ge.RetryAfter, c.opts.MaxBackoff)
		}
		if !sleep(ctx, wait) {
			return retried, nil
		}
	}
}

// submitBatch submits the messages msgs[chunk] of one tenant in one
// SubmitBatch (one Raft entry), retrying while the cluster is unavailable.
// A batch the cluster refuses otherwise (a bad message in it, a quota with
// room for only some) is submitted again message by message, in order, so
// that each gets its own outcome.
func (c *Consumer) submitBatch(ctx context.Context, d SourceDriver, tenant string, msgs []*Message, specs []task.Spec, chunk []int) ([]outcome, []*DecodeError) {
	outs, reasons := make([]outcome, len(chunk)), make([]*DecodeError, len(chunk))
	batch := make([]task.Spec, len(chunk))
	for j, i := range chunk {
		batch[j] = specs[i]
		// One submit has one context: each task keeps its message's own
		// trace context through its headers.
		if tp := msgs[i].Headers[HeaderTraceparent]; tp != "" && batch[j].Headers[HeaderTraceparent] == "" {
			h := make(map[string]string, len(batch[j].Headers)+2)
			for k, v := range batch[j].Headers {
				h[k] = v
			}
			h[HeaderTraceparent] = tp
			if ts := msgs[i].Headers[tracing.HeaderTracestate]; ts != "" {
				h[tracing.HeaderTracestate] = ts
			}
			batch[j].Headers = h
		}
	}
	if len(chunk) > 1 {
		ctx, span := tracing.Start(ctx, SpanConsume, trace.WithAttributes(tracing.TenantID.String(tenant), tracing.TaskCount.Int(len(chunk))))
		eb := c.newBackoff()
		for {
			_, err := c.opts.SubmitBatch(ctx, tenant, batch)
			if err == nil {
				span.End()
				c.resetPause(tenant)
				return outs, reasons // all acked
			}
			if ctx.Err() != nil {
				span.End()
				for j := range outs {
					outs[j] = retried
				}
				return outs, reasons
			}
			code := greyerr.CodeOf(err)
			if code != greyerr.Unavailable && code != greyerr.DeadlineExceeded && code != greyerr.Internal && code != greyerr.Unknown {
				break // judge them one by one
			}
			c.opts.Metrics.retry(c.opts.Name, "unavailable")
			wait := eb.NextBackOff()
			var ge *greyerr.Error
			if errors.As(err, &ge) && ge.RetryAfter > wait {
				wait = min(ge.RetryAfter, c.opts.MaxBackoff)
			}
			if !sleep(ctx, wait) {
				span.End()
				for j := range outs {
					outs[j] = retried
				}
				return outs, reasons
			}
		}
		span.End()
	}
	for j, i := range chunk {
		if c.isPaused(tenant) {
			outs[j] = retried
			continue
		}
		outs[j], reasons[j] = c.submit(ctx, d, msgs[i], specs[i])
	}
	return outs, reasons
}

// refusal maps the submit path's refusal to a dead-letter reason.
func refusal(err error) *DecodeError {
	var ge *greyerr.Error
	errors.As(err, &ge)
	detail := truncate(err.Error(), 500)
	switch {
	case ge == nil:
		return decodeErr(ReasonInvalid, "%s", detail)
	case ge.Reason == "unknown_tenant":
		return decodeErr(ReasonUnknownTenant, "%s", detail)
	case ge.Code == greyerr.TooLarge:
		return decodeErr(ReasonPayloadTooLarge, "%s", detail)
	case ge.Reason == "allowed_kinds", ge.Code == greyerr.PermissionDenied, ge.Code == greyerr.Unauthenticated:
		return decodeErr(ReasonRefused, "%s", detail)
	case strings.HasSuffix(ge.Field, "kind") && strings.Contains(ge.Message, "unknown kind"):
		return decodeErr(ReasonUnknownKind, "%s", detail)
	}
	return decodeErr(ReasonInvalid, "%s", detail)
}

func (c *Consumer) isPaused(tenant string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paused[tenant] != nil
}

// pause holds the tenant's messages back for a backoff that grows while
// its quota keeps refusing (at least the refusal's RetryAfter, at most
// MaxBackoff), then resumes it.
func (c *Consumer) pause(d SourceDriver, tenant string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paused[tenant] != nil {
		return
	}
	b := c.backoffs[tenant]
	if b == nil {
		b = c.newBackoff()
		c.backoffs[tenant] = b
	}
	wait := b.NextBackOff()
	var ge *greyerr.Error
	if errors.As(err, &ge) && ge.RetryAfter > wait {
		wait = min(ge.RetryAfter, c.opts.MaxBackoff)
	}
	p := &pauseState{until: time.Now().Add(wait), d: d, tenant: tenant}
	d.Pause(tenant)
	p.timer = time.AfterFunc(wait, func() {
		c.mu.Lock()
		mine := c.paused[tenant] == p
		if mine {
			delete(c.paused, tenant)
		}
		n := len(c.paused)
		c.mu.Unlock()
		if mine {
			c.opts.Metrics.setPaused(c.opts.Name, n)
			d.Resume(tenant)
		}
	})
	c.paused[tenant] = p
	c.opts.Metrics.setPaused(c.opts.Name, len(c.paused))
	c.opts.Logger.Info("tenant paused: its quota refuses submissions", "source", c.opts.Name, "tenant", tenant, "for", wait, "err", err)
}

// resetPause forgets the tenant's growing pause once a submit succeeds.
func (c *Consumer) resetPause(tenant string) {
	c.mu.Lock()
	if c.backoffs[tenant] != nil {
		delete(c.backoffs, tenant)
	}
	c.mu.Unlock()
}

package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/telemetry/tracing"
)

// ResultBody is the JSON body of a Result event: a finished task's
// outcome. Consumers deduplicate by (task_id, attempt).
type ResultBody struct {
	// TaskID is the task's id.
	TaskID string `json:"task_id"`
	// TenantID owns the task.
	TenantID string `json:"tenant_id"`
	// Kind is the task's kind.
	Kind string `json:"kind"`
	// Status is completed, failed or cancelled.
	Status task.Status `json:"status"`
	// Attempt is the number of the task's last attempt.
	Attempt int `json:"attempt"`
	// IdempotencyKey is the task's key: for a task that came from an event
	// source, the message's position ("kafka:grey.tasks.acme/3/1207").
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// Result is a completed task's inline result.
	Result json.RawMessage `json:"result,omitempty"`
	// ResultRef names a result over the inline limit (fetch it from
	// GET /api/v1/tasks/{id}/result).
	ResultRef *task.DataRef `json:"result_ref,omitempty"`
	// ResultOmitted says the inline result was left out of the event, being
	// over PublisherOptions.MaxResultBytes (brokers bound message sizes):
	// fetch it from GET /api/v1/tasks/{id}/result. ResultBytes is its size.
	ResultOmitted bool `json:"result_omitted,omitempty"`
	ResultBytes   int  `json:"result_bytes,omitempty"`
	// Error is a failed task's reason.
	Error *task.Error `json:"error,omitempty"`
	// FinishedAt is when the task finished.
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// ProofID names the task's signed proof (GET /api/v1/tasks/{id}/proof).
	ProofID string `json:"proof_id,omitempty"`
}

// LifecycleBody is the JSON body of a Lifecycle event: task.<status> for
// each transition of PublisherOptions.Lifecycle (by default the terminal
// ones: task.completed, task.failed, task.cancelled; with more statuses
// also task.pending, task.leased, task.running, task.retrying).
type LifecycleBody struct {
	// Type is "task.<status>".
	Type string `json:"type"`
	// TaskID is the task's id.
	TaskID string `json:"task_id"`
	// TenantID owns the task.
	TenantID string `json:"tenant_id"`
	// Kind is the task's kind.
	Kind string `json:"kind"`
	// Status is the status the task reached.
	Status task.Status `json:"status"`
	// Attempt is the number of the task's last attempt.
	Attempt int `json:"attempt"`
	// At is when the transition happened.
	At time.Time `json:"at"`
}

// PublisherOptions configure a Publisher.
type PublisherOptions struct {
	// Name names the sink: the relay sink is "events_<Name>" (its cursor
	// and grey_events_<name>_lag_tasks...), metrics label it Name.
	Name string
	// NoLifecycle publishes results only.
	NoLifecycle bool
	// Lifecycle is the set of statuses whose transitions are published as
	// lifecycle events (zero: the terminal ones; see LifecycleSet for the
	// guarantee of each).
	Lifecycle LifecycleSet
	// MaxQueuedChanges bounds the non-terminal transitions waiting to be
	// published (0: 10,000); beyond it they are dropped, counted.
	MaxQueuedChanges int
	// MaxResultBytes is the largest inline result an event carries; a
	// larger one is left out (ResultBody.ResultOmitted) so that the event
	// fits the broker's message size (Kafka's default is 1 MB) (0: 512 KiB).
	MaxResultBytes int
	// MaxTries bounds publish attempts within one delivery before the
	// relay takes over the retrying (0: 3).
	MaxTries uint
	// MinBackoff and MaxBackoff bound the backoff between publish
	// attempts (0: 50 ms and 2 s).
	MinBackoff, MaxBackoff time.Duration
	// Logger receives the publisher's log lines (nil: discarded).
	Logger *slog.Logger
	// Metrics receives the grey_events_* metrics (nil: none).
	Metrics *Metrics
}

// Publisher is a relay.Sink that publishes, for each finished task, a
// Result event to the tenant's results destination and a Lifecycle event
// to the cluster's events destination. The relay delivers from a
// replicated cursor, so a new leader resumes where the old one stopped
// and an event may be published more than once (never skipped):
// consumers deduplicate by (task id, attempt).
type Publisher struct {
	opts PublisherOptions
	open func(ctx context.Context) (SinkDriver, error)
	own  bool

	mu      sync.Mutex
	d       SinkDriver
	lastErr string
	errAt   time.Time
	okAt    time.Time
	fails   int

	// non-terminal lifecycle events (Observe, RunChanges)
	changes chan *task.Task
	chMu    sync.Mutex
	last    map[string]transitionKey // task id -> last queued transition
	dropped int
}

// NewPublisher returns a publisher to d (which it does not close).
func NewPublisher(d SinkDriver, opts PublisherOptions) (*Publisher, error) {
	if d == nil {
		return nil, errors.New("events: NewPublisher: nil driver")
	}
	p, err := newPublisher(nil, false, opts)
	if err != nil {
		return nil, err
	}
	p.d = d
	return p, nil
}

// NewPublisherFunc returns a publisher that opens its driver with open on
// first use (and again after a failed open: a broker down at start makes
// deliveries fail and the relay retry, not the server fail).
func NewPublisherFunc(open func(ctx context.Context) (SinkDriver, error), opts PublisherOptions) (*Publisher, error) {
	if open == nil {
		return nil, errors.New("events: NewPublisherFunc: nil open")
	}
	return newPublisher(open, true, opts)
}

func newPublisher(open func(ctx context.Context) (SinkDriver, error), own bool, opts PublisherOptions) (*Publisher, error) {
	if opts.Name == "" {
		return nil, errors.New("events: PublisherOptions.Name is required")
	}
	for _, r := range opts.Name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return nil, fmt.Errorf("events: sink name %q: lower-case letters, digits and '_' only", opts.Name)
		}
	}
	if opts.MaxResultBytes <= 0 {
		opts.MaxResultBytes = 512 << 10
	}
	if opts.MaxTries == 0 {
		opts.MaxTries = 3
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 50 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.MaxQueuedChanges <= 0 {
		opts.MaxQueuedChanges = 10000
	}
	p := &Publisher{opts: opts, open: open, own: own}
	if !opts.NoLifecycle && opts.Lifecycle.NonTerminal() {
		p.changes = make(chan *task.Task, opts.MaxQueuedChanges)
		p.last = map[string]transitionKey{}
	}
	return p, nil
}

// SinkName returns the relay sink name of an events sink named name.
func SinkName(name string) string { return "events_" + name }

// Name implements relay.Sink: "events_<name>".
func (p *Publisher) Name() string { return SinkName(p.opts.Name) }

// driver returns the open driver, opening it if need be.
func (p *Publisher) driver(ctx context.Context) (SinkDriver, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.d != nil {
		return p.d, nil
	}
	d, err := p.open(ctx)
	if err != nil {
		return nil, err
	}
	p.d = d
	return d, nil
}

// Deliver implements relay.Sink: it publishes the batch's events and
// returns once the broker confirmed them all.
func (p *Publisher) Deliver(ctx context.Context, b state.FeedBatch) error {
	evs, err := p.Events(b)
	if err != nil {
		return err
	}
	if len(evs) == 0 {
		return nil
	}
	d, err := p.driver(ctx)
	if err != nil {
		p.failed(err)
		return err
	}
	eb := backoff.NewExponentialBackOff()
	eb.InitialInterval, eb.MaxInterval = p.opts.MinBackoff, p.opts.MaxBackoff
	_, err = backoff.Retry(ctx, func() (struct{}, error) {
		start := time.Now()
		err := d.Publish(ctx, evs)
		p.opts.Metrics.publishTook(p.opts.Name, time.Since(start))
		if err != nil {
			p.opts.Metrics.publishFailed(p.opts.Name)
			p.opts.Logger.Warn("publishing events failed", "sink", p.opts.Name, "events", len(evs), "err", err)
			switch greyerr.CodeOf(err) {
			case greyerr.InvalidArgument, greyerr.PermissionDenied, greyerr.Unauthenticated, greyerr.TooLarge:
				return struct{}{}, backoff.Permanent(err)
			}
		}
		return struct{}{}, err
	}, backoff.WithBackOff(eb), backoff.WithMaxTries(p.opts.MaxTries))
	if err != nil {
		p.failed(err)
		return fmt.Errorf("events: publish to %s: %w", p.opts.Name, err)
	}
	var results int
	for _, e := range evs {
		if e.Kind == Result {
			results++
		}
	}
	p.opts.Metrics.publish(p.opts.Name, Result, results)
	p.opts.Metrics.publish(p.opts.Name, Lifecycle, len(evs)-results)
	p.mu.Lock()
	p.fails, p.okAt = 0, time.Now()
	p.mu.Unlock()
	return nil
}

func (p *Publisher) failed(err error) {
	p.mu.Lock()
	p.fails++
	p.lastErr, p.errAt = err.Error(), time.Now()
	p.mu.Unlock()
}

// Events returns the events of a batch: for each finished task a Result
// and (unless NoLifecycle, or its status is not in Lifecycle) a Lifecycle
// event. The bodies share one buffer per batch (each Value is capped to
// its own bytes).
func (p *Publisher) Events(b state.FeedBatch) ([]Event, error) {
	n := len(b.Tasks)
	if !p.opts.NoLifecycle {
		n *= 2
	}
	evs := make([]Event, 0, n)
	// ~330 bytes of result and ~250 of lifecycle body per noop task
	buf := make([]byte, 0, len(b.Tasks)*640)
	var err error
	for _, t := range b.Tasks {
		if t == nil || !t.Status.Terminal() {
			continue
		}
		var r Event
		if r, buf, err = appendResultEvent(buf, t, p.opts.MaxResultBytes); err != nil {
			return nil, err
		}
		evs = append(evs, r)
		if !p.opts.NoLifecycle && p.opts.Lifecycle.Has(t.Status) {
			var l Event
			if l, buf, err = appendLifecycleEvent(buf, t); err != nil {
				return nil, err
			}
			evs = append(evs, l)
		}
	}
	return evs, nil
}

// TaskEvents returns a finished task's Result and Lifecycle events, the
// result inline whatever its size.
func TaskEvents(t *task.Task) (result, lifecycle Event, err error) {
	if result, _, err = appendResultEvent(nil, t, 0); err != nil {
		return Event{}, Event{}, err
	}
	if lifecycle, _, err = appendLifecycleEvent(nil, t); err != nil {
		return Event{}, Event{}, err
	}
	return result, lifecycle, nil
}

// appendResultEvent is the Result event of a finished task, leaving out
// an inline result over maxResult bytes (0: no bound). Its body is
// appended to buf (returned grown) and the event's Value is that part.
func appendResultEvent(buf []byte, t *task.Task, maxResult int) (Event, []byte, error) {
	rb := ResultBody{TaskID: t.ID, TenantID: t.TenantID, Kind: t.Kind, Status: t.Status, Attempt: t.Attempt,
		IdempotencyKey: t.IdempotencyKey, Result: t.Result, ResultRef: t.ResultRef, Error: t.Error, FinishedAt: t.FinishedAt, ProofID: t.ProofID}
	if maxResult > 0 && len(t.Result) > maxResult {
		rb.Result, rb.ResultOmitted, rb.ResultBytes = nil, true, len(t.Result)
	}
	start := len(buf)
	buf, err := appendResultBody(buf, &rb)
	if err != nil {
		return Event{}, nil, greyerr.Wrap(greyerr.Internal, err, "encode result event of task %s", t.ID)
	}
	return Event{Kind: Result, Tenant: t.TenantID, Key: t.ID, Value: buf[start:len(buf):len(buf)], Headers: eventHeaders(t, "")}, buf, nil
}

// appendLifecycleEvent is the Lifecycle event of t's current status, its
// body appended to buf as appendResultEvent's.
func appendLifecycleEvent(buf []byte, t *task.Task) (Event, []byte, error) {
	at := t.UpdatedAt
	if t.FinishedAt != nil {
		at = *t.FinishedAt
	}
	lb := LifecycleBody{Type: "task." + string(t.Status), TaskID: t.ID, TenantID: t.TenantID, Kind: t.Kind, Status: t.Status, Attempt: t.Attempt, At: at}
	start := len(buf)
	buf, err := appendLifecycleBody(buf, &lb)
	if err != nil {
		return Event{}, nil, greyerr.Wrap(greyerr.Internal, err, "encode lifecycle event of task %s", t.ID)
	}
	return Event{Kind: Lifecycle, Tenant: t.TenantID, Key: t.ID, Value: buf[start:len(buf):len(buf)], Headers: eventHeaders(t, string(t.Status))}, buf, nil
}

// eventHeaders are the headers of every event of t, with HeaderEvent set
// to event unless it is empty.
func eventHeaders(t *task.Task, event string) map[string]string {
	h := make(map[string]string, 7)
	h[HeaderTenant] = t.TenantID
	h[HeaderTaskID] = t.ID
	h[HeaderAttempt] = strconv.Itoa(t.Attempt)
	h[HeaderContentType] = ContentTypeJSON
	if event != "" {
		h[HeaderEvent] = event
	}
	if v := t.Headers[tracing.HeaderTraceparent]; v != "" {
		h[tracing.HeaderTraceparent] = v
	}
	if v := t.Headers[tracing.HeaderTracestate]; v != "" {
		h[tracing.HeaderTracestate] = v
	}
	return h
}

// SinkStatus is a publisher's own view (the relay's cursor and lag are in
// relay.Status).
type SinkStatus struct {
	// Name is the sink's name (kafka, rabbitmq).
	Name string `json:"name"`
	// Connected says whether the driver is open.
	Connected bool `json:"connected"`
	// Failures counts consecutive failed deliveries on this node.
	Failures    int       `json:"failures"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitempty"`
	// LastPublish is when this node last published.
	LastPublish time.Time `json:"last_publish,omitempty"`
	// Lifecycle lists the statuses published as lifecycle events.
	Lifecycle string `json:"lifecycle,omitempty"`
	// LifecycleDropped counts non-terminal lifecycle events left out on
	// this node (queue full, broker refusing too long).
	LifecycleDropped int `json:"lifecycle_dropped,omitempty"`
}

// Status reports the publisher.
func (p *Publisher) Status() SinkStatus {
	p.chMu.Lock()
	dropped := p.dropped
	p.chMu.Unlock()
	life := ""
	if !p.opts.NoLifecycle {
		life = p.opts.Lifecycle.String()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return SinkStatus{Name: p.opts.Name, Connected: p.d != nil, Failures: p.fails, LastError: p.lastErr, LastErrorAt: p.errAt, LastPublish: p.okAt,
		Lifecycle: life, LifecycleDropped: dropped}
}

// Close closes the driver if the publisher opened it.
func (p *Publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.own || p.d == nil {
		return nil
	}
	err := p.d.Close()
	p.d = nil
	return err
}

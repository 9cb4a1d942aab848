// Package relay is the one mechanism by which finished tasks leave the Raft
// state for the outside: the archive, and event streams. It follows the
// state store's feed of finished tasks (in Raft order) on the leader and
// hands each sink batches from the sink's replicated cursor; once a sink has
// written a batch, the relay records "sink X acknowledged through index N"
// as a Raft command. A new leader resumes every sink from its cursor, so a
// batch may be delivered twice (sinks are idempotent) but never skipped.
// GC keeps a finished task until every sink that holds it has acknowledged
// it (state.GCRequest.Hold).
package relay

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/grey-distributed/grey/cluster"
	"github.com/grey-distributed/grey/state"
)

// Sink receives finished tasks in Raft order.
type Sink interface {
	// Name identifies the sink's cursor in the replicated state and its
	// metrics (grey_<name>_lag_tasks, ...): lower-case letters, digits
	// and '_'. It must not change between releases.
	Name() string
	// Deliver writes a batch. It must be idempotent: after a leader
	// change or a failed acknowledgement the same tasks come again. An
	// error makes the relay retry the batch with backoff.
	Deliver(ctx context.Context, b state.FeedBatch) error
}

// ChangeSink is a Sink that also follows every state change while this
// node leads (an event sink's non-terminal lifecycle events): best effort,
// from no cursor. The relay calls Observe for each change, in Raft order,
// only between the start and the end of a Run, and runs RunChanges for
// as long as Run.
type ChangeSink interface {
	Sink
	// Observe receives one write's changed tasks; it must not block (it
	// runs on the state store's apply path).
	Observe(c state.Change)
	// RunChanges works until ctx ends.
	RunChanges(ctx context.Context)
}

// Config tunes a Relay.
type Config struct {
	// BatchSize is the most tasks per delivery (0: 1000).
	BatchSize int
	// Linger is how long the relay waits for more finished tasks before
	// delivering a partial batch (0: 250 ms), trading a little latency for
	// fewer, larger writes and acknowledgements: each acknowledgement is a
	// Raft entry (an fsync on every server), so at 20 ms a sink's cursor
	// alone added up to 50 entries a second to a busy leader.
	Linger time.Duration
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// failed deliveries (0: 100 ms and 10 s).
	MinBackoff, MaxBackoff time.Duration
	// Logger receives the relay's log lines (nil: discarded).
	Logger *slog.Logger
	// Registerer receives each sink's metrics (nil: not registered).
	Registerer prometheus.Registerer
}

func (c *Config) defaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.Linger <= 0 {
		c.Linger = 250 * time.Millisecond
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Relay moves finished tasks from the state to its sinks. Run it on the
// leader only; it is safe to Run again after a Run returned.
type Relay struct {
	cfg   Config
	node  *cluster.Node
	store *state.Store
	sinks []*sinkRun
	wake  chan struct{}
	// observers are the ChangeSinks; leading is set while Run runs.
	observers []ChangeSink
	leading   atomic.Bool
}

// sinkRun is a sink and what the relay knows of its health.
type sinkRun struct {
	sink Sink
	m    *metrics

	mu       sync.Mutex
	lastErr  string
	errAt    time.Time
	failures int
	okAt     time.Time
}

// Status is a sink's state as the relay sees it.
type Status struct {
	state.SinkStatus
	// LagSeconds is how long ago the oldest unacknowledged task finished
	// (0 when the sink has caught up).
	LagSeconds float64 `json:"lag_seconds"`
	// Failures counts consecutive failed deliveries or acknowledgements
	// on this node (0 when the last one succeeded or this node is not the
	// leader).
	Failures int `json:"failures"`
	// LastError is the last failure's message and LastErrorAt its time.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitempty"`
	// LastDelivery is when this node last delivered to the sink.
	LastDelivery time.Time `json:"last_delivery,omitempty"`
}

// New returns a relay over the node's store for sinks. It registers each
// sink's metrics (every node exports the lag: the cursors are replicated).
func New(cfg Config, node *cluster.Node, store *state.Store, sinks ...Sink) (*Relay, error) {
	cfg.defaults()
	r := &Relay{cfg: cfg, node: node, store: store, wake: make(chan struct{}, 1)}
	for _, s := range sinks {
		run := &sinkRun{sink: s}
		m, err := newMetrics(cfg.Registerer, s.Name(), func() state.SinkStatus { return store.Sink(s.Name()) })
		if err != nil {
			return nil, err
		}
		run.m = m
		r.sinks = append(r.sinks, run)
		if cs, ok := s.(ChangeSink); ok {
			r.observers = append(r.observers, cs)
		}
	}
	store.Observe(func(c state.Change) {
		if len(c.Tasks) == 0 {
			return
		}
		if len(r.observers) > 0 && r.leading.Load() {
			for _, o := range r.observers {
				o.Observe(c)
			}
		}
		select {
		case r.wake <- struct{}{}:
		default:
		}
	})
	return r, nil
}

// Names returns the sinks' names, the GC hold of the leader.
func (r *Relay) Names() []string {
	out := make([]string, len(r.sinks))
	for i, s := range r.sinks {
		out[i] = s.sink.Name()
	}
	return out
}

// Status reports every sink.
func (r *Relay) Status() []Status {
	out := make([]Status, 0, len(r.sinks))
	now := time.Now()
	for _, s := range r.sinks {
		st := Status{SinkStatus: r.store.Sink(s.sink.Name())}
		if !st.Oldest.IsZero() && st.Backlog > 0 {
			st.LagSeconds = max(0, now.Sub(st.Oldest).Seconds())
		}
		s.mu.Lock()
		st.Failures, st.LastError, st.LastErrorAt, st.LastDelivery = s.failures, s.lastErr, s.errAt, s.okAt
		s.mu.Unlock()
		out = append(out, st)
	}
	return out
}

// Run delivers to every sink until ctx ends (leadership lost, shutdown).
func (r *Relay) Run(ctx context.Context) {
	var wg sync.WaitGroup
	r.leading.Store(true)
	defer r.leading.Store(false)
	for _, o := range r.observers {
		wg.Add(1)
		go func(o ChangeSink) {
			defer wg.Done()
			o.RunChanges(ctx)
		}(o)
	}
	wakes := make([]chan struct{}, len(r.sinks))
	for i, s := range r.sinks {
		wakes[i] = make(chan struct{}, 1)
		wg.Add(1)
		go func(s *sinkRun, wake chan struct{}) {
			defer wg.Done()
			r.runSink(ctx, s, wake)
		}(s, wakes[i])
	}
	// Fan the store's wake-ups out to every sink.
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-r.wake:
				for _, w := range wakes {
					select {
					case w <- struct{}{}:
					default:
					}
				}
			}
		}
	}()
	wg.Wait()
	for _, s := range r.sinks {
		s.mu.Lock()
		s.failures = 0 // only the leader's view counts
		s.mu.Unlock()
	}
}

func (r *Relay) runSink(ctx context.Context, s *sinkRun, wake chan struct{}) {
	name := s.sink.Name()
	eb := backoff.NewExponentialBackOff()
	eb.InitialInterval, eb.MaxInterval = r.cfg.MinBackoff, r.cfg.MaxBackoff
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	for ctx.Err() == nil {
		st := r.store.Sink(name)
		if !st.Known {
			// Register the cursor, so that the backlog is counted from now
			// on and GC holds for this sink.
			if _, err := cluster.Apply(ctx, r.node, cluster.SinkAck(&state.SinkAckRequest{Sink: name})); err != nil {
				s.failed(err, "register")
				if !wait(eb.NextBackOff()) {
					return
				}
			}
			continue
		}
		b := r.store.FeedAfter(st.Cursor, r.cfg.BatchSize)
		if len(b.Tasks) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-wake:
			case <-poll.C:
			}
			// Let a burst of completions gather into one batch.
			if !wait(r.cfg.Linger) {
				return
			}
			continue
		}
		start := time.Now()
		if err := s.sink.Deliver(ctx, b); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.failed(err, "deliver")
			r.cfg.Logger.Warn("sink delivery failed; retrying with backoff", "sink", name, "tasks", len(b.Tasks), "through", b.Through, "err", err)
			if !wait(eb.NextBackOff()) {
				return
			}
			continue
		}
		if _, err := cluster.Apply(ctx, r.node, cluster.SinkAck(&state.SinkAckRequest{Sink: name, Through: b.Through})); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.failed(err, "acknowledge")
			if !wait(eb.NextBackOff()) {
				return
			}
			continue
		}
		eb.Reset()
		s.delivered(len(b.Tasks), time.Since(start))
		if len(b.Tasks) < r.cfg.BatchSize && !wait(r.cfg.Linger) {
			return
		}
	}
}

func (s *sinkRun) failed(err error, what string) {
	s.m.errors.WithLabelValues(what).Inc()
	s.mu.Lock()
	s.failures++
	s.lastErr, s.errAt = what+": "+err.Error(), time.Now()
	s.mu.Unlock()
}

func (s *sinkRun) delivered(n int, d time.Duration) {
	s.m.delivered.Add(float64(n))
	s.m.seconds.Observe(d.Seconds())
	s.mu.Lock()
	s.failures = 0
	s.okAt = time.Now()
	s.mu.Unlock()
}

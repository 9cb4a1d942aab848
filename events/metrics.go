package events

import (
	"time"

	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the grey_events_* families, shared by every Consumer and
// Publisher of a server (labelled by source or sink name). A nil *Metrics
// records nothing.
type Metrics struct {
	consumed     *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	retried      *prometheus.CounterVec
	published    *prometheus.CounterVec
	publishErr   *prometheus.CounterVec
	publishSecs  *prometheus.HistogramVec
	lag          *prometheus.GaugeVec
	paused       *prometheus.GaugeVec
	dropped      *prometheus.CounterVec
}

// NewMetrics creates the families and registers them with reg (nil: not
// registered). Families already registered by an earlier call are reused.
//
//   - grey_events_consumed_total{source}: messages that became a task (or
//     named an existing one) and were acknowledged.
//   - grey_events_dead_lettered_total{source,reason}: messages sent to the
//     dead-letter destination, by Reason.
//   - grey_events_retried_total{source,reason}: messages given back or
//     submitted again (quota: backpressure; unavailable: no leader).
//   - grey_events_published_total{sink,kind}: events the broker confirmed.
//   - grey_events_publish_errors_total{sink}: failed publish calls.
//   - grey_events_publish_seconds{sink}: time of one publish call.
//   - grey_events_consumer_lag_messages{source,tenant}: messages published
//     to the tenant's source and not yet acknowledged.
//   - grey_events_paused_tenants{source}: tenants paused by backpressure.
//   - grey_events_lifecycle_dropped_total{sink}: non-terminal lifecycle
//     events left out (queue full, or the broker refused them too long).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grey_events_consumed_total",
			Help: "Messages taken from an event source that became a task (or named an existing one) and were acknowledged."}, []string{"source"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grey_events_dead_lettered_total",
			Help: "Messages of an event source sent to its dead-letter destination, by reason."}, []string{"source", "reason"}),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grey_events_retried_total",
			Help: "Messages of an event source given back or submitted again, by reason (quota, unavailable)."}, []string{"source", "reason"}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grey_events_published_total",
			Help: "Events an event sink's broker confirmed, by kind (result, lifecycle); a re-published event counts again."}, []string{"sink", "kind"}),
		publishErr: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grey_events_publish_errors_total",
			Help: "Failed publish calls of an event sink."}, []string{"sink"}),
		publishSecs: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "grey_events_publish_seconds",
			Help: "Time of one publish call of an event sink, until the broker confirmed every event.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)}, []string{"sink"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "grey_events_consumer_lag_messages",
			Help: "Messages published to a tenant's event source and not yet acknowledged (as the broker tells; set on the leader)."}, []string{"source", "tenant"}),
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "grey_events_paused_tenants",
			Help: "Tenants whose messages an event source holds back because their quota refuses submissions."}, []string{"source"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grey_events_lifecycle_dropped_total",
			Help: "Non-terminal lifecycle events an event sink left out (its queue was full, or the broker refused them past the retries); terminal events are never dropped."}, []string{"sink"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.consumed = register(reg, m.consumed, &err)
	m.deadLettered = register(reg, m.deadLettered, &err)
	m.retried = register(reg, m.retried, &err)
	m.published = register(reg, m.published, &err)
	m.publishErr = register(reg, m.publishErr, &err)
	m.publishSecs = register(reg, m.publishSecs, &err)
	m.lag = register(reg, m.lag, &err)
	m.paused = register(reg, m.paused, &err)
	m.dropped = register(reg, m.dropped, &err)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// its name.
func register[C prometheus.Collector](reg prometheus.Registerer, c C, errp *error) C {
	if *errp != nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		*errp = err
	}
	return c
}

func (m *Metrics) consume(source string, n int) {
	if m != nil {
		m.consumed.WithLabelValues(source).Add(float64(n))
	}
}

func (m *Metrics) deadLetter(source string, r Reason) {
	if m != nil {
		m.deadLettered.WithLabelValues(source, string(r)).Inc()
	}
}

func (m *Metrics) retry(source, reason string) {
	if m != nil {
		m.retried.WithLabelValues(source, reason).Inc()
	}
}

func (m *Metrics) setPaused(source string, n int) {
	if m != nil {
		m.paused.WithLabelValues(source).Set(float64(n))
	}
}

// setLag replaces the source's per-tenant lag series old with lag.
func (m *Metrics) setLag(source string, old, lag map[string]int64) {
	if m == nil {
		return
	}
	for t := range old {
		if _, ok := lag[t]; !ok {
			m.lag.DeleteLabelValues(source, t)
		}
	}
	for t, n := range lag {
		m.lag.WithLabelValues(source, t).Set(float64(n))
	}
}

func (m *Metrics) publish(sink string, kind EventKind, n int) {
	if m != nil && n > 0 {
		m.published.WithLabelValues(sink, string(kind)).Add(float64(n))
	}
}

func (m *Metrics) lifecycleDropped(sink string, n int) {
	if m != nil && n > 0 {
		m.dropped.WithLabelValues(sink).Add(float64(n))
	}
}

func (m *Metrics) publishFailed(sink string) {
	if m != nil {
		m.publishErr.WithLabelValues(sink).Inc()
	}
}

func (m *Metrics) publishTook(sink string, d time.Duration) {
	if m != nil {
		m.publishSecs.WithLabelValues(sink).Observe(d.Seconds())
	}
}

// Consumed returns the consumed counter of source (for tests).
func (m *Metrics) Consumed(source string) prometheus.Counter {
	return m.consumed.WithLabelValues(source)
}

// DeadLettered returns the dead-letter counter of source and reason (for
// tests).
func (m *Metrics) DeadLettered(source string, r Reason) prometheus.Counter {
	return m.deadLettered.WithLabelValues(source, string(r))
}

// Retried returns the retry counter of source and reason (for tests).
func (m *Metrics) Retried(source, reason string) prometheus.Counter {
	return m.retried.WithLabelValues(source, reason)
}

// LifecycleDropped returns grey_events_lifecycle_dropped_total of sink.
func (m *Metrics) LifecycleDropped(sink string) prometheus.Counter {
	return m.dropped.WithLabelValues(sink)
}

// Published returns the published counter of sink and kind (for tests).
func (m *Metrics) Published(sink string, kind EventKind) prometheus.Counter {
	return m.published.WithLabelValues(sink, string(kind))
}

// Families lists the metric families NewMetrics registers, sorted. The
// relay adds, per sink, grey_events_<name>_lag_tasks, _lag_seconds,
// _delivered_tasks_total, _delivery_errors_total and _delivery_seconds.
func Families() []string {
	return []string{
		"grey_events_consumed_total",
		"grey_events_consumer_lag_messages",
		"grey_events_dead_lettered_total",
		"grey_events_lifecycle_dropped_total",
		"grey_events_paused_tenants",
		"grey_events_publish_errors_total",
		"grey_events_publish_seconds",
		"grey_events_published_total",
		"grey_events_retried_total",
	}
}

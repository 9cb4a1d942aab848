package telemetry

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
)

// Observe turns one store write into task metrics; register it with
// store.Observe. It runs in the Raft apply path, after the store's lock is
// released, and only looks at the changed tasks.
//
// Transitions are read off each new task version without remembering the
// previous one, because the store's writes make them unambiguous:
//
//   - a version is new in this write only when its Index is the write's
//     (the store also lists unchanged tasks that became ready);
//   - only a submit stores a pending version          → submitted (or a
//     failed one, stamped with its creation time, when a parent had
//     already failed);
//   - only a failed attempt with a retry stores retrying → retry;
//   - a terminal version is stored exactly once       → completed, failed
//     (by the error code) or cancelled, with the final attempt's run time.
//
// The one thing that needs memory is the queue wait (creation → first
// start): a leased task that has never started is remembered until a
// version shows its first start, and forgotten when it ends or is removed.
//
// While a cluster source is set and this server does not lead, nothing is
// recorded (the leader counts every replicated event once).
func (m *Metrics) Observe(c state.Change) {
	if len(c.Tasks) == 0 && len(c.Removed) == 0 {
		return
	}
	m.obsMu.Lock()
	defer m.obsMu.Unlock()
	if !m.recording() {
		if len(m.unstarted) > 0 {
			clear(m.unstarted)
		}
		return
	}
	for _, t := range c.Tasks {
		if t.Index != c.Index {
			continue // listed because it became ready, not changed
		}
		m.observeTask(t)
	}
	for _, t := range c.Removed {
		delete(m.unstarted, t.ID)
	}
}

func (m *Metrics) observeTask(t *task.Task) {
	s := m.seriesFor(t)
	switch t.Status {
	case task.Pending:
		s.submitted.Inc()
	case task.Leased:
		if firstStart(t) == nil {
			m.unstarted[t.ID] = struct{}{}
		}
	case task.Retrying:
		s.retries.Inc()
	case task.Completed:
		s.completed.Inc()
		observeRun(s, t)
	case task.Failed:
		if len(t.Attempts) == 0 && t.UpdatedAt.Equal(t.CreatedAt) {
			// Failed in its own submit (a parent had already failed): the
			// write stored only this version.
			s.submitted.Inc()
		}
		m.failedFor(s, t).Inc()
		observeRun(s, t)
	case task.Cancelled:
		s.cancelled.Inc()
	}
	if _, ok := m.unstarted[t.ID]; ok {
		if at := firstStart(t); at != nil {
			s.queueWait.Observe(nonNegative(at.Sub(t.CreatedAt)))
			delete(m.unstarted, t.ID)
		} else if t.Status.Terminal() {
			delete(m.unstarted, t.ID)
		}
	}
}

// observeRun records the final attempt's run time, if it started.
func observeRun(s *taskSeries, t *task.Task) {
	if n := len(t.Attempts); n > 0 {
		a := &t.Attempts[n-1]
		if a.StartedAt != nil && a.FinishedAt != nil {
			s.duration.Observe(nonNegative(a.FinishedAt.Sub(*a.StartedAt)))
		}
	}
}

// firstStart is the start of the task's first attempt that started.
func firstStart(t *task.Task) *time.Time {
	for i := range t.Attempts {
		if at := t.Attempts[i].StartedAt; at != nil {
			return at
		}
	}
	return nil
}

func nonNegative(d time.Duration) float64 {
	if d < 0 {
		return 0
	}
	return d.Seconds()
}

// seriesFor returns the cached children of t's (tenant, kind); callers hold
// obsMu.
func (m *Metrics) seriesFor(t *task.Task) *taskSeries {
	k := seriesKey{m.tenantLabel(t.TenantID), t.Kind}
	s := m.series[k]
	if s == nil {
		s = &taskSeries{
			submitted: m.submitted.WithLabelValues(k.tenant, k.kind),
			completed: m.completed.WithLabelValues(k.tenant, k.kind),
			cancelled: m.cancelled.WithLabelValues(k.tenant, k.kind),
			retries:   m.retries.WithLabelValues(k.tenant, k.kind),
			duration:  m.duration.WithLabelValues(k.tenant, k.kind),
			queueWait: m.queueWait.WithLabelValues(k.tenant, k.kind),
			failed:    make(map[string]prometheus.Counter),
		}
		m.series[k] = s
	}
	return s
}

// failedFor returns the failed counter for t's error code (bounded).
func (m *Metrics) failedFor(s *taskSeries, t *task.Task) prometheus.Counter {
	reason := Other
	if t.Error != nil && m.failReason[t.Error.Code] {
		reason = t.Error.Code
	}
	c := s.failed[reason]
	if c == nil {
		tenant, kind := m.tenantLabel(t.TenantID), t.Kind
		c = m.failed.WithLabelValues(tenant, kind, reason)
		s.failed[reason] = c
	}
	return c
}

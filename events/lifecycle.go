package events

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
)

// LifecycleSet is the set of task statuses whose transitions a sink
// publishes as lifecycle events (the events.<driver>.lifecycle setting).
// The zero value is the terminal statuses.
//
// Terminal transitions (completed, failed, cancelled) come from the
// relay's replicated cursor, like results: at least once, never skipped.
// Non-terminal ones (pending, leased, running, retrying) come from the
// leader's stream of state changes: published in Raft order once each
// while one leader lasts, but best effort: those in flight when the
// leader changes, or beyond the queue when the broker is down for long,
// are left out (grey_events_lifecycle_dropped_total counts them). A
// consumer deduplicates them by (task id, attempt, status).
type LifecycleSet uint16

// statusBit numbers the statuses of task.Statuses.
func statusBit(s task.Status) LifecycleSet {
	for i, v := range task.Statuses {
		if v == s {
			return 1 << i
		}
	}
	return 0
}

// terminalSet is the terminal statuses of task.Statuses.
func terminalSet() LifecycleSet {
	var l LifecycleSet
	for _, s := range task.Statuses {
		if s.Terminal() {
			l |= statusBit(s)
		}
	}
	return l
}

// allSet is every status of task.Statuses.
func allSet() LifecycleSet { return 1<<len(task.Statuses) - 1 }

// ParseLifecycle parses the lifecycle setting: "terminal" (the default,
// also for an empty list), "all", or task statuses (pending, leased,
// running, retrying, completed, failed, cancelled), in any mix.
func ParseLifecycle(words []string) (LifecycleSet, error) {
	var l LifecycleSet
	for _, w := range words {
		w = strings.ToLower(strings.TrimSpace(w))
		switch w {
		case "terminal":
			l |= terminalSet()
		case "all":
			l |= allSet()
		default:
			b := statusBit(task.Status(w))
			if b == 0 {
				return 0, fmt.Errorf("lifecycle %q: want terminal, all or a task status (%s)", w, statusList())
			}
			l |= b
		}
	}
	if l == 0 {
		l = terminalSet()
	}
	return l, nil
}

func statusList() string {
	s := make([]string, len(task.Statuses))
	for i, v := range task.Statuses {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

func (l LifecycleSet) set() LifecycleSet {
	if l == 0 {
		return terminalSet()
	}
	return l
}

// Has reports whether transitions to s are published.
func (l LifecycleSet) Has(s task.Status) bool { return l.set()&statusBit(s) != 0 }

// NonTerminal reports whether any non-terminal status is in the set.
func (l LifecycleSet) NonTerminal() bool { return l.set()&^terminalSet() != 0 }

// String lists the statuses ("completed,failed,cancelled").
func (l LifecycleSet) String() string {
	var out []string
	for _, s := range task.Statuses {
		if l.Has(s) {
			out = append(out, string(s))
		}
	}
	return strings.Join(out, ",")
}

// TransitionEvent returns the lifecycle event of t's current status
// ("task.<status>", with the grey-event header), whatever the status.
func TransitionEvent(t *task.Task) (Event, error) {
	e, _, err := appendLifecycleEvent(nil, t)
	return e, err
}

// transitionKey is what a task's last published non-terminal event was.
type transitionKey struct {
	status  task.Status
	attempt int
}

// Observe implements the relay's change observer: on the leader, every
// state change passes here, in Raft order. Transitions to a non-terminal
// status of PublisherOptions.Lifecycle are queued for RunChanges (terminal ones
// come through Deliver); it never blocks (a full queue drops, counted).
func (p *Publisher) Observe(c state.Change) {
	if p.opts.NoLifecycle || !p.opts.Lifecycle.NonTerminal() {
		return
	}
	p.chMu.Lock()
	defer p.chMu.Unlock()
	dropped := 0
	for _, t := range c.Tasks {
		if t == nil {
			continue
		}
		if t.Status.Terminal() {
			delete(p.last, t.ID)
			continue
		}
		if !p.opts.Lifecycle.Has(t.Status) {
			continue
		}
		k := transitionKey{t.Status, t.Attempt}
		if p.last[t.ID] == k {
			continue // same status again (a heartbeat, a progress report)
		}
		p.last[t.ID] = k
		select {
		case p.changes <- t:
		default:
			dropped++
		}
	}
	if dropped > 0 {
		p.opts.Metrics.lifecycleDropped(p.opts.Name, dropped)
		p.dropped += dropped
	}
}

// RunChanges publishes the queued non-terminal lifecycle events until ctx
// ends (run it while this node leads, with the relay). A batch the broker
// keeps refusing past MaxTries is dropped (counted): these events are
// best effort, and holding them would hold every later one.
func (p *Publisher) RunChanges(ctx context.Context) {
	if p.opts.NoLifecycle || !p.opts.Lifecycle.NonTerminal() {
		return
	}
	defer func() {
		// the next leader starts afresh: what it sees again it publishes
		p.chMu.Lock()
		clear(p.last)
		p.chMu.Unlock()
	}()
	const maxBatch = 500
	batch := make([]*task.Task, 0, maxBatch)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return
		case t := <-p.changes:
			batch = append(batch, t)
		}
		// take what else is queued, without waiting
	more:
		for len(batch) < maxBatch {
			select {
			case t := <-p.changes:
				batch = append(batch, t)
			default:
				break more
			}
		}
		evs := make([]Event, 0, len(batch))
		for _, t := range batch {
			ev, err := TransitionEvent(t)
			if err != nil {
				p.opts.Logger.Warn("encoding a lifecycle event failed", "sink", p.opts.Name, "task", t.ID, "err", err)
				continue
			}
			evs = append(evs, ev)
		}
		if err := p.publishChanges(ctx, evs); err != nil {
			if ctx.Err() != nil {
				return
			}
			p.opts.Metrics.lifecycleDropped(p.opts.Name, len(evs))
			p.chMu.Lock()
			p.dropped += len(evs)
			p.chMu.Unlock()
			p.opts.Logger.Warn("non-terminal lifecycle events dropped", "sink", p.opts.Name, "events", len(evs), "err", err)
		}
	}
}

func (p *Publisher) publishChanges(ctx context.Context, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	d, err := p.driver(ctx)
	if err != nil {
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
		}
		return struct{}{}, err
	}, backoff.WithBackOff(eb), backoff.WithMaxTries(p.opts.MaxTries))
	if err == nil {
		p.opts.Metrics.publish(p.opts.Name, Lifecycle, len(evs))
	}
	return err
}

package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/events/eventstest"
	"github.com/grey-distributed/grey/events/memevents"
	"github.com/grey-distributed/grey/relay"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
)

var _ relay.ChangeSink = (*events.Publisher)(nil)

func TestParseLifecycle(t *testing.T) {
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{nil, "completed,failed,cancelled"},
		{[]string{"terminal"}, "completed,failed,cancelled"},
		{[]string{"all"}, "pending,leased,running,retrying,completed,failed,cancelled"},
		{[]string{"running", "Retrying "}, "running,retrying"},
		{[]string{"leased", "terminal"}, "leased,completed,failed,cancelled"},
	} {
		l, err := events.ParseLifecycle(tc.words)
		if err != nil {
			t.Fatalf("%v: %v", tc.words, err)
		}
		if l.String() != tc.want {
			t.Errorf("%v: %s, want %s", tc.words, l, tc.want)
		}
	}
	for _, bad := range [][]string{{"started"}, {"terminal", ""}, {"done"}} {
		if _, err := events.ParseLifecycle(bad); err == nil || !strings.Contains(err.Error(), "want terminal, all or a task status") {
			t.Errorf("%q: %v, want an error naming the words", bad, err)
		}
	}
	var zero events.LifecycleSet
	if zero.NonTerminal() || !zero.Has(task.Failed) || zero.Has(task.Running) {
		t.Errorf("zero set %s: want the terminal statuses", zero)
	}
	// config validates the words without importing task: same list
	want := append([]string{"terminal", "all"}, func() (s []string) {
		for _, v := range task.Statuses {
			s = append(s, string(v))
		}
		return s
	}()...)
	if !slices.Equal(config.LifecycleWords, want) {
		t.Errorf("config.LifecycleWords %v, want %v", config.LifecycleWords, want)
	}
}

// life is one task's life as the state store's changes show it.
func life(tenant string) []*task.Task {
	base := eventstest.FinishedTask(tenant, 0, task.Completed)
	at := func(s task.Status, attempt int) *task.Task {
		c := base.Clone()
		c.Status, c.Attempt = s, attempt
		if !s.Terminal() {
			c.FinishedAt = nil
		}
		return c
	}
	return []*task.Task{at(task.Pending, 0), at(task.Leased, 1), at(task.Running, 1), at(task.Running, 1) /* heartbeat */, at(task.Retrying, 1),
		at(task.Leased, 2), at(task.Running, 2), at(task.Completed, 2)}
}

func lifecycleSeen(t *testing.T, b *memevents.Broker, tenant string, want int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for b.Count(events.Lifecycle, tenant) < want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	var out []string
	for _, e := range b.Published(events.Lifecycle, tenant) {
		var body events.LifecycleBody
		if err := json.Unmarshal(e.Value, &body); err != nil {
			t.Fatal(err)
		}
		if body.Type != "task."+string(body.Status) || e.Headers[events.HeaderEvent] != string(body.Status) || e.Headers[events.HeaderAttempt] != fmt.Sprint(body.Attempt) {
			t.Errorf("lifecycle event %+v body %+v", e, body)
		}
		out = append(out, fmt.Sprintf("%s/%d", body.Status, body.Attempt))
	}
	return out
}

func TestPublisherNonTerminalLifecycle(t *testing.T) {
	for _, tc := range []struct {
		name  string
		words []string
		want  []string
	}{
		{"default", nil, []string{"completed/2"}},
		{"all", []string{"all"}, []string{"pending/0", "leased/1", "running/1", "retrying/1", "leased/2", "running/2", "completed/2"}},
		{"running only", []string{"running"}, []string{"running/1", "running/2"}},
		{"retrying and terminal", []string{"retrying", "terminal"}, []string{"retrying/1", "completed/2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := memevents.New()
			sink, _ := b.OpenSink()
			set, err := events.ParseLifecycle(tc.words)
			if err != nil {
				t.Fatal(err)
			}
			m, _ := events.NewMetrics(prometheus.NewRegistry())
			p, err := events.NewPublisher(sink, events.PublisherOptions{Name: "mem", Lifecycle: set, Metrics: m})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); p.RunChanges(ctx) }()
			defer func() { cancel(); <-done }()
			tasks := life("acme")
			for i, tk := range tasks {
				p.Observe(state.Change{Index: uint64(i + 1), Tasks: []*task.Task{tk}})
				if tk.Status.Terminal() {
					// terminal transitions come through the relay's cursor
					if err := p.Deliver(ctx, state.FeedBatch{Tasks: []*task.Task{tk}, Through: uint64(i + 1)}); err != nil {
						t.Fatal(err)
					}
				} else {
					time.Sleep(2 * time.Millisecond) // in order: one RunChanges batch at a time
				}
			}
			got := lifecycleSeen(t, b, "acme", len(tc.want))
			// non-terminal events and the terminal one travel apart: compare
			// as sets, and the non-terminal ones in order
			if !slices.Equal(sorted(got), sorted(tc.want)) {
				t.Fatalf("lifecycle events %v, want %v", got, tc.want)
			}
			if n := b.Count(events.Result, "acme"); n != 1 {
				t.Errorf("%d results, want 1 (whatever the lifecycle set)", n)
			}
			if st := p.Status(); st.Lifecycle == "" || st.LifecycleDropped != 0 {
				t.Errorf("status %+v", st)
			}
		})
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestPublisherLifecycleQueueFull: Observe never blocks the apply path; a
// full queue drops non-terminal events and counts them.
func TestPublisherLifecycleQueueFull(t *testing.T) {
	b := memevents.New()
	sink, _ := b.OpenSink()
	set, _ := events.ParseLifecycle([]string{"all"})
	reg := prometheus.NewRegistry()
	m, _ := events.NewMetrics(reg)
	p, err := events.NewPublisher(sink, events.PublisherOptions{Name: "mem", Lifecycle: set, Metrics: m, MaxQueuedChanges: 3})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := range 10 { // no RunChanges: nothing drains
		tk := eventstest.FinishedTask("acme", i, task.Running)
		p.Observe(state.Change{Index: uint64(i + 1), Tasks: []*task.Task{tk}})
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Observe blocked %v", d)
	}
	if st := p.Status(); st.LifecycleDropped != 7 {
		t.Fatalf("dropped %d, want 7", st.LifecycleDropped)
	}
	if n := testutil.ToFloat64(m.LifecycleDropped("mem")); n != 7 {
		t.Fatalf("grey_events_lifecycle_dropped_total %v, want 7", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.RunChanges(ctx) }()
	if got := lifecycleSeen(t, b, "acme", 3); len(got) != 3 {
		t.Errorf("published %v, want the 3 queued", got)
	}
	cancel()
	<-done
}

// TestPublisherLifecycleOff: with NoLifecycle or the default set, Observe
// queues nothing and RunChanges returns at once.
func TestPublisherLifecycleOff(t *testing.T) {
	b := memevents.New()
	sink, _ := b.OpenSink()
	all, _ := events.ParseLifecycle([]string{"all"})
	for _, o := range []events.PublisherOptions{{Name: "a"}, {Name: "b", Lifecycle: all, NoLifecycle: true}} {
		p, err := events.NewPublisher(sink, o)
		if err != nil {
			t.Fatal(err)
		}
		p.Observe(state.Change{Index: 1, Tasks: []*task.Task{eventstest.FinishedTask("acme", 0, task.Running)}})
		done := make(chan struct{})
		go func() { defer close(done); p.RunChanges(context.Background()) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: RunChanges does not return without non-terminal statuses", o.Name)
		}
	}
	if n := b.Count(events.Lifecycle, "acme"); n != 0 {
		t.Fatalf("%d lifecycle events published", n)
	}
}

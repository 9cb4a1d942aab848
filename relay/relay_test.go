package relay_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grey-distributed/grey/cluster"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/relay"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/tenant"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// leader opens a one-server cluster and waits until it leads.
func leader(t *testing.T) (*cluster.Node, *state.Store) { return greytest.Leader(t) }

// finish submits n tasks of tenant and completes them through Raft, each
// completion its own command (so each finishes at its own index), and
// returns their ids in finishing order.
func finish(t *testing.T, n *cluster.Node, tenantID string, first, count int) []string {
	t.Helper()
	ctx := context.Background()
	var ids []string
	for i := first; i < first+count; i++ {
		id := fmt.Sprintf("01900000-0000-7000-8000-%012d", i)
		tk := &task.Task{ID: id, TenantID: tenantID, Spec: task.Spec{Kind: "noop", Type: task.Stateless}, Status: task.Pending, CreatedAt: t0}
		if _, err := cluster.Apply(ctx, n, cluster.Submit(&state.SubmitRequest{Now: t0, AutoCreate: &tenant.Tenant{ID: tenantID}, Tasks: []*task.Task{tk}})); err != nil {
			t.Fatal(err)
		}
		ref := state.Ref{TaskID: id, Attempt: 1}
		if _, err := cluster.Apply(ctx, n, cluster.Lease(&state.LeaseRequest{Now: t0, WorkerID: "w1", Deadline: t0.Add(time.Minute), Items: []state.Ref{ref}})); err != nil {
			t.Fatal(err)
		}
		if _, err := cluster.Apply(ctx, n, cluster.Complete(&state.CompleteRequest{Now: t0, WorkerID: "w1", Items: []state.CompleteItem{{Ref: ref, At: t0}}})); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// sink records what it was given; while failing is set it refuses.
type sink struct {
	name string
	mu   sync.Mutex
	got  [][]*task.Task
	fail error
	seen map[string]int
}

func newSink(name string) *sink { return &sink{name: name, seen: map[string]int{}} }

func (s *sink) Name() string { return s.name }

func (s *sink) Deliver(_ context.Context, b state.FeedBatch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.got = append(s.got, b.Tasks)
	for _, tk := range b.Tasks {
		s.seen[tk.ID]++
	}
	return nil
}

func (s *sink) setFail(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

// delivered returns the ids delivered, in delivery order, and the largest
// batch.
func (s *sink) delivered() (ids []string, largest int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.got {
		largest = max(largest, len(b))
		for _, tk := range b {
			ids = append(ids, tk.ID)
		}
	}
	return ids, largest
}

func run(t *testing.T, r *relay.Relay) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	return func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
	}
}

// Tasks reach every sink in Raft order, in batches no larger than
// BatchSize; each sink's cursor is replicated through the last index and
// its backlog is zero.
func TestDeliversInRaftOrderAndAcknowledges(t *testing.T) {
	t.Parallel()
	n, st := leader(t)
	a, b := newSink("archive"), newSink("events")
	reg := prometheus.NewRegistry()
	r, err := relay.New(relay.Config{BatchSize: 7, Linger: 5 * time.Millisecond, Registerer: reg}, n, st, a, b)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Names(); len(got) != 2 || got[0] != "archive" || got[1] != "events" {
		t.Fatalf("names %v", got)
	}
	stop := run(t, r)
	defer stop()
	want := finish(t, n, "acme", 1, 30)
	for _, s := range []*sink{a, b} {
		greytest.Eventually(t, 10*time.Second, func() bool { ids, _ := s.delivered(); return len(ids) >= len(want) })
		greytest.Eventually(t, 10*time.Second, func() bool { return st.Sink(s.name).Backlog == 0 })
		ids, largest := s.delivered()
		if fmt.Sprint(ids) != fmt.Sprint(want) {
			t.Errorf("%s got %v, want %v", s.name, ids, want)
		}
		if largest > 7 {
			t.Errorf("%s got a batch of %d, BatchSize is 7", s.name, largest)
		}
		ss := st.Sink(s.name)
		last, err := st.Get("acme", want[len(want)-1])
		if err != nil {
			t.Fatal(err)
		}
		if !ss.Known || ss.Cursor < last.Index {
			t.Errorf("%s cursor %+v, want through index %d", s.name, ss, last.Index)
		}
	}
	// The counter moves just after the acknowledgement commits, so it may
	// trail the store's backlog by a moment; it must settle at exactly 30.
	greytest.Eventually(t, 10*time.Second, func() bool { return sum(t, reg, "grey_archive_delivered_tasks_total") >= 30 })
	if got := sum(t, reg, "grey_archive_delivered_tasks_total"); got != 30 {
		t.Errorf("grey_archive_delivered_tasks_total = %v, want 30", got)
	}
}

// A failing sink is retried with backoff without holding the others back;
// its failures show in Status and the error counter; once it answers it
// gets everything, and its backlog drains.
func TestFailingSinkRetriesAlone(t *testing.T) {
	t.Parallel()
	n, st := leader(t)
	good, bad := newSink("good"), newSink("bad")
	bad.setFail(errors.New("connection refused"))
	reg := prometheus.NewRegistry()
	r, err := relay.New(relay.Config{Linger: 5 * time.Millisecond, MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, Registerer: reg}, n, st, good, bad)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, r)
	defer stop()
	want := finish(t, n, "acme", 1, 10)
	greytest.Eventually(t, 10*time.Second, func() bool { return st.Sink("good").Known && st.Sink("good").Backlog == 0 })
	greytest.Eventually(t, 10*time.Second, func() bool {
		for _, s := range r.Status() {
			if s.Name == "bad" && s.Failures >= 2 && s.Backlog == 10 && s.LastError != "" {
				return true
			}
		}
		return false
	})
	if ids, _ := bad.delivered(); len(ids) != 0 {
		t.Fatalf("the failing sink recorded %v", ids)
	}
	bad.setFail(nil)
	greytest.Eventually(t, 10*time.Second, func() bool { return st.Sink("bad").Backlog == 0 })
	ids, _ := bad.delivered()
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Errorf("after recovery got %v, want %v", ids, want)
	}
	// The relay records its own success just after the acknowledgement
	// commits, so the store's backlog can reach zero a moment before
	// Status shows the recovery.
	recovered := func() (relay.Status, bool) {
		for _, s := range r.Status() {
			if s.Name == "bad" {
				return s, s.Failures == 0 && !s.LastDelivery.IsZero()
			}
		}
		return relay.Status{}, false
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		s, ok := recovered()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status after recovery %+v", s)
		}
	}
	if got := sum(t, reg, "grey_bad_delivery_errors_total"); got < 2 {
		t.Errorf("grey_bad_delivery_errors_total = %v, want >= 2", got)
	}
}

// A relay that stops (leadership lost) and runs again resumes from the
// replicated cursor: what was acknowledged is not delivered again.
func TestResumesFromCursor(t *testing.T) {
	t.Parallel()
	n, st := leader(t)
	s := newSink("archive")
	r, err := relay.New(relay.Config{Linger: 5 * time.Millisecond}, n, st, s)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, r)
	first := finish(t, n, "acme", 1, 5)
	greytest.Eventually(t, 10*time.Second, func() bool { return st.Sink("archive").Known && st.Sink("archive").Backlog == 0 })
	stop()
	second := finish(t, n, "globex", 100, 5)
	if st.Sink("archive").Backlog != 5 {
		t.Fatalf("backlog while stopped %+v, want 5", st.Sink("archive"))
	}
	stop = run(t, r)
	defer stop()
	greytest.Eventually(t, 10*time.Second, func() bool { return st.Sink("archive").Backlog == 0 })
	ids, _ := s.delivered()
	if fmt.Sprint(ids) != fmt.Sprint(append(first, second...)) {
		t.Errorf("delivered %v, want each once: %v then %v", ids, first, second)
	}
	for id, c := range s.seen {
		if c != 1 {
			t.Errorf("%s delivered %d times", id, c)
		}
	}
}

// sum adds up every series of the metric family name in reg.
func sum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	found := false
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		found = true
		for _, m := range mf.GetMetric() {
			v += m.GetCounter().GetValue()
		}
	}
	if !found {
		t.Fatalf("no metric %s", name)
	}
	return v
}

// changeSink is a sink that also follows every change (relay.ChangeSink).
type changeSink struct {
	*sink
	mu       sync.Mutex
	statuses []string // "<id> <status>" in the order observed
	running  int
}

func (c *changeSink) Observe(ch state.Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tk := range ch.Tasks {
		c.statuses = append(c.statuses, tk.ID+" "+string(tk.Status))
	}
}

func (c *changeSink) RunChanges(ctx context.Context) {
	c.mu.Lock()
	c.running++
	c.mu.Unlock()
	<-ctx.Done()
	c.mu.Lock()
	c.running--
	c.mu.Unlock()
}

func (c *changeSink) seen() ([]string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.statuses...), c.running
}

// A ChangeSink sees every transition in Raft order, but only while Run
// runs (on the leader), and RunChanges runs exactly as long as Run.
func TestChangeSinkObservesOnlyWhileRunning(t *testing.T) {
	t.Parallel()
	n, st := leader(t)
	c := &changeSink{sink: newSink("events_mem")}
	r, err := relay.New(relay.Config{Linger: 5 * time.Millisecond}, n, st, c)
	if err != nil {
		t.Fatal(err)
	}
	finish(t, n, "acme", 1, 2) // before Run: not observed
	if got, _ := c.seen(); len(got) != 0 {
		t.Fatalf("observed before Run: %v", got)
	}
	stop := run(t, r)
	// Run starts observing before it calls RunChanges; wait for that, so
	// the next changes fall inside the run.
	greytest.Eventually(t, 10*time.Second, func() bool { _, running := c.seen(); return running == 1 })
	ids := finish(t, n, "acme", 3, 2)
	greytest.Eventually(t, 10*time.Second, func() bool { got, _ := c.seen(); return len(got) >= 6 })
	got, running := c.seen()
	want := []string{ids[0] + " pending", ids[0] + " leased", ids[0] + " completed", ids[1] + " pending", ids[1] + " leased", ids[1] + " completed"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("observed %v, want %v", got, want)
	}
	if running != 1 {
		t.Errorf("RunChanges running %d times during Run, want 1", running)
	}
	greytest.Eventually(t, 10*time.Second, func() bool { d, _ := c.delivered(); return len(d) == 4 })
	stop()
	if _, running := c.seen(); running != 0 {
		t.Errorf("RunChanges still running after Run returned")
	}
	finish(t, n, "acme", 5, 1) // after Run: not observed
	if got, _ := c.seen(); len(got) != 6 {
		t.Errorf("observed after Run: %v", got[6:])
	}
}

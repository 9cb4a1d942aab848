package eventstest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// RunSink runs the sink side of the suite.
func RunSink(t *testing.T, h SinkHarness) {
	if h.Open == nil || h.Read == nil {
		t.Fatal("eventstest: SinkHarness needs Open and Read")
	}
	t.Run("ResultsAndLifecycle", func(t *testing.T) { testPublish(t, h) })
	t.Run("NonTerminalLifecycle", func(t *testing.T) { testTransitions(t, h) })
	t.Run("TenantsApart", func(t *testing.T) { testSinkTenants(t, h) })
	t.Run("RepublishAllowed", func(t *testing.T) { testRepublish(t, h) })
	t.Run("LargeBatch", func(t *testing.T) { testLargePublish(t, h) })
	t.Run("Empty", func(t *testing.T) { testEmptyPublish(t, h) })
	t.Run("ContextCancelled", func(t *testing.T) { testPublishCancel(t, h) })
	t.Run("Unreachable", func(t *testing.T) { testSinkUnreachable(t, h) })
}

func openSink(t testing.TB, h SinkHarness) events.SinkDriver {
	t.Helper()
	d := h.Open(t)
	if d == nil {
		t.Fatal("eventstest: the harness returned a nil sink driver")
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

// FinishedTask returns a finished task of tenant for publishing tests.
func FinishedTask(tenant string, i int, status task.Status) *task.Task {
	id, err := task.NewID()
	if err != nil {
		panic(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	t := &task.Task{ID: id, TenantID: tenant, Spec: task.Spec{Kind: "noop", IdempotencyKey: fmt.Sprintf("mem:grey.tasks.%s/%d", tenant, i),
		Headers: map[string]string{"traceparent": traceparent}},
		Status: status, Attempt: 1 + i%3, CreatedAt: now, UpdatedAt: now, FinishedAt: &now}
	switch status {
	case task.Completed:
		t.Result = fmt.Appendf(nil, `{"n":%d}`, i)
	case task.Failed:
		t.Error = &task.Error{Message: "boom", Code: "executor"}
	}
	return t
}

// taskEvents returns the events of n finished tasks of tenant.
func taskEvents(t testing.TB, tenant string, n int) (results, lifecycle []events.Event) {
	for i := range n {
		st := []task.Status{task.Completed, task.Failed, task.Cancelled}[i%3]
		r, l, err := events.TaskEvents(FinishedTask(tenant, i, st))
		if err != nil {
			t.Fatal(err)
		}
		results, lifecycle = append(results, r), append(lifecycle, l)
	}
	return results, lifecycle
}

func checkEvents(t testing.TB, what string, got, want []events.Event) {
	t.Helper()
	byKey := map[string]events.Event{}
	for _, e := range got {
		byKey[e.Key] = e
	}
	if len(byKey) != len(want) {
		t.Fatalf("%s: %d distinct events read back, want %d", what, len(byKey), len(want))
	}
	for _, w := range want {
		g, ok := byKey[w.Key]
		if !ok {
			t.Fatalf("%s: event of task %s not read back", what, w.Key)
		}
		if g.Tenant != "" && g.Tenant != w.Tenant {
			t.Errorf("%s: task %s read back from tenant %q, want %q", what, w.Key, g.Tenant, w.Tenant)
		}
		if !bytes.Equal(g.Value, w.Value) {
			t.Errorf("%s: task %s body %s, want %s", what, w.Key, g.Value, w.Value)
		}
		for _, k := range []string{events.HeaderTenant, events.HeaderTaskID, events.HeaderAttempt, events.HeaderTraceparent} {
			if g.Headers[k] != w.Headers[k] {
				t.Errorf("%s: task %s header %s = %q, want %q", what, w.Key, k, g.Headers[k], w.Headers[k])
			}
		}
		if _, err := strconv.Atoi(g.Headers[events.HeaderAttempt]); err != nil {
			t.Errorf("%s: header %s = %q is not a number", what, events.HeaderAttempt, g.Headers[events.HeaderAttempt])
		}
	}
}

func testPublish(t *testing.T, h SinkHarness) {
	a := Tenant("pub")
	d := openSink(t, h)
	res, life := taskEvents(t, a, 3)
	evs := append(append([]events.Event(nil), res...), life...)
	if err := d.Publish(ctx(t, h.timeout()), evs); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	checkEvents(t, "results", h.Read(t, events.Result, a, 3), res)
	checkEvents(t, "lifecycle", h.Read(t, events.Lifecycle, a, 3), life)
}

// testTransitions publishes the lifecycle events of tasks that are not
// finished (leased, running, retrying: events.TransitionEvent) and reads
// each back, told apart by grey-event and grey-attempt.
func testTransitions(t *testing.T, h SinkHarness) {
	a := Tenant("life")
	d := openSink(t, h)
	var evs []events.Event
	want := map[string]bool{}
	for i := range 2 {
		tk := FinishedTask(a, i, task.Completed)
		for _, st := range []struct {
			s task.Status
			n int
		}{{task.Pending, 0}, {task.Leased, 1}, {task.Running, 1}, {task.Retrying, 1}, {task.Leased, 2}} {
			c := tk.Clone()
			c.Status, c.Attempt, c.FinishedAt, c.Result = st.s, st.n, nil, nil
			ev, err := events.TransitionEvent(c)
			if err != nil {
				t.Fatal(err)
			}
			evs = append(evs, ev)
			want[fmt.Sprintf("%s %s %d", c.ID, st.s, st.n)] = true
		}
	}
	if err := d.Publish(ctx(t, h.timeout()), evs); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	got := map[string]bool{}
	for _, g := range h.Read(t, events.Lifecycle, a, len(evs)) {
		var body events.LifecycleBody
		if err := json.Unmarshal(g.Value, &body); err != nil {
			t.Fatalf("lifecycle body %q: %v", g.Value, err)
		}
		if body.Type != "task."+string(body.Status) || g.Headers[events.HeaderEvent] != string(body.Status) ||
			g.Headers[events.HeaderAttempt] != strconv.Itoa(body.Attempt) || g.Headers[events.HeaderTaskID] != body.TaskID || body.TenantID != a {
			t.Errorf("lifecycle event: headers %v, body %+v", g.Headers, body)
		}
		got[fmt.Sprintf("%s %s %d", body.TaskID, body.Status, body.Attempt)] = true
	}
	for k := range want {
		if !got[k] {
			t.Errorf("transition %s not read back (read %d distinct)", k, len(got))
		}
	}
}

func testSinkTenants(t *testing.T, h SinkHarness) {
	a, b := Tenant("puba"), Tenant("pubb")
	d := openSink(t, h)
	ra, _ := taskEvents(t, a, 2)
	rb, _ := taskEvents(t, b, 1)
	if err := d.Publish(ctx(t, h.timeout()), append(append([]events.Event(nil), ra...), rb...)); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	checkEvents(t, a+" results", h.Read(t, events.Result, a, 2), ra)
	gotB := h.Read(t, events.Result, b, 1)
	checkEvents(t, b+" results", gotB, rb)
	for _, e := range gotB {
		if e.Headers[events.HeaderTenant] != b {
			t.Errorf("tenant %s's results hold an event of %q", b, e.Headers[events.HeaderTenant])
		}
	}
}

func testRepublish(t *testing.T, h SinkHarness) {
	a := Tenant("repub")
	d := openSink(t, h)
	res, _ := taskEvents(t, a, 2)
	for i := range 2 {
		if err := d.Publish(ctx(t, h.timeout()), res); err != nil {
			t.Fatalf("Publish #%d of the same events: %v", i+1, err)
		}
	}
	got := h.Read(t, events.Result, a, 4)
	if len(got) < 2 {
		t.Fatalf("read %d results, want ≥ 2", len(got))
	}
	// Consumers deduplicate by (task id, attempt).
	seen := map[string]bool{}
	for _, e := range got {
		seen[e.Headers[events.HeaderTaskID]+"/"+e.Headers[events.HeaderAttempt]] = true
	}
	if len(seen) != 2 {
		t.Fatalf("deduplicated by (task id, attempt): %d results, want 2", len(seen))
	}
}

func testLargePublish(t *testing.T, h SinkHarness) {
	a := Tenant("bulk")
	d := openSink(t, h)
	res, life := taskEvents(t, a, 500)
	if err := d.Publish(ctx(t, h.timeout()), append(append([]events.Event(nil), res...), life...)); err != nil {
		t.Fatalf("Publish of 1000 events: %v", err)
	}
	checkEvents(t, "results", h.Read(t, events.Result, a, 500), res)
}

func testEmptyPublish(t *testing.T, h SinkHarness) {
	d := openSink(t, h)
	if err := d.Publish(ctx(t, h.timeout()), nil); err != nil {
		t.Fatalf("Publish of no events: %v", err)
	}
}

func testPublishCancel(t *testing.T, h SinkHarness) {
	a := Tenant("pubcancel")
	d := openSink(t, h)
	res, _ := taskEvents(t, a, 1)
	c, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() { done <- d.Publish(c, res) }()
	select {
	case err := <-done:
		if err == nil {
			// A driver may have written before it looked at ctx: allowed,
			// the event is then there.
			if got := h.Read(t, events.Result, a, 1); len(got) != 1 {
				t.Fatalf("Publish with a cancelled context returned nil but published %d events", len(got))
			}
		}
	case <-time.After(h.timeout()):
		t.Fatal("Publish with a cancelled context did not return")
	}
}

func testSinkUnreachable(t *testing.T, h SinkHarness) {
	if h.Unreachable == nil {
		t.Skip("the harness has no unreachable broker")
	}
	d, err := h.Unreachable(t)
	if err != nil {
		if !greyerr.Is(err, greyerr.Unavailable) {
			t.Fatalf("opening a sink on an unreachable broker: %v (code %s), want Unavailable", err, greyerr.CodeOf(err))
		}
		return
	}
	defer d.Close()
	res, _ := taskEvents(t, Tenant("unreach"), 1)
	c := ctx(t, h.timeout()+10*time.Second)
	err = d.Publish(c, res)
	if err == nil {
		t.Fatal("Publish to an unreachable broker succeeded")
	}
	if !greyerr.Is(err, greyerr.Unavailable) {
		t.Fatalf("Publish to an unreachable broker: %v (code %s), want Unavailable", err, greyerr.CodeOf(err))
	}
}

package state_test

import (
	"testing"
	"time"

	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
)

// The feed hands finished tasks out in Raft order; a sink's cursor and
// backlog follow its acknowledgements; GC keeps what a held sink has not
// acknowledged; a snapshot carries the cursors and a restored store
// answers the same.
func TestSinkFeedCursorAndGCHold(t *testing.T) {
	f := newFixture(t)
	for n := 1; n <= 5; n++ {
		f.submit(mk(n, "acme"))
	}
	f.submit(mk(6, "beta"))
	for n := 1; n <= 6; n++ {
		f.run(t0, n)
	}
	// Tasks 1..6 finished at increasing indexes; an unknown sink holds all.
	if st := f.s.Sink("archive"); st.Known || st.Backlog != 6 || !st.Oldest.Equal(t0) {
		t.Fatalf("unknown sink: %+v", st)
	}
	b := f.s.FeedAfter(0, 4)
	if len(b.Tasks) != 4 || b.Tasks[0].ID != tid(1) || b.Tasks[3].ID != tid(4) || b.Through != b.Tasks[3].Index {
		t.Fatalf("first batch: %d tasks through %d", len(b.Tasks), b.Through)
	}
	for i := 1; i < len(b.Tasks); i++ {
		if b.Tasks[i].Index <= b.Tasks[i-1].Index {
			t.Fatalf("feed out of Raft order at %d", i)
		}
	}
	// GC holds unacknowledged tasks for a held sink, and only for it.
	later := t0.Add(time.Hour)
	if n := f.s.GC(f.next(), &state.GCRequest{Now: later, Before: later, Hold: []string{"archive"}}); n != 0 {
		t.Fatalf("GC collected %d tasks the archive never acknowledged", n)
	}
	if err := f.s.SinkAck(f.next(), &state.SinkAckRequest{Sink: "archive", Through: b.Through}); err != nil {
		t.Fatal(err)
	}
	if st := f.s.Sink("archive"); !st.Known || st.Cursor != b.Through || st.Backlog != 2 {
		t.Fatalf("after ack: %+v", st)
	}
	// An older ack (a deposed leader's) does not move the cursor back.
	if err := f.s.SinkAck(f.next(), &state.SinkAckRequest{Sink: "archive", Through: 1}); err != nil {
		t.Fatal(err)
	}
	if st := f.s.Sink("archive"); st.Cursor != b.Through || st.Backlog != 2 {
		t.Fatalf("stale ack moved the cursor: %+v", st)
	}
	// A second sink registers at 0 and holds everything.
	if err := f.s.SinkAck(f.next(), &state.SinkAckRequest{Sink: "events", Through: 0}); err != nil {
		t.Fatal(err)
	}
	if st := f.s.Sink("events"); st.Backlog != 6 || f.s.SinkBacklog("events") != 6 {
		t.Fatalf("new sink: %+v", st)
	}
	sn := snap(t, f.s)
	if n := f.s.GC(f.next(), &state.GCRequest{Now: later, Before: later, Hold: []string{"archive"}}); n != 4 {
		t.Fatalf("GC collected %d, want the 4 acknowledged", n)
	}
	if f.s.Lookup(tid(5)) == nil || f.s.Lookup(tid(6)) == nil || f.s.Lookup(tid(1)) != nil {
		t.Fatal("GC took the wrong tasks")
	}
	// Collected tasks leave the other sink's backlog too.
	if st := f.s.Sink("events"); st.Backlog != 2 {
		t.Fatalf("events backlog after GC: %+v", st)
	}
	rest := f.s.FeedAfter(b.Through, 100)
	if len(rest.Tasks) != 2 || rest.Tasks[0].ID != tid(5) {
		t.Fatalf("rest of the feed: %d tasks", len(rest.Tasks))
	}
	if err := f.s.SinkAck(f.next(), &state.SinkAckRequest{Sink: "archive", Through: rest.Through}); err != nil {
		t.Fatal(err)
	}
	if st := f.s.Sink("archive"); st.Backlog != 0 || !st.Oldest.IsZero() || f.s.SinkBacklog("archive") != 0 {
		t.Fatalf("caught up: %+v", st)
	}
	if b := f.s.FeedAfter(rest.Through, 100); len(b.Tasks) != 0 || b.Through != 0 {
		t.Fatalf("empty feed: %+v", b)
	}
	// The snapshot taken before GC restores cursors and backlogs.
	r := restored(t, sn)
	if st := r.Sink("archive"); st.Cursor != b.Through || st.Backlog != 2 {
		t.Fatalf("restored archive sink: %+v", st)
	}
	if st := r.Sink("events"); st.Cursor != 0 || st.Backlog != 6 {
		t.Fatalf("restored events sink: %+v", st)
	}
	if got := r.FeedAfter(0, 100); len(got.Tasks) != 6 {
		t.Fatalf("restored feed has %d tasks", len(got.Tasks))
	}
}

// The tasks one Raft entry finishes are never split across batches: the
// cursor can only say "through index N" for whole indexes.
func TestFeedKeepsAnIndexWhole(t *testing.T) {
	f := newFixture(t)
	var refs []state.Ref
	var items []state.CompleteItem
	for n := 1; n <= 5; n++ {
		f.submit(mk(n, "acme"))
		refs = append(refs, ref(n, 1))
		items = append(items, state.CompleteItem{Ref: ref(n, 1), Result: []byte(`1`), At: t0})
	}
	f.lease(t0, "w1", refs...)
	f.s.Complete(f.next(), &state.CompleteRequest{Now: t0, WorkerID: "w1", Items: items})
	b := f.s.FeedAfter(0, 2)
	if len(b.Tasks) != 5 {
		t.Fatalf("a batch of max 2 split one index: %d tasks", len(b.Tasks))
	}
	for _, tk := range b.Tasks {
		if tk.Status != task.Completed || tk.Index != b.Through {
			t.Fatalf("task %s: %s at %d, through %d", tk.ID, tk.Status, tk.Index, b.Through)
		}
	}
}

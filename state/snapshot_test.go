package state_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/tenant"
)

// rich is a store holding one of everything a snapshot carries: tasks in
// every status, a dependency, a state-key queue, an idempotency key,
// tenants with quotas and usage, nodes, a signing key, a proof, an API key
// and the cluster id.
func rich(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	f.s.InitCluster(f.next(), &state.ClusterInitRequest{Now: t0, ClusterID: "c1"})
	if _, err := f.putTenant(t0, &tenant.Tenant{ID: "acme", Quota: tenant.Quota{Weight: 3, MaxQueued: 100}}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := f.register(t0, state.Node{ID: "w1", Role: "worker", KeyID: "k1", PublicKey: []byte("0123456789abcdef0123456789abcdef")}); err != nil {
		t.Fatal(err)
	}
	k, _ := newKey(t, "acme", auth.RoleWorker, t0)
	if _, err := f.s.PutAPIKey(f.next(), &state.APIKeyPutRequest{Now: t0, Key: k}); err != nil {
		t.Fatal(err)
	}
	key := func(x *task.Task) { x.StateKey = "cart"; x.Type = task.Stateful }
	f.submit(
		mk(1, "acme", func(x *task.Task) { x.Payload = json.RawMessage(`{"n":1}`); x.IdempotencyKey = "once" }),
		mk(2, "acme", func(x *task.Task) { x.DependsOn = []string{tid(1)} }),
		mk(3, "acme", key), mk(4, "acme", key),
		mk(5, "acme"), mk(6, "acme"), mk(7, "acme"), mk(8, "acme"),
	)
	f.submit(mk(9, "globex"))
	f.lease(t0, "w1", ref(1, 1), ref(3, 1), ref(5, 1), ref(6, 1), ref(7, 1), ref(8, 1))
	f.start(t0.Add(time.Second), "w1", ref(3, 1)) // 3 running, 1 leased
	f.s.Complete(f.next(), &state.CompleteRequest{Now: t0.Add(time.Minute), WorkerID: "w1", Proofs: [][]byte{[]byte(`{"envelope":1}`)},
		Items: []state.CompleteItem{{Ref: ref(5, 1), Result: json.RawMessage(`"five"`), Proof: 1, At: t0.Add(time.Minute)}}}) // 5 completed with a proof
	retryAt := t0.Add(time.Hour)
	f.fail(t0.Add(time.Minute), "w1", ref(6, 1), &retryAt) // 6 retrying
	f.fail(t0.Add(time.Minute), "w1", ref(7, 1), nil)      // 7 failed
	if _, err := f.s.Cancel(f.next(), &state.CancelRequest{Now: t0.Add(time.Minute), TenantID: "acme", TaskID: tid(8)}); err != nil {
		t.Fatal(err) // 8 cancelled; 2, 4 and 9 pending
	}
	return f
}

func snap(t *testing.T, s *state.Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := s.Snapshot().WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteTo says %d bytes, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

func restored(t *testing.T, b []byte) *state.Store {
	t.Helper()
	r := state.New()
	if err := r.Restore(bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	return r
}

// A restored store writes the same snapshot, answers every reader the
// same, and, given the same later writes, stays the same as the original:
// the derived indexes (dependencies, state-key queues, idempotency keys,
// the GC order, proof references, usage counters) are rebuilt.
func TestSnapshotRoundTrip(t *testing.T) {
	t.Parallel()
	f := rich(t)
	b := snap(t, f.s)
	r := restored(t, b)
	if !bytes.Equal(snap(t, r), b) {
		t.Fatal("the restored store writes a different snapshot")
	}
	now := t0.Add(2 * time.Hour)
	for n := 1; n <= 9; n++ {
		id := tid(n)
		if f.s.Ready(id) != r.Ready(id) || f.s.Blocked(id) != r.Blocked(id) {
			t.Errorf("task %d: ready %v/%v, blocked %q/%q", n, f.s.Ready(id), r.Ready(id), f.s.Blocked(id), r.Blocked(id))
		}
	}
	for _, ten := range []string{"acme", "globex"} {
		if f.s.Load(ten) != r.Load(ten) || f.s.UsageReport(ten, time.Time{}, time.Time{}, now) != r.UsageReport(ten, time.Time{}, time.Time{}, now) {
			t.Errorf("%s: load or usage differ after restore", ten)
		}
	}
	fc, rc := f.s.Counts(), r.Counts()
	for _, st := range task.Statuses {
		if fc[st] != rc[st] || fc[st] == 0 {
			t.Errorf("%s: %d before, %d after (want every status held)", st, fc[st], rc[st])
		}
	}
	if r.Index() != f.s.Index() || r.ClusterID() != "c1" || r.ProofCount() != 1 || r.SigningKey("k1") == nil || r.Node("w1") == nil || len(r.APIKeys("acme")) != 1 {
		t.Fatal("index, cluster id, proofs, keys, nodes or API keys lost")
	}
	if q := r.Quota("acme"); q.Weight != 3 || q.MaxQueued != 100 {
		t.Fatalf("restored quota = %+v", q)
	}
	// The same writes on both stores keep them equal.
	for _, s := range []*state.Store{f.s, r} {
		g := &fixture{t: t, s: s, idx: f.idx}
		if res := g.submit(mk(20, "acme", func(x *task.Task) { x.Payload = json.RawMessage(`{"n":1}`); x.IdempotencyKey = "once" })); res.Created[0] {
			t.Fatal("an idempotency key forgotten by the snapshot")
		}
		g.complete(t0.Add(3*time.Minute), "w1", ref(1, 1), `1`) // unblocks 2
		g.complete(t0.Add(3*time.Minute), "w1", ref(3, 1), `3`) // 4 heads the key
		g.s.GC(g.next(), &state.GCRequest{Now: now, Before: t0.Add(2 * time.Minute)})
		if !s.Ready(tid(2)) || !s.Ready(tid(4)) || s.ProofCount() != 0 {
			t.Fatalf("after the later writes: 2 ready %v, 4 ready %v, %d proofs", s.Ready(tid(2)), s.Ready(tid(4)), s.ProofCount())
		}
	}
	if !bytes.Equal(snap(t, f.s), snap(t, r)) {
		t.Fatal("the same writes on the original and the restored store gave different states")
	}
}

// A snapshot is the state when it was taken, whatever is written after.
func TestSnapshotIsPointInTime(t *testing.T) {
	t.Parallel()
	f := rich(t)
	before := snap(t, f.s)
	sn := f.s.Snapshot()
	f.submit(mk(30, "acme"))
	f.run(t0, 30)
	var buf bytes.Buffer
	if _, err := sn.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), before) {
		t.Fatal("writes after Snapshot changed it")
	}
}

// A snapshot that does not decode is refused with an error and the store
// keeps what it held.
func TestRestoreRefusesBadSnapshots(t *testing.T) {
	t.Parallel()
	f := rich(t)
	b := snap(t, f.s)
	for _, in := range []string{
		"",
		"not json",
		`{"version":99}` + "\n",
		`{"version":1,"index":5}` + "\n" + `{"task":{"id":` + "\n",
		string(b[:len(b)/2]),
	} {
		if err := f.s.Restore(bytes.NewReader([]byte(in))); err == nil {
			t.Errorf("restore of %.40q: no error", in)
		}
		if !bytes.Equal(snap(t, f.s), b) {
			t.Fatalf("a refused restore (%.40q) changed the store", in)
		}
	}
	// A good one replaces everything, the empty state included.
	if err := f.s.Restore(bytes.NewReader(snap(t, state.New()))); err != nil {
		t.Fatal(err)
	}
	if f.s.Len() != 0 || len(f.s.Tenants()) != 0 || f.s.ClusterID() != "" || f.s.ProofCount() != 0 || f.s.Node("w1") != nil {
		t.Fatal("restoring an empty snapshot left state behind")
	}
}

package state_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/tenant"
)

// The tests of this file drive tasks through the store's write methods as
// the FSM does (one call per command, increasing indexes) and read them
// back through its public readers.

// fixture is a store and its next Raft index.
type fixture struct {
	t   *testing.T
	s   *state.Store
	idx uint64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return &fixture{t: t, s: state.New()}
}

func (f *fixture) next() uint64 { f.idx++; return f.idx }

// tid is the n-th task id; ids sort (and List pages) in n's order.
func tid(n int) string { return fmt.Sprintf("01900000-0000-7000-8000-%012d", n) }

// mk is a pending task of tenant ten, changed by mods.
func mk(n int, ten string, mods ...func(*task.Task)) *task.Task {
	t := &task.Task{ID: tid(n), TenantID: ten, Spec: task.Spec{Kind: "noop"}, Status: task.Pending, CreatedAt: t0}
	for _, m := range mods {
		m(t)
	}
	return t
}

func ref(n, attempt int) state.Ref { return state.Ref{TaskID: tid(n), Attempt: attempt} }

// submitErr submits tasks of one tenant (created on demand) at now.
func (f *fixture) submitErr(now time.Time, tasks ...*task.Task) (*state.SubmitResult, error) {
	return f.s.Submit(f.next(), &state.SubmitRequest{Now: now, AutoCreate: &tenant.Tenant{ID: tasks[0].TenantID}, Tasks: tasks})
}

func (f *fixture) submit(tasks ...*task.Task) *state.SubmitResult {
	f.t.Helper()
	res, err := f.submitErr(t0, tasks...)
	if err != nil {
		f.t.Fatalf("submit: %v", err)
	}
	return res
}

func (f *fixture) lease(now time.Time, worker string, refs ...state.Ref) *state.LeaseResult {
	return f.s.Lease(f.next(), &state.LeaseRequest{Now: now, WorkerID: worker, Deadline: now.Add(time.Minute), Items: refs})
}

func (f *fixture) start(now time.Time, worker string, r state.Ref) state.Outcome {
	return f.s.Start(f.next(), &state.StartRequest{Now: now, WorkerID: worker, Items: []state.StartItem{{Ref: r, At: now}}})[0]
}

func (f *fixture) complete(now time.Time, worker string, r state.Ref, result string) state.Outcome {
	return f.s.Complete(f.next(), &state.CompleteRequest{Now: now, WorkerID: worker, Items: []state.CompleteItem{{Ref: r, Result: json.RawMessage(result), At: now}}})[0]
}

func (f *fixture) fail(now time.Time, worker string, r state.Ref, retryAt *time.Time) state.Outcome {
	return f.s.Fail(f.next(), &state.FailRequest{Now: now, WorkerID: worker, Items: []state.FailItem{{Ref: r, Error: task.Error{Message: "boom", Retryable: retryAt != nil}, RetryAt: retryAt, At: now}}})[0]
}

// run leases, starts and completes task n (attempt 1) at now.
func (f *fixture) run(now time.Time, n int) {
	f.t.Helper()
	if l := f.lease(now, "w1", ref(n, 1)); len(l.Leased) != 1 {
		f.t.Fatalf("lease %d refused", n)
	}
	if o := f.complete(now, "w1", ref(n, 1), `1`); !o.Accepted {
		f.t.Fatalf("complete %d: %s", n, o.Reason)
	}
}

func (f *fixture) get(n int) *task.Task {
	f.t.Helper()
	t := f.s.Lookup(tid(n))
	if t == nil {
		f.t.Fatalf("task %d is gone", n)
	}
	return t
}

// A submit is all or none: one bad task (a missing parent, a duplicate
// id, another tenant's task or parent) refuses the whole batch and
// stores nothing.
func TestSubmitIsAllOrNone(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.submit(mk(1, "acme"))
	f.submit(mk(2, "globex"))
	cases := []struct {
		name  string
		tasks []*task.Task
		code  greyerr.Code
		field string
	}{
		{"missing parent", []*task.Task{mk(10, "acme"), mk(11, "acme", func(x *task.Task) { x.DependsOn = []string{tid(99)} })}, greyerr.InvalidArgument, "tasks[1].depends_on"},
		{"another tenant's parent", []*task.Task{mk(10, "acme", func(x *task.Task) { x.DependsOn = []string{tid(2)} })}, greyerr.InvalidArgument, "depends_on"},
		{"existing id", []*task.Task{mk(10, "acme"), mk(1, "acme")}, greyerr.AlreadyExists, ""},
		{"duplicate id in the batch", []*task.Task{mk(10, "acme"), mk(10, "acme")}, greyerr.AlreadyExists, ""},
		{"two tenants", []*task.Task{mk(10, "acme"), mk(11, "globex")}, greyerr.InvalidArgument, "tenant"},
	}
	for _, c := range cases {
		_, err := f.submitErr(t0, c.tasks...)
		var ge *greyerr.Error
		if !greyerr.Is(err, c.code) || !asGrey(err, &ge) || ge.Field != c.field {
			t.Errorf("%s: err = %v, want %s on field %q", c.name, err, c.code, c.field)
		}
	}
	if f.s.Len() != 2 || f.s.Lookup(tid(10)) != nil {
		t.Fatalf("refused submits stored tasks: %d stored", f.s.Len())
	}
	// Without AutoCreate an unknown tenant is refused, with its reason.
	_, err := f.s.Submit(f.next(), &state.SubmitRequest{Now: t0, Tasks: []*task.Task{mk(20, "initech")}})
	var ge *greyerr.Error
	if !asGrey(err, &ge) || ge.Code != greyerr.InvalidArgument || ge.Reason != "unknown_tenant" {
		t.Fatalf("unknown tenant: %v", err)
	}
	// A parent earlier in the same batch is fine.
	res := f.submit(mk(30, "acme"), mk(31, "acme", func(x *task.Task) { x.DependsOn = []string{tid(30)} }))
	if len(res.Tasks) != 2 || !res.Created[0] || !res.Created[1] || res.Tasks[1].Status != task.Pending {
		t.Fatalf("submit with an in-batch parent = %+v", res)
	}
}

func asGrey(err error, ge **greyerr.Error) bool {
	e, ok := err.(*greyerr.Error)
	*ge = e
	return ok
}

// An idempotency key maps a resubmit to the task it created, per tenant,
// within a batch too, until that task is collected.
func TestIdempotencyKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	keyed := func(k string) func(*task.Task) { return func(x *task.Task) { x.IdempotencyKey = k } }
	first := f.submit(mk(1, "acme", keyed("k1")))
	again := f.submit(mk(2, "acme", keyed("k1")))
	if again.Created[0] || again.Tasks[0].ID != tid(1) || f.s.Lookup(tid(2)) != nil {
		t.Fatalf("resubmit = created %v, task %s; want task 1 again, nothing new", again.Created, again.Tasks[0].ID)
	}
	if first.Tasks[0] != again.Tasks[0] {
		t.Error("the replay returned a different record")
	}
	// Twice in one batch: the second maps to the first.
	b := f.submit(mk(3, "acme", keyed("k2")), mk(4, "acme", keyed("k2")))
	if !b.Created[0] || b.Created[1] || b.Tasks[1].ID != tid(3) || f.s.Lookup(tid(4)) != nil {
		t.Fatalf("in-batch duplicate key = %v %v", b.Created, b.Tasks[1].ID)
	}
	// Another tenant's key space is its own.
	if o := f.submit(mk(5, "globex", keyed("k1"))); !o.Created[0] {
		t.Fatal("another tenant's identical key was mapped to acme's task")
	}
	if n := f.s.NewTasks("acme", []*task.Task{mk(6, "acme", keyed("k1")), mk(7, "acme", keyed("k9")), mk(8, "acme")}); n != 2 {
		t.Fatalf("NewTasks = %d, want 2 (k1 is taken)", n)
	}
	// Collected with its task, the key is free again.
	f.run(t0, 1)
	if n := f.s.GC(f.next(), &state.GCRequest{Now: t0.Add(time.Hour), Before: t0.Add(time.Second)}); n != 1 {
		t.Fatalf("GC collected %d", n)
	}
	if r := f.submit(mk(9, "acme", keyed("k1"))); !r.Created[0] || r.Tasks[0].ID != tid(9) {
		t.Fatal("a collected task's key still maps")
	}
}

// An idempotency key names one request: reusing it for a different kind,
// payload or option is refused with 409 idempotency_key_reused naming what
// differs, in a batch too (and the batch creates nothing); the same request
// (payload keys reordered, defaults spelled out) maps to the original task.
func TestIdempotencyKeyReused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	keyed := func(x *task.Task) { x.IdempotencyKey = "order-1"; x.Payload = json.RawMessage(`{"a":1,"b":[true]}`) }
	f.submit(mk(1, "acme", keyed))
	five, yes := 5, true
	same := f.submit(mk(2, "acme", keyed, func(x *task.Task) {
		x.Payload = json.RawMessage(`{ "b": [true], "a": 1 }`)
		x.Priority = &five
		x.Retry = &task.RetryPolicy{}
	}))
	if same.Created[0] || same.Tasks[0].ID != tid(1) {
		t.Fatalf("the same request again = created %v, task %s; want task 1", same.Created, same.Tasks[0].ID)
	}
	cases := []struct {
		name string
		mod  func(*task.Task)
		want string
	}{
		{"kind", func(x *task.Task) { x.Kind = "echo" }, "kind"},
		{"payload", func(x *task.Task) { x.Payload = json.RawMessage(`{"a":2,"b":[true]}`) }, "payload"},
		{"payload number spelling", func(x *task.Task) { x.Payload = json.RawMessage(`{"a":1.0,"b":[true]}`) }, "payload"},
		{"no payload", func(x *task.Task) { x.Payload = nil }, "payload"},
		{"priority", func(x *task.Task) { p := 9; x.Priority = &p }, "priority"},
		{"require_proof", func(x *task.Task) { x.RequireProof = &yes }, "require_proof"},
		{"timeout and kind", func(x *task.Task) { x.Timeout = task.Duration(time.Second); x.Kind = "echo" }, "kind, timeout"},
		{"constraints", func(x *task.Task) { x.Constraints = &task.Constraints{Labels: map[string]string{"gpu": "true"}} }, "constraints"},
		{"run_at", func(x *task.Task) { at := t0.Add(time.Hour); x.RunAt = &at }, "run_at"},
	}
	for i, tc := range cases {
		_, err := f.submitErr(t0, mk(10+i, "acme", keyed, tc.mod))
		var ge *greyerr.Error
		if !asGrey(err, &ge) || ge.Code != greyerr.AlreadyExists || ge.Reason != state.ReasonIdempotencyKeyReused ||
			ge.Field != "idempotency_key" || !strings.Contains(ge.Message, "different "+tc.want+";") || !strings.Contains(ge.Message, tid(1)) {
			t.Errorf("%s: err = %#v, want already_exists idempotency_key_reused naming %q and task 1", tc.name, err, tc.want)
		}
		if f.s.Lookup(tid(10+i)) != nil {
			t.Errorf("%s: a task was created", tc.name)
		}
	}
	// In one batch: a fresh task and two uses of a new key that differ.
	_, err := f.submitErr(t0, mk(30, "acme"), mk(31, "acme", func(x *task.Task) { x.IdempotencyKey = "k2" }),
		mk(32, "acme", func(x *task.Task) { x.IdempotencyKey = "k2"; x.Kind = "echo" }))
	var ge *greyerr.Error
	if !asGrey(err, &ge) || ge.Reason != state.ReasonIdempotencyKeyReused || ge.Field != "tasks[2].idempotency_key" {
		t.Fatalf("in-batch reuse: err = %v, want idempotency_key_reused on tasks[2]", err)
	}
	for _, n := range []int{30, 31, 32} {
		if f.s.Lookup(tid(n)) != nil {
			t.Errorf("task %d of a refused batch was created", n)
		}
	}
	// Headers (trace context) do not count.
	if r := f.submit(mk(40, "acme", keyed, func(x *task.Task) { x.Headers = map[string]string{"traceparent": "00-1-2-01"} })); r.Created[0] {
		t.Error("a retry with other trace headers created a task")
	}
}

// Every report is fenced: by attempt, by worker, by principal, and by the
// status it moves from.
func TestLeaseStartCompleteAreFenced(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.submit(mk(1, "acme"), mk(2, "acme"))
	if l := f.lease(t0, "w1", ref(1, 2)); len(l.Refused) != 1 {
		t.Fatal("a lease that skips an attempt number was granted")
	}
	l := f.lease(t0, "w1", ref(1, 1), ref(1, 1))
	if len(l.Leased) != 1 || len(l.Refused) != 1 {
		t.Fatalf("the same attempt leased twice: %+v", l)
	}
	lt := l.Leased[0]
	if lt.Status != task.Leased || lt.Lease.WorkerID != "w1" || lt.Attempt != 1 || len(lt.Attempts) != 1 || !lt.Attempts[0].LeasedAt.Equal(t0) {
		t.Fatalf("leased = %+v", lt)
	}
	at := t0.Add(time.Second)
	for _, c := range []struct {
		worker string
		ref    state.Ref
		why    string
	}{
		{"w2", ref(1, 1), "lease held by another worker"},
		{"w1", ref(1, 2), "stale attempt"},
		{"w1", ref(2, 1), "task is pending"},
		{"w1", ref(99, 1), "unknown task"},
	} {
		if o := f.start(at, c.worker, c.ref); o.Accepted || o.Reason != c.why {
			t.Errorf("start %+v by %s = %+v, want refused: %s", c.ref, c.worker, o, c.why)
		}
	}
	if o := f.start(at, "w1", ref(1, 1)); !o.Accepted {
		t.Fatalf("start: %s", o.Reason)
	}
	if o := f.start(at, "w1", ref(1, 1)); o.Accepted || o.Reason != "already started" {
		t.Fatalf("second start = %+v", o)
	}
	// A heartbeat extends only a later deadline, and only the holder's.
	lost := f.s.Heartbeat(f.next(), &state.HeartbeatRequest{Now: at, WorkerID: "w1", Deadline: t0.Add(time.Hour), Items: []state.Ref{ref(1, 1), ref(1, 3)}})
	if len(lost) != 1 || lost[0].TaskID != tid(1) || lost[0].Reason != "stale attempt" || !f.get(1).Lease.Deadline.Equal(t0.Add(time.Hour)) {
		t.Fatalf("heartbeat lost %+v, deadline %v", lost, f.get(1).Lease.Deadline)
	}
	if lost := f.s.Heartbeat(f.next(), &state.HeartbeatRequest{Now: at, WorkerID: "w2", Deadline: t0.Add(2 * time.Hour), Items: []state.Ref{ref(1, 1)}}); len(lost) != 1 || f.get(1).Lease.Deadline.Equal(t0.Add(2*time.Hour)) {
		t.Fatal("another worker's heartbeat extended the lease")
	}
	done := t0.Add(3 * time.Second)
	if o := f.complete(done, "w1", ref(1, 2), `1`); o.Accepted {
		t.Fatal("a completion of another attempt was accepted")
	}
	if o := f.complete(done, "w1", ref(1, 1), `{"ok":true}`); !o.Accepted {
		t.Fatalf("complete: %s", o.Reason)
	}
	c := f.get(1)
	if c.Status != task.Completed || c.Lease != nil || string(c.Result) != `{"ok":true}` || c.FinishedAt == nil || !c.FinishedAt.Equal(done) ||
		!c.Attempts[0].StartedAt.Equal(at) || !c.Attempts[0].FinishedAt.Equal(done) {
		t.Fatalf("completed = %+v", c)
	}
	if o := f.complete(done, "w1", ref(1, 1), `2`); o.Accepted || o.Reason != "task is completed" || string(f.get(1).Result) != `{"ok":true}` {
		t.Fatalf("a second completion = %+v", o)
	}
	// A lease taken by a principal answers to that principal only.
	f.s.Lease(f.next(), &state.LeaseRequest{Now: t0, WorkerID: "w1", Principal: "apikey:a", Deadline: t0.Add(time.Minute), Items: []state.Ref{ref(2, 1)}})
	o := f.s.Complete(f.next(), &state.CompleteRequest{Now: done, WorkerID: "w1", Principal: "apikey:b", Items: []state.CompleteItem{{Ref: ref(2, 1), At: done}}})[0]
	if o.Accepted || o.Reason != "lease held by another principal" {
		t.Fatalf("completion by another principal = %+v", o)
	}
	// A completion without a recorded start counts as started at its At.
	if o := f.s.Complete(f.next(), &state.CompleteRequest{Now: done, WorkerID: "w1", Principal: "apikey:a", Items: []state.CompleteItem{{Ref: ref(2, 1), At: done}}})[0]; !o.Accepted {
		t.Fatalf("completion by the lease's principal: %s", o.Reason)
	}
	if c := f.get(2); c.StartedAt == nil || !c.StartedAt.Equal(done) {
		t.Fatalf("started_at of an unstarted completion = %v", c.StartedAt)
	}
}

// An outcome that carries its start time records it when no start was
// recorded (as if the start had come first), no later than the outcome,
// and never replaces a recorded start.
func TestOutcomeCarriesStart(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.submit(mk(1, "acme"), mk(2, "acme"), mk(3, "acme"), mk(4, "acme"))
	f.lease(t0, "w1", ref(1, 1), ref(2, 1), ref(3, 1), ref(4, 1))
	began, done := t0.Add(time.Second), t0.Add(3*time.Second)
	complete := func(n int, start time.Time) {
		t.Helper()
		o := f.s.Complete(f.next(), &state.CompleteRequest{Now: done, WorkerID: "w1",
			Items: []state.CompleteItem{{Ref: ref(n, 1), At: done, StartedAt: &start}}})[0]
		if !o.Accepted {
			t.Fatalf("complete %d: %s", n, o.Reason)
		}
	}
	complete(1, began)
	if c := f.get(1); !c.StartedAt.Equal(began) || !c.Attempts[0].StartedAt.Equal(began) || !c.Attempts[0].FinishedAt.Equal(done) {
		t.Fatalf("started %v, attempt %+v; want the reported start %v", c.StartedAt, c.Attempts[0], began)
	}
	complete(2, done.Add(time.Hour))
	if c := f.get(2); !c.StartedAt.Equal(done) || !c.Attempts[0].StartedAt.Equal(done) {
		t.Fatalf("a start after the outcome was kept: %v", c.StartedAt)
	}
	if o := f.start(began, "w1", ref(3, 1)); !o.Accepted {
		t.Fatal(o.Reason)
	}
	complete(3, t0)
	if c := f.get(3); !c.StartedAt.Equal(began) || !c.Attempts[0].StartedAt.Equal(began) {
		t.Fatalf("the recorded start was replaced: %v", c.StartedAt)
	}
	retryAt := done.Add(time.Minute)
	o := f.s.Fail(f.next(), &state.FailRequest{Now: done, WorkerID: "w1",
		Items: []state.FailItem{{Ref: ref(4, 1), Error: task.Error{Code: "boom"}, RetryAt: &retryAt, At: done, StartedAt: &began}}})[0]
	if !o.Accepted {
		t.Fatal(o.Reason)
	}
	if c := f.get(4); c.Status != task.Retrying || !c.StartedAt.Equal(began) || !c.Attempts[0].StartedAt.Equal(began) || !c.Attempts[0].FinishedAt.Equal(done) {
		t.Fatalf("failed attempt = %+v", c.Attempts[0])
	}
}

// A failure with a retry time makes the task retrying and time-gates its
// next lease; one without fails it. The leader's own retries fence by
// attempt only.
func TestFailRetriesThenFails(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.submit(mk(1, "acme"))
	f.lease(t0, "w1", ref(1, 1))
	retryAt := t0.Add(time.Minute)
	if o := f.fail(t0, "w1", ref(1, 1), &retryAt); !o.Accepted {
		t.Fatalf("fail: %s", o.Reason)
	}
	r := f.get(1)
	if r.Status != task.Retrying || r.NextAttemptAt == nil || !r.NextAttemptAt.Equal(retryAt) || r.Lease != nil || r.Error == nil || r.Attempts[0].Error == nil {
		t.Fatalf("after a retryable failure: %+v", r)
	}
	if !f.s.Ready(tid(1)) {
		t.Fatal("a retrying task is not ready as far as the store goes (time gates are the scheduler's)")
	}
	if l := f.lease(retryAt.Add(-time.Second), "w1", ref(1, 2)); len(l.Leased) != 0 {
		t.Fatal("leased before its retry time")
	}
	if l := f.lease(retryAt, "w2", ref(1, 2)); len(l.Leased) != 1 || l.Leased[0].NextAttemptAt != nil || len(l.Leased[0].Attempts) != 2 {
		t.Fatalf("lease at the retry time = %+v", l)
	}
	// The leader's expiry (no worker) of a stale attempt is refused; of
	// the current one, accepted.
	stale := f.s.Fail(f.next(), &state.FailRequest{Now: retryAt, Items: []state.FailItem{{Ref: ref(1, 1), Error: task.Error{Code: "lease_expired"}, At: retryAt}}})[0]
	if stale.Accepted {
		t.Fatal("an expiry of attempt 1 hit attempt 2")
	}
	cur := f.s.Fail(f.next(), &state.FailRequest{Now: retryAt, Items: []state.FailItem{{Ref: ref(1, 2), Error: task.Error{Code: "lease_expired", Message: "gone"}, At: retryAt}}})[0]
	if !cur.Accepted {
		t.Fatalf("the leader's expiry: %s", cur.Reason)
	}
	if g := f.get(1); g.Status != task.Failed || g.Error.Code != "lease_expired" || g.FinishedAt == nil {
		t.Fatalf("after a final failure: %+v", g)
	}
	if c := f.s.Counts(); c[task.Failed] != 1 || c[task.Retrying] != 0 {
		t.Fatalf("counts = %v", c)
	}
}

// A child waits for every parent; it becomes ready when the last one
// completes, and fails when one does not.
func TestDependencies(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	dep := func(ps ...int) func(*task.Task) {
		return func(x *task.Task) {
			for _, p := range ps {
				x.DependsOn = append(x.DependsOn, tid(p))
			}
		}
	}
	f.submit(mk(1, "acme"), mk(2, "acme"), mk(3, "acme", dep(1, 2)))
	if f.s.Ready(tid(3)) || f.s.Blocked(tid(3)) != "waiting for dependencies: "+tid(1)+","+tid(2) {
		t.Fatalf("child blocked = %q", f.s.Blocked(tid(3)))
	}
	if l := f.lease(t0, "w1", ref(3, 1)); len(l.Leased) != 0 {
		t.Fatal("a blocked child was leased")
	}
	f.run(t0, 1)
	if f.s.Ready(tid(3)) || !strings.HasSuffix(f.s.Blocked(tid(3)), tid(2)) {
		t.Fatalf("after one parent: blocked = %q", f.s.Blocked(tid(3)))
	}
	var changed []string
	f.s.Observe(func(c state.Change) {
		for _, x := range c.Tasks {
			changed = append(changed, x.ID)
		}
	})
	f.run(t0, 2)
	if !f.s.Ready(tid(3)) {
		t.Fatalf("after both parents: blocked = %q", f.s.Blocked(tid(3)))
	}
	if !strings.Contains(strings.Join(changed, " "), tid(3)) {
		t.Error("the change stream did not report the unblocked child")
	}
	// A failed parent fails its waiting children and grandchildren.
	f.submit(mk(4, "acme"), mk(5, "acme", dep(4)), mk(6, "acme", dep(5)))
	f.lease(t0, "w1", ref(4, 1))
	f.fail(t0, "w1", ref(4, 1), nil)
	for _, n := range []int{5, 6} {
		if g := f.get(n); g.Status != task.Failed || g.Error.Code != "dependency_failed" {
			t.Fatalf("descendant %d of a failed task = %s %+v", n, g.Status, g.Error)
		}
	}
	// Submitted under a parent already failed: failed at once; under a
	// completed one: ready at once.
	f.submit(mk(7, "acme", dep(4)), mk(8, "acme", dep(1)))
	if g := f.get(7); g.Status != task.Failed || g.Error.Code != "dependency_failed" {
		t.Fatalf("child of a failed parent = %s", g.Status)
	}
	if !f.s.Ready(tid(8)) {
		t.Fatalf("child of a completed parent blocked: %q", f.s.Blocked(tid(8)))
	}
}

// Tasks of one tenant's state key run one at a time in submission order;
// the next becomes the head when the head finishes in any way.
func TestStateKeyFIFO(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := func(k string) func(*task.Task) { return func(x *task.Task) { x.StateKey = k; x.Type = task.Stateful } }
	f.submit(mk(1, "acme", key("cart")), mk(2, "acme", key("cart")), mk(3, "acme", key("cart")))
	f.submit(mk(4, "globex", key("cart")))
	if !f.s.Ready(tid(1)) || f.s.Ready(tid(2)) || !f.s.Ready(tid(4)) {
		t.Fatal("want the head of each tenant's key ready, the rest waiting")
	}
	if b := f.s.Blocked(tid(3)); !strings.Contains(b, "state_key cart") || !strings.Contains(b, tid(1)) {
		t.Fatalf("blocked = %q; want it to name the head", b)
	}
	if l := f.lease(t0, "w1", ref(2, 1)); len(l.Leased) != 0 {
		t.Fatal("second on the key was leased before the head finished")
	}
	// A retrying head keeps its turn.
	f.lease(t0, "w1", ref(1, 1))
	retryAt := t0.Add(time.Second)
	f.fail(t0, "w1", ref(1, 1), &retryAt)
	if f.s.Ready(tid(2)) {
		t.Fatal("a retrying head gave up its turn")
	}
	var changed []string
	f.s.Observe(func(c state.Change) {
		for _, x := range c.Tasks {
			changed = append(changed, x.ID)
		}
	})
	if _, err := f.s.Cancel(f.next(), &state.CancelRequest{Now: t0, TenantID: "acme", TaskID: tid(1)}); err != nil {
		t.Fatal(err)
	}
	if !f.s.Ready(tid(2)) || f.s.Ready(tid(3)) {
		t.Fatal("after the head's cancel, the second is not the head")
	}
	if strings.Join(changed, ",") != tid(1)+","+tid(2) {
		t.Fatalf("the cancel's change holds %v; want the cancelled task and the new head (the scheduler learns of it so)", changed)
	}
	f.run(t0, 2)
	if !f.s.Ready(tid(3)) {
		t.Fatal("after the second completed, the third is not the head")
	}
}

// Cancel is per tenant, only of unfinished tasks, and closes the running
// attempt.
func TestCancel(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.submit(mk(1, "acme"), mk(2, "acme", func(x *task.Task) { x.DependsOn = []string{tid(1)} }))
	if _, err := f.s.Cancel(f.next(), &state.CancelRequest{Now: t0, TenantID: "globex", TaskID: tid(1)}); !greyerr.Is(err, greyerr.NotFound) {
		t.Fatalf("cancel through another tenant: %v", err)
	}
	f.lease(t0, "w1", ref(1, 1))
	f.start(t0, "w1", ref(1, 1))
	at := t0.Add(time.Minute)
	c, err := f.s.Cancel(f.next(), &state.CancelRequest{Now: at, TenantID: "acme", TaskID: tid(1), Reason: "no longer needed"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != task.Cancelled || c.Error.Code != "cancelled" || c.Error.Message != "no longer needed" || c.Lease != nil || !c.Attempts[0].FinishedAt.Equal(at) {
		t.Fatalf("cancelled = %+v", c)
	}
	if _, err := f.s.Cancel(f.next(), &state.CancelRequest{Now: at, TenantID: "acme", TaskID: tid(1)}); !greyerr.Is(err, greyerr.FailedPrecondition) {
		t.Fatalf("second cancel: %v", err)
	}
	if g := f.get(2); g.Status != task.Failed || g.Error.Code != "dependency_failed" {
		t.Fatalf("child of a cancelled task = %s", g.Status)
	}
	// The worker's late report of the cancelled attempt is refused.
	if o := f.complete(at, "w1", ref(1, 1), `1`); o.Accepted || o.Reason != "cancelled" {
		t.Fatalf("late completion = %+v", o)
	}
}

// GC removes terminal tasks finished before the cut-off, oldest first and
// at most Max, and nothing else.
func TestGC(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.submit(mk(1, "acme"), mk(2, "acme"), mk(3, "acme"), mk(4, "acme"))
	f.run(t0, 1)
	f.run(t0.Add(time.Minute), 2)
	f.run(t0.Add(time.Hour), 3)
	var removed []string
	f.s.Observe(func(c state.Change) {
		for _, x := range c.Removed {
			removed = append(removed, x.ID)
		}
	})
	cut := t0.Add(30 * time.Minute)
	if n := f.s.GC(f.next(), &state.GCRequest{Now: t0.Add(2 * time.Hour), Before: cut, Max: 1}); n != 1 || f.s.Lookup(tid(1)) != nil || f.s.Lookup(tid(2)) == nil {
		t.Fatalf("GC max 1 collected %d; want the oldest only", n)
	}
	if n := f.s.GC(f.next(), &state.GCRequest{Now: t0.Add(2 * time.Hour), Before: cut}); n != 1 || f.s.Lookup(tid(2)) != nil {
		t.Fatalf("second GC collected %d", n)
	}
	if n := f.s.GC(f.next(), &state.GCRequest{Now: t0.Add(2 * time.Hour), Before: cut}); n != 0 {
		t.Fatalf("third GC collected %d, want 0", n)
	}
	if f.s.Lookup(tid(3)) == nil || f.s.Lookup(tid(4)) == nil || f.s.Len() != 2 {
		t.Fatal("GC took a task finished after the cut-off or an unfinished one")
	}
	if c := f.s.Counts(); c[task.Completed] != 1 || c[task.Pending] != 1 {
		t.Fatalf("counts after GC = %v", c)
	}
	if tasks, _ := f.s.List("acme", state.ListFilter{}); len(tasks) != 2 {
		t.Fatalf("List after GC has %d tasks", len(tasks))
	}
	if strings.Join(removed, ",") != tid(1)+","+tid(2) {
		t.Fatalf("observers saw %v removed", removed)
	}
	if _, err := f.s.Get("acme", tid(1)); !greyerr.Is(err, greyerr.NotFound) {
		t.Fatalf("Get of a collected task: %v", err)
	}
}

// List pages a tenant's tasks newest first with a cursor, filters by
// status and kind, and never shows another tenant's.
func TestListPages(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for n := 1; n <= 5; n++ {
		f.submit(mk(n, "acme", func(x *task.Task) {
			if n%2 == 0 {
				x.Kind = "resize"
			}
		}))
	}
	f.submit(mk(6, "globex"))
	f.run(t0, 5)
	page, next := f.s.List("acme", state.ListFilter{Limit: 2})
	if len(page) != 2 || page[0].ID != tid(5) || page[1].ID != tid(4) || next != tid(4) {
		t.Fatalf("page 1 = %v, next %q", idsOf(page), next)
	}
	page, next = f.s.List("acme", state.ListFilter{Limit: 2, Before: next})
	if len(page) != 2 || page[0].ID != tid(3) || next != tid(2) {
		t.Fatalf("page 2 = %v, next %q", idsOf(page), next)
	}
	page, next = f.s.List("acme", state.ListFilter{Limit: 2, Before: next})
	if len(page) != 1 || page[0].ID != tid(1) || next != "" {
		t.Fatalf("last page = %v, next %q", idsOf(page), next)
	}
	if p, _ := f.s.List("acme", state.ListFilter{Kind: "resize"}); len(p) != 2 {
		t.Fatalf("kind filter = %v", idsOf(p))
	}
	if p, _ := f.s.List("acme", state.ListFilter{Statuses: []task.Status{task.Completed}}); len(p) != 1 || p[0].ID != tid(5) {
		t.Fatalf("status filter = %v", idsOf(p))
	}
	if p, _ := f.s.List("initech", state.ListFilter{}); len(p) != 0 {
		t.Fatal("a tenant without tasks lists some")
	}
	if _, err := f.s.Get("globex", tid(1)); !greyerr.Is(err, greyerr.NotFound) {
		t.Fatal("another tenant's task is visible")
	}
}

func idsOf(ts []*task.Task) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	return out
}

// The writes of a batch are one change: observers get each task once, in
// its final version, and the index of the entry.
func TestBatchIsOneChange(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.submit(mk(1, "acme"))
	f.lease(t0, "w1", ref(1, 1))
	var changes []state.Change
	f.s.Observe(func(c state.Change) { changes = append(changes, c) })
	idx := f.next()
	f.s.BeginBatch(idx)
	f.s.Start(idx, &state.StartRequest{Now: t0, WorkerID: "w1", Items: []state.StartItem{{Ref: ref(1, 1), At: t0}}})
	f.s.Complete(idx, &state.CompleteRequest{Now: t0, WorkerID: "w1", Items: []state.CompleteItem{{Ref: ref(1, 1), At: t0}}})
	if len(changes) != 0 {
		t.Fatal("observers notified inside the batch")
	}
	f.s.EndBatch()
	if len(changes) != 1 || changes[0].Index != idx || len(changes[0].Tasks) != 1 || changes[0].Tasks[0].Status != task.Completed {
		t.Fatalf("changes = %+v; want one with the completed task", changes)
	}
	if f.s.Index() != idx || f.get(1).Index != idx {
		t.Fatalf("store index %d, task index %d; want %d", f.s.Index(), f.get(1).Index, idx)
	}
}

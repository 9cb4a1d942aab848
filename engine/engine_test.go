package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/worker"
)

func fastRetry() task.RetryPolicy {
	n := 2
	return task.RetryPolicy{MaxRetries: &n, BaseDelay: task.Duration(time.Millisecond), MaxDelay: task.Duration(5 * time.Millisecond)}
}

func submit(t *testing.T, e *engine.Engine, tenant string, specs ...task.Spec) []*task.Task {
	t.Helper()
	res, err := e.Submit(context.Background(), tenant, specs, len(specs) > 1)
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	return res.Tasks
}

func wait(t *testing.T, e *engine.Engine, tenant, id string) *task.Task {
	t.Helper()
	got, err := e.Wait(context.Background(), tenant, id, 10*time.Second)
	if err != nil {
		t.Fatalf("wait %s: %v", id, err)
	}
	if !got.Status.Terminal() {
		t.Fatalf("task %s still %s after 10s (%s)", id, got.Status, got.WaitingReason)
	}
	return got
}

func intp(i int) *int { return &i }

func TestLifecycleEchoCompletes(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{})
	n.StartWorkers(t, worker.Options{Concurrency: 4}, nil)
	tk := submit(t, n.Engine, "acme", task.Spec{Kind: "echo", Payload: json.RawMessage(`{"x":1}`)})[0]
	if tk.Status != task.Pending || tk.TenantID != "acme" || !task.ValidID(tk.ID) || tk.Type != task.Stateless || tk.Prio() != 5 {
		t.Fatalf("submitted task = %+v", tk)
	}
	got := wait(t, n.Engine, "acme", tk.ID)
	if got.Status != task.Completed || string(got.Result) != `{"x":1}` || got.Attempt != 1 || got.StartedAt == nil || got.FinishedAt == nil {
		t.Fatalf("final task = %+v, result %s", got, got.Result)
	}
	if len(got.Attempts) != 1 || got.Attempts[0].FinishedAt == nil {
		t.Fatalf("attempts = %+v", got.Attempts)
	}
}

func TestRetriesThenFails(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{Retry: fastRetry()})
	n.StartWorkers(t, worker.Options{Concurrency: 4}, nil)
	retry := submit(t, n.Engine, "acme", task.Spec{Kind: "fail", Payload: json.RawMessage(`{"message":"boom","retryable":true}`)})[0]
	perm := submit(t, n.Engine, "acme", task.Spec{Kind: "fail", Payload: json.RawMessage(`{"message":"bad input","retryable":false}`)})[0]
	override := submit(t, n.Engine, "acme", task.Spec{Kind: "fail", Payload: json.RawMessage(`{"retryable":true}`), Retry: &task.RetryPolicy{MaxRetries: intp(0)}})[0]

	got := wait(t, n.Engine, "acme", retry.ID)
	if got.Status != task.Failed || got.Attempt != 3 || len(got.Attempts) != 3 || got.Error == nil || got.Error.Message != "boom" {
		t.Fatalf("retryable: status %s attempt %d attempts %d err %+v", got.Status, got.Attempt, len(got.Attempts), got.Error)
	}
	got = wait(t, n.Engine, "acme", perm.ID)
	if got.Status != task.Failed || got.Attempt != 1 || got.Error.Retryable {
		t.Fatalf("permanent: %+v", got)
	}
	got = wait(t, n.Engine, "acme", override.ID)
	if got.Status != task.Failed || got.Attempt != 1 {
		t.Fatalf("max_retries 0 override: attempt %d status %s", got.Attempt, got.Status)
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{})
	a, err := n.Engine.Submit(context.Background(), "acme", []task.Spec{{Kind: "noop", IdempotencyKey: "order-42"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.Engine.Submit(context.Background(), "acme", []task.Spec{{Kind: "noop", IdempotencyKey: "order-42"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if a.Tasks[0].ID != b.Tasks[0].ID || !a.Created[0] || b.Created[0] {
		t.Fatalf("ids %s %s created %v %v", a.Tasks[0].ID, b.Tasks[0].ID, a.Created[0], b.Created[0])
	}
	// Another tenant's equal key is a different task.
	c := submit(t, n.Engine, "other", task.Spec{Kind: "noop", IdempotencyKey: "order-42"})[0]
	if c.ID == a.Tasks[0].ID {
		t.Fatal("idempotency keys leak across tenants")
	}
}

func TestDependencies(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{Retry: fastRetry()})
	var order []string
	var mu sync.Mutex
	rec := worker.HandlerFunc(func(ctx context.Context, j *worker.Job) (any, error) {
		mu.Lock()
		order = append(order, string(j.Payload))
		mu.Unlock()
		return nil, nil
	})
	n.Engine.RegisterKinds("rec")
	parent := submit(t, n.Engine, "acme", task.Spec{Kind: "rec", Payload: json.RawMessage(`"parent"`), RunAt: ptime(time.Now().Add(150 * time.Millisecond))})[0]
	child := submit(t, n.Engine, "acme", task.Spec{Kind: "rec", Payload: json.RawMessage(`"child"`), DependsOn: []string{parent.ID}})[0]
	if child.Type != task.Pipeline {
		t.Fatalf("type = %s", child.Type)
	}
	bad := submit(t, n.Engine, "acme", task.Spec{Kind: "fail", Payload: json.RawMessage(`{"retryable":false}`)})[0]
	orphan := submit(t, n.Engine, "acme", task.Spec{Kind: "rec", DependsOn: []string{bad.ID}})[0]
	got, _ := n.Engine.Get(context.Background(), "acme", child.ID)
	if got.WaitingReason == "" {
		t.Fatal("child shows no waiting reason")
	}
	n.StartWorkers(t, worker.Options{Concurrency: 4}, map[string]worker.Handler{"rec": rec})
	if wait(t, n.Engine, "acme", child.ID).Status != task.Completed {
		t.Fatal("child did not complete")
	}
	mu.Lock()
	if len(order) != 2 || order[0] != `"parent"` || order[1] != `"child"` {
		t.Fatalf("order = %v", order)
	}
	mu.Unlock()
	o := wait(t, n.Engine, "acme", orphan.ID)
	if o.Status != task.Failed || o.Error == nil || o.Error.Code != "dependency_failed" || o.Attempt != 0 {
		t.Fatalf("orphan = %+v err %+v", o.Status, o.Error)
	}
	// A child submitted after its parent failed fails at once.
	late := submit(t, n.Engine, "acme", task.Spec{Kind: "rec", DependsOn: []string{bad.ID}})[0]
	if late.Status != task.Failed {
		t.Fatalf("late child = %s", late.Status)
	}
	// Unknown parent: refused, nothing written.
	_, err := n.Engine.Submit(context.Background(), "acme", []task.Spec{{Kind: "rec", DependsOn: []string{"0190b1b2-0000-7000-8000-000000000000"}}}, false)
	if !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Fatalf("unknown parent: %v", err)
	}
	// Another tenant's parent is as good as unknown.
	_, err = n.Engine.Submit(context.Background(), "other", []task.Spec{{Kind: "rec", DependsOn: []string{parent.ID}}}, false)
	if !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Fatalf("cross-tenant parent: %v", err)
	}
}

func ptime(t time.Time) *time.Time { return &t }

func TestStateKeyRunsOneAtATimeInOrder(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{})
	n.Engine.RegisterKinds("rec")
	var running, maxRunning atomic.Int32
	var mu sync.Mutex
	var order []string
	h := worker.HandlerFunc(func(ctx context.Context, j *worker.Job) (any, error) {
		if c := running.Add(1); c > maxRunning.Load() {
			maxRunning.Store(c)
		}
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		order = append(order, string(j.Payload))
		mu.Unlock()
		running.Add(-1)
		return nil, nil
	})
	var specs []task.Spec
	for i := 0; i < 8; i++ {
		specs = append(specs, task.Spec{Kind: "rec", StateKey: "account-7", Payload: json.RawMessage(`"` + string(rune('a'+i)) + `"`), Priority: intp(i)})
	}
	ts := submit(t, n.Engine, "acme", specs...)
	n.StartWorkers(t, worker.Options{Concurrency: 8}, map[string]worker.Handler{"rec": h})
	for _, tk := range ts {
		wait(t, n.Engine, "acme", tk.ID)
	}
	if maxRunning.Load() != 1 {
		t.Fatalf("%d ran at once on one state key", maxRunning.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{`"a"`, `"b"`, `"c"`, `"d"`, `"e"`, `"f"`, `"g"`, `"h"`}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order = %v, want FIFO %v", order, want)
		}
	}
}

func TestCancelRunningTaskCancelsWorkerContext(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{})
	n.Engine.RegisterKinds("block")
	started := make(chan struct{})
	cancelled := make(chan error, 1)
	h := worker.HandlerFunc(func(ctx context.Context, j *worker.Job) (any, error) {
		close(started)
		<-ctx.Done()
		cancelled <- context.Cause(ctx)
		return nil, ctx.Err()
	})
	n.StartWorkers(t, worker.Options{Concurrency: 1, HeartbeatInterval: 20 * time.Millisecond}, map[string]worker.Handler{"block": h})
	tk := submit(t, n.Engine, "acme", task.Spec{Kind: "block"})[0]
	<-started
	greytest.Eventually(t, 5*time.Second, func() bool {
		got, _ := n.Engine.Get(context.Background(), "acme", tk.ID)
		return got.Status == task.Running
	})
	if _, err := n.Engine.Cancel(context.Background(), "other", tk.ID); !greyerr.Is(err, greyerr.NotFound) {
		t.Fatalf("cancel by another tenant: %v", err)
	}
	got, err := n.Engine.Cancel(context.Background(), "acme", tk.ID)
	if err != nil || got.Status != task.Cancelled {
		t.Fatalf("cancel: %v %+v", err, got)
	}
	select {
	case cause := <-cancelled:
		if cause == nil {
			t.Fatal("no cause")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("worker context was not cancelled")
	}
	if _, err := n.Engine.Cancel(context.Background(), "acme", tk.ID); !greyerr.Is(err, greyerr.FailedPrecondition) {
		t.Fatalf("second cancel: %v", err)
	}
	final, _ := n.Engine.Get(context.Background(), "acme", tk.ID)
	if final.Status != task.Cancelled {
		t.Fatalf("final = %s", final.Status)
	}
}

func TestExpiredLeaseIsRetriedAndLateCompletionRefused(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{LeaseTTL: 200 * time.Millisecond, Retry: fastRetry()})
	tk := submit(t, n.Engine, "acme", task.Spec{Kind: "echo", Payload: json.RawMessage(`1`)})[0]
	ctx := context.Background()
	// A worker leases and dies.
	resp, err := n.Engine.Lease(ctx, &worker.LeaseRequest{WorkerID: "dead", Kinds: []string{"echo"}, Max: 10, Wait: task.Duration(time.Second)})
	if err != nil || len(resp.Tasks) != 1 || resp.Tasks[0].Attempt != 1 {
		t.Fatalf("lease: %v %+v", err, resp)
	}
	greytest.Eventually(t, 5*time.Second, func() bool {
		got, _ := n.Engine.Get(ctx, "acme", tk.ID)
		return got.Status == task.Retrying || got.Attempt > 1
	})
	got, _ := n.Engine.Get(ctx, "acme", tk.ID)
	if got.Attempts[0].Error == nil || got.Attempts[0].Error.Code != "lease_expired" {
		t.Fatalf("attempt 1 = %+v", got.Attempts[0])
	}
	// A second worker takes attempt 2.
	resp2, err := n.Engine.Lease(ctx, &worker.LeaseRequest{WorkerID: "alive", Kinds: []string{"echo"}, Max: 10, Wait: task.Duration(2 * time.Second)})
	if err != nil || len(resp2.Tasks) != 1 || resp2.Tasks[0].Attempt != 2 {
		t.Fatalf("second lease: %v %+v", err, resp2)
	}
	// The dead worker wakes up and reports attempt 1: refused.
	cr, err := n.Engine.Complete(ctx, &worker.CompleteRequest{WorkerID: "dead", Reports: []worker.Report{{TaskID: tk.ID, Attempt: 1, Status: task.Completed, Result: json.RawMessage(`"stale"`)}}})
	if err != nil || cr.Results[0].Accepted {
		t.Fatalf("stale completion accepted: %v %+v", err, cr)
	}
	// The heartbeat tells the dead worker it lost the lease.
	hb, err := n.Engine.Heartbeat(ctx, &worker.HeartbeatRequest{WorkerID: "dead", Leases: []worker.LeaseRef{{TaskID: tk.ID, Attempt: 1}}})
	if err != nil || len(hb.Lost) != 1 {
		t.Fatalf("heartbeat: %v %+v", err, hb)
	}
	cr, err = n.Engine.Complete(ctx, &worker.CompleteRequest{WorkerID: "alive", Reports: []worker.Report{
		{TaskID: tk.ID, Attempt: 2, Status: task.Running},
		{TaskID: tk.ID, Attempt: 2, Status: task.Completed, Result: json.RawMessage(`"fresh"`)},
	}})
	if err != nil || !cr.Results[0].Accepted || !cr.Results[1].Accepted {
		t.Fatalf("completion: %v %+v", err, cr)
	}
	final := wait(t, n.Engine, "acme", tk.ID)
	if string(final.Result) != `"fresh"` || final.Status != task.Completed {
		t.Fatalf("final = %s %s", final.Status, final.Result)
	}
	// Exactly one outcome: a duplicate completion is refused too.
	cr, _ = n.Engine.Complete(ctx, &worker.CompleteRequest{WorkerID: "alive", Reports: []worker.Report{{TaskID: tk.ID, Attempt: 2, Status: task.Completed}}})
	if cr.Results[0].Accepted {
		t.Fatal("duplicate completion accepted")
	}
}

func TestTimeoutFailsAttempt(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{})
	n.StartWorkers(t, worker.Options{Concurrency: 2}, nil)
	tk := submit(t, n.Engine, "acme", task.Spec{Kind: "sleep", Payload: json.RawMessage(`{"ms":10000}`), Timeout: task.Duration(50 * time.Millisecond), Retry: &task.RetryPolicy{MaxRetries: intp(0)}})[0]
	got := wait(t, n.Engine, "acme", tk.ID)
	if got.Status != task.Failed || got.Error == nil || got.Error.Code != "timeout" {
		t.Fatalf("got %s %+v", got.Status, got.Error)
	}
}

func TestPriorityOrderWithinTenant(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{})
	n.Engine.RegisterKinds("rec")
	var mu sync.Mutex
	var order []int
	h := worker.HandlerFunc(func(ctx context.Context, j *worker.Job) (any, error) {
		var p int
		_ = json.Unmarshal(j.Payload, &p)
		mu.Lock()
		order = append(order, p)
		mu.Unlock()
		return nil, nil
	})
	var ids []string
	for _, p := range []int{1, 9, 5, 0, 10} {
		b, _ := json.Marshal(p)
		ids = append(ids, submit(t, n.Engine, "acme", task.Spec{Kind: "rec", Priority: intp(p), Payload: b})[0].ID)
	}
	n.StartWorkers(t, worker.Options{Concurrency: 1}, map[string]worker.Handler{"rec": h})
	for _, id := range ids {
		wait(t, n.Engine, "acme", id)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []int{10, 9, 5, 1, 0}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order %v want %v", order, want)
		}
	}
}

func TestRunAtDelaysFirstAttempt(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{})
	n.StartWorkers(t, worker.Options{Concurrency: 2}, nil)
	at := time.Now().Add(300 * time.Millisecond)
	tk := submit(t, n.Engine, "acme", task.Spec{Kind: "noop", RunAt: &at})[0]
	got := wait(t, n.Engine, "acme", tk.ID)
	if got.StartedAt.Before(at) {
		t.Fatalf("started %s before run_at %s", got.StartedAt, at)
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	t.Parallel()
	for _, snapshot := range []bool{false, true} {
		n := greytest.NewNode(t, engine.Config{})
		var ids []string
		for _, tk := range submit(t, n.Engine, "acme", task.Spec{Kind: "noop"}, task.Spec{Kind: "echo", Payload: json.RawMessage(`"x"`), IdempotencyKey: "k"}, task.Spec{Kind: "noop", StateKey: "s"}) {
			ids = append(ids, tk.ID)
		}
		n.StartWorkers(t, worker.Options{Concurrency: 2}, nil)
		done := wait(t, n.Engine, "acme", ids[1])
		pending := submit(t, n.Engine, "acme", task.Spec{Kind: "noop", RunAt: ptime(time.Now().Add(time.Hour))})[0]
		n.Restart(snapshot)
		got, err := n.Engine.Get(context.Background(), "acme", ids[1])
		if err != nil || got.Status != task.Completed || string(got.Result) != string(done.Result) {
			t.Fatalf("snapshot=%v: after restart %v %+v", snapshot, err, got)
		}
		p, err := n.Engine.Get(context.Background(), "acme", pending.ID)
		if err != nil || p.Status != task.Pending {
			t.Fatalf("snapshot=%v: pending after restart %v %+v", snapshot, err, p)
		}
		again, err := n.Engine.Submit(context.Background(), "acme", []task.Spec{{Kind: "echo", Payload: json.RawMessage(`"x"`), IdempotencyKey: "k"}}, false)
		if err != nil || again.Tasks[0].ID != ids[1] {
			t.Fatalf("snapshot=%v: idempotency lost on restart", snapshot)
		}
	}
}

func TestGCCollectsAfterRetention(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{Retention: 50 * time.Millisecond, GCInterval: 50 * time.Millisecond})
	n.StartWorkers(t, worker.Options{Concurrency: 2}, nil)
	tk := submit(t, n.Engine, "acme", task.Spec{Kind: "noop"})[0]
	wait(t, n.Engine, "acme", tk.ID)
	greytest.Eventually(t, 5*time.Second, func() bool {
		_, err := n.Engine.Get(context.Background(), "acme", tk.ID)
		return greyerr.Is(err, greyerr.NotFound)
	})
}

func TestBadInputWritesNothing(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{MaxPayloadBytes: 100})
	cases := []struct {
		name  string
		specs []task.Spec
		code  greyerr.Code
		field string
	}{
		{"no kind", []task.Spec{{}}, greyerr.InvalidArgument, "kind"},
		{"unknown kind", []task.Spec{{Kind: "nope"}}, greyerr.InvalidArgument, "kind"},
		{"priority", []task.Spec{{Kind: "noop", Priority: intp(11)}}, greyerr.InvalidArgument, "priority"},
		{"payload", []task.Spec{{Kind: "echo", Payload: json.RawMessage(`"` + string(make([]byte, 200)) + `"`)}}, greyerr.TooLarge, "payload"},
		{"batch item", []task.Spec{{Kind: "noop"}, {Kind: "noop", Priority: intp(-1)}}, greyerr.InvalidArgument, "tasks[1].priority"},
		{"bad parent", []task.Spec{{Kind: "noop", DependsOn: []string{"x"}}}, greyerr.InvalidArgument, "depends_on"},
		{"stateful without key", []task.Spec{{Kind: "noop", Type: task.Stateful}}, greyerr.InvalidArgument, "state_key"},
		{"retry", []task.Spec{{Kind: "noop", Retry: &task.RetryPolicy{MaxRetries: intp(-1)}}}, greyerr.InvalidArgument, "retry.max_retries"},
	}
	for _, c := range cases {
		_, err := n.Engine.Submit(context.Background(), "acme", c.specs, len(c.specs) > 1)
		var ge *greyerr.Error
		if !errors.As(err, &ge) || ge.Code != c.code || ge.Field != c.field {
			t.Errorf("%s: err = %v, want %s on %s", c.name, err, c.code, c.field)
		}
	}
	if n.Store.Len() != 0 {
		t.Fatalf("%d tasks written by bad input", n.Store.Len())
	}
	if _, err := n.Engine.Get(context.Background(), "acme", "not-an-id"); !greyerr.Is(err, greyerr.NotFound) {
		t.Fatalf("unknown id: %v", err)
	}
}

package worker_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/worker"
)

// fakeCoord hands out tasks once and records reports; Lost, when set, is
// answered to the next heartbeat.
type fakeCoord struct {
	mu      sync.Mutex
	pending []worker.Assignment
	lost    []worker.LostLease
	reports map[task.ID]worker.Report
}

func (c *fakeCoord) Lease(ctx context.Context, req *worker.LeaseRequest) (*worker.LeaseResponse, error) {
	c.mu.Lock()
	n := min(req.Max, len(c.pending))
	got := c.pending[:n]
	c.pending = c.pending[n:]
	c.mu.Unlock()
	if n == 0 {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return &worker.LeaseResponse{Tasks: got}, nil
}

func (c *fakeCoord) Heartbeat(context.Context, *worker.HeartbeatRequest) (*worker.HeartbeatResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.lost
	c.lost = nil
	return &worker.HeartbeatResponse{Lost: l}, nil
}

func (c *fakeCoord) Complete(_ context.Context, req *worker.CompleteRequest) (*worker.CompleteResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := &worker.CompleteResponse{}
	for _, r := range req.Reports {
		if r.Status != task.Running {
			c.reports[r.TaskID] = r
		}
		out.Results = append(out.Results, worker.ReportResult{TaskID: r.TaskID, Accepted: true})
	}
	return out, nil
}

func (c *fakeCoord) report(id task.ID) (worker.Report, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.reports[id]
	return r, ok
}

func assignments(n int) []worker.Assignment {
	out := make([]worker.Assignment, n)
	for i := range out {
		id, err := task.NewID()
		if err != nil {
			panic(err)
		}
		out[i] = worker.Assignment{TaskID: id, TenantID: "acme", Kind: "block", Attempt: 1, Timeout: task.Duration(time.Minute)}
	}
	return out
}

// A pool whose context ends gives running tasks ShutdownGrace, then
// cancels every one of them and reports each as a retryable
// worker_shutdown failure.
func TestPoolShutdownCancelsRunningTasks(t *testing.T) {
	c := &fakeCoord{pending: assignments(50), reports: map[task.ID]worker.Report{}}
	p := worker.NewPool(c, worker.Options{WorkerID: "w1", Concurrency: 64, ShutdownGrace: 50 * time.Millisecond,
		HeartbeatInterval: time.Hour})
	var started sync.WaitGroup
	started.Add(50)
	p.HandleFunc("block", func(ctx context.Context, _ *worker.Job) (any, error) {
		started.Done()
		<-ctx.Done()
		return nil, ctx.Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	started.Wait()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the pool did not stop: running tasks were not cancelled")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.reports) != 50 {
		t.Fatalf("%d outcomes reported, want 50", len(c.reports))
	}
	for id, r := range c.reports {
		if r.Status != task.Failed || r.Error == nil || r.Error.Code != "worker_shutdown" || !r.Error.Retryable {
			t.Fatalf("task %s: %s %+v, want a retryable worker_shutdown failure", id, r.Status, r.Error)
		}
	}
}

// A lease the heartbeat says is lost cancels that task only; the others
// finish.
func TestPoolLostLeaseCancelsThatTask(t *testing.T) {
	as := assignments(3)
	c := &fakeCoord{pending: as, reports: map[task.ID]worker.Report{},
		lost: []worker.LostLease{{LeaseRef: worker.LeaseRef{TaskID: as[1].TaskID, Attempt: 1}, Reason: "cancelled"}}}
	p := worker.NewPool(c, worker.Options{WorkerID: "w1", Concurrency: 8, HeartbeatInterval: 20 * time.Millisecond})
	release := make(chan struct{})
	cancelled := make(chan task.ID, 3)
	p.HandleFunc("block", func(ctx context.Context, j *worker.Job) (any, error) {
		select {
		case <-ctx.Done():
			cancelled <- j.TaskID
			return nil, ctx.Err()
		case <-release:
			return map[string]int{"ok": 1}, nil
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	select {
	case id := <-cancelled:
		if id != as[1].TaskID {
			t.Fatalf("task %s cancelled, want %s", id, as[1].TaskID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the lost lease's task was not cancelled")
	}
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for _, i := range []int{0, 2} {
		for {
			if r, ok := c.report(as[i].TaskID); ok {
				if r.Status != task.Completed {
					t.Fatalf("task %d: %s, want completed", i, r.Status)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("task %d never reported", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if _, ok := c.report(as[1].TaskID); ok {
		t.Error("the lost task's outcome was reported; the server refuses it anyway, the worker should not send it")
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

// A task past its timeout is cancelled and reported as a retryable
// timeout, not as a shutdown.
func TestPoolTimeout(t *testing.T) {
	as := assignments(1)
	as[0].Timeout = task.Duration(50 * time.Millisecond)
	c := &fakeCoord{pending: as, reports: map[task.ID]worker.Report{}}
	p := worker.NewPool(c, worker.Options{WorkerID: "w1", Concurrency: 2, HeartbeatInterval: time.Hour})
	p.HandleFunc("block", func(ctx context.Context, _ *worker.Job) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if r, ok := c.report(as[0].TaskID); ok {
			if r.Status != task.Failed || r.Error == nil || r.Error.Code != "timeout" || !r.Error.Retryable {
				t.Fatalf("report %s %+v, want a retryable timeout", r.Status, r.Error)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no report")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}

// recordingCoord records each Complete request's reports, holding the first
// request until release is closed.
type recordingCoord struct {
	fakeCoord
	release  chan struct{}
	once     sync.Once
	requests [][]worker.Report
}

func (c *recordingCoord) Complete(ctx context.Context, req *worker.CompleteRequest) (*worker.CompleteResponse, error) {
	c.once.Do(func() { <-c.release })
	c.mu.Lock()
	c.requests = append(c.requests, append([]worker.Report(nil), req.Reports...))
	c.mu.Unlock()
	return c.fakeCoord.Complete(ctx, req)
}

// The running report of an attempt whose outcome travels in the same
// request is left out, and that outcome carries the start time instead; a
// running report whose outcome is not there yet is sent.
func TestPoolOutcomeCarriesStart(t *testing.T) {
	const n = 40
	c := &recordingCoord{fakeCoord: fakeCoord{pending: assignments(n), reports: map[task.ID]worker.Report{}}, release: make(chan struct{})}
	slow := assignments(1)[0]
	slow.Kind = "slow"
	c.pending = append(c.pending, slow)
	p := worker.NewPool(c, worker.Options{WorkerID: "w1", Concurrency: 64, HeartbeatInterval: time.Hour})
	var ran atomic.Int32
	p.HandleFunc("block", func(context.Context, *worker.Job) (any, error) { ran.Add(1); return "ok", nil })
	unblock := make(chan struct{})
	p.HandleFunc("slow", func(ctx context.Context, _ *worker.Job) (any, error) {
		select {
		case <-unblock:
			return "late", nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	// The first request is held while every quick task finishes, so later
	// requests carry starts and outcomes together.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ran.Load() == n || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(c.release)
	// The slow task's start is sent although its outcome is not there.
	for {
		c.mu.Lock()
		var seen bool
		for _, req := range c.requests {
			for _, r := range req {
				seen = seen || (r.TaskID == slow.TaskID && r.Status == task.Running)
			}
		}
		c.mu.Unlock()
		if seen {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the running report of a task still running was not sent")
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(unblock)
	for {
		if _, ok := c.report(slow.TaskID); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slow task's outcome was not reported")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	starts := map[task.ID]int{} // task → request index of its running report
	left := 0
	for i, req := range c.requests {
		for _, r := range req {
			switch r.Status {
			case task.Running:
				starts[r.TaskID] = i
			default:
				j, sent := starts[r.TaskID]
				switch {
				case sent && j == i:
					t.Fatalf("task %s: running report and outcome in one request", r.TaskID)
				case sent && r.StartedAt != nil:
					t.Fatalf("task %s: outcome repeats the start its running report sent", r.TaskID)
				case !sent && (r.StartedAt == nil || r.StartedAt.After(r.At)):
					t.Fatalf("task %s: running report left out, outcome at %v with start %v", r.TaskID, r.At, r.StartedAt)
				case !sent:
					left++
				}
			}
		}
	}
	if len(c.reports) != n+1 {
		t.Fatalf("%d outcomes, want %d", len(c.reports), n+1)
	}
	if left == 0 {
		t.Fatal("no running report was left out, although outcomes queued behind a held request")
	}
}

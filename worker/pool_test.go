package worker_test

import (
	"context"
	"errors"
	"sync"
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

package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// TestSIGTERMGraceful stops greyd with SIGTERM while a task runs: the task
// finishes within the worker shutdown grace, greyd exits 0, and after a
// restart the task is completed, with one attempt.
func TestSIGTERMGraceful(t *testing.T) {
	requireE2E(t)
	g := newGreyd(t, "")
	g.Start()
	g.WaitReady(30 * time.Second)
	c, err := client.New(g.URL(), client.WithTenant("sigterm"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tk, err := c.Submit(ctx, task.Spec{Kind: "sleep", Payload: json.RawMessage(`{"ms":500}`)})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}

	// Wait until it runs.
	for {
		got, err := c.Get(ctx, tk.ID)
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		if got.Status == task.Running {
			break
		}
		if got.Status.Terminal() {
			t.Fatalf("task became %s before it was seen running", got.Status)
		}
		if ctx.Err() != nil {
			t.Fatalf("task still %s after 30s", got.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}

	sigAt := time.Now()
	g.Signal(syscall.SIGTERM)
	code, ok := g.WaitExit(10 * time.Second)
	if !ok {
		g.Kill()
		t.Fatalf("greyd still running 10s after SIGTERM")
	}
	stopped := time.Since(sigAt)
	if code != 0 {
		t.Errorf("greyd exited with %d after SIGTERM, want 0; stderr:\n%s", code, tail([]byte(g.Stderr()), 4000))
	}
	if !strings.Contains(g.Stderr(), "greyd stopped") {
		t.Errorf("greyd's log does not end with \"greyd stopped\":\n%s", tail([]byte(g.Stderr()), 2000))
	}
	t.Logf("SIGTERM to exit: %s", stopped.Round(time.Millisecond))

	g.Start()
	ready := g.WaitReady(30 * time.Second)
	t.Logf("restart to /readyz: %s", ready.Round(time.Millisecond))
	if ready > 15*time.Second {
		t.Errorf("restart to ready took %s", ready)
	}

	// The first read after /readyz must already see the task's outcome.
	got, err := c.Get(ctx, tk.ID)
	switch {
	case greyerr.Is(err, greyerr.NotFound):
		t.Errorf("get right after /readyz: %v ", err)
	case err != nil:
		t.Errorf("get right after /readyz: %v", err)
	case got.Status != task.Completed:
		t.Errorf("get right after /readyz: task is %s, want completed ", got.Status)
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	got, err = c.Wait(wctx, tk.ID)
	if err != nil {
		t.Fatalf("wait after restart: %v", err)
	}
	if got.Status != task.Completed {
		t.Fatalf("task %s after restart, want completed; error %+v", got.Status, got.Error)
	}
	if len(got.Attempts) != 1 || got.Attempts[0].Error != nil || got.Attempts[0].FinishedAt == nil {
		t.Errorf("want one clean attempt (finished during the grace), got %+v", got.Attempts)
	}
	if string(got.Result) != `{"slept_ms":500}` {
		t.Errorf("result %s, want {\"slept_ms\":500}", got.Result)
	}
	if got.FinishedAt != nil && got.FinishedAt.After(sigAt.Add(stopped)) {
		t.Errorf("task finished at %s, after greyd had exited", got.FinishedAt)
	}
}

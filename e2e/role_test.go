package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/task"
)

// TestServerRoleRunsNoWorkers: greyd --role server (with worker.enabled
// left at its default, true) executes nothing: a submitted task stays
// pending and no node of role worker is registered; once a worker-only
// node joins, it runs the task.
func TestServerRoleRunsNoWorkers(t *testing.T) {
	requireE2E(t)
	g := newGreyd(t, "")
	g.run(exec.Command(greydBin, append(g.args(), "--role", "server")...))
	g.WaitReady(30 * time.Second)

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c, err := client.New(g.URL())
	if err != nil {
		t.Fatal(err)
	}
	tk, err := c.Submit(ctx, task.Spec{Kind: "echo", Payload: []byte(`"served by a worker node"`)})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	// Long enough for a built-in worker to lease and finish an echo many
	// times over (they lease within milliseconds when present).
	time.Sleep(2 * time.Second)
	got, err := c.Get(ctx, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != task.Pending || len(got.Attempts) != 0 {
		t.Fatalf("on a server-role node alone the task is %s with attempts %+v; want pending, never leased", got.Status, got.Attempts)
	}

	wdir := t.TempDir()
	metrics := fmt.Sprintf("127.0.0.1:%d", freePortOn(t, "127.0.0.1"))
	w := newNodeProc(t, wdir, "w1", "", "--role", "worker", "--node-id", "w1", "--data-dir", filepath.Join(wdir, "w1"),
		"--metrics-addr", metrics, "--servers", g.URL())
	w.Start()
	done, err := c.Wait(ctx, tk.ID)
	if err != nil {
		t.Fatalf("wait: %v (worker stderr:\n%s)", err, tail([]byte(w.Stderr()), 4000))
	}
	if done.Status != task.Completed || string(done.Result) != `"served by a worker node"` {
		t.Fatalf("task %s, result %s, error %+v; want completed by the worker node", done.Status, done.Result, done.Error)
	}
	for _, a := range done.Attempts {
		if a.WorkerID != "w1" {
			t.Fatalf("attempt %d by %q: want every attempt by the worker node w1", a.N, a.WorkerID)
		}
	}
}

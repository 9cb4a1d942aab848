package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/task"
)

// TestWorkerNodeRunsWasm: a module pushed to a server (which runs no
// workers itself) is run by a worker-only node (greyd --role worker
// --servers …), which has no module store and fetches the module over the
// API as the task's tenant.
func TestWorkerNodeRunsWasm(t *testing.T) {
	requireE2E(t)
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	echo, err := os.ReadFile(filepath.Join(root, "examples/wasm/echo/echo.wasm"))
	if err != nil {
		t.Fatal(err)
	}

	g := newGreyd(t, "worker:\n  enabled: false\n")
	g.Start()
	g.WaitReady(30 * time.Second)
	wdir := t.TempDir()
	metrics := fmt.Sprintf("127.0.0.1:%d", freePortOn(t, "127.0.0.1"))
	w := newNodeProc(t, wdir, "w1", "", "--role", "worker", "--node-id", "w1", "--data-dir", filepath.Join(wdir, "w1"),
		"--metrics-addr", metrics, "--servers", g.URL())
	w.Start()

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	acme, err := client.New(g.URL(), client.WithTenant("acme"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := acme.PushModule(ctx, echo)
	if err != nil {
		t.Fatalf("push module: %v", err)
	}

	noRetries := 0
	run := func(c *client.Client, p map[string]any) *task.Task {
		t.Helper()
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		tk, err := c.Submit(ctx, task.Spec{Kind: "wasm", Payload: b, Retry: &task.RetryPolicy{MaxRetries: &noRetries}})
		if err != nil {
			t.Fatalf("submit: %v", err)
		}
		done, err := c.Wait(ctx, tk.ID)
		if err != nil {
			t.Fatalf("wait for %s: %v (worker stderr:\n%s)", tk.ID, err, tail([]byte(w.Stderr()), 4000))
		}
		if len(done.Attempts) == 0 || done.Attempts[len(done.Attempts)-1].WorkerID != "w1" {
			t.Errorf("task %s attempts %+v: want the last one by worker w1", done.ID, done.Attempts)
		}
		return done
	}

	// Text in, the same text out (a JSON string result).
	tk := run(acme, map[string]any{"module": m.Digest, "input": "hello from a worker node"})
	if tk.Status != task.Completed || string(tk.Result) != `"hello from a worker node"` {
		t.Fatalf("echo task: status %s, result %s, error %+v", tk.Status, tk.Result, tk.Error)
	}
	// JSON in, the same JSON out.
	tk = run(acme, map[string]any{"module": m.Digest, "input": map[string]any{"n": 1, "words": []string{"a", "b"}}})
	var got any
	if tk.Status != task.Completed || json.Unmarshal(tk.Result, &got) != nil ||
		!reflect.DeepEqual(got, map[string]any{"n": 1.0, "words": []any{"a", "b"}}) {
		t.Fatalf("echo JSON task: status %s, result %s, error %+v", tk.Status, tk.Result, tk.Error)
	}

	// The worker node signed the proof with its own key, registered with
	// the cluster; the proof names the module as the measurement, and a
	// replay on the server gives the same output.
	rec, err := acme.Proof(ctx, tk.ID)
	if err != nil {
		t.Fatalf("proof: %v", err)
	}
	if !rec.Verified || rec.NodeID != "w1" || rec.Short.Measurement != m.Digest || rec.Short.Platform != "software" {
		t.Fatalf("proof of a worker node's task = verified %v (%s), node %q, measurement %q; want verified, by w1, measuring %s",
			rec.Verified, rec.Problem, rec.NodeID, rec.Short.Measurement, m.Digest)
	}
	rp, err := acme.Replay(ctx, tk.ID)
	if err != nil || !rp.Match {
		t.Fatalf("replay = %+v, %v; want a match", rp, err)
	}

	// The worker node exports its own metrics: its slots and the proofs it
	// signed.
	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatalf("worker metrics: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`grey_workers{state="idle"}`, `grey_proofs_total{platform="software",result="generated"} 2`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("worker metrics lack %s", want)
		}
	}

	// Another tenant naming acme's digest: the worker fetches as that
	// tenant, which has no such module.
	other, err := client.New(g.URL(), client.WithTenant("other"))
	if err != nil {
		t.Fatal(err)
	}
	tk = run(other, map[string]any{"module": m.Digest, "input": "x"})
	if tk.Status != task.Failed || tk.Error == nil || tk.Error.Code != "module_not_found" || tk.Error.Retryable {
		t.Fatalf("other tenant's task: status %s, error %+v; want failed with module_not_found", tk.Status, tk.Error)
	}
}

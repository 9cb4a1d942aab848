package inference_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/executor/inference"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/proof"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/worker"
)

// TestThroughTheCluster runs inference tasks the way greyd does: submitted
// to a one-node cluster with the kind's default timeout, leased by a worker
// pool, batched, completed with a proof that names the model and verifies,
// and replayed on the CPU to the same output digest. Bad tasks fail with
// their codes; a crash is retried.
func TestThroughTheCluster(t *testing.T) {
	f := newFixture(t, nil)
	m := f.src.push("acme", "mlp", ai.PyTorch, "torch:double")
	f.src.push("acme", "crasher", ai.PyTorch, "torch:crash")
	h := map[string]worker.Handler{inference.Kind: f.exec}
	n := greytest.NewNode(t, engine.Config{
		Kinds: []string{inference.Kind}, Replay: h,
		KindTimeouts: map[string]time.Duration{inference.Kind: 30 * time.Second},
		ValidatePayload: func(kind string, p json.RawMessage) error {
			if kind == inference.Kind {
				return f.exec.ValidatePayload(p)
			}
			return nil
		},
	})
	n.StartWorkers(t, worker.Options{Concurrency: 32}, h)
	ctx := context.Background()

	const tasks = 60
	specs := make([]task.Spec, tasks)
	for i := range specs {
		specs[i] = task.Spec{Kind: inference.Kind, Payload: payload("mlp", 1+i%3, float32(i))}
	}
	res, err := n.Engine.Submit(ctx, "acme", specs, true)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i, tk := range res.Tasks {
		if tk.Timeout.D() != 30*time.Second {
			t.Fatalf("task timeout %v, want the kind's default 30s", tk.Timeout)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := n.Engine.Wait(ctx, "acme", tk.ID, 20*time.Second)
			if err != nil || got.Status != task.Completed {
				t.Errorf("task %d: %v %+v", i, err, got)
				return
			}
			var r ai.Response
			if err := json.Unmarshal(got.Result, &r); err != nil || r.ModelVersion != "1" || r.Outputs[0].Shape[0] != int64(1+i%3) {
				t.Errorf("task %d result %s: %v", i, got.Result, err)
			}
		}()
	}
	wg.Wait()
	if c := f.drv.calls.Load(); c >= tasks {
		t.Errorf("%d runtime calls for %d tasks: nothing batched", c, tasks)
	}
	t.Logf("%d tasks in %d runtime calls", tasks, f.drv.calls.Load())

	id := res.Tasks[0].ID
	rec, err := n.Engine.Proof(ctx, "acme", id)
	if err != nil || !rec.Verified {
		t.Fatalf("proof %+v: %v", rec, err)
	}
	st, err := proof.DecodeStatement(rec.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	x, _, _ := st.Find(id)
	if x.Model == nil || x.Model.Digest != m.Digest || x.Model.Name != "mlp" || x.Model.Version != "1" || x.Model.Runtime != "fake" ||
		x.Model.FrameworkVersion != "1.13.0" || x.Executor.Digest != m.Digest {
		t.Fatalf("proof names %+v / %+v", x.Executor, x.Model)
	}
	rep, err := n.Engine.Replay(ctx, "acme", id)
	if err != nil || !rep.Match {
		t.Fatalf("replay %+v: %v", rep, err)
	}

	// A malformed payload is refused at submit, naming the field.
	if _, err := n.Engine.Submit(ctx, "acme", []task.Spec{{Kind: inference.Kind, Payload: json.RawMessage(`{"model":"mlp","inputs":[]}`)}}, false); err == nil || !strings.Contains(err.Error(), "payload") {
		t.Fatalf("a malformed payload at submit: %v", err)
	}
	// Another tenant's model: failed at once, not retried.
	other := submitOne(t, n, "globex", payload("mlp", 1, 0), nil)
	if other.Status != task.Failed || other.Error.Code != inference.CodeModelNotFound || other.Attempt != 1 {
		t.Fatalf("another tenant's model: %s attempt %d %+v", other.Status, other.Attempt, other.Error)
	}
	// A crash: retried, then failed retryable after the retries.
	zero := 1
	crash := submitOne(t, n, "acme", payload("crasher", 1, 0), &task.RetryPolicy{MaxRetries: &zero, BaseDelay: task.Duration(time.Millisecond)})
	if crash.Status != task.Failed || crash.Error.Code != inference.CodeRuntimeUnavailable || !crash.Error.Retryable || crash.Attempt != 2 {
		t.Fatalf("a crashing runtime: %s attempt %d %+v", crash.Status, crash.Attempt, crash.Error)
	}
}

func submitOne(t *testing.T, n *greytest.Node, tenant string, p json.RawMessage, retry *task.RetryPolicy) *task.Task {
	t.Helper()
	res, err := n.Engine.Submit(context.Background(), tenant, []task.Spec{{Kind: inference.Kind, Payload: p, Retry: retry}}, false)
	if err != nil {
		t.Fatal(err)
	}
	got, err := n.Engine.Wait(context.Background(), tenant, res.Tasks[0].ID, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

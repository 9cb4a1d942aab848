package engine_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/proof"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/worker"
)

// measuredEcho answers its payload as a worker.Measured naming a model.
type measuredEcho struct{}

var testModel = proof.Model{Name: "mlp", Version: "3", Digest: "sha256:" + proof.Digest([]byte("weights")),
	Framework: "pytorch", FrameworkVersion: "1.13.0", Runtime: "mem", RuntimeVersion: "1", Device: "cpu"}

func (measuredEcho) Work(_ context.Context, j *worker.Job) (any, error) {
	m := testModel
	return worker.Measured{Value: json.RawMessage(j.Payload),
		Executor: &proof.Executor{Name: "inference", Version: "mem 1", Digest: m.Digest}, Model: &m}, nil
}

func (measuredEcho) Deterministic(*worker.Job) bool { return true }

// A handler that returns a worker.Measured gets its own measurement and
// model in the proof; the stored result (and a replay's) is its Value.
func TestMeasuredResult(t *testing.T) {
	t.Parallel()
	h := map[string]worker.Handler{"measured": measuredEcho{}}
	n := greytest.NewNode(t, engine.Config{Kinds: []string{"measured"}, Replay: h})
	n.StartWorkers(t, worker.Options{Concurrency: 2}, h)
	tk := submit(t, n.Engine, "acme", task.Spec{Kind: "measured", Payload: json.RawMessage(`{"x":[1,2]}`)})[0]
	got := wait(t, n.Engine, "acme", tk.ID)
	if got.Status != task.Completed || string(got.Result) != `{"x":[1,2]}` {
		t.Fatalf("task %s result %s", got.Status, got.Result)
	}
	rec, err := n.Engine.Proof(context.Background(), "acme", tk.ID)
	if err != nil || !rec.Verified {
		t.Fatalf("proof %+v %v", rec, err)
	}
	st, err := proof.DecodeStatement(rec.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	x, _, _ := st.Find(tk.ID)
	if x.Executor.Name != "inference" || x.Executor.Digest != testModel.Digest || x.Model == nil || *x.Model != testModel {
		t.Fatalf("execution %+v model %+v", x.Executor, x.Model)
	}
	r, err := n.Engine.Replay(context.Background(), "acme", tk.ID)
	if err != nil || !r.Match {
		t.Fatalf("replay %+v %v", r, err)
	}
}

// A kind with its own default timeout gets it at submit when the task
// names none; a task's own timeout and other kinds are left alone.
func TestKindTimeouts(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{Kinds: []string{"slowkind"}, KindTimeouts: map[string]time.Duration{"slowkind": 7 * time.Second}})
	got := submit(t, n.Engine, "acme", task.Spec{Kind: "slowkind"}, task.Spec{Kind: "slowkind", Timeout: task.Duration(time.Second)}, task.Spec{Kind: "echo"})
	if got[0].Timeout.D() != 7*time.Second || got[1].Timeout.D() != time.Second || got[2].Timeout != 0 {
		t.Fatalf("timeouts %v %v %v, want 7s 1s 0", got[0].Timeout, got[1].Timeout, got[2].Timeout)
	}
}

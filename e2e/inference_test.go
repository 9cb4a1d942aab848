package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/pyruntime/pyruntimetest"
	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/proof"
	"github.com/grey-distributed/grey/task"
)

// TestInferenceTorchAndTensorFlow is the inference kind end to end on real
// frameworks: a TorchScript MLP pushed with the Go client and a SavedModel
// directory pushed with greyctl, 1,000 one-row inference tasks each on a
// greyd whose Python runtimes (Debian's torch, tensorflow-cpu's venv) batch
// them; every result equals the model run directly in Python on the same
// rows, and every proof verifies and names the model's digest.
func TestInferenceTorchAndTensorFlow(t *testing.T) {
	requireE2E(t)
	torchPy, tfPy := pyruntimetest.TorchPython(t), pyruntimetest.TensorFlowPython(t)
	if torchPy == "" || tfPy == "" {
		return // skipped (outside CI) by the helpers
	}
	const rows = 1000
	mlp := pyruntimetest.Build(t, torchPy, pyruntimetest.TorchMLP, rows)
	sm := pyruntimetest.Build(t, tfPy, pyruntimetest.SavedModel, rows)

	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	g, acme, pushed := startInference(ctx, t, fmt.Sprintf(`ai:
  runtimes:
    - {name: torch, url: "python://%s?threads=1", frameworks: [pytorch]}
    - {name: tf, url: "python://%s?threads=1", frameworks: [tensorflow]}
  batching: {max_batch_size: 32, max_queue_delay: 5ms}
`, torchPy, tfPy), mlp)
	res := greyctl(t, g.URL(), 2*time.Minute, "--tenant", "acme", "-o", "json", "model", "push",
		"--name", "linear", "--version", "1", "--framework", "tensorflow", sm.Path)
	if res.Code != 0 {
		t.Fatalf("greyctl model push (SavedModel dir): exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	var smModel ai.Model
	if err := json.Unmarshal([]byte(res.Stdout), &smModel); err != nil {
		t.Fatalf("greyctl model push -o json: %v\n%s", err, res.Stdout)
	}
	if smModel.Digest != sm.Model.Digest {
		t.Fatalf("greyctl's tar of the SavedModel has digest %s, the test's deterministic tar %s", smModel.Digest, sm.Model.Digest)
	}

	// Another tenant cannot name acme's model: 404 at submit.
	globex, err := client.New(g.URL(), client.WithTenant("globex"))
	if err != nil {
		t.Fatal(err)
	}
	one := oneRow(mlp.Inputs, 0)
	payload, _ := json.Marshal(ai.Request{Model: "mlp:1", Inputs: one})
	if _, err := globex.Submit(ctx, task.Spec{Kind: ai.Kind, Payload: payload}); err == nil || !strings.Contains(err.Error(), "404") && !strings.Contains(strings.ToLower(err.Error()), "not found") {
		t.Fatalf("globex submitting acme's model: %v, want not found", err)
	}

	for _, c := range []struct {
		model string
		fx    pyruntimetest.Fixture
		m     ai.Model
	}{{"mlp:1", mlp, *pushed}, {"linear@latest", sm, smModel}} {
		t.Run(c.fx.Kind, func(t *testing.T) {
			start := time.Now()
			yes := true
			specs := make([]task.Spec, rows)
			for r := range rows {
				p, err := json.Marshal(ai.Request{Model: c.model, ID: fmt.Sprint(r), Inputs: oneRow(c.fx.Inputs, r)})
				if err != nil {
					t.Fatal(err)
				}
				specs[r] = task.Spec{Kind: ai.Kind, Payload: p, RequireProof: &yes}
			}
			var ids []task.ID
			for i := 0; i < rows; i += 250 {
				ts, err := acme.SubmitBatch(ctx, specs[i:i+250])
				if err != nil {
					t.Fatalf("submit: %v", err)
				}
				for _, tk := range ts {
					ids = append(ids, tk.ID)
				}
			}
			ring, err := acme.KeyRing(ctx)
			if err != nil {
				t.Fatal(err)
			}
			worst := 0.0
			for r, id := range ids {
				tk, err := acme.Wait(ctx, id)
				if err != nil {
					t.Fatalf("task %d: %v", r, err)
				}
				if tk.Status != task.Completed {
					t.Fatalf("task %d: %s %+v", r, tk.Status, tk.Error)
				}
				var resp ai.Response
				if err := json.Unmarshal(tk.Result, &resp); err != nil {
					t.Fatalf("task %d result: %v\n%s", r, err, tk.Result)
				}
				if resp.ModelVersion != "1" || resp.ID != fmt.Sprint(r) {
					t.Fatalf("task %d answered model version %q id %q", r, resp.ModelVersion, resp.ID)
				}
				worst = math.Max(worst, compareRow(t, r, resp.Outputs, c.fx.Outputs))
				rec, err := acme.Proof(ctx, id)
				if err != nil {
					t.Fatalf("proof of task %d: %v", r, err)
				}
				if !rec.Verified {
					t.Fatalf("proof of task %d does not verify on the server: %s", r, rec.Problem)
				}
				stmt, err := proof.Verify(rec.Envelope, ring, proof.Expect{TaskID: string(id), TenantID: "acme",
					InputDigest: proof.InputDigest(tk), OutputDigest: proof.OutputDigest(tk)})
				if err != nil {
					t.Fatalf("proof of task %d does not verify here: %v", r, err)
				}
				var found bool
				for _, ex := range stmt.Predicate.Executions {
					if ex.TaskID == string(id) {
						found = true
						if ex.Model == nil || ex.Model.Digest != c.m.Digest || ex.Model.Version != "1" || ex.Model.Framework != string(c.m.Framework) {
							t.Fatalf("proof of task %d names model %+v, want digest %s", r, ex.Model, c.m.Digest)
						}
					}
				}
				if !found {
					t.Fatalf("proof of task %d does not list it", r)
				}
			}
			// A deterministic model on CPU replays to the proven output.
			rep, err := acme.Replay(ctx, ids[len(ids)/2])
			if err != nil {
				t.Fatalf("replay: %v", err)
			}
			if !rep.Match || rep.ReplayDigest != rep.ProofDigest {
				t.Fatalf("replay of a CPU inference does not reproduce its proof's output digest: %+v", rep)
			}
			t.Logf("%s: %d tasks in %s, largest relative difference from Python %.3g", c.model, rows, time.Since(start).Round(time.Millisecond), worst)
		})
	}
	if t.Failed() {
		return
	}
	// The runtimes batched: the batch-size histogram saw calls of more
	// than one row.
	body := scrape(t, "http://"+g.MetricsAddr+"/metrics")
	if !strings.Contains(body, "grey_inference_batch_size_count") {
		t.Fatalf("no grey_inference_batch_size in the metrics")
	}
	sum, count := metricValue(body, "grey_inference_batch_size_sum"), metricValue(body, "grey_inference_batch_size_count")
	if count == 0 || sum/count <= 1 {
		t.Errorf("mean batch size %.2f over %.0f calls: the runtimes did not batch", sum/count, count)
	}
	t.Logf("mean batch size %.2f over %.0f runtime calls", sum/count, count)

	// The leader shows the models the node's workers hold warm.
	nodes, err := acme.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	warm := map[string]bool{}
	for _, n := range nodes {
		for _, d := range n.WarmModels {
			warm[d] = true
		}
	}
	if !warm[pushed.Digest] || !warm[smModel.Digest] {
		t.Errorf("cluster nodes report warm %v, want both models' digests", warm)
	}
}

// oneRow is row r of a batch of inputs, as a batch of one.
// startInference starts a greyd with config (its ai block), waits until
// it is ready, and pushes the TorchScript fixture mlp as model "mlp"
// version 1 for tenant acme with the Go client; it returns the greyd, acme's
// client and the pushed model, whose digest it checks against the file's.
// torchE2E is the Python of the TorchScript runtime for an e2e test and
// the fixture of kind built with it for rows; false when the test was
// skipped (outside CI, without torch).
func torchE2E(t *testing.T, kind string, rows int) (string, pyruntimetest.Fixture, bool) {
	t.Helper()
	requireE2E(t)
	py := pyruntimetest.TorchPython(t)
	if py == "" {
		return "", pyruntimetest.Fixture{}, false // skipped by the helper
	}
	return py, pyruntimetest.Build(t, py, kind, rows), true
}

// torchRuntime is an ai block with one TorchScript runtime on py; a
// test appends its own batching.
func torchRuntime(py string) string {
	return fmt.Sprintf("ai:\n  runtimes:\n    - {name: torch, url: \"python://%s?threads=1\", frameworks: [pytorch]}\n", py)
}

func startInference(ctx context.Context, t *testing.T, config string, mlp pyruntimetest.Fixture) (*greyd, *client.Client, *ai.Model) {
	t.Helper()
	g := newGreyd(t, config)
	g.Start()
	g.WaitReady(2 * time.Minute)
	acme, err := client.New(g.URL(), client.WithTenant("acme"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(mlp.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := acme.PushModel(ctx, client.PushModelSpec{Name: "mlp", Version: "1", Framework: ai.PyTorch, Size: st.Size()}, f)
	if err != nil {
		t.Fatalf("push the TorchScript model: %v", err)
	}
	if pushed.Digest != mlp.Model.Digest {
		t.Fatalf("registry digest %s, file digest %s", pushed.Digest, mlp.Model.Digest)
	}
	return g, acme, pushed
}

func oneRow(in []ai.Tensor, r int) []ai.Tensor {
	out := make([]ai.Tensor, len(in))
	for i, x := range in {
		rowBytes := len(x.Data) / int(x.Shape[0])
		shape := append([]int64{1}, x.Shape[1:]...)
		out[i] = ai.Tensor{Name: x.Name, Datatype: x.Datatype, Shape: shape, Data: x.Data[r*rowBytes : (r+1)*rowBytes]}
	}
	return out
}

// compareRow checks a task's outputs against row r of the outputs Python
// computed for the whole batch and returns the largest relative
// difference of a float element. Integers must be equal; floats within
// 1e-5 (one-row and many-row matrix products may round differently).
func compareRow(t *testing.T, r int, got, batch []ai.Tensor) float64 {
	t.Helper()
	want := oneRow(batch, r)
	if len(got) != len(want) {
		t.Fatalf("task %d: %d outputs, want %d", r, len(got), len(want))
	}
	byName := map[string]ai.Tensor{}
	for _, g := range got {
		byName[g.Name] = g
	}
	worst := 0.0
	for _, w := range want {
		g, ok := byName[w.Name]
		if !ok || g.Datatype != w.Datatype || fmt.Sprint(g.Shape) != fmt.Sprint(w.Shape) {
			t.Fatalf("task %d: output %q is %+v, want %s %v", r, w.Name, g, w.Datatype, w.Shape)
		}
		if w.Datatype != ai.FP32 {
			if !bytes.Equal(g.Data, w.Data) {
				t.Fatalf("task %d: output %q differs from Python's", r, w.Name)
			}
			continue
		}
		for i := 0; i+4 <= len(w.Data); i += 4 {
			a := float64(math.Float32frombits(binary.LittleEndian.Uint32(g.Data[i:])))
			b := float64(math.Float32frombits(binary.LittleEndian.Uint32(w.Data[i:])))
			d := math.Abs(a-b) / math.Max(1e-6, math.Abs(b))
			worst = math.Max(worst, d)
			if d > 1e-5 {
				t.Fatalf("task %d: output %q element %d is %v, Python gave %v", r, w.Name, i/4, a, b)
			}
		}
	}
	return worst
}

// metricValue sums the samples of name over their labels in a Prometheus
// text exposition (0 when absent).
func metricValue(body, name string) float64 {
	var sum float64
	for _, line := range strings.Split(body, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		var f float64
		if _, err := fmt.Sscan(rest[strings.LastIndexByte(rest, ' ')+1:], &f); err == nil {
			sum += f
		}
	}
	return sum
}

// scrape returns a Prometheus endpoint's exposition.
func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestInferenceReplayBatched: tasks of a model whose rows' bits depend on
// the call's row count (a 256-wide MLP on OpenBLAS) run batched, their
// proofs name the call's rows, and replays, padded to those rows,
// reproduce the proven output digests.
func TestInferenceReplayBatched(t *testing.T) {
	const rows = 64
	torchPy, wide, ok := torchE2E(t, pyruntimetest.TorchWide, rows)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	_, acme, _ := startInference(ctx, t, torchRuntime(torchPy)+`  batching: {max_batch_size: 32, max_queue_delay: 20ms}
`, wide)
	yes := true
	specs := make([]task.Spec, rows)
	for r := range rows {
		p, err := json.Marshal(ai.Request{Model: "mlp:1", Inputs: oneRow(wide.Inputs, r)})
		if err != nil {
			t.Fatal(err)
		}
		specs[r] = task.Spec{Kind: ai.Kind, Payload: p, RequireProof: &yes}
	}
	ts, err := acme.SubmitBatch(ctx, specs)
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	replayed := 0
	for r, tk := range ts {
		done, err := acme.Wait(ctx, tk.ID)
		if err != nil || done.Status != task.Completed {
			t.Fatalf("task %d: %v %+v", r, err, done)
		}
		rec, err := acme.Proof(ctx, tk.ID)
		if err != nil || !rec.Verified {
			t.Fatalf("proof of task %d: %v %+v", r, err, rec)
		}
		st, err := proof.DecodeStatement(rec.Envelope)
		if err != nil {
			t.Fatal(err)
		}
		ex, _, ok := st.Find(string(tk.ID))
		if !ok || ex.Model == nil {
			t.Fatalf("proof of task %d names no model", r)
		}
		if ex.Model.BatchRows < 2 || replayed == 8 {
			continue
		}
		rep, err := acme.Replay(ctx, tk.ID)
		if err != nil {
			t.Fatalf("replay task %d: %v", r, err)
		}
		if !rep.Match {
			t.Fatalf("replay of task %d (ran in a call of %d rows) does not reproduce its digest: %+v", r, ex.Model.BatchRows, rep)
		}
		replayed++
	}
	if replayed == 0 {
		t.Fatal("no task shared a model call: nothing batched to replay")
	}
	t.Logf("%d batched tasks replayed to their proven digests", replayed)
}

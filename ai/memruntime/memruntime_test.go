package memruntime_test

import (
	"context"
	"encoding/binary"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/memruntime"
	"github.com/grey-distributed/grey/ai/runtimetest"
	"github.com/grey-distributed/grey/greyerr"
)

const (
	raiseOn = 13.0
	hangOn  = 42.0
)

// testDoc is the suite's model: 4 features, a hidden layer of 8, 3 outputs,
// with flags no drawn input holds (the suite draws floats in [-1, 1)).
func testDoc() memruntime.Doc {
	d := memruntime.MLP(7, 4, 8, 3)
	r, h := raiseOn, hangOn
	d.RaiseOn, d.HangOn = &r, &h
	return d
}

func writeModel(t testing.TB, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "model.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func spec(path string, f ai.Framework) ai.LoadSpec {
	return ai.LoadSpec{Path: path, Model: ai.Model{TenantID: "t1", Name: "mlp", Version: "1", Framework: f, Digest: "sha256:00"}}
}

// reference is the MLP written out plainly, apart from the driver's code.
func reference(d memruntime.Doc) func([]ai.Tensor) ([]ai.Tensor, error) {
	return func(in []ai.Tensor) ([]ai.Tensor, error) {
		x := in[0]
		rows, feat := int(x.Shape[0]), int(x.Shape[1])
		le := binary.LittleEndian
		var y, label []byte
		classes := len(d.Layers[len(d.Layers)-1].W)
		for r := 0; r < rows; r++ {
			act := make([]float64, feat)
			for i := range act {
				act[i] = float64(math.Float32frombits(le.Uint32(x.Data[4*(r*feat+i):])))
			}
			for _, l := range d.Layers {
				next := make([]float64, len(l.W))
				for o := range l.W {
					for i := range act {
						next[o] += l.W[o][i] * act[i]
					}
					next[o] += l.B[o]
					if l.ReLU {
						next[o] = math.Max(0, next[o])
					}
				}
				act = next
			}
			best := 0
			for o := range act {
				y = le.AppendUint32(y, math.Float32bits(float32(act[o])))
				if float32(act[o]) > float32(act[best]) {
					best = o
				}
			}
			label = le.AppendUint64(label, uint64(best))
		}
		return []ai.Tensor{
			{Name: "label", Datatype: ai.Int64, Shape: []int64{int64(rows)}, Data: label},
			{Name: "y", Datatype: ai.FP32, Shape: []int64{int64(rows), int64(classes)}, Data: y},
		}, nil
	}
}

func flagged(v float32) []ai.Tensor {
	return []ai.Tensor{memruntime.Tensor([][]float32{{0.5, v, 0, 0}})}
}

func harness(t *testing.T) runtimetest.Harness {
	doc := testDoc()
	path := writeModel(t, doc.Marshal())
	notModel := spec(writeModel(t, []byte("this is not a model")), ai.PyTorch)
	return runtimetest.Harness{
		Open: func(testing.TB) ai.Driver { return memruntime.Open(memruntime.Options{}) },
		Model: runtimetest.Model{
			Spec:      spec(path, ai.PyTorch),
			Inputs:    []runtimetest.TensorSpec{{Name: "x", Datatype: ai.FP32, Shape: []int64{4}}},
			Outputs:   []string{"y", "label"},
			Reference: reference(doc),
		},
		Raising:   &runtimetest.Fault{Inputs: flagged(raiseOn)},
		Hanging:   &runtimetest.Fault{Inputs: flagged(hangOn)},
		NotAModel: &notModel,
	}
}

func TestConformance(t *testing.T) { runtimetest.Run(t, harness(t)) }

// The suite also runs from cases, as a harness whose models are built
// outside Go provides them.
func TestConformanceFromCases(t *testing.T) {
	h := harness(t)
	var cases []runtimetest.Case
	for i := 0; i < 3; i++ {
		in := []ai.Tensor{memruntime.Tensor([][]float32{{float32(i), 0.25, -0.5, 1}, {0.1, float32(-i), 0.3, 0.7}})}
		out, _ := h.Model.Reference(in)
		cases = append(cases, runtimetest.Case{Inputs: in, Outputs: out})
	}
	h.Model.Reference = nil
	h.Model.Cases = cases
	runtimetest.Run(t, h)
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func TestRegisterAndURL(t *testing.T) {
	r := ai.NewRegistry()
	if err := memruntime.Register(r); err != nil {
		t.Fatal(err)
	}
	rt, err := r.Open(ctx(t), "gpu-sim", "mem://?frameworks=tensorflow&devices=cpu,cuda:0", ai.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	info, err := rt.Info(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := info.Frameworks[ai.PyTorch]; ok || !info.HasGPU() {
		t.Errorf("info %+v: want tensorflow only, with a GPU", info)
	}
	path := writeModel(t, testDoc().Marshal())
	s := spec(path, ai.TensorFlow)
	s.Key = "k"
	li, err := rt.Load(ctx(t), s)
	if err != nil || li.Device != "cuda:0" {
		t.Errorf("load with the runtime's choice of device: %+v, %v; want cuda:0", li, err)
	}
	s.Key, s.Model.Framework = "k2", ai.PyTorch
	_, err = rt.Load(ctx(t), s)
	if !greyerr.Is(err, greyerr.FailedPrecondition) {
		t.Errorf("load of a pytorch model on a tensorflow-only runtime: %v, want FailedPrecondition", err)
	}
	for _, bad := range []string{"mem://?frameworks=onnx", "mem://?devices=tpu", "mem://?colour=blue"} {
		if _, err := r.Open(ctx(t), "bad", bad, ai.OpenOptions{}); !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Errorf("open %s: %v, want InvalidArgument", bad, err)
		}
	}
	if _, err := url.Parse("mem://"); err != nil {
		t.Fatal(err)
	}
}

func TestWrongFrameworkAndDirectory(t *testing.T) {
	d := memruntime.Open(memruntime.Options{})
	defer d.Close()
	doc := testDoc()
	doc.Framework = ai.PyTorch
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, memruntime.DirFile), doc.Marshal(), 0o600); err != nil {
		t.Fatal(err)
	}
	s := spec(dir, ai.TensorFlow)
	s.Key = "tf"
	if _, err := d.Load(ctx(t), s); !greyerr.Is(err, greyerr.FailedPrecondition) {
		t.Errorf("a pytorch model pushed as tensorflow: %v, want FailedPrecondition", err)
	}
	s.Model.Framework, s.Key = ai.PyTorch, "pt"
	if _, err := d.Load(ctx(t), s); err != nil {
		t.Errorf("a model directory: %v", err)
	}
	s.Path, s.Key = filepath.Join(dir, "missing"), "missing"
	if _, err := d.Load(ctx(t), s); !greyerr.Is(err, greyerr.FailedPrecondition) {
		t.Errorf("a missing artifact: %v, want FailedPrecondition", err)
	}
	if _, err := d.Load(ctx(t), ai.LoadSpec{Key: "gpu", Device: "cuda", Path: dir, Model: s.Model}); !greyerr.Is(err, greyerr.FailedPrecondition) {
		t.Errorf("cuda on a cpu runtime: %v, want FailedPrecondition", err)
	}
}

func TestParseRefusesBadDocuments(t *testing.T) {
	for name, doc := range map[string]string{
		"not json":      "torchscript bytes",
		"no layers":     `{"layers":[]}`,
		"ragged":        `{"layers":[{"w":[[1,2],[3]]}]}`,
		"mismatch":      `{"layers":[{"w":[[1,2]]},{"w":[[1,2]]}]}`,
		"bias count":    `{"layers":[{"w":[[1,2]],"b":[1,2]}]}`,
		"unknown field": `{"layers":[{"w":[[1]]}],"colour":1}`,
		"framework":     `{"framework":"onnx","layers":[{"w":[[1]]}]}`,
		"latency":       `{"layers":[{"w":[[1]]}],"latency":"-1s"}`,
		"two documents": `{"layers":[{"w":[[1]]}]} {}`,
		"slots":         `{"layers":[{"w":[[1]]}],"slots":-1}`,
	} {
		if _, err := memruntime.Parse([]byte(doc)); !greyerr.Is(err, greyerr.FailedPrecondition) {
			t.Errorf("%s: %v, want FailedPrecondition", name, err)
		}
	}
}

// The simulated cost: a call takes latency + rows × row_cost, and with one
// slot calls queue as on one device, so one batch of 16 beats 16 calls.
func TestSimulatedCost(t *testing.T) {
	doc := memruntime.MLP(1, 4, 3)
	doc.Latency = memruntime.Duration(20 * time.Millisecond)
	doc.RowCost = memruntime.Duration(time.Millisecond)
	doc.Slots = 1
	m, err := memruntime.Parse(doc.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	rows := make([][]float32, 16)
	for i := range rows {
		rows[i] = []float32{1, 2, 3, 4}
	}
	start := time.Now()
	if _, err := m.Infer(ctx(t), []ai.Tensor{memruntime.Tensor(rows)}, nil); err != nil {
		t.Fatal(err)
	}
	batched := time.Since(start)
	start = time.Now()
	done := make(chan error, 16)
	for range rows {
		go func() {
			_, err := m.Infer(ctx(t), []ai.Tensor{memruntime.Tensor(rows[:1])}, nil)
			done <- err
		}()
	}
	for range rows {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	single := time.Since(start)
	if batched < 36*time.Millisecond || single < 16*21*time.Millisecond || single < 5*batched {
		t.Errorf("a batch of 16 took %v, 16 single calls %v: want >= 36ms and >= 336ms, a 5x gap", batched, single)
	}
}

func TestTimeoutWithoutDeadline(t *testing.T) {
	d := memruntime.Open(memruntime.Options{Timeout: 100 * time.Millisecond})
	defer d.Close()
	s := spec(writeModel(t, testDoc().Marshal()), ai.PyTorch)
	s.Key = "k"
	if _, err := d.Load(ctx(t), s); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := d.Infer(context.Background(), "k", flagged(hangOn), nil)
	if !greyerr.Is(err, greyerr.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("a hanging call without a deadline: %v after %v, want DeadlineExceeded after the runtime's timeout", err, time.Since(start))
	}
}

func FuzzParse(f *testing.F) {
	f.Add(testDoc().Marshal())
	f.Add([]byte(`{"layers":[{"w":[[1,2],[3,4]],"b":[0,1],"relu":true}],"latency":"1ms"}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := memruntime.Parse(b)
		if err != nil {
			if !greyerr.Is(err, greyerr.FailedPrecondition) {
				t.Fatalf("parse error without FailedPrecondition: %v", err)
			}
			return
		}
		if m.Features() < 1 || m.Classes() < 1 {
			t.Fatalf("a parsed model with %d features and %d classes", m.Features(), m.Classes())
		}
		// A parsed model evaluates a zero row without panicking.
		if m.Features()*m.Classes() < 1<<16 {
			x := memruntime.Tensor([][]float32{make([]float32, m.Features())})
			if _, err := m.Eval([]ai.Tensor{x}, nil); err != nil {
				t.Fatalf("eval: %v", err)
			}
		}
	})
}

// BenchmarkRuntime is the suite's benchmark on the mem runtime: the
// in-process baseline other runtimes' per-call overhead is measured
// against.
func BenchmarkRuntime(b *testing.B) {
	doc := testDoc()
	path := writeModel(b, doc.Marshal())
	m, err := memruntime.Parse(doc.Marshal())
	if err != nil {
		b.Fatal(err)
	}
	runtimetest.Bench(b, runtimetest.Harness{
		Open: func(testing.TB) ai.Driver { return memruntime.Open(memruntime.Options{}) },
		Model: runtimetest.Model{
			Spec:      spec(path, ai.PyTorch),
			Inputs:    []runtimetest.TensorSpec{{Name: "x", Datatype: ai.FP32, Shape: []int64{4}}},
			Outputs:   []string{"y", "label"},
			Reference: func(in []ai.Tensor) ([]ai.Tensor, error) { return m.Eval(in, nil) },
		},
	})
}

func TestCrashFlagAndStats(t *testing.T) {
	doc := testDoc()
	c := 7.0
	doc.CrashOn = &c
	d := memruntime.Open(memruntime.Options{})
	defer d.Close()
	s := spec(writeModel(t, doc.Marshal()), ai.PyTorch)
	s.Key = "k"
	if _, err := d.Load(ctx(t), s); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Infer(ctx(t), "k", flagged(7), nil); !greyerr.Is(err, greyerr.Unavailable) {
		t.Errorf("an input holding crash_on: %v, want Unavailable", err)
	}
	in := []ai.Tensor{memruntime.Tensor([][]float32{{1, 2, 3, 4}, {5, 6, 7.5, 8}, {0, 0, 0, 0}})}
	if _, err := d.Infer(ctx(t), "k", in, nil); err != nil {
		t.Fatal(err)
	}
	if calls, rows := d.Stats(); calls != 2 || rows != 4 {
		t.Errorf("stats: %d calls, %d rows; want 2 and 4", calls, rows)
	}
}

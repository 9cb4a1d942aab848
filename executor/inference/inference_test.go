package inference_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/batch"
	"github.com/grey-distributed/grey/executor/inference"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/proof"
	"github.com/grey-distributed/grey/worker"
)

// fakeDriver serves "TorchScript" files whose text says what the model
// does: "torch:double" answers y = 2x for an FP32 input "x" of shape
// [n, 2]; "torch:raise" raises; "torch:hang" runs until cancelled;
// "torch:crash" dies mid-call (Unavailable). Anything else is not a model.
type fakeDriver struct {
	devices []string
	served  *ai.ServedModel // what Load says served the model (remote servers)

	mu      sync.Mutex
	models  map[string]string // key → behaviour
	loads   atomic.Int64
	calls   atomic.Int64
	forgets atomic.Int64 // Infer answers NotFound this many more times
	rows    atomic.Int64 // rows of the last call
}

func newFake(devices ...string) *fakeDriver {
	if len(devices) == 0 {
		devices = []string{"cpu"}
	}
	return &fakeDriver{devices: devices, models: map[string]string{}}
}

func (d *fakeDriver) Info(context.Context) (ai.RuntimeInfo, error) {
	return ai.RuntimeInfo{Name: "fake", Version: "0.9", Frameworks: map[ai.Framework]string{ai.PyTorch: "1.13.0"}, Devices: d.devices}, nil
}

func (d *fakeDriver) Load(_ context.Context, s ai.LoadSpec) (ai.LoadInfo, error) {
	d.loads.Add(1)
	b, err := os.ReadFile(s.Path)
	if err != nil {
		return ai.LoadInfo{}, greyerr.Wrap(greyerr.Internal, err, "read")
	}
	behaviour, ok := strings.CutPrefix(string(b), "torch:")
	if !ok {
		return ai.LoadInfo{}, greyerr.New(greyerr.FailedPrecondition, "%s is not a TorchScript file", s.Path)
	}
	d.mu.Lock()
	d.models[s.Key] = behaviour
	d.mu.Unlock()
	return ai.LoadInfo{Device: d.devices[0], Served: d.served}, nil
}

func (d *fakeDriver) Unload(_ context.Context, key string) error {
	d.mu.Lock()
	delete(d.models, key)
	d.mu.Unlock()
	return nil
}

func (d *fakeDriver) Close() error { return nil }

func (d *fakeDriver) Infer(ctx context.Context, key string, in []ai.Tensor, names []string) ([]ai.Tensor, error) {
	d.calls.Add(1)
	d.mu.Lock()
	behaviour, ok := d.models[key]
	d.mu.Unlock()
	if d.forgets.Load() > 0 {
		d.forgets.Add(-1)
		ok = false
	}
	if !ok {
		return nil, greyerr.New(greyerr.NotFound, "model %s is not loaded", key)
	}
	switch behaviour {
	case "raise":
		return nil, fmt.Errorf("RuntimeError: shape mismatch in layer 2: %w", ai.ErrModel)
	case "hang":
		<-ctx.Done()
		return nil, ctx.Err()
	case "crash":
		return nil, greyerr.New(greyerr.Unavailable, "runtime process exited")
	}
	x := in[0]
	if len(x.Shape) > 0 {
		d.rows.Store(x.Shape[0])
	}
	if x.Name != "x" || x.Datatype != ai.FP32 || len(x.Shape) != 2 || x.Shape[1] != 2 {
		return nil, greyerr.Invalid("inputs", "the model takes x: FP32 [n, 2], got %s: %s %v", x.Name, x.Datatype, x.Shape)
	}
	y := make([]byte, len(x.Data))
	for i := 0; i < len(y); i += 4 {
		v := math.Float32frombits(binary.LittleEndian.Uint32(x.Data[i:]))
		binary.LittleEndian.PutUint32(y[i:], math.Float32bits(2*v))
	}
	return []ai.Tensor{{Name: "y", Datatype: ai.FP32, Shape: x.Shape, Data: y}}, nil
}

// source holds models per tenant.
type source struct {
	mu     sync.Mutex
	models map[string]map[string]ai.Model // tenant → name → model
	blobs  map[string][]byte
	tamper bool
}

func (s *source) push(tenant, name string, fw ai.Framework, body string) ai.Model {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.models == nil {
		s.models, s.blobs = map[string]map[string]ai.Model{}, map[string][]byte{}
	}
	sum := sha256.Sum256([]byte(body))
	m := ai.Model{TenantID: tenant, Name: name, Version: "1", Framework: fw, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(body))}
	if s.models[tenant] == nil {
		s.models[tenant] = map[string]ai.Model{}
	}
	s.models[tenant][name] = m
	s.blobs[m.Digest] = []byte(body)
	return m
}

func (s *source) Resolve(_ context.Context, tenant string, ref ai.ModelRef) (ai.Model, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.models[tenant][ref.Name]
	if !ok {
		return ai.Model{}, greyerr.New(greyerr.NotFound, "model %s not found", ref)
	}
	return m, nil
}

func (s *source) Fetch(_ context.Context, tenant, digest string) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.models[tenant] {
		if m.Digest == digest {
			b := s.blobs[digest]
			if s.tamper {
				b = append([]byte("x"), b[1:]...)
			}
			return io.NopCloser(bytes.NewReader(b)), nil
		}
	}
	return nil, greyerr.New(greyerr.NotFound, "model %s not found", digest)
}

type fixture struct {
	exec *inference.Executor
	drv  *fakeDriver
	src  *source
	reg  *prometheus.Registry
}

func newFixture(t testing.TB, mut func(*inference.Config), devices ...string) *fixture {
	t.Helper()
	f := &fixture{drv: newFake(devices...), src: &source{}, reg: prometheus.NewRegistry()}
	reg := ai.NewRegistry()
	if err := reg.Register("fake", ai.OpenerFunc(func(context.Context, *url.URL, ai.OpenOptions) (ai.Driver, error) { return f.drv, nil })); err != nil {
		t.Fatal(err)
	}
	cfg := inference.Config{
		Registry: reg, Runtimes: []inference.RuntimeConfig{{Name: "torch", URL: "fake://local"}},
		Source: f.src, CacheDir: t.TempDir(), CacheBytes: 1 << 20,
		Batching:   batch.Config{MaxBatchSize: 8, MaxQueueDelay: 5 * time.Millisecond},
		Registerer: f.reg,
	}
	if mut != nil {
		mut(&cfg)
	}
	e, err := inference.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	f.exec = e
	return f
}

func payload(model string, rows int, base float32) json.RawMessage {
	data := make([]string, 0, rows*2)
	for i := range rows * 2 {
		data = append(data, fmt.Sprint(base+float32(i)))
	}
	return json.RawMessage(fmt.Sprintf(`{"model":%q,"id":"r1","inputs":[{"name":"x","datatype":"FP32","shape":[%d,2],"data":[%s]}]}`, model, rows, strings.Join(data, ",")))
}

func job(tenant string, p json.RawMessage) *worker.Job {
	return &worker.Job{Assignment: worker.Assignment{TaskID: "t", TenantID: tenant, Kind: inference.Kind, Payload: p, Attempt: 1}}
}

func result(t *testing.T, v any) (ai.Response, worker.Measured) {
	t.Helper()
	m, ok := v.(worker.Measured)
	if !ok {
		t.Fatalf("result %T, want worker.Measured", v)
	}
	b, err := worker.EncodeResult(v)
	if err != nil {
		t.Fatal(err)
	}
	var r ai.Response
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return r, m
}

func TestInference(t *testing.T) {
	f := newFixture(t, nil)
	m := f.src.push("acme", "mlp", ai.PyTorch, "torch:double")
	out, err := f.exec.Work(context.Background(), job("acme", payload("mlp", 2, 1)))
	if err != nil {
		t.Fatal(err)
	}
	r, meas := result(t, out)
	if r.ModelName != "mlp" || r.ModelVersion != "1" || r.ID != "r1" || len(r.Outputs) != 1 {
		t.Fatalf("response %+v", r)
	}
	b, _ := json.Marshal(r.Outputs[0])
	if string(b) != `{"name":"y","shape":[2,2],"datatype":"FP32","data":[2,4,6,8]}` {
		t.Fatalf("output %s", b)
	}
	pm := meas.Model
	if pm == nil || pm.Name != "mlp" || pm.Version != "1" || pm.Digest != m.Digest || pm.Framework != "pytorch" || pm.FrameworkVersion != "1.13.0" ||
		pm.Runtime != "fake" || pm.RuntimeVersion != "0.9" || pm.Device != "cpu" || pm.Server != "" {
		t.Fatalf("proof model %+v", pm)
	}
	if meas.Executor == nil || meas.Executor.Name != "inference" || meas.Executor.Digest != m.Digest {
		t.Fatalf("measurement %+v", meas.Executor)
	}
	if w := f.exec.Warm(); len(w) != 1 || w[0] != m.Digest {
		t.Fatalf("warm %v", w)
	}
	// Again: cached and loaded already.
	if _, err := f.exec.Work(context.Background(), job("acme", payload("mlp", 1, 5))); err != nil {
		t.Fatal(err)
	}
	if f.drv.loads.Load() != 1 {
		t.Fatalf("%d loads, want 1", f.drv.loads.Load())
	}
	if !f.exec.Deterministic(nil) {
		t.Fatal("a CPU runtime is deterministic")
	}
	if got := testutil.ToFloat64(counter(t, f.reg, "grey_inference_cache_hits_total")); got != 1 {
		t.Errorf("cache hits %v, want 1", got)
	}
	if got := testutil.ToFloat64(counter(t, f.reg, "grey_inference_cache_misses_total")); got != 1 {
		t.Errorf("cache misses %v, want 1", got)
	}
	if n, err := testutil.GatherAndCount(f.reg, "grey_inference_batch_size", "grey_inference_queue_delay_seconds", "grey_inference_model_load_seconds", "grey_inference_requests_total", "grey_inference_warm_models"); err != nil || n < 5 {
		t.Errorf("families %d %v", n, err)
	}
}

// counter returns the registered collector of a label-less family.
func counter(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: "copy"}, func() float64 { return mf.GetMetric()[0].GetCounter().GetValue() })
		}
	}
	t.Fatalf("no family %s", name)
	return nil
}

// TestBatchesAcrossTasksAndTenants: concurrent tasks of two tenants whose
// models have the same bytes share runtime calls; each gets its own rows.
func TestBatchesAcrossTasksAndTenants(t *testing.T) {
	f := newFixture(t, func(c *inference.Config) {
		c.Batching = batch.Config{MaxBatchSize: 16, MaxQueueDelay: 20 * time.Millisecond}
	})
	f.src.push("acme", "mlp", ai.PyTorch, "torch:double")
	f.src.push("globex", "their-mlp", ai.PyTorch, "torch:double")
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tenant, model := "acme", "mlp"
			if i%2 == 1 {
				tenant, model = "globex", "their-mlp"
			}
			out, err := f.exec.Work(context.Background(), job(tenant, payload(model, 1, float32(i))))
			if err != nil {
				t.Error(err)
				return
			}
			r, _ := result(t, out)
			b, _ := json.Marshal(r.Outputs[0])
			want := fmt.Sprintf(`{"name":"y","shape":[1,2],"datatype":"FP32","data":[%v,%v]}`, 2*float32(i), 2*float32(i+1))
			if string(b) != want || r.ModelName != model {
				t.Errorf("task %d: %s %s, want %s", i, r.ModelName, b, want)
			}
		}()
	}
	wg.Wait()
	if c := f.drv.calls.Load(); c >= n {
		t.Fatalf("%d runtime calls for %d concurrent tasks: nothing batched", c, n)
	}
	if f.drv.loads.Load() != 1 {
		t.Fatalf("%d loads of one artifact, want 1", f.drv.loads.Load())
	}
}

func wantFail(t *testing.T, err error, code string, permanent bool, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", code)
	}
	if got := inference.CodeOf(err); got != code {
		t.Fatalf("code %q (%v), want %q", got, err, code)
	}
	if worker.IsPermanent(err) != permanent {
		t.Fatalf("permanent = %v, want %v (%v)", worker.IsPermanent(err), permanent, err)
	}
	if msg != "" && !strings.Contains(err.Error(), msg) {
		t.Fatalf("error %q does not say %q", err, msg)
	}
}

func TestBadPayloads(t *testing.T) {
	f := newFixture(t, nil)
	f.src.push("acme", "mlp", ai.PyTorch, "torch:double")
	cases := map[string]string{
		"not json":          `{"model":`,
		"no model":          `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,2],"data":[1,2]}]}`,
		"bad model ref":     `{"model":"Bad Name","inputs":[{"name":"x","datatype":"FP32","shape":[1,2],"data":[1,2]}]}`,
		"no inputs":         `{"model":"mlp","inputs":[]}`,
		"too few elements":  `{"model":"mlp","inputs":[{"name":"x","datatype":"FP32","shape":[1,2],"data":[1]}]}`,
		"bad datatype":      `{"model":"mlp","inputs":[{"name":"x","datatype":"FP17","shape":[1,2],"data":[1,2]}]}`,
		"int out of range":  `{"model":"mlp","inputs":[{"name":"x","datatype":"INT8","shape":[1],"data":[300]}]}`,
		"batch dims differ": `{"model":"mlp","inputs":[{"name":"x","datatype":"FP32","shape":[1,2],"data":[1,2]},{"name":"z","datatype":"FP32","shape":[2],"data":[1,2]}]}`,
		"input twice":       `{"model":"mlp","inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]},{"name":"x","datatype":"FP32","shape":[1],"data":[1]}]}`,
		"unknown field":     `{"model":"mlp","input":[]}`,
		"trailing data":     `{"model":"mlp","inputs":[{"name":"x","datatype":"FP32","shape":[1,2],"data":[1,2]}]} }`,
		"output no name":    `{"model":"mlp","inputs":[{"name":"x","datatype":"FP32","shape":[1,2],"data":[1,2]}],"outputs":[{}]}`,
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			if err := f.exec.ValidatePayload(json.RawMessage(p)); err == nil {
				t.Error("ValidatePayload accepted it")
			}
			if err := inference.ValidatePayload(json.RawMessage(p)); err == nil {
				t.Error("inference.ValidatePayload accepted it")
			}
			_, err := f.exec.Work(context.Background(), job("acme", json.RawMessage(p)))
			wantFail(t, err, inference.CodeInvalidInput, true, "")
		})
	}
	if f.drv.calls.Load() != 0 {
		t.Fatal("a bad payload reached the runtime")
	}
	if err := f.exec.ValidatePayload(payload("mlp", 1, 0)); err != nil {
		t.Fatalf("a good payload: %v", err)
	}
}

func TestModelErrors(t *testing.T) {
	f := newFixture(t, func(c *inference.Config) { c.TenantModels = map[string][]string{"limited": {"ok"}} })
	f.src.push("acme", "mlp", ai.PyTorch, "torch:double")
	f.src.push("acme", "raiser", ai.PyTorch, "torch:raise")
	f.src.push("acme", "notamodel", ai.PyTorch, "PK\x03\x04 a zip of something else")
	f.src.push("acme", "tfmodel", ai.TensorFlow, "tar bytes")
	f.src.push("limited", "mlp", ai.PyTorch, "torch:double")
	ctx := context.Background()

	_, err := f.exec.Work(ctx, job("acme", payload("missing", 1, 0)))
	wantFail(t, err, inference.CodeModelNotFound, true, "model missing@latest not found")
	// Another tenant's model is not found either, by the source's contract.
	_, err = f.exec.Work(ctx, job("globex", payload("mlp", 1, 0)))
	wantFail(t, err, inference.CodeModelNotFound, true, "mlp")
	_, err = f.exec.Work(ctx, job("limited", payload("mlp", 1, 0)))
	wantFail(t, err, inference.CodeModelNotAllowed, true, "ai.tenant_models")
	_, err = f.exec.Work(ctx, job("acme", payload("tfmodel", 1, 0)))
	wantFail(t, err, inference.CodeNoRuntime, true, "no runtime serves tensorflow on this node")
	_, err = f.exec.Work(ctx, job("acme", payload("notamodel", 1, 0)))
	wantFail(t, err, inference.CodeModelError, true, "not a TorchScript file")
	_, err = f.exec.Work(ctx, job("acme", payload("raiser", 1, 0)))
	wantFail(t, err, inference.CodeModelError, true, "shape mismatch in layer 2")
	// Inputs the model does not take: shape, datatype, name.
	for _, p := range []string{
		`{"model":"mlp","inputs":[{"name":"x","datatype":"FP32","shape":[1,3],"data":[1,2,3]}]}`,
		`{"model":"mlp","inputs":[{"name":"x","datatype":"INT32","shape":[1,2],"data":[1,2]}]}`,
		`{"model":"mlp","inputs":[{"name":"w","datatype":"FP32","shape":[1,2],"data":[1,2]}]}`,
	} {
		_, err = f.exec.Work(ctx, job("acme", json.RawMessage(p)))
		wantFail(t, err, inference.CodeInvalidInput, true, "the model takes x")
	}
	if got := testutil.ToFloat64(requests(t, f, "mlp:1", inference.CodeInvalidInput)); got != 3 {
		t.Errorf("requests_total{mlp:1, invalid_input} = %v, want 3", got)
	}
}

func requests(t *testing.T, f *fixture, model, outcome string) prometheus.Collector {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	v := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "grey_inference_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["model"] == model && l["outcome"] == outcome {
				v = m.GetCounter().GetValue()
			}
		}
	}
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x", Help: "x"}, func() float64 { return v })
}

func TestDigestMismatch(t *testing.T) {
	f := newFixture(t, nil)
	m := f.src.push("acme", "mlp", ai.PyTorch, "torch:double")
	f.src.tamper = true
	_, err := f.exec.Work(context.Background(), job("acme", payload("mlp", 1, 0)))
	wantFail(t, err, inference.CodeModelDigest, true, "digest mismatch")
	if !strings.Contains(err.Error(), m.Digest) || f.drv.loads.Load() != 0 || len(f.exec.Cache().Warm()) != 0 {
		t.Fatalf("error %v, loads %d, cached %v", err, f.drv.loads.Load(), f.exec.Cache().Warm())
	}
}

// TestRuntimeCrash: a crash fails the task retryable, and the next task
// is served.
func TestRuntimeCrash(t *testing.T) {
	f := newFixture(t, nil)
	f.src.push("acme", "crasher", ai.PyTorch, "torch:crash")
	f.src.push("acme", "mlp", ai.PyTorch, "torch:double")
	_, err := f.exec.Work(context.Background(), job("acme", payload("crasher", 1, 0)))
	wantFail(t, err, inference.CodeRuntimeUnavailable, false, "runtime process exited")
	if _, err := f.exec.Work(context.Background(), job("acme", payload("mlp", 1, 0))); err != nil {
		t.Fatal(err)
	}
}

// TestReloadAfterRuntimeRestart: a runtime that lost its models (a
// restarted process answers NotFound) gets the model loaded again.
func TestReloadAfterRuntimeRestart(t *testing.T) {
	f := newFixture(t, nil)
	f.src.push("acme", "mlp", ai.PyTorch, "torch:double")
	if _, err := f.exec.Work(context.Background(), job("acme", payload("mlp", 1, 0))); err != nil {
		t.Fatal(err)
	}
	f.drv.forgets.Store(1)
	if _, err := f.exec.Work(context.Background(), job("acme", payload("mlp", 1, 0))); err != nil {
		t.Fatal(err)
	}
	if f.drv.loads.Load() != 2 {
		t.Fatalf("%d loads, want 2", f.drv.loads.Load())
	}
}

// TestHangPastTimeout: a model that hangs ends with the attempt's
// deadline (the pool records it as a timeout).
func TestHangPastTimeout(t *testing.T) {
	f := newFixture(t, nil)
	f.src.push("acme", "hang", ai.PyTorch, "torch:hang")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := f.exec.Work(ctx, job("acme", payload("hang", 1, 0)))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the deadline", err)
	}
	if worker.IsPermanent(err) {
		t.Fatal("a timeout is not permanent")
	}
}

func TestGPURuntimeIsNotDeterministic(t *testing.T) {
	f := newFixture(t, nil, "cuda:0", "cpu")
	if f.exec.Deterministic(nil) {
		t.Fatal("a GPU runtime claims determinism")
	}
}

func TestNewNeedsRuntimesAndSource(t *testing.T) {
	reg := ai.NewRegistry()
	if _, err := inference.New(context.Background(), inference.Config{Registry: reg, Source: &source{}, CacheDir: t.TempDir(), CacheBytes: 1}); err == nil {
		t.Error("no runtimes accepted")
	}
	if _, err := inference.New(context.Background(), inference.Config{Registry: reg, Runtimes: []inference.RuntimeConfig{{Name: "x", URL: "fake://"}}, CacheDir: t.TempDir(), CacheBytes: 1}); err == nil {
		t.Error("no source accepted")
	}
	_, err := inference.New(context.Background(), inference.Config{Registry: reg, Runtimes: []inference.RuntimeConfig{{Name: "x", URL: "nosuch://"}}, Source: &source{}, CacheDir: t.TempDir(), CacheBytes: 1})
	if err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("unknown scheme: %v", err)
	}
}

// TestWrongFramework: a TorchScript file pushed as a TensorFlow model is
// not a SavedModel tar: the task fails for good naming the problem, and
// the second runtime (configured for tensorflow) is the one picked.
func TestWrongFramework(t *testing.T) {
	f := newFixture(t, func(c *inference.Config) {
		c.Runtimes = []inference.RuntimeConfig{
			{Name: "torch", URL: "fake://a", Frameworks: []ai.Framework{ai.PyTorch}},
			{Name: "tf", URL: "fake://b", Frameworks: []ai.Framework{ai.TensorFlow}},
		}
	})
	f.src.push("acme", "mislabelled", ai.TensorFlow, "torch:double")
	_, err := f.exec.Work(context.Background(), job("acme", payload("mislabelled", 1, 0)))
	wantFail(t, err, inference.CodeModelError, true, "not a tar")
	if f.drv.loads.Load() != 0 {
		t.Fatal("a non-model reached the runtime")
	}
}

// TestProofNamesRemoteServer: a model served by a remote server is proven
// with that server and the digest it reported ("" when it reports none, so
// a verifier sees the registry digest was not confirmed by what ran).
func TestProofNamesRemoteServer(t *testing.T) {
	for _, reported := range []string{"", "confirmed"} {
		f := newFixture(t, nil)
		m := f.src.push("acme", "mlp", ai.PyTorch, "torch:double")
		served := &ai.ServedModel{Server: "http://triton:8000", Name: "mlp"}
		if reported != "" {
			served.Digest = m.Digest
		}
		f.drv.served = served
		out, err := f.exec.Work(context.Background(), job("acme", payload("mlp", 1, 1)))
		if err != nil {
			t.Fatal(err)
		}
		_, meas := result(t, out)
		if meas.Model == nil || meas.Model.Server != "http://triton:8000" || meas.Model.ServerDigest != served.Digest || meas.Model.Digest != m.Digest {
			t.Fatalf("%q: proof model %+v", reported, meas.Model)
		}
	}
}

// A job whose lease carried its payload in the binary form (a payload_ref
// to an Open Inference Protocol binary body) runs as its JSON form does:
// the same response, the tensor bytes reaching the runtime as they were in
// the body; a bad binary body is a permanent invalid_input failure that
// never reaches the runtime.
func TestBinaryPayload(t *testing.T) {
	f := newFixture(t, nil)
	f.src.push("acme", "mlp", ai.PyTorch, "torch:double")
	x := make([]byte, 16)
	for i, v := range []float32{1, 2, 3, 4} {
		binary.LittleEndian.PutUint32(x[4*i:], math.Float32bits(v))
	}
	h := []byte(`{"model":"mlp","id":"r1","inputs":[{"name":"x","datatype":"FP32","shape":[2,2],"parameters":{"binary_data_size":16}}]}`)
	j := job("acme", nil)
	j.PayloadBinary = ai.AppendBinaryBody(nil, h, x)
	out, err := f.exec.Work(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := result(t, out)
	b, _ := json.Marshal(r.Outputs[0])
	if r.ID != "r1" || string(b) != `{"name":"y","shape":[2,2],"datatype":"FP32","data":[2,4,6,8]}` {
		t.Fatalf("response %+v output %s", r, b)
	}
	calls := f.drv.calls.Load()
	bad := job("acme", nil)
	bad.PayloadBinary = ai.AppendBinaryBody(nil, h, x[:12])
	_, err = f.exec.Work(context.Background(), bad)
	wantFail(t, err, inference.CodeInvalidInput, true, "")
	if f.drv.calls.Load() != calls {
		t.Fatal("a bad binary body reached the runtime")
	}
}

// A response whose binary form is over the server's inline limit is
// encoded in that form (its tensors' bytes as they are), and its JSON form
// (ai.BinaryToJSON, what the client gives back) is exactly the JSON result
// it would otherwise have been; under the limit the result stays JSON.
func TestLargeResultBinary(t *testing.T) {
	f := newFixture(t, nil)
	f.src.push("acme", "mlp", ai.PyTorch, "torch:double")
	out, err := f.exec.Work(context.Background(), job("acme", payload("mlp", 64, 1)))
	if err != nil {
		t.Fatal(err)
	}
	asJSON, err := worker.EncodeResult(out)
	if err != nil {
		t.Fatal(err)
	}
	b, bin, err := worker.EncodeResultFor(out, 256)
	if err != nil || !bin || !ai.IsBinaryBody(b) || len(b) <= 256 {
		t.Fatalf("over the limit: binary %v, %d bytes, %v", bin, len(b), err)
	}
	back, err := ai.BinaryToJSON(b)
	if err != nil || !bytes.Equal(back, asJSON) {
		t.Fatalf("JSON of the binary form differs:\n%s\n%s (%v)", back, asJSON, err)
	}
	for _, limit := range []int{0, 1 << 20} {
		b, bin, err := worker.EncodeResultFor(out, limit)
		if err != nil || bin || !bytes.Equal(b, asJSON) {
			t.Fatalf("limit %d: binary %v (%v)", limit, bin, err)
		}
	}
}

// A task that shared its model call names the call's rows in its proof;
// a replay of it runs alone, padded with zero rows to as many, and gives
// back the task's own rows.
func TestReplayPadsToBatchRows(t *testing.T) {
	f := newFixture(t, func(c *inference.Config) {
		c.Batching = batch.Config{MaxBatchSize: 3, MaxQueueDelay: time.Minute}
	})
	f.src.push("acme", "mlp", ai.PyTorch, "torch:double")
	var wg sync.WaitGroup
	models := make([]*proof.Model, 3)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := f.exec.Work(context.Background(), job("acme", payload("mlp", 1, float32(i))))
			if err != nil {
				t.Error(err)
				return
			}
			_, meas := result(t, out)
			models[i] = meas.Model
		}()
	}
	wg.Wait()
	for i, m := range models {
		if m == nil || m.BatchRows != 3 {
			t.Fatalf("task %d of a 3-row call: proof model %+v, want batch_rows 3", i, m)
		}
	}
	j := job("acme", payload("mlp", 1, 7))
	j.Replayed = &proof.Execution{TaskID: "t", Model: &proof.Model{Name: "mlp", BatchRows: 5}}
	out, err := f.exec.Work(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	if n := f.drv.rows.Load(); n != 5 {
		t.Fatalf("the replay's model call ran %d rows, want 5 (padded)", n)
	}
	r, meas := result(t, out)
	b, _ := json.Marshal(r.Outputs[0])
	if string(b) != `{"name":"y","shape":[1,2],"datatype":"FP32","data":[14,16]}` {
		t.Fatalf("replay output %s, want the task's own row", b)
	}
	if meas.Model.BatchRows != 5 {
		t.Fatalf("replay's proof model %+v, want batch_rows 5", meas.Model)
	}
	// A task that ran alone names no batch rows.
	f2 := newFixture(t, func(c *inference.Config) { c.Batching = batch.Config{MaxBatchSize: 1} })
	f2.src.push("acme", "mlp", ai.PyTorch, "torch:double")
	out, err = f2.exec.Work(context.Background(), job("acme", payload("mlp", 2, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, meas := result(t, out); meas.Model.BatchRows != 0 {
		t.Fatalf("a task alone names batch_rows %d", meas.Model.BatchRows)
	}
}

package pyruntime_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/pyruntime"
	"github.com/grey-distributed/grey/ai/pyruntime/pyruntimetest"
	"github.com/grey-distributed/grey/greyerr"
)

func TestParseURL(t *testing.T) {
	good := map[string]pyruntime.Config{
		"python:///usr/bin/python3": {Python: "/usr/bin/python3", Device: "auto", Threads: 1,
			RestartMin: pyruntime.DefaultRestartMin, RestartMax: pyruntime.DefaultRestartMax,
			StartTimeout: pyruntime.DefaultStartTimeout, LoadTimeout: pyruntime.DefaultLoadTimeout},
		"python:///opt/venv/bin/python?device=cuda:1&threads=4&restart_min=1s&restart_max=1m&start_timeout=5s&load_timeout=2m": {
			Python: "/opt/venv/bin/python", Device: "cuda:1", Threads: 4, RestartMin: time.Second, RestartMax: time.Minute,
			StartTimeout: 5 * time.Second, LoadTimeout: 2 * time.Minute},
	}
	for raw, want := range good {
		u, _ := url.Parse(raw)
		got, err := pyruntime.ParseURL(u)
		if err != nil {
			t.Errorf("%s: %v", raw, err)
			continue
		}
		if got != want {
			t.Errorf("%s: got %+v, want %+v", raw, got, want)
		}
	}
	bad := []string{
		"python://host/usr/bin/python3",
		"python:python3",
		"python://user@/usr/bin/python3",
		"python:///usr/bin/python3?threads=0",
		"python:///usr/bin/python3?threads=x",
		"python:///usr/bin/python3?device=tpu",
		"python:///usr/bin/python3?device=cuda:x",
		"python:///usr/bin/python3?restart_min=-1s",
		"python:///usr/bin/python3?restart_min=1m&restart_max=1s",
		"python:///usr/bin/python3?load_timeout=soon",
		"python:///usr/bin/python3?thread=2",
		"oip+http:///usr/bin/python3",
	}
	for _, raw := range bad {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pyruntime.ParseURL(u); !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Errorf("%s: got %v, want InvalidArgument", raw, err)
		}
	}
}

func TestOpenMissingInterpreter(t *testing.T) {
	for _, p := range []string{"/nonexistent/python3", t.TempDir()} {
		u, _ := url.Parse("python://" + p)
		if _, err := pyruntime.Open(u, ai.OpenOptions{}); !greyerr.Is(err, greyerr.FailedPrecondition) {
			t.Errorf("%s: got %v, want FailedPrecondition", p, err)
		}
	}
}

func TestRegister(t *testing.T) {
	r := ai.NewRegistry()
	if err := pyruntime.Register(r); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(r.Schemes(), "python") {
		t.Fatalf("schemes %v lack python", r.Schemes())
	}
	if _, err := r.Open(context.Background(), "py", "python:///usr/bin/python3?bogus=1", ai.OpenOptions{}); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Fatalf("got %v, want InvalidArgument", err)
	}
}

// equalTensors reports the first difference between got and want: names,
// datatypes, shapes, and bytes exactly.
func equalTensors(got, want []ai.Tensor) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d outputs, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.Datatype != w.Datatype || !slices.Equal(g.Shape, w.Shape) {
			return fmt.Errorf("output %d is %s %s %v, want %s %s %v", i, g.Name, g.Datatype, g.Shape, w.Name, w.Datatype, w.Shape)
		}
		if !bytes.Equal(g.Data, w.Data) {
			return fmt.Errorf("output %d (%s): bytes differ from the model run directly in Python", i, g.Name)
		}
	}
	return nil
}

func TestTorchExact(t *testing.T) {
	py := pyruntimetest.TorchPython(t)
	d := open(t, py, "?device=cpu", ai.OpenOptions{})
	rt := ai.NewRuntime("torch", d)
	ctx := context.Background()
	info, err := rt.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != pyruntime.RuntimeName || info.Frameworks[ai.PyTorch] == "" || !slices.Contains(info.Devices, "cpu") {
		t.Fatalf("info %+v", info)
	}
	if _, ok := info.Frameworks[ai.TensorFlow]; ok {
		t.Errorf("Debian's python has no tensorflow, yet info says %v", info.Frameworks)
	}
	// torch links a BLAS (Debian's libblas.so.3: the reference one, or
	// OpenBLAS through update-alternatives): the info names it.
	if info.BLAS == "" || !strings.Contains(info.BLAS, "/") {
		t.Errorf("info names no BLAS library: %q", info.BLAS)
	}
	t.Logf("BLAS: %s", info.BLAS)
	for _, kind := range []string{pyruntimetest.TorchMLP, pyruntimetest.TorchCNN, pyruntimetest.TorchPair, pyruntimetest.TorchPrints} {
		f := fixture(t, py, kind, 4)
		li, err := rt.Load(ctx, f.Spec(""))
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if li.Device != "cpu" {
			t.Errorf("%s loaded on %q", kind, li.Device)
		}
		if kind == pyruntimetest.TorchPrints {
			// Its expected output is its input doubled; what matters is that
			// its print did not break the stream.
			f.Outputs = nil
		}
		for i := 0; i < 25; i++ {
			out, err := rt.Infer(ctx, f.Model.Digest, f.Inputs, nil)
			if err != nil {
				t.Fatalf("%s: %v", kind, err)
			}
			if f.Outputs != nil {
				if err := equalTensors(out, f.Outputs); err != nil {
					t.Fatalf("%s, run %d: %v", kind, i, err)
				}
			}
		}
	}
	// Inputs bind to forward's parameters by name, whatever their order,
	// or by position when named input__N (Triton's convention).
	pair := fixture(t, py, pyruntimetest.TorchPair, 4)
	a, b := pair.Inputs[0], pair.Inputs[1]
	pa, pb := a, b
	pa.Name, pb.Name = "input__0", "input__1"
	for name, in := range map[string][]ai.Tensor{"by name, reversed": {b, a}, "by position": {pb, pa}} {
		out, err := rt.Infer(ctx, pair.Model.Digest, in, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := equalTensors(out, pair.Outputs); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}

	// Outputs by name, in the order asked.
	cnn := fixture(t, py, pyruntimetest.TorchCNN, 4)
	out, err := rt.Infer(ctx, cnn.Model.Digest, cnn.Inputs, []string{"label"})
	if err != nil {
		t.Fatal(err)
	}
	if err := equalTensors(out, cnn.Outputs[1:]); err != nil {
		t.Fatal(err)
	}
	// A second load of a key answers the first's info and loads nothing.
	if _, err := rt.Load(ctx, cnn.Spec("")); err != nil {
		t.Fatal(err)
	}
	if d.Starts() != 1 {
		t.Errorf("%d process starts, want 1", d.Starts())
	}
}

func TestSavedModelExact(t *testing.T) {
	d, py := sharedTF(t)
	f := fixture(t, py, pyruntimetest.SavedModel, 4)
	rt := ai.NewRuntime("tf", d)
	ctx := context.Background()
	info, err := rt.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Frameworks[ai.TensorFlow] != f.FrameworkVersion {
		t.Errorf("info says tensorflow %q, the model was built with %q", info.Frameworks[ai.TensorFlow], f.FrameworkVersion)
	}
	li, err := rt.Load(ctx, f.Spec(""))
	if err != nil {
		t.Fatal(err)
	}
	if li.Device != "cpu" {
		t.Errorf("loaded on %q", li.Device)
	}
	for i := 0; i < 25; i++ {
		out, err := rt.Infer(ctx, f.Model.Digest, f.Inputs, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := equalTensors(out, f.Outputs); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	// Inputs are matched by name, whatever their order.
	rev := []ai.Tensor{f.Inputs[1], f.Inputs[0]}
	out, err := rt.Infer(ctx, f.Model.Digest, rev, []string{"y"})
	if err != nil {
		t.Fatal(err)
	}
	if err := equalTensors(out, f.Outputs[1:]); err != nil {
		t.Fatal(err)
	}
}

func withData(t ai.Tensor, dt ai.Datatype, shape []int64) ai.Tensor {
	n, _ := ai.Elements(shape, "")
	t.Datatype, t.Shape, t.Data = dt, shape, make([]byte, n*int64(dt.Size()))
	return t
}

func TestTorchBadInput(t *testing.T) {
	py := pyruntimetest.TorchPython(t)
	d := open(t, py, "?device=cpu", ai.OpenOptions{})
	ctx := context.Background()
	mlp := fixture(t, py, pyruntimetest.TorchMLP, 4)
	key := load(t, d, mlp)

	notModel := filepath.Join(t.TempDir(), "model.pt")
	if err := os.WriteFile(notModel, []byte("this is not a TorchScript archive"), 0o600); err != nil {
		t.Fatal(err)
	}
	tfDir := t.TempDir() // a directory, as a SavedModel is
	loads := map[string]ai.LoadSpec{
		"not a model":        {Key: "k1", Model: ai.Model{Framework: ai.PyTorch}, Path: notModel},
		"a directory":        {Key: "k2", Model: ai.Model{Framework: ai.PyTorch}, Path: tfDir},
		"framework missing":  {Key: "k3", Model: ai.Model{Framework: ai.TensorFlow}, Path: tfDir},
		"missing file":       {Key: "k4", Model: ai.Model{Framework: ai.PyTorch}, Path: filepath.Join(tfDir, "nope")},
		"unknown framework":  {Key: "k5", Model: ai.Model{Framework: "onnx"}, Path: notModel},
		"no cuda on cpu box": {Key: "k6", Model: mlp.Model, Path: mlp.Path, Device: "cuda:7"},
	}
	for name, spec := range loads {
		_, err := d.Load(ctx, spec)
		if name == "no cuda on cpu box" && err == nil {
			continue // a machine with eight GPUs
		}
		if !greyerr.Is(err, greyerr.FailedPrecondition) {
			t.Errorf("%s: got %v, want FailedPrecondition", name, err)
		}
	}

	x := mlp.Inputs[0]
	infers := map[string][]ai.Tensor{
		"wrong shape":   {withData(x, ai.FP32, []int64{4, 5})},
		"wrong dtype":   {withData(x, ai.FP64, []int64{4, 8})},
		"int input":     {withData(x, ai.Int64, []int64{4, 8})},
		"uint16 input":  {withData(x, ai.Uint16, []int64{4, 8})},
		"given twice":   {x, x},
		"wrong name":    {func() ai.Tensor { y := x; y.Name = "y"; return y }()},
		"input__1 only": {func() ai.Tensor { y := x; y.Name = "input__1"; return y }()},
		"extra input":   {x, func() ai.Tensor { y := x; y.Name = "z"; return y }()},
		"wrong rank":    {withData(x, ai.FP32, []int64{4, 2, 8, 1})},
		"empty feature": {withData(x, ai.FP32, []int64{4, 0})},
	}
	for name, in := range infers {
		if _, err := d.Infer(ctx, key, in, nil); !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Errorf("%s: got %v, want InvalidArgument", name, err)
		}
	}
	if _, err := d.Infer(ctx, key, mlp.Inputs, []string{"nope"}); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Errorf("unknown output: got %v, want InvalidArgument", err)
	}
	if _, err := d.Infer(ctx, "no-such-key", mlp.Inputs, nil); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("unknown key: got %v, want NotFound", err)
	}

	raises := fixture(t, py, pyruntimetest.TorchRaises, 2)
	rk := load(t, d, raises)
	_, err := d.Infer(ctx, rk, raises.Inputs, nil)
	if !errors.Is(err, ai.ErrModel) || greyerr.Is(err, greyerr.Unavailable) {
		t.Errorf("raising model: got %v, want ai.ErrModel", err)
	}

	// None of it hurt the process.
	out, err := d.Infer(ctx, key, mlp.Inputs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := equalTensors(out, mlp.Outputs); err != nil {
		t.Fatal(err)
	}
	if d.Starts() != 1 {
		t.Errorf("%d process starts, want 1", d.Starts())
	}

	// Unload, then the key is unknown.
	if err := d.Unload(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Infer(ctx, key, mlp.Inputs, nil); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("after unload: got %v, want NotFound", err)
	}
}

func TestSavedModelBadInput(t *testing.T) {
	d, py := sharedTF(t)
	f := fixture(t, py, pyruntimetest.SavedModel, 4)
	ctx := context.Background()
	key := load(t, d, f)
	starts := d.Starts()
	x, bias := f.Inputs[0], f.Inputs[1]
	renamed := x
	renamed.Name = "z"
	infers := map[string][]ai.Tensor{
		"wrong name":        {renamed, bias},
		"missing input":     {x},
		"extra input":       {x, bias, renamed},
		"twice":             {x, x, bias},
		"wrong dtype":       {withData(x, ai.FP64, []int64{4, 4}), bias},
		"wrong shape":       {withData(x, ai.FP32, []int64{4, 5}), bias},
		"wrong rank":        {withData(x, ai.FP32, []int64{4, 4, 1}), bias},
		"int for float":     {withData(x, ai.Int32, []int64{4, 4}), bias},
		"bias of 2 columns": {x, withData(bias, ai.FP32, []int64{4, 2})},
	}
	for name, in := range infers {
		if _, err := d.Infer(ctx, key, in, nil); !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Errorf("%s: got %v, want InvalidArgument", name, err)
		}
	}
	if _, err := d.Infer(ctx, key, f.Inputs, []string{"nope"}); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Errorf("unknown output: got %v, want InvalidArgument", err)
	}

	// A TorchScript file is no SavedModel; a pytorch model needs torch.
	pt := filepath.Join(t.TempDir(), "model.pt")
	if err := os.WriteFile(pt, []byte("PK\x03\x04 not really"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, spec := range map[string]ai.LoadSpec{
		"a file":           {Key: "k1", Model: ai.Model{Framework: ai.TensorFlow}, Path: pt},
		"a bare dir":       {Key: "k2", Model: ai.Model{Framework: ai.TensorFlow}, Path: t.TempDir()},
		"no torch here":    {Key: "k3", Model: ai.Model{Framework: ai.PyTorch}, Path: pt},
		"savedmodel as pt": {Key: "k4", Model: ai.Model{Framework: ai.PyTorch}, Path: f.Path},
	} {
		if _, err := d.Load(ctx, spec); !greyerr.Is(err, greyerr.FailedPrecondition) {
			t.Errorf("%s: got %v, want FailedPrecondition", name, err)
		}
	}

	r := fixture(t, py, pyruntimetest.SavedModelRaises, 2)
	rk := load(t, d, r)
	if _, err := d.Infer(ctx, rk, r.Inputs, nil); !errors.Is(err, ai.ErrModel) {
		t.Errorf("raising model: got %v, want ai.ErrModel", err)
	}
	out, err := d.Infer(ctx, key, f.Inputs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := equalTensors(out, f.Outputs); err != nil {
		t.Fatal(err)
	}
	if d.Starts() != starts {
		t.Errorf("%d process starts, want %d: bad input restarted the process", d.Starts(), starts)
	}
}

func TestHungModelTimesOut(t *testing.T) {
	py := pyruntimetest.TorchPython(t)
	d := open(t, py, "?device=cpu&restart_min=50ms", ai.OpenOptions{})
	ctx := context.Background()
	mlp := fixture(t, py, pyruntimetest.TorchMLP, 4)
	hang := fixture(t, py, pyruntimetest.TorchHangs, 1)
	mk, hk := load(t, d, mlp), load(t, d, hang)
	pid := d.PID()

	// The hung call runs; a call queued behind it gives up first and is
	// only dropped (the process lives on), then the hung call's deadline
	// kills the process.
	var wg sync.WaitGroup
	var hangErr error
	wg.Add(1)
	start := time.Now()
	go func() {
		defer wg.Done()
		c, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		defer cancel()
		_, hangErr = d.Infer(c, hk, hang.Inputs, nil)
	}()
	time.Sleep(300 * time.Millisecond)
	c, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err := d.Infer(c, mk, mlp.Inputs, nil)
	cancel()
	if !greyerr.Is(err, greyerr.DeadlineExceeded) {
		t.Errorf("queued call: got %v, want DeadlineExceeded", err)
	}
	if d.PID() != pid {
		t.Errorf("a queued call's deadline restarted the process")
	}
	wg.Wait()
	if !greyerr.Is(hangErr, greyerr.DeadlineExceeded) || !errors.Is(hangErr, context.DeadlineExceeded) {
		t.Errorf("hung call: got %v, want DeadlineExceeded", hangErr)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the hung call returned after %v", took)
	}

	// The next call works: a new process, the model loaded again in it.
	out, err := d.Infer(ctx, mk, mlp.Inputs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := equalTensors(out, mlp.Outputs); err != nil {
		t.Fatal(err)
	}
	if d.PID() == pid || d.Starts() != 2 {
		t.Errorf("pid %d (was %d), %d starts: want a second process", d.PID(), pid, d.Starts())
	}
}

func TestDefaultTimeout(t *testing.T) {
	py := pyruntimetest.TorchPython(t)
	d := open(t, py, "?device=cpu&restart_min=50ms", ai.OpenOptions{Timeout: 700 * time.Millisecond})
	hang := fixture(t, py, pyruntimetest.TorchHangs, 1)
	hk := load(t, d, hang)
	start := time.Now()
	_, err := d.Infer(context.Background(), hk, hang.Inputs, nil)
	if !greyerr.Is(err, greyerr.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	if took := time.Since(start); took < 600*time.Millisecond || took > 10*time.Second {
		t.Errorf("the call returned after %v with a 700ms default timeout", took)
	}
}

func TestKilledMidBatch(t *testing.T) {
	py := pyruntimetest.TorchPython(t)
	d := open(t, py, "?device=cpu&restart_min=50ms", ai.OpenOptions{})
	ctx := context.Background()
	mlp := fixture(t, py, pyruntimetest.TorchMLP, 4)
	hang := fixture(t, py, pyruntimetest.TorchHangs, 1)
	mk, hk := load(t, d, mlp), load(t, d, hang)
	pid := d.PID()

	// One call runs (hung), five wait behind it: all six are in flight
	// when the process is killed.
	errs := make([]error, 6)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if i == 0 {
				_, errs[i] = d.Infer(c, hk, hang.Inputs, nil)
			} else {
				time.Sleep(100 * time.Millisecond)
				_, errs[i] = d.Infer(c, mk, mlp.Inputs, nil)
			}
		}()
	}
	time.Sleep(600 * time.Millisecond)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range errs {
		if !greyerr.Is(err, greyerr.Unavailable) {
			t.Errorf("call %d in flight: got %v, want Unavailable", i, err)
		}
	}
	// The worker keeps serving: a new process loads the model again.
	out, err := d.Infer(ctx, mk, mlp.Inputs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := equalTensors(out, mlp.Outputs); err != nil {
		t.Fatal(err)
	}
	if d.Starts() != 2 {
		t.Errorf("%d starts, want 2", d.Starts())
	}
}

func TestConcurrentCalls(t *testing.T) {
	py := pyruntimetest.TorchPython(t)
	d := open(t, py, "?device=cpu", ai.OpenOptions{})
	mlp := fixture(t, py, pyruntimetest.TorchMLP, 4)
	cnn := fixture(t, py, pyruntimetest.TorchCNN, 4)
	keys := []string{load(t, d, mlp), load(t, d, cnn)}
	fs := []pyruntimetest.Fixture{mlp, cnn}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				f := fs[(g+i)%2]
				out, err := d.Infer(context.Background(), keys[(g+i)%2], f.Inputs, nil)
				if err == nil {
					err = equalTensors(out, f.Outputs)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestClose(t *testing.T) {
	py := pyruntimetest.TorchPython(t)
	u, _ := url.Parse("python://" + py)
	d, err := pyruntime.Open(u, ai.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mlp := fixture(t, py, pyruntimetest.TorchMLP, 4)
	key := load(t, d, mlp)
	pid := d.PID()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := d.Infer(context.Background(), key, mlp.Inputs, nil); !greyerr.Is(err, greyerr.FailedPrecondition) {
		t.Errorf("after close: got %v, want FailedPrecondition", err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("process %d still runs after Close", pid)
	}
}

func TestBrokenInterpreter(t *testing.T) {
	// An executable that is not a Python that can run the runtime: the
	// start fails Unavailable with its stderr in the message, and the next
	// try waits out the backoff rather than spinning.
	sh := filepath.Join(t.TempDir(), "python")
	if err := os.WriteFile(sh, []byte("#!/bin/sh\necho no runtime here >&2\nexit 3\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	d := open(t, sh, "?restart_min=200ms&restart_max=1s", ai.OpenOptions{})
	_, err := d.Info(context.Background())
	if !greyerr.Is(err, greyerr.Unavailable) || !strings.Contains(err.Error(), "no runtime here") {
		t.Fatalf("got %v, want Unavailable quoting its stderr", err)
	}
	start := time.Now()
	_, err = d.Info(context.Background())
	if !greyerr.Is(err, greyerr.Unavailable) {
		t.Fatalf("got %v, want Unavailable", err)
	}
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Errorf("the second start came after %v, want the backoff", took)
	}
	c, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := d.Info(c); !greyerr.Is(err, greyerr.DeadlineExceeded) && !greyerr.Is(err, greyerr.Unavailable) {
		t.Errorf("short deadline: got %v", err)
	}
}

func TestReloadAfterFileGone(t *testing.T) {
	py := pyruntimetest.TorchPython(t)
	d := open(t, py, "?device=cpu&restart_min=50ms", ai.OpenOptions{})
	ctx := context.Background()
	mlp := fixture(t, py, pyruntimetest.TorchMLP, 4)
	// The model cache's copy: moved after the first load.
	dir := t.TempDir()
	b, err := os.ReadFile(mlp.Path)
	if err != nil {
		t.Fatal(err)
	}
	first, second := filepath.Join(dir, "a.pt"), filepath.Join(dir, "b.pt")
	if err := os.WriteFile(first, b, 0o600); err != nil {
		t.Fatal(err)
	}
	spec := mlp.Spec("")
	spec.Path = first
	if _, err := d.Load(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(first, second); err != nil {
		t.Fatal(err)
	}
	// Loading the known key again with the new path updates what a
	// restarted process loads from.
	spec.Path = second
	if _, err := d.Load(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(d.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, d)
	out, err := d.Infer(ctx, spec.Key, mlp.Inputs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := equalTensors(out, mlp.Outputs); err != nil {
		t.Fatal(err)
	}
	// Now the file goes away for good: after a restart the key is NotFound
	// (load it again), not a model error.
	if err := os.Remove(second); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(d.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, d)
	if _, err := d.Infer(ctx, spec.Key, mlp.Inputs, nil); !greyerr.Is(err, greyerr.NotFound) {
		t.Fatalf("got %v, want NotFound", err)
	}
}

// waitGone waits until the driver has seen its process die.
func waitGone(t *testing.T, d *pyruntime.Driver) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); d.PID() != 0; {
		if time.Now().After(deadline) {
			t.Fatal("the driver did not notice its process died")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

package pyruntime_test

import (
	"context"
	"encoding/binary"
	"math"
	"slices"
	"testing"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/pyruntime/pyruntimetest"
)

// cudaDriver opens a driver with device=auto on the torch interpreter and
// skips the test unless torch sees a CUDA device.
func cudaDriver(t testing.TB) (*ai.Runtime, string) {
	t.Helper()
	py := pyruntimetest.TorchPython(t)
	d := open(t, py, "?device=auto", ai.OpenOptions{})
	info, err := d.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !info.HasGPU() {
		t.Skipf("torch at %s sees no CUDA device (devices %v)", py, info.Devices)
	}
	return ai.NewRuntime("cuda", d), py
}

// TestCUDA loads models with the runtime's choice of device (CUDA when
// there is one) and checks their outputs against the CPU run in Python:
// equal datatypes and shapes, values within float tolerance (a GPU's
// kernels round differently), labels equal.
func TestCUDA(t *testing.T) {
	rt, py := cudaDriver(t)
	ctx := context.Background()
	for _, kind := range []string{pyruntimetest.TorchMLP, pyruntimetest.TorchCNN} {
		f := fixture(t, py, kind, 4)
		spec := f.Spec("")
		spec.Device = ""
		li, err := rt.Load(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		if li.Device != "cuda:0" {
			t.Errorf("%s loaded on %q, want cuda:0", kind, li.Device)
		}
		out, err := rt.Infer(ctx, spec.Key, f.Inputs, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != len(f.Outputs) {
			t.Fatalf("%s: %d outputs, want %d", kind, len(out), len(f.Outputs))
		}
		for i, w := range f.Outputs {
			g := out[i]
			if g.Name != w.Name || g.Datatype != w.Datatype || !slices.Equal(g.Shape, w.Shape) {
				t.Fatalf("%s output %d: %s %s %v, want %s %s %v", kind, i, g.Name, g.Datatype, g.Shape, w.Name, w.Datatype, w.Shape)
			}
			if w.Datatype != ai.FP32 {
				if string(g.Data) != string(w.Data) {
					t.Errorf("%s output %s differs on CUDA", kind, w.Name)
				}
				continue
			}
			for j := 0; j < len(w.Data); j += 4 {
				a := math.Float32frombits(binary.LittleEndian.Uint32(g.Data[j:]))
				b := math.Float32frombits(binary.LittleEndian.Uint32(w.Data[j:]))
				if math.Abs(float64(a-b)) > 1e-2*(1+math.Abs(float64(b))) {
					t.Errorf("%s output %s[%d]: %v on CUDA, %v on CPU", kind, w.Name, j/4, a, b)
					break
				}
			}
		}
	}
}

// BenchmarkPythonHopCUDA is BenchmarkPythonHop with the model on CUDA.
func BenchmarkPythonHopCUDA(b *testing.B) {
	rt, py := cudaDriver(b)
	f := fixture(b, py, pyruntimetest.TorchMLP, 32)
	spec := f.Spec("")
	spec.Device = ""
	ctx := context.Background()
	if _, err := rt.Load(ctx, spec); err != nil {
		b.Fatal(err)
	}
	for _, rows := range []int64{1, 32} {
		in := f.Inputs[0]
		in.Shape = []int64{rows, 8}
		in.Data = in.Data[:rows*8*4]
		b.Run("batch="+map[int64]string{1: "1", 32: "32"}[rows], func(b *testing.B) {
			for i := 0; i < 20; i++ {
				if _, err := rt.Infer(ctx, spec.Key, []ai.Tensor{in}, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := rt.Infer(ctx, spec.Key, []ai.Tensor{in}, nil); err != nil {
					b.Fatal(err)
				}
			}
			perCall := float64(b.Elapsed().Microseconds()) / float64(b.N)
			b.ReportMetric(perCall, "µs/call")
			b.ReportMetric(perCall/float64(rows), "µs/row")
		})
	}
}

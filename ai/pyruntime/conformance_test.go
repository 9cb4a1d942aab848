package pyruntime_test

import (
	"context"
	"testing"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/pyruntime/pyruntimetest"
	"github.com/grey-distributed/grey/greyerr"
)

// conformanceHarness is what the runtime conformance suite (ai/runtimetest)
// needs to run against this driver with real torch: a fresh driver (closed
// at the test's end), a load spec of the TorchScript MLP, inputs of 4 rows,
// and the outputs the model gave for them in Python (byte-exact on CPU).
// Wire the suite here, e.g.
//
//	func TestConformance(t *testing.T) {
//		runtimetest.Run(t, func(t *testing.T) (ai.Driver, ai.LoadSpec, []ai.Tensor, []ai.Tensor) {
//			return conformanceHarness(t)
//		})
//	}
//
// and likewise with conformanceHarnessTF for tensorflow.
func conformanceHarness(t testing.TB) (ai.Driver, ai.LoadSpec, []ai.Tensor, []ai.Tensor) {
	t.Helper()
	py := pyruntimetest.TorchPython(t)
	f := fixture(t, py, pyruntimetest.TorchMLP, 4)
	return open(t, py, "?device=cpu", ai.OpenOptions{}), f.Spec(""), f.Inputs, f.Outputs
}

// conformanceHarnessTF is conformanceHarness with the SavedModel.
func conformanceHarnessTF(t testing.TB) (ai.Driver, ai.LoadSpec, []ai.Tensor, []ai.Tensor) {
	t.Helper()
	py := pyruntimetest.TensorFlowPython(t)
	f := fixture(t, py, pyruntimetest.SavedModel, 4)
	return open(t, py, "", ai.OpenOptions{}), f.Spec(""), f.Inputs, f.Outputs
}

// TestContract checks the ai.Driver contract points the harness serves,
// until the shared suite runs here.
func TestContract(t *testing.T) {
	for name, h := range map[string]func(testing.TB) (ai.Driver, ai.LoadSpec, []ai.Tensor, []ai.Tensor){
		"torch": conformanceHarness, "tensorflow": conformanceHarnessTF,
	} {
		t.Run(name, func(t *testing.T) {
			d, spec, in, want := h(t)
			ctx := context.Background()
			if _, err := d.Infer(ctx, spec.Key, in, nil); !greyerr.Is(err, greyerr.NotFound) {
				t.Errorf("before load: got %v, want NotFound", err)
			}
			li, err := d.Load(ctx, spec)
			if err != nil {
				t.Fatal(err)
			}
			again, err := d.Load(ctx, spec)
			if err != nil || again != li {
				t.Errorf("second load: %+v, %v; want the first's %+v", again, err, li)
			}
			out, err := ai.NewRuntime(name, d).Infer(ctx, spec.Key, in, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := equalTensors(out, want); err != nil {
				t.Fatal(err)
			}
			if err := d.Unload(ctx, "never-loaded"); err != nil {
				t.Errorf("unload of an unknown key: %v", err)
			}
			if err := d.Unload(ctx, spec.Key); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Infer(ctx, spec.Key, in, nil); !greyerr.Is(err, greyerr.NotFound) {
				t.Errorf("after unload: got %v, want NotFound", err)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Info(ctx); err == nil {
				t.Error("Info after Close succeeded")
			}
		})
	}
}

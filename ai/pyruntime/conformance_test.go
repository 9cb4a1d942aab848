package pyruntime_test

import (
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/pyruntime"
	"github.com/grey-distributed/grey/ai/pyruntime/pyruntimetest"
	"github.com/grey-distributed/grey/ai/runtimetest"
)

// notAModel writes a file that is no model and returns a load of it as
// framework.
func notAModel(t testing.TB, framework ai.Framework) *ai.LoadSpec {
	t.Helper()
	p := filepath.Join(t.TempDir(), "junk.bin")
	if err := os.WriteFile(p, []byte("this is not a model"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &ai.LoadSpec{Model: ai.Model{TenantID: "t1", Name: "junk", Version: "1", Framework: framework,
		Digest: "sha256:" + "00000000000000000000000000000000000000000000000000000000000000aa"}, Path: p}
}

// openUnclosed opens a driver the suite closes (Harness.Open must not).
func openUnclosed(t testing.TB, python, query string) ai.Driver {
	t.Helper()
	u, err := url.Parse("python://" + python + query)
	if err != nil {
		t.Fatal(err)
	}
	d, err := pyruntime.Open(u, ai.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func specsOf(f pyruntimetest.Fixture) []runtimetest.TensorSpec {
	out := make([]runtimetest.TensorSpec, len(f.Inputs))
	for i, x := range f.Inputs {
		out[i] = runtimetest.TensorSpec{Name: x.Name, Datatype: x.Datatype, Shape: x.Shape[1:]}
	}
	return out
}

func namesOf(ts []ai.Tensor) []string {
	out := make([]string, len(ts))
	for i := range ts {
		out[i] = ts[i].Name
	}
	return out
}

// TestConformance runs the runtime port's conformance suite on the driver
// with real torch (the MLP, a raising and a hanging model) and real
// tensorflow (the SavedModel and a raising one).
func TestConformance(t *testing.T) {
	t.Run("torch", func(t *testing.T) {
		py := pyruntimetest.TorchPython(t)
		f := fixture(t, py, pyruntimetest.TorchMLP, 8)
		raises := fixture(t, py, pyruntimetest.TorchRaises, 2)
		hangs := fixture(t, py, pyruntimetest.TorchHangs, 1)
		runtimetest.Run(t, runtimetest.Harness{
			Open: func(t testing.TB) ai.Driver { return openUnclosed(t, py, "?device=cpu&restart_min=50ms") },
			Model: runtimetest.Model{
				Spec:    f.Spec(""),
				Inputs:  specsOf(f),
				Outputs: namesOf(f.Outputs),
				Cases:   []runtimetest.Case{{Inputs: f.Inputs, Outputs: f.Outputs}},
				// One thread on CPU: a row's outputs do not depend on the
				// batch it ran in, to the bit.
			},
			Raising:   &runtimetest.Fault{Spec: raises.Spec(""), Inputs: raises.Inputs},
			Hanging:   &runtimetest.Fault{Spec: hangs.Spec(""), Inputs: hangs.Inputs},
			NotAModel: notAModel(t, ai.PyTorch),
		})
	})
	t.Run("tensorflow", func(t *testing.T) {
		py := pyruntimetest.TensorFlowPython(t)
		f := fixture(t, py, pyruntimetest.SavedModel, 8)
		raises := fixture(t, py, pyruntimetest.SavedModelRaises, 2)
		runtimetest.Run(t, runtimetest.Harness{
			Open: func(t testing.TB) ai.Driver { return openUnclosed(t, py, "?restart_min=50ms") },
			Model: runtimetest.Model{
				Spec:    f.Spec(""),
				Inputs:  specsOf(f),
				Outputs: namesOf(f.Outputs),
				Cases:   []runtimetest.Case{{Inputs: f.Inputs, Outputs: f.Outputs}},
			},
			Raising:   &runtimetest.Fault{Spec: raises.Spec(""), Inputs: raises.Inputs},
			NotAModel: notAModel(t, ai.TensorFlow),
		})
	})
}

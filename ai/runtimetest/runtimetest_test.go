package runtimetest_test

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/memruntime"
	"github.com/grey-distributed/grey/ai/runtimetest"
	"github.com/grey-distributed/grey/greyerr"
)

// The suite must fail drivers that break the contract: each mutant below
// breaks one rule of a correct driver (memruntime), and the test runs the
// behaviour that should catch it in a child process (the suite reports
// through *testing.T) and wants it to fail.
var mutants = []struct{ name, catches string }{
	{"info-no-framework", "Info"},
	{"load-twice-fails", "LoadIdempotent"},
	{"batch-rows-shifted", "InferBatch"},
	{"batch-rows-shifted", "BatchEqualsRows"},
	{"ignores-names", "RequestedOutputs"},
	{"unknown-key-internal", "UnknownKey"},
	{"unload-noop", "UnloadThenInfer"},
	{"invalid-is-internal", "WrongShape"},
	{"invalid-is-internal", "WrongDatatype"},
	{"invalid-is-internal", "WrongName"},
	{"ignores-context", "ContextCancelled"},
	{"ignores-context", "Hang"},
	{"raise-is-unavailable", "Raise"},
	{"not-a-model-invalid", "NotAModel"},
	{"wrong-row", "InferOneRow"},
}

const mutantEnv = "RUNTIMETEST_MUTANT"

func TestSuiteFailsBrokenDrivers(t *testing.T) {
	if os.Getenv(mutantEnv) != "" {
		t.Skip("in a child process")
	}
	for _, m := range mutants {
		t.Run(m.name+"/"+m.catches, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestMutant$/^"+m.catches+"$", "-test.count=1")
			cmd.Env = append(os.Environ(), mutantEnv+"="+m.name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Errorf("the suite's %s passed a driver that breaks the contract (%s):\n%s", m.catches, m.name, out)
			}
		})
	}
}

// TestMutant runs the suite on the mutant named by RUNTIMETEST_MUTANT (only
// in the child process).
func TestMutant(t *testing.T) {
	name := os.Getenv(mutantEnv)
	if name == "" {
		t.Skip("run by TestSuiteFailsBrokenDrivers")
	}
	runtimetest.Run(t, harness(t, func() ai.Driver { return &mutant{Driver: memruntime.Open(memruntime.Options{}), name: name} }))
}

// TestCorrectDriverPasses is the control: the unmutated wrapper passes.
func TestCorrectDriverPasses(t *testing.T) {
	runtimetest.Run(t, harness(t, func() ai.Driver { return &mutant{Driver: memruntime.Open(memruntime.Options{})} }))
}

func harness(t *testing.T, open func() ai.Driver) runtimetest.Harness {
	raise, hang := 13.0, 42.0
	doc := memruntime.MLP(3, 4, 6, 3)
	doc.RaiseOn, doc.HangOn = &raise, &hang
	dir := t.TempDir()
	path := filepath.Join(dir, "m.json")
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(path, doc.Marshal(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("not a model"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := memruntime.Parse(doc.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	model := ai.Model{Name: "m", Version: "1", Framework: ai.PyTorch}
	flag := func(v float32) []ai.Tensor { return []ai.Tensor{memruntime.Tensor([][]float32{{v, 0, 0, 0}})} }
	return runtimetest.Harness{
		Open: func(testing.TB) ai.Driver { return open() },
		Model: runtimetest.Model{
			Spec:      ai.LoadSpec{Path: path, Model: model},
			Inputs:    []runtimetest.TensorSpec{{Name: "x", Datatype: ai.FP32, Shape: []int64{4}}},
			Outputs:   []string{"y", "label"},
			Reference: func(in []ai.Tensor) ([]ai.Tensor, error) { return m.Eval(in, nil) },
		},
		Raising:   &runtimetest.Fault{Inputs: flag(13)},
		Hanging:   &runtimetest.Fault{Inputs: flag(42)},
		NotAModel: &ai.LoadSpec{Path: bad, Model: model},
	}
}

type mutant struct {
	*memruntime.Driver
	name  string
	loads map[string]bool
}

func (m *mutant) Info(ctx context.Context) (ai.RuntimeInfo, error) {
	i, err := m.Driver.Info(ctx)
	if m.name == "info-no-framework" {
		i.Frameworks = nil
	}
	return i, err
}

func (m *mutant) Load(ctx context.Context, s ai.LoadSpec) (ai.LoadInfo, error) {
	if m.name == "load-twice-fails" {
		if m.loads == nil {
			m.loads = map[string]bool{}
		}
		if m.loads[s.Key] {
			return ai.LoadInfo{}, greyerr.New(greyerr.AlreadyExists, "loaded")
		}
		m.loads[s.Key] = true
	}
	li, err := m.Driver.Load(ctx, s)
	if m.name == "not-a-model-invalid" && greyerr.Is(err, greyerr.FailedPrecondition) {
		return li, greyerr.Invalid("path", "not a model")
	}
	return li, err
}

func (m *mutant) Unload(ctx context.Context, key string) error {
	if m.name == "unload-noop" {
		return nil
	}
	return m.Driver.Unload(ctx, key)
}

func (m *mutant) Infer(ctx context.Context, key string, in []ai.Tensor, names []string) ([]ai.Tensor, error) {
	switch m.name {
	case "ignores-names":
		names = nil
	case "ignores-context":
		ctx = context.Background()
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 11*time.Second) // past the suite's 10s bound
		defer cancel()
	}
	out, err := m.Driver.Infer(ctx, key, in, names)
	switch {
	case m.name == "unknown-key-internal" && greyerr.Is(err, greyerr.NotFound):
		return nil, greyerr.New(greyerr.Internal, "no key")
	case m.name == "invalid-is-internal" && greyerr.Is(err, greyerr.InvalidArgument):
		return nil, greyerr.New(greyerr.Internal, "bad input")
	case m.name == "raise-is-unavailable" && err != nil && !greyerr.Is(err, greyerr.InvalidArgument):
		return nil, greyerr.New(greyerr.Unavailable, "raised")
	case err != nil:
		return nil, err
	}
	rows := in[0].Shape[0]
	for i := range out {
		if out[i].Datatype != ai.FP32 {
			continue
		}
		if (m.name == "batch-rows-shifted" && rows > 1) || (m.name == "wrong-row" && rows == 1) {
			// The last element of the output moves by one part in 10^3.
			d := out[i].Data
			le := binary.LittleEndian
			j := len(d) - 4
			le.PutUint32(d[j:], math.Float32bits(math.Float32frombits(le.Uint32(d[j:]))*1.001+0.001))
		}
	}
	return out, nil
}

// Package runtimetest is the conformance suite of the runtime port: the
// behaviours every ai.Driver must have, checked through the portable
// ai.Runtime (which validates arguments and results around the driver).
// memruntime runs it on every go test; the python driver runs it against
// real torch and tensorflow, the remote drivers against their servers.
//
// A driver's test hands the suite a Harness: a way to open the driver and
// one small deterministic model with its expected outputs. The expected
// outputs come either from a Go reference function (Model.Reference) or,
// for models built outside Go (TorchScript, SavedModel), from cases the
// harness computed with the framework itself (Model.Cases): the suite cuts
// cases into rows and stacks rows into batches, so a handful of cases
// covers every behaviour.
package runtimetest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/greyerr"
)

// Harness is what a driver's test hands the suite.
type Harness struct {
	// Open returns a new driver. The suite opens one and runs every
	// behaviour on it (each with keys of its own), the Close behaviour
	// last; it closes the driver when the test ends. Open must not.
	Open func(t testing.TB) ai.Driver
	// Model is the model every behaviour runs.
	Model Model
	// Raising, when set, names inputs that make a model raise. Nil skips
	// the behaviour.
	Raising *Fault
	// Hanging, when set, names inputs on which a model blocks until the
	// call's context ends. Nil: cancellation is checked with a context
	// cancelled before the call only.
	Hanging *Fault
	// NotAModel, when set, is a load that must fail with
	// FailedPrecondition (an artifact that is not a model, or a model the
	// runtime does not have). Nil skips the behaviour.
	NotAModel *ai.LoadSpec
	// MaxRows is the largest batch the suite sends (0: 8).
	MaxRows int
}

// Model is a small deterministic model and what it computes.
type Model struct {
	// Spec loads the model; the suite sets Key (a key of its own per
	// behaviour).
	Spec ai.LoadSpec
	// Inputs are the model's inputs, every shape without the batch
	// dimension.
	Inputs []TensorSpec
	// Outputs are the names of the model's outputs (at least one).
	Outputs []string
	// Reference computes the expected outputs (every output, in any
	// order) of a batch of inputs. The suite draws the inputs: floats in
	// [-1, 1), integers in [0, 10), booleans. Nil: the suite uses Cases.
	Reference func(inputs []ai.Tensor) ([]ai.Tensor, error)
	// Cases are inputs with their expected outputs (every output), each a
	// batch of one or more rows; used when Reference is nil.
	Cases []Case
	// Tolerance bounds the difference of a float output from the
	// expected one: |got-want| <= Tolerance·(1+|want|). 0: bit-exact.
	Tolerance float64
	// RowTolerance bounds the difference between a row's outputs in a
	// batch and the same row's outputs run alone (0: Tolerance). A
	// framework may sum in another order for another batch size; batching
	// relies on the difference being this small.
	RowTolerance float64
}

// TensorSpec describes one input of a model.
type TensorSpec struct {
	// Name of the input.
	Name string
	// Datatype of its elements.
	Datatype ai.Datatype
	// Shape without the batch dimension (every dimension fixed).
	Shape []int64
}

// Case is a batch of inputs and the outputs the model gives for it.
type Case struct {
	// Inputs, the batch dimension first.
	Inputs []ai.Tensor
	// Outputs, every output of the model, as many rows as the inputs.
	Outputs []ai.Tensor
}

// Fault is a load and inputs on which a model misbehaves.
type Fault struct {
	// Spec loads the model (zero: Harness.Model's spec). The suite sets
	// Key.
	Spec ai.LoadSpec
	// Inputs make the model raise (Raising) or hang (Hanging).
	Inputs []ai.Tensor
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	if h.Open == nil {
		t.Fatal("runtimetest: Harness.Open is nil")
	}
	if len(h.Model.Inputs) == 0 || len(h.Model.Outputs) == 0 {
		t.Fatal("runtimetest: Harness.Model needs its inputs and outputs")
	}
	if h.Model.Reference == nil && len(h.Model.Cases) == 0 {
		t.Fatal("runtimetest: Harness.Model needs a Reference or Cases")
	}
	if h.MaxRows <= 0 {
		h.MaxRows = 8
	}
	s := &suite{h: h, top: t}
	t.Run("Info", s.testInfo)
	t.Run("LoadIdempotent", s.testLoadIdempotent)
	t.Run("InferOneRow", s.testOneRow)
	t.Run("InferBatch", s.testBatch)
	t.Run("BatchEqualsRows", s.testBatchEqualsRows)
	t.Run("RequestedOutputs", s.testRequestedOutputs)
	t.Run("Concurrent", s.testConcurrent)
	t.Run("UnknownKey", s.testUnknownKey)
	t.Run("UnloadThenInfer", s.testUnload)
	t.Run("WrongShape", s.testWrongShape)
	t.Run("WrongDatatype", s.testWrongDatatype)
	t.Run("WrongName", s.testWrongName)
	t.Run("ContextCancelled", s.testCancelled)
	t.Run("Hang", s.testHang)
	t.Run("Raise", s.testRaise)
	t.Run("NotAModel", s.testNotAModel)
	t.Run("Close", s.testClose)
}

type suite struct {
	h      Harness
	top    *testing.T
	mu     sync.Mutex
	rt     *ai.Runtime
	closed bool
	keys   int
}

// Row is one row of inputs with its expected outputs.
type row struct {
	in, out []ai.Tensor
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// open returns the suite's Runtime: one driver for every behaviour (a
// runtime may be a process that takes seconds to start and a GiB to hold),
// opened on first use and closed when the suite ends (or by Close, the
// last behaviour).
func (s *suite) open(t testing.TB) *ai.Runtime {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rt != nil {
		return s.rt
	}
	d := s.h.Open(t)
	if d == nil {
		t.Fatal("runtimetest: the harness returned a nil driver")
	}
	s.rt = ai.NewRuntime("conformance", d)
	s.top.Cleanup(func() {
		if !s.closed {
			if err := d.Close(); err != nil {
				s.top.Errorf("close: %v", err)
			}
		}
	})
	return s.rt
}

// load loads spec (Model's when zero) under a new key and returns it.
func (s *suite) load(t testing.TB, rt *ai.Runtime, spec ai.LoadSpec) string {
	t.Helper()
	if spec.Model.Name == "" {
		spec = s.h.Model.Spec
	}
	s.mu.Lock()
	s.keys++
	spec.Key = fmt.Sprintf("conformance-%s-%d", t.Name(), s.keys)
	s.mu.Unlock()
	if _, err := rt.Load(ctx(t), spec); err != nil {
		t.Fatalf("load %s:%s: %v", spec.Model.Name, spec.Model.Version, err)
	}
	return spec.Key
}

// rows returns n rows with their expected outputs, drawn from seed.
func (s *suite) rows(t testing.TB, n int, seed int64) []row {
	t.Helper()
	m := &s.h.Model
	var pool []row
	if m.Reference != nil {
		in := drawInputs(m.Inputs, n, seed)
		out, err := m.Reference(in)
		if err != nil {
			t.Fatalf("reference: %v", err)
		}
		pool = splitRows(t, in, out, n)
	} else {
		for c, cs := range m.Cases {
			if len(cs.Inputs) == 0 || len(cs.Inputs[0].Shape) == 0 {
				t.Fatalf("runtimetest: case %d has no inputs", c)
			}
			pool = append(pool, splitRows(t, cs.Inputs, cs.Outputs, int(cs.Inputs[0].Shape[0]))...)
		}
		if len(pool) == 0 {
			t.Fatal("runtimetest: the cases hold no rows")
		}
		rng := rand.New(rand.NewSource(seed))
		rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
		for len(pool) < n {
			pool = append(pool, pool...)
		}
		pool = pool[:n]
	}
	return pool
}

func splitRows(t testing.TB, in, out []ai.Tensor, n int) []row {
	t.Helper()
	ones := make([]int64, n)
	for i := range ones {
		ones[i] = 1
	}
	ins, err := ai.Split(in, ones)
	if err != nil {
		t.Fatalf("runtimetest: split inputs: %v", err)
	}
	outs, err := ai.Split(out, ones)
	if err != nil {
		t.Fatalf("runtimetest: split expected outputs: %v", err)
	}
	rows := make([]row, n)
	for i := range rows {
		rows[i] = row{in: ins[i], out: sortByName(outs[i])}
	}
	return rows
}

func sortByName(ts []ai.Tensor) []ai.Tensor {
	ts = slices.Clone(ts)
	slices.SortFunc(ts, func(a, b ai.Tensor) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return ts
}

// stack joins rows into one batch of inputs and its expected outputs.
func stack(t testing.TB, rows []row) (in, out []ai.Tensor) {
	t.Helper()
	ins := make([][]ai.Tensor, len(rows))
	outs := make([][]ai.Tensor, len(rows))
	for i, r := range rows {
		ins[i], outs[i] = r.in, r.out
	}
	in, _, err := ai.Stack(ins)
	if err != nil {
		t.Fatalf("runtimetest: stack inputs: %v", err)
	}
	out, _, err = ai.Stack(outs)
	if err != nil {
		t.Fatalf("runtimetest: stack expected outputs: %v", err)
	}
	return in, out
}

// drawInputs draws n rows of every input.
func drawInputs(specs []TensorSpec, n int, seed int64) []ai.Tensor {
	rng := rand.New(rand.NewSource(seed))
	out := make([]ai.Tensor, len(specs))
	le := binary.LittleEndian
	for i, sp := range specs {
		shape := append([]int64{int64(n)}, sp.Shape...)
		count, _ := ai.Elements(shape, "shape")
		data := make([]byte, 0, int(count)*sp.Datatype.Size())
		for e := int64(0); e < count; e++ {
			v := rng.Intn(10)
			switch sp.Datatype {
			case ai.FP32:
				data = le.AppendUint32(data, math.Float32bits(float32(rng.Float64()*2-1)))
			case ai.FP64:
				data = le.AppendUint64(data, math.Float64bits(rng.Float64()*2-1))
			case ai.Bool:
				data = append(data, byte(v%2))
			default:
				var b [8]byte
				b[0] = byte(v)
				data = append(data, b[:sp.Datatype.Size()]...)
			}
		}
		out[i] = ai.Tensor{Name: sp.Name, Datatype: sp.Datatype, Shape: shape, Data: data}
	}
	return out
}

// compare reports how got differs from want (every output of want, matched
// by name; got must hold no other), "" when it does not.
func compare(got, want []ai.Tensor, tol float64) string {
	if len(got) != len(want) {
		return fmt.Sprintf("got %d outputs %v, want %d %v", len(got), names(got), len(want), names(want))
	}
	for _, w := range want {
		i := slices.IndexFunc(got, func(g ai.Tensor) bool { return g.Name == w.Name })
		if i < 0 {
			return fmt.Sprintf("output %q missing (got %v)", w.Name, names(got))
		}
		if d := compareTensor(&got[i], &w, tol); d != "" {
			return fmt.Sprintf("output %q: %s", w.Name, d)
		}
	}
	return ""
}

func names(ts []ai.Tensor) []string {
	out := make([]string, len(ts))
	for i := range ts {
		out[i] = ts[i].Name
	}
	return out
}

func compareTensor(g, w *ai.Tensor, tol float64) string {
	if g.Datatype != w.Datatype {
		return fmt.Sprintf("datatype %s, want %s", g.Datatype, w.Datatype)
	}
	if !slices.Equal(g.Shape, w.Shape) {
		return fmt.Sprintf("shape %v, want %v", g.Shape, w.Shape)
	}
	if len(g.Data) != len(w.Data) {
		return fmt.Sprintf("%d data bytes, want %d", len(g.Data), len(w.Data))
	}
	le := binary.LittleEndian
	switch g.Datatype {
	case ai.FP32, ai.FP64:
		sz := g.Datatype.Size()
		for i := 0; i < len(g.Data); i += sz {
			var a, b float64
			if sz == 4 {
				a, b = float64(math.Float32frombits(le.Uint32(g.Data[i:]))), float64(math.Float32frombits(le.Uint32(w.Data[i:])))
			} else {
				a, b = math.Float64frombits(le.Uint64(g.Data[i:])), math.Float64frombits(le.Uint64(w.Data[i:]))
			}
			if math.IsNaN(a) && math.IsNaN(b) || a == b {
				continue
			}
			if math.IsNaN(a) || math.IsNaN(b) || math.Abs(a-b) > tol*(1+math.Abs(b)) {
				return fmt.Sprintf("element %d is %v, want %v (tolerance %g)", i/sz, a, b, tol)
			}
		}
	default:
		if i := firstDiff(g.Data, w.Data); i >= 0 {
			return fmt.Sprintf("byte %d (element %d) differs", i, i/g.Datatype.Size())
		}
	}
	return ""
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

func (s *suite) rowTol() float64 {
	if s.h.Model.RowTolerance > 0 {
		return s.h.Model.RowTolerance
	}
	return s.h.Model.Tolerance
}

// wantCode fails t unless err carries code.
func wantCode(t testing.TB, what string, err error, code greyerr.Code) {
	t.Helper()
	if !greyerr.Is(err, code) {
		t.Errorf("%s: got %v (code %q), want code %q", what, err, greyerr.CodeOf(err), code)
	}
}

// isCtxErr reports whether err is (or carries the code of) a context error.
func isCtxErr(err error) bool {
	c := greyerr.CodeOf(err)
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		c == greyerr.Canceled || c == greyerr.DeadlineExceeded
}

func errorsIsModel(err error) bool { return errors.Is(err, ai.ErrModel) }

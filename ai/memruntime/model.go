package memruntime

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/greyerr"
)

// The names of a model's tensors.
const (
	// Input is the model's one input: FP32 of shape [rows, features].
	Input = "x"
	// OutputY is the last layer's values: FP32 of shape [rows, outputs].
	OutputY = "y"
	// OutputLabel is the index of the largest value of each row of y
	// (the first on a tie): INT64 of shape [rows].
	OutputLabel = "label"
)

// MaxSlots bounds a model's Slots.
const MaxSlots = 4096

// MaxDocBytes bounds a model document.
const MaxDocBytes = 16 << 20

// Layer is one dense layer: out = w·in + b, then max(0, ·) when ReLU.
type Layer struct {
	// W is the weights, one row per output (len(W) outputs × len(W[0])
	// inputs).
	W [][]float64 `json:"w"`
	// B is the bias, one per output (empty: zero).
	B []float64 `json:"b,omitempty"`
	// ReLU applies max(0, ·) to the layer's outputs.
	ReLU bool `json:"relu,omitempty"`
}

// Doc is a model of the mem runtime: the artifact's bytes are its JSON.
type Doc struct {
	// Framework, when set, is the only framework the model loads under
	// (a model pushed for another framework is refused, as a TorchScript
	// file pushed as tensorflow would be).
	Framework ai.Framework `json:"framework,omitempty"`
	// Layers of the network, applied in order; at least one.
	Layers []Layer `json:"layers"`
	// Latency is a fixed time each call takes ("2ms"), as a device's
	// per-launch cost would.
	Latency Duration `json:"latency,omitempty"`
	// RowCost is the added time per row of a batch ("50us").
	RowCost Duration `json:"row_cost,omitempty"`
	// Slots bounds the calls of this model that run at once, as one
	// device does (0: no bound; at most MaxSlots). With Latency, Slots 1 makes batching
	// pay as it does on a real device.
	Slots int `json:"slots,omitempty"`
	// RaiseOn, when set, makes a call whose input holds this value fail
	// as a model that raised (ai.ErrModel).
	RaiseOn *float64 `json:"raise_on,omitempty"`
	// HangOn, when set, makes a call whose input holds this value block
	// until its context ends.
	HangOn *float64 `json:"hang_on,omitempty"`
	// CrashOn, when set, makes a call whose input holds this value fail
	// Unavailable, as a runtime whose process died mid-batch: the work is
	// retried elsewhere or later.
	CrashOn *float64 `json:"crash_on,omitempty"`
}

// Duration is a time.Duration written as Go's duration text in JSON.
type Duration time.Duration

// MarshalJSON writes d as "1.5ms".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration text ("2ms") or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil || v < 0 {
			return fmt.Errorf("duration %q: want a non-negative Go duration such as \"2ms\"", s)
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil || n < 0 {
		return fmt.Errorf("duration %s: want a non-negative Go duration such as \"2ms\"", b)
	}
	*d = Duration(n)
	return nil
}

// MLP returns a deterministic multi-layer perceptron: sizes are the
// widths of its layers, input first ({4, 8, 3}: 4 features, a hidden
// layer of 8 with ReLU, 3 outputs). The weights are drawn from seed, so
// two calls with the same arguments return the same model.
func MLP(seed int64, sizes ...int) Doc {
	rng := rand.New(rand.NewSource(seed))
	var d Doc
	for l := 0; l+1 < len(sizes); l++ {
		in, out := sizes[l], sizes[l+1]
		layer := Layer{W: make([][]float64, out), B: make([]float64, out), ReLU: l+2 < len(sizes)}
		scale := 1 / math.Sqrt(float64(in))
		for o := range layer.W {
			layer.W[o] = make([]float64, in)
			for i := range layer.W[o] {
				layer.W[o][i] = float64(float32((rng.Float64()*2 - 1) * scale))
			}
			layer.B[o] = float64(float32(rng.Float64()*0.2 - 0.1))
		}
		d.Layers = append(d.Layers, layer)
	}
	return d
}

// Marshal returns the document's JSON: the artifact to push.
func (d Doc) Marshal() []byte {
	b, err := json.Marshal(d)
	if err != nil { // only a NaN weight can fail; MLP never makes one
		panic(fmt.Sprintf("memruntime: marshal model: %v", err))
	}
	return b
}

// Model is a parsed, checked model document, ready to run.
type Model struct {
	doc   Doc
	slots chan struct{}
}

// Parse reads and checks a model document. A document that is not one
// (not JSON, no layers, ragged or mismatched weights, non-finite numbers)
// is a FailedPrecondition error: the artifact is not a model.
func Parse(b []byte) (*Model, error) {
	if len(b) > MaxDocBytes {
		return nil, greyerr.New(greyerr.FailedPrecondition, "not a mem model: %d bytes is past the %d-byte bound", len(b), MaxDocBytes)
	}
	var d Doc
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, greyerr.New(greyerr.FailedPrecondition, "not a mem model document: %v", err)
	}
	if dec.More() {
		return nil, greyerr.New(greyerr.FailedPrecondition, "not a mem model document: data after the JSON object")
	}
	if err := d.check(); err != nil {
		return nil, greyerr.New(greyerr.FailedPrecondition, "not a mem model: %v", err)
	}
	m := &Model{doc: d}
	if d.Slots > 0 {
		m.slots = make(chan struct{}, d.Slots)
	}
	return m, nil
}

func (d *Doc) check() error {
	if d.Framework != "" && !d.Framework.Valid() {
		return fmt.Errorf("framework %q is not pytorch or tensorflow", d.Framework)
	}
	if len(d.Layers) == 0 {
		return fmt.Errorf("no layers")
	}
	if d.Slots < 0 || d.Slots > MaxSlots {
		return fmt.Errorf("slots %d is not within [0, %d]", d.Slots, MaxSlots)
	}
	prev := -1
	for l, layer := range d.Layers {
		if len(layer.W) == 0 || len(layer.W[0]) == 0 {
			return fmt.Errorf("layer %d has no weights", l)
		}
		in := len(layer.W[0])
		if prev >= 0 && in != prev {
			return fmt.Errorf("layer %d takes %d inputs, layer %d gives %d", l, in, l-1, prev)
		}
		if len(layer.W)*in > ai.MaxElements {
			return fmt.Errorf("layer %d is too large", l)
		}
		for o, row := range layer.W {
			if len(row) != in {
				return fmt.Errorf("layer %d: row %d has %d weights, row 0 has %d", l, o, len(row), in)
			}
			for _, w := range row {
				if math.IsNaN(w) || math.IsInf(w, 0) {
					return fmt.Errorf("layer %d: a weight is not finite", l)
				}
			}
		}
		if len(layer.B) != 0 && len(layer.B) != len(layer.W) {
			return fmt.Errorf("layer %d has %d outputs and %d biases", l, len(layer.W), len(layer.B))
		}
		prev = len(layer.W)
	}
	return nil
}

// Doc returns the model's document.
func (m *Model) Doc() Doc { return m.doc }

// Features is the number of input features (the second dimension of x).
func (m *Model) Features() int { return len(m.doc.Layers[0].W[0]) }

// Classes is the number of outputs (the second dimension of y).
func (m *Model) Classes() int { return len(m.doc.Layers[len(m.doc.Layers)-1].W) }

// Signature describes the model's inputs and outputs, the batch dimension
// left out of the shapes.
func (m *Model) Signature() (inputs, outputs []TensorSpec) {
	return []TensorSpec{{Name: Input, Datatype: ai.FP32, Shape: []int64{int64(m.Features())}}},
		[]TensorSpec{
			{Name: OutputY, Datatype: ai.FP32, Shape: []int64{int64(m.Classes())}},
			{Name: OutputLabel, Datatype: ai.Int64, Shape: []int64{}},
		}
}

// TensorSpec describes a tensor of a model's signature.
type TensorSpec struct {
	// Name of the tensor.
	Name string
	// Datatype of its elements.
	Datatype ai.Datatype
	// Shape past the batch dimension.
	Shape []int64
}

// CheckInputs checks inputs against the model's signature: exactly one
// input named x, FP32, of shape [rows, features]. A mismatch is an
// InvalidArgument error naming the field.
func (m *Model) CheckInputs(inputs []ai.Tensor) error {
	for i := range inputs {
		if inputs[i].Name != Input {
			return greyerr.Invalid(fmt.Sprintf("inputs[%d].name", i), "the model has no input %q (its one input is %q)", inputs[i].Name, Input)
		}
	}
	if len(inputs) != 1 {
		return greyerr.Invalid("inputs", "the model takes one input %q, got %d tensors", Input, len(inputs))
	}
	x := &inputs[0]
	if x.Datatype != ai.FP32 {
		return greyerr.Invalid("inputs[0].datatype", "input %q is FP32, got %s", Input, x.Datatype)
	}
	if len(x.Shape) != 2 || x.Shape[1] != int64(m.Features()) {
		return greyerr.Invalid("inputs[0].shape", "input %q has shape [-1, %d], got %v", Input, m.Features(), x.Shape)
	}
	return nil
}

// CheckOutputs checks requested output names.
func (m *Model) CheckOutputs(names []string) error {
	for i, n := range names {
		if n != OutputY && n != OutputLabel {
			return greyerr.Invalid(fmt.Sprintf("outputs[%d].name", i), "the model has no output %q (it has %q and %q)", n, OutputY, OutputLabel)
		}
	}
	return nil
}

// Eval computes the model's outputs for valid inputs, at once: no
// latency, no flags. names selects outputs (empty: y then label).
func (m *Model) Eval(inputs []ai.Tensor, names []string) ([]ai.Tensor, error) {
	if err := m.CheckInputs(inputs); err != nil {
		return nil, err
	}
	if err := m.CheckOutputs(names); err != nil {
		return nil, err
	}
	if err := inputs[0].Validate("inputs[0]"); err != nil {
		return nil, err
	}
	x := &inputs[0]
	rows := int(x.Shape[0])
	feat := m.Features()
	classes := m.Classes()
	le := binary.LittleEndian
	y := make([]byte, 0, rows*classes*4)
	label := make([]byte, 0, rows*8)
	act := make([]float64, 0, feat)
	for r := 0; r < rows; r++ {
		act = act[:0]
		for i := 0; i < feat; i++ {
			act = append(act, float64(math.Float32frombits(le.Uint32(x.Data[(r*feat+i)*4:]))))
		}
		for _, layer := range m.doc.Layers {
			next := make([]float64, len(layer.W))
			for o, row := range layer.W {
				s := 0.0
				for i, w := range row {
					s += w * act[i]
				}
				if len(layer.B) > 0 {
					s += layer.B[o]
				}
				if layer.ReLU && s < 0 {
					s = 0
				}
				next[o] = s
			}
			act = next
		}
		best := 0
		for o, v := range act {
			y = le.AppendUint32(y, math.Float32bits(float32(v)))
			if float32(v) > float32(act[best]) {
				best = o
			}
		}
		label = le.AppendUint64(label, uint64(best))
	}
	all := map[string]ai.Tensor{
		OutputY:     {Name: OutputY, Datatype: ai.FP32, Shape: []int64{int64(rows), int64(classes)}, Data: y},
		OutputLabel: {Name: OutputLabel, Datatype: ai.Int64, Shape: []int64{int64(rows)}, Data: label},
	}
	if len(names) == 0 {
		names = []string{OutputY, OutputLabel}
	}
	out := make([]ai.Tensor, 0, len(names))
	seen := map[string]bool{}
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, all[n])
		}
	}
	return out, nil
}

// Infer runs the model as the runtime does: inputs checked, the flags
// honoured (RaiseOn fails with ai.ErrModel, CrashOn with Unavailable,
// HangOn blocks until ctx ends), at most Slots calls at once, each taking Latency plus RowCost a
// row. A context that ends first returns its error.
func (m *Model) Infer(ctx context.Context, inputs []ai.Tensor, names []string) ([]ai.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := m.CheckInputs(inputs); err != nil {
		return nil, err
	}
	if err := m.CheckOutputs(names); err != nil {
		return nil, err
	}
	x := &inputs[0]
	if m.doc.RaiseOn != nil && holds(x, *m.doc.RaiseOn) {
		return nil, fmt.Errorf("%w: an input holds %v (the model's raise_on value)", ai.ErrModel, *m.doc.RaiseOn)
	}
	if m.doc.CrashOn != nil && holds(x, *m.doc.CrashOn) {
		return nil, greyerr.New(greyerr.Unavailable, "an input holds %v (the model's crash_on value): the runtime went away", *m.doc.CrashOn)
	}
	if m.doc.HangOn != nil && holds(x, *m.doc.HangOn) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if m.slots != nil {
		select {
		case m.slots <- struct{}{}:
			defer func() { <-m.slots }()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if d := time.Duration(m.doc.Latency) + time.Duration(x.Shape[0])*time.Duration(m.doc.RowCost); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	return m.Eval(inputs, names)
}

func holds(x *ai.Tensor, v float64) bool {
	f := math.Float32bits(float32(v))
	le := binary.LittleEndian
	for i := 0; i+4 <= len(x.Data); i += 4 {
		if le.Uint32(x.Data[i:]) == f {
			return true
		}
	}
	return false
}

// Tensor builds an FP32 input tensor x from rows of features.
func Tensor(rows [][]float32) ai.Tensor {
	t := ai.Tensor{Name: Input, Datatype: ai.FP32, Shape: []int64{int64(len(rows)), 0}}
	if len(rows) > 0 {
		t.Shape[1] = int64(len(rows[0]))
	}
	for _, r := range rows {
		for _, v := range r {
			t.Data = binary.LittleEndian.AppendUint32(t.Data, math.Float32bits(v))
		}
	}
	return t
}

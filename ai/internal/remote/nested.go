package remote

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/greyerr"
)

// MaxNestDepth bounds the nesting of a JSON tensor.
const MaxNestDepth = 32

// Nested writes t's elements as JSON lists nested by its shape (TF
// Serving's tensor form): shape [2, 3] is [[a,b,c],[d,e,f]], shape [] a
// bare element.
func Nested(t *ai.Tensor) (json.RawMessage, error) {
	flat, err := flatElements(t)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	i := 0
	var walk func(dims []int64)
	walk = func(dims []int64) {
		if len(dims) == 0 {
			b.Write(flat[i])
			i++
			return
		}
		b.WriteByte('[')
		for k := int64(0); k < dims[0]; k++ {
			if k > 0 {
				b.WriteByte(',')
			}
			walk(dims[1:])
		}
		b.WriteByte(']')
	}
	walk(t.Shape)
	return b.Bytes(), nil
}

// Rows writes each row of t (along its first dimension) nested by the
// rest of its shape.
func Rows(t *ai.Tensor) ([]json.RawMessage, error) {
	if len(t.Shape) == 0 {
		return nil, fmt.Errorf("tensor %q has no batch dimension", t.Name)
	}
	ones := make([]int64, t.Shape[0])
	for i := range ones {
		ones[i] = 1
	}
	parts, err := ai.Split([]ai.Tensor{*t}, ones)
	if err != nil {
		return nil, err
	}
	out := make([]json.RawMessage, len(parts))
	for i, p := range parts {
		row := p[0]
		row.Shape = row.Shape[1:]
		if out[i], err = Nested(&row); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// flatElements returns t's elements in their JSON form, row-major.
func flatElements(t *ai.Tensor) ([]json.RawMessage, error) {
	b, err := t.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var j struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, err
	}
	return j.Data, nil
}

// FromNested reads a JSON value nested in lists (TF Serving's form) as a
// tensor of datatype dt: the shape is the nesting's, which must be
// rectangular. An error is InvalidArgument.
func FromNested(name string, dt ai.Datatype, raw json.RawMessage) (ai.Tensor, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return ai.Tensor{}, greyerr.Invalid(name, "not a JSON value: %v", err)
	}
	return FromValue(name, dt, v)
}

// FromValue is FromNested on a decoded value (numbers as json.Number).
func FromValue(name string, dt ai.Datatype, v any) (ai.Tensor, error) {
	var shape []int64
	for cur, depth := v, 0; ; depth++ {
		l, ok := cur.([]any)
		if !ok {
			break
		}
		if depth >= MaxNestDepth {
			return ai.Tensor{}, greyerr.Invalid(name, "nested deeper than %d", MaxNestDepth)
		}
		shape = append(shape, int64(len(l)))
		if len(l) == 0 {
			break
		}
		cur = l[0]
	}
	var flat []any
	var walk func(x any, depth int) error
	walk = func(x any, depth int) error {
		if depth == len(shape) {
			if _, isList := x.([]any); isList {
				return greyerr.Invalid(name, "the lists are not rectangular (shape %v)", shape)
			}
			flat = append(flat, x)
			return nil
		}
		l, ok := x.([]any)
		if !ok || int64(len(l)) != shape[depth] {
			return greyerr.Invalid(name, "the lists are not rectangular (shape %v)", shape)
		}
		for _, e := range l {
			if err := walk(e, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(v, 0); err != nil {
		return ai.Tensor{}, err
	}
	if shape == nil {
		shape = []int64{}
	}
	data, err := json.Marshal(flat)
	if err != nil {
		return ai.Tensor{}, greyerr.Invalid(name, "%v", err)
	}
	if flat == nil {
		data = []byte("[]")
	}
	doc, err := json.Marshal(map[string]any{"name": name, "datatype": dt, "shape": shape, "data": json.RawMessage(data)})
	if err != nil {
		return ai.Tensor{}, greyerr.Invalid(name, "%v", err)
	}
	var t ai.Tensor
	if err := t.UnmarshalJSON(doc); err != nil {
		return ai.Tensor{}, err
	}
	return t, nil
}

// StackRows joins per-row values (each nested by the row's shape) into
// one tensor whose first dimension is the rows.
func StackRows(name string, dt ai.Datatype, rows []any) (ai.Tensor, error) {
	return FromValue(name, dt, rows)
}

package ai

import (
	"fmt"
	"slices"
)

// Stackable reports whether two requests' inputs can share a batch: the
// same tensor names in the same order, each with the same datatype and the
// same shape past the batch dimension. A request whose inputs are not
// stackable with a batch's runs alone.
func Stackable(a, b []Tensor) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := &a[i], &b[i]
		if x.Name != y.Name || x.Datatype != y.Datatype || len(x.Shape) == 0 || len(x.Shape) != len(y.Shape) ||
			!slices.Equal(x.Shape[1:], y.Shape[1:]) {
			return false
		}
	}
	return true
}

// Stack concatenates the requests' inputs along the batch dimension
// (Shape[0]) into one set of inputs, and returns each request's number of
// rows. Every request must be Stackable with the first.
func Stack(reqs [][]Tensor) ([]Tensor, []int64, error) {
	if len(reqs) == 0 {
		return nil, nil, fmt.Errorf("stack: no requests")
	}
	rows := make([]int64, len(reqs))
	for r, in := range reqs {
		if !Stackable(reqs[0], in) {
			return nil, nil, fmt.Errorf("stack: request %d's inputs do not stack with request 0's", r)
		}
		if len(in) > 0 {
			rows[r] = in[0].Shape[0]
		}
		for i := range in {
			if in[i].Shape[0] != rows[r] {
				return nil, nil, fmt.Errorf("stack: request %d's inputs disagree on the batch dimension", r)
			}
		}
	}
	out := make([]Tensor, len(reqs[0]))
	for i := range out {
		first := &reqs[0][i]
		total, size := int64(0), 0
		for _, in := range reqs {
			total += in[i].Shape[0]
			size += len(in[i].Data)
		}
		data := make([]byte, 0, size)
		for _, in := range reqs {
			data = append(data, in[i].Data...)
		}
		shape := slices.Clone(first.Shape)
		shape[0] = total
		out[i] = Tensor{Name: first.Name, Datatype: first.Datatype, Shape: shape, Data: data}
	}
	return out, rows, nil
}

// Split cuts a batch's outputs back into one set per request, rows[r] rows
// each along the batch dimension. Every output must have exactly
// sum(rows) rows; the parts share the outputs' memory.
func Split(outputs []Tensor, rows []int64) ([][]Tensor, error) {
	var total int64
	for _, r := range rows {
		total += r
	}
	parts := make([][]Tensor, len(rows))
	for r := range parts {
		parts[r] = make([]Tensor, len(outputs))
	}
	for i := range outputs {
		o := &outputs[i]
		if len(o.Shape) == 0 || o.Shape[0] != total {
			return nil, fmt.Errorf("split: output %q has shape %v, want %d rows along the batch dimension", o.Name, o.Shape, total)
		}
		if err := o.Validate("outputs"); err != nil {
			return nil, fmt.Errorf("split: %w", err)
		}
		rowBytes := 0
		if total > 0 {
			rowBytes = len(o.Data) / int(total)
		}
		off := 0
		for r, n := range rows {
			shape := slices.Clone(o.Shape)
			shape[0] = n
			end := off + int(n)*rowBytes
			parts[r][i] = Tensor{Name: o.Name, Datatype: o.Datatype, Shape: shape, Data: o.Data[off:end:end]}
			off = end
		}
	}
	return parts, nil
}

package ai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/grey-distributed/grey/greyerr"
)

// InferenceHeaderContentLength is the HTTP header of the Open Inference
// Protocol's binary tensor data extension: a body then starts with a JSON
// header of that many bytes, and the raw bytes of the tensors whose
// parameters carry BinaryDataSize follow it, in the header's order.
const InferenceHeaderContentLength = "Inference-Header-Content-Length"

// BinaryDataSize is the tensor parameter of the binary data extension
// naming the bytes of a tensor's data in the binary part (little-endian,
// row-major: the same bytes as Tensor.Data).
const BinaryDataSize = "binary_data_size"

// BinaryEntry is a tensor's entry in the JSON header of a binary body: no
// data, its parameters carrying BinaryDataSize.
type BinaryEntry struct {
	// Name of the tensor.
	Name string `json:"name"`
	// Shape, outermost dimension first.
	Shape []int64 `json:"shape"`
	// Datatype of the elements.
	Datatype Datatype `json:"datatype"`
	// Parameters: the tensor's own, plus BinaryDataSize.
	Parameters map[string]any `json:"parameters"`
}

// BinaryEntries returns the header entries of ts for a binary body and the
// binary part (their data, concatenated in order).
func BinaryEntries(ts []Tensor) ([]BinaryEntry, []byte) {
	n := 0
	for _, t := range ts {
		n += len(t.Data)
	}
	raw := make([]byte, 0, n)
	es := make([]BinaryEntry, len(ts))
	for i, t := range ts {
		p := make(map[string]any, len(t.Parameters)+1)
		for k, v := range t.Parameters {
			p[k] = v
		}
		p[BinaryDataSize] = len(t.Data)
		es[i] = BinaryEntry{Name: t.Name, Shape: t.Shape, Datatype: t.Datatype, Parameters: p}
		raw = append(raw, t.Data...)
	}
	return es, raw
}

// SplitBinaryBody splits a body of the binary data extension at the
// length the InferenceHeaderContentLength header gave (headerLen, as
// sent): the JSON header and the binary part.
func SplitBinaryBody(body []byte, headerLen string) (header, raw []byte, err error) {
	n, err := strconv.ParseInt(headerLen, 10, 64)
	if err != nil || n < 0 || n > int64(len(body)) {
		return nil, nil, greyerr.Invalid(InferenceHeaderContentLength, "%q is not a length within the %d-byte body", headerLen, len(body))
	}
	return body[:n], body[n:], nil
}

// DecodeBinaryTensors reads the tensor entries of a binary body's JSON
// header (entries: the raw JSON of each, field names them in errors). An
// entry whose parameters carry BinaryDataSize takes that many bytes of raw,
// in order, which must match its shape and datatype exactly (the parameter
// is dropped from the tensor's parameters); any other entry carries its
// data as JSON. raw must be used to its end.
func DecodeBinaryTensors(entries []json.RawMessage, raw []byte, field string) ([]Tensor, error) {
	out := make([]Tensor, len(entries))
	off := 0
	for i, e := range entries {
		f := fmt.Sprintf("%s[%d]", field, i)
		var h struct {
			Name       string         `json:"name"`
			Shape      []int64        `json:"shape"`
			Datatype   Datatype       `json:"datatype"`
			Parameters map[string]any `json:"parameters"`
			Data       json.RawMessage
		}
		dec := json.NewDecoder(bytes.NewReader(e))
		dec.UseNumber()
		if err := dec.Decode(&h); err != nil {
			return nil, greyerr.Invalid(f, "not an Open Inference Protocol tensor: %v", err)
		}
		v, ok := h.Parameters[BinaryDataSize]
		if !ok {
			if err := json.Unmarshal(e, &out[i]); err != nil {
				return nil, err
			}
			continue
		}
		num, isNum := v.(json.Number)
		size, err := num.Int64()
		if !isNum || err != nil || size < 0 || size > math.MaxInt32 {
			return nil, greyerr.Invalid(f+".parameters."+BinaryDataSize, "%v is not a byte count", v)
		}
		if len(h.Data) > 0 {
			return nil, greyerr.Invalid(f+".data", "a tensor with %s carries no JSON data", BinaryDataSize)
		}
		if int64(len(raw)-off) < size {
			return nil, greyerr.Invalid(f+".parameters."+BinaryDataSize, "%d bytes, but the binary part has %d left", size, len(raw)-off)
		}
		p := make(map[string]any, len(h.Parameters))
		for k, v := range h.Parameters {
			if k == BinaryDataSize {
				continue
			}
			if n, ok := v.(json.Number); ok {
				if x, err := n.Float64(); err == nil {
					v = x // as encoding/json gives numbers elsewhere
				}
			}
			p[k] = v
		}
		if len(p) == 0 {
			p = nil
		}
		if h.Shape == nil {
			return nil, greyerr.Invalid(f+".shape", "a tensor needs a shape")
		}
		t := Tensor{Name: h.Name, Datatype: h.Datatype, Shape: h.Shape, Data: raw[off : off+int(size) : off+int(size)], Parameters: p}
		if err := t.Validate(f); err != nil {
			return nil, err
		}
		off += int(size)
		out[i] = t
	}
	if off != len(raw) {
		return nil, greyerr.Invalid(field, "the binary part has %d bytes past its tensors", len(raw)-off)
	}
	return out, nil
}

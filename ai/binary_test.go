package ai_test

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/greyerr"
)

// A binary body round-trips: entries and raw bytes from BinaryEntries,
// split at the header length and decoded back to the same tensors (the
// transport parameter dropped, the tensor's own kept); a JSON entry may sit
// beside binary ones.
func TestBinaryRoundTrip(t *testing.T) {
	ts := []ai.Tensor{
		{Name: "x", Datatype: ai.FP32, Shape: []int64{1, 2}, Data: []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40}, Parameters: map[string]any{"note": "a"}},
		{Name: "m", Datatype: ai.Uint8, Shape: []int64{3}, Data: []byte{1, 2, 3}},
	}
	es, raw := ai.BinaryEntries(ts)
	head, _ := json.Marshal(map[string]any{"inputs": es})
	h, r, err := ai.SplitBinaryBody(append(head, raw...), strconv.Itoa(len(head)))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Inputs []json.RawMessage }
	if err := json.Unmarshal(h, &doc); err != nil {
		t.Fatal(err)
	}
	doc.Inputs = append(doc.Inputs, json.RawMessage(`{"name":"j","shape":[2],"datatype":"INT32","data":[7,8]}`))
	got, err := ai.DecodeBinaryTensors(doc.Inputs, r, "inputs")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !bytes.Equal(got[0].Data, ts[0].Data) || !bytes.Equal(got[1].Data, ts[1].Data) ||
		got[0].Parameters["note"] != "a" || got[0].Parameters[ai.BinaryDataSize] != nil || got[1].Parameters != nil ||
		got[2].Name != "j" || !bytes.Equal(got[2].Data, []byte{7, 0, 0, 0, 8, 0, 0, 0}) {
		t.Fatalf("decoded %+v", got)
	}
}

// Bad binary bodies are refused with InvalidArgument: a header length that
// is no number or past the body, a size that disagrees with the shape, a
// size past the binary part, bytes left over, a negative or fractional
// size, JSON data beside a size, a tensor with no shape.
func TestBinaryRefusals(t *testing.T) {
	for _, c := range []struct{ name, headerLen string }{{"not a number", "x"}, {"negative", "-1"}, {"past the body", "99"}} {
		if _, _, err := ai.SplitBinaryBody([]byte("{}"), c.headerLen); !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Errorf("header length %s: %v", c.name, err)
		}
	}
	entry := func(params string) json.RawMessage {
		return json.RawMessage(`{"name":"x","shape":[2],"datatype":"FP32","parameters":` + params + `}`)
	}
	for _, c := range []struct {
		name    string
		entries []json.RawMessage
		raw     int
	}{
		{"size against shape", []json.RawMessage{entry(`{"binary_data_size":4}`)}, 4},
		{"size past the part", []json.RawMessage{entry(`{"binary_data_size":8}`)}, 4},
		{"bytes left over", []json.RawMessage{entry(`{"binary_data_size":8}`)}, 12},
		{"negative size", []json.RawMessage{entry(`{"binary_data_size":-8}`)}, 8},
		{"fractional size", []json.RawMessage{entry(`{"binary_data_size":7.5}`)}, 8},
		{"string size", []json.RawMessage{entry(`{"binary_data_size":"8"}`)}, 8},
		{"data beside size", []json.RawMessage{json.RawMessage(`{"name":"x","shape":[2],"datatype":"FP32","data":[1,2],"parameters":{"binary_data_size":8}}`)}, 8},
		{"no shape", []json.RawMessage{json.RawMessage(`{"name":"x","datatype":"FP32","parameters":{"binary_data_size":8}}`)}, 8},
		{"bad datatype", []json.RawMessage{json.RawMessage(`{"name":"x","shape":[2],"datatype":"FP16","parameters":{"binary_data_size":4}}`)}, 4},
		{"not an object", []json.RawMessage{json.RawMessage(`[1]`)}, 0},
	} {
		if _, err := ai.DecodeBinaryTensors(c.entries, make([]byte, c.raw), "outputs"); !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Errorf("%s: %v, want InvalidArgument", c.name, err)
		}
	}
}

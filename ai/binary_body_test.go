package ai_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/greyerr"
)

// fp32 is the little-endian bytes of vs.
func fp32(vs ...float32) []byte {
	b := make([]byte, 4*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

// body builds a binary request body from a header object and raw bytes.
func body(t testing.TB, header any, raw []byte) []byte {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	return ai.AppendBinaryBody(nil, h, raw)
}

func input(name string, dt ai.Datatype, shape []int64, size int) map[string]any {
	return map[string]any{"name": name, "datatype": dt, "shape": shape, "parameters": map[string]any{ai.BinaryDataSize: size}}
}

// A binary request decodes to the same request as its JSON form, its
// tensor bytes taken from the body as they are (no copy); a JSON tensor may
// sit beside binary ones; DecodePayload picks the form by the prefix.
func TestBinaryRequestRoundTrip(t *testing.T) {
	x := fp32(0.1, 0.2, 0.3, 0.4, 1, 2, 3, 4)
	b := body(t, map[string]any{
		"model": "mlp:1", "id": "r1",
		"inputs": []any{
			input("x", ai.FP32, []int64{2, 4}, len(x)),
			map[string]any{"name": "k", "datatype": "INT32", "shape": []int64{2}, "data": []int{7, 8}},
		},
		"outputs": []any{map[string]any{"name": "y"}},
	}, x)
	if !strings.HasPrefix(string(b), "Inference-Header-Content-Length: ") {
		t.Fatalf("body starts %q", b[:40])
	}
	req, ref, err := ai.DecodePayload(b)
	if err != nil {
		t.Fatal(err)
	}
	if ref.Name != "mlp" || ref.Version != "1" || req.ID != "r1" || len(req.Inputs) != 2 || len(req.Outputs) != 1 {
		t.Fatalf("decoded %+v %+v", req, ref)
	}
	if !bytes.Equal(req.Inputs[0].Data, x) || &req.Inputs[0].Data[0] != &b[len(b)-len(x)] {
		t.Fatal("the tensor's bytes are not the body's own")
	}
	if !bytes.Equal(req.Inputs[1].Data, []byte{7, 0, 0, 0, 8, 0, 0, 0}) {
		t.Fatalf("JSON tensor %v", req.Inputs[1].Data)
	}
	// The JSON form of the same request decodes to the same tensors.
	j, _ := json.Marshal(req)
	req2, _, err := ai.DecodePayload(j)
	if err != nil || !bytes.Equal(req2.Inputs[0].Data, x) {
		t.Fatalf("JSON form: %v", err)
	}
	// A CRLF line is read as well.
	h, _ := json.Marshal(map[string]any{"model": "mlp", "inputs": []any{input("x", ai.FP32, []int64{2, 4}, len(x))}})
	crlf := append([]byte(ai.BinaryBodyPrefix+strconv.Itoa(len(h))+"\r\n"), append(h, x...)...)
	if _, _, err := ai.DecodeBinaryRequest(crlf); err != nil {
		t.Fatalf("CRLF: %v", err)
	}
}

// Bad binary bodies are refused with InvalidArgument naming what is wrong:
// the list (a header length that overruns the object, tensor byte
// counts that do not add up, a byte count that is no multiple of the
// datatype's size) and the rest of the format's rules.
func TestBinaryRequestRefusals(t *testing.T) {
	x := fp32(1, 2, 3, 4)
	good := map[string]any{"model": "mlp", "inputs": []any{input("x", ai.FP32, []int64{1, 4}, 16)}}
	h, _ := json.Marshal(good)
	line := func(s string) []byte { return append([]byte(ai.BinaryBodyPrefix+s), append(h, x...)...) }
	cases := []struct {
		name  string
		body  []byte
		field string
		msg   string
	}{
		{"header length overruns the object", line("9999\n"), "payload", "body has"},
		{"header length one past", line(strconv.Itoa(len(h)+len(x)+1) + "\n"), "payload", "body has"},
		{"header length cuts the JSON", line(strconv.Itoa(len(h)-1) + "\n"), "payload", "not an inference request"},
		{"no newline", []byte(ai.BinaryBodyPrefix + "12"), "payload", "newline"},
		{"not a number", line("1x\n"), "payload", "decimal"},
		{"negative", line("-5\n"), "payload", "decimal"},
		{"leading zero", line("0" + strconv.Itoa(len(h)) + "\n"), "payload", "decimal"},
		{"empty length", line("\n"), "payload", "no length"},
		{"too many digits", line("123456789012\n"), "payload", "newline"},
		{"header past the limit", line(strconv.Itoa(ai.MaxBinaryHeader+1) + "\n" + strings.Repeat(" ", ai.MaxBinaryHeader+1)), "payload", "limit"},
		{"byte count short of the shape", body(t, map[string]any{"model": "mlp", "inputs": []any{input("x", ai.FP32, []int64{1, 4}, 12)}}, x[:12]), "inputs[0].data", "needs 4 elements"},
		{"byte counts do not add up (bytes left over)", body(t, good, append(x, 0, 0, 0, 0)), "inputs", "past its tensors"},
		{"byte count past the binary part", body(t, map[string]any{"model": "mlp", "inputs": []any{input("x", ai.FP32, []int64{1, 4}, 16), input("z", ai.FP32, []int64{1, 4}, 16)}}, append(x, 1, 2)), "inputs[1].parameters.binary_data_size", "left"},
		{"wrong datatype size", body(t, map[string]any{"model": "mlp", "inputs": []any{input("x", ai.FP64, []int64{1, 4}, 16)}}, x), "inputs[0].data", "needs 4 elements"},
		{"byte count not a multiple of the element", body(t, map[string]any{"model": "mlp", "inputs": []any{input("x", ai.FP32, []int64{1, 4}, 15)}}, x[:15]), "inputs[0].data", "needs"},
		{"unsupported datatype", body(t, map[string]any{"model": "mlp", "inputs": []any{input("x", "FP16", []int64{1, 8}, 16)}}, x), "inputs[0].datatype", "not supported"},
		{"negative byte count", body(t, map[string]any{"model": "mlp", "inputs": []any{input("x", ai.FP32, []int64{1, 4}, -16)}}, x), "inputs[0].parameters.binary_data_size", "byte count"},
		{"JSON data beside a byte count", body(t, map[string]any{"model": "mlp", "inputs": []any{map[string]any{"name": "x", "datatype": "FP32", "shape": []int{1, 4}, "data": []int{1, 2, 3, 4}, "parameters": map[string]any{ai.BinaryDataSize: 16}}}}, x), "inputs[0].data", "no JSON data"},
		{"no model", body(t, map[string]any{"inputs": []any{input("x", ai.FP32, []int64{1, 4}, 16)}}, x), "model", "names a model"},
		{"no inputs", body(t, map[string]any{"model": "mlp", "inputs": []any{}}, nil), "inputs", "at least one"},
		{"unknown header field", body(t, map[string]any{"model": "mlp", "inputz": 1, "inputs": []any{input("x", ai.FP32, []int64{1, 4}, 16)}}, x), "payload", "unknown field"},
		{"batch dimensions differ", body(t, map[string]any{"model": "mlp", "inputs": []any{input("x", ai.FP32, []int64{1, 4}, 16), input("z", ai.FP32, []int64{2, 2}, 16)}}, append(x, x...)), "inputs[1].shape", "batch dimension"},
	}
	for _, c := range cases {
		_, _, err := ai.DecodeBinaryRequest(c.body)
		var ge *greyerr.Error
		if !errors.As(err, &ge) || ge.Code != greyerr.InvalidArgument || ge.Field != c.field || !strings.Contains(ge.Message, c.msg) {
			t.Errorf("%s: %v, want invalid_argument on %s containing %q", c.name, err, c.field, c.msg)
		}
	}
	if _, _, err := ai.ParseBinaryBody([]byte(`{"model":"mlp"}`), "payload"); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Errorf("a JSON body parsed as binary: %v", err)
	}
}

// A response round-trips through the binary form, and BinaryToJSON gives
// the same JSON as the response marshalled directly; a JSON body passes
// BinaryToJSON untouched.
func TestBinaryResponse(t *testing.T) {
	resp := &ai.Response{ModelName: "mlp", ModelVersion: "1", ID: "r", Outputs: []ai.Tensor{
		{Name: "y", Datatype: ai.FP32, Shape: []int64{2, 2}, Data: fp32(0.5, -1, float32(math.Inf(1)), 3)},
		{Name: "c", Datatype: ai.Int64, Shape: []int64{2}, Data: make([]byte, 16)},
	}}
	b, err := ai.EncodeBinaryResponse(resp)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ai.DecodeBinaryResponse(b)
	if err != nil || got.ModelName != "mlp" || len(got.Outputs) != 2 || !bytes.Equal(got.Outputs[0].Data, resp.Outputs[0].Data) {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	j, err := ai.BinaryToJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(resp)
	if !bytes.Equal(j, want) {
		t.Fatalf("BinaryToJSON = %s\nwant %s", j, want)
	}
	if same, err := ai.BinaryToJSON(want); err != nil || !bytes.Equal(same, want) {
		t.Fatalf("a JSON body changed: %s %v", same, err)
	}
	if _, err := ai.BinaryToJSON(b[:len(b)-1]); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Fatalf("a cut body: %v", err)
	}
}

// FuzzBinaryRequest: any body is refused or decodes to a request every
// tensor of which is valid, and whose binary re-encoding decodes to the
// same tensors.
func FuzzBinaryRequest(f *testing.F) {
	x := fp32(1, 2, 3, 4)
	good, _ := json.Marshal(map[string]any{"model": "mlp", "inputs": []any{input("x", ai.FP32, []int64{1, 4}, 16)}})
	f.Add(ai.AppendBinaryBody(nil, good, x))
	f.Add([]byte(ai.BinaryBodyPrefix + "3\r\n{}}"))
	f.Add([]byte(ai.BinaryBodyPrefix + "99\n{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, _, err := ai.DecodeBinaryRequest(b)
		if err != nil {
			if !greyerr.Is(err, greyerr.InvalidArgument) {
				t.Fatalf("refused with %v, want invalid_argument", err)
			}
			return
		}
		for i := range req.Inputs {
			if err := req.Inputs[i].Validate("x"); err != nil {
				t.Fatalf("decoded an invalid tensor: %v", err)
			}
		}
		es, raw := ai.BinaryEntries(req.Inputs)
		h, err := json.Marshal(map[string]any{"model": req.Model, "inputs": es})
		if err != nil {
			t.Fatal(err)
		}
		again, _, err := ai.DecodeBinaryRequest(ai.AppendBinaryBody(nil, h, raw))
		if err != nil {
			t.Fatalf("re-encoded body refused: %v", err)
		}
		for i := range again.Inputs {
			if !bytes.Equal(again.Inputs[i].Data, req.Inputs[i].Data) || again.Inputs[i].Name != req.Inputs[i].Name {
				t.Fatalf("tensor %d changed", i)
			}
		}
	})
}

package ai

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// BinaryBodyPrefix starts a payload or result object in the binary form:
// task.BinaryPayloadPrefix, the line "Inference-Header-Content-Length: N\n"
// (an optional "\r" before the "\n"), then N bytes of the JSON header (an
// Open Inference Protocol request or response whose tensors carry
// BinaryDataSize), then the tensors' raw bytes, in the header's order.
const BinaryBodyPrefix = task.BinaryPayloadPrefix

// maxHeaderDigits bounds the digits of the header length (a length past
// 4 GiB is no header of ours).
const maxHeaderDigits = 10

// MaxBinaryHeader bounds the JSON header of a binary body (4 MiB): the
// tensors' bytes belong in the binary part.
const MaxBinaryHeader = 4 << 20

// IsBinaryBody reports whether body is in the binary form (it starts with
// BinaryBodyPrefix).
func IsBinaryBody(body []byte) bool { return task.IsBinaryPayload(body) }

// ParseBinaryBody splits an object in the binary form into its JSON header
// and its binary part. A body without the prefix line, a length that is not
// a decimal number, or one that overruns the body or MaxBinaryHeader is
// InvalidArgument naming field.
func ParseBinaryBody(body []byte, field string) (header, raw []byte, err error) {
	if !IsBinaryBody(body) {
		return nil, nil, greyerr.Invalid(field, "a binary body starts with the line %q", BinaryBodyPrefix+"<header length>")
	}
	rest := body[len(BinaryBodyPrefix):]
	nl := bytes.IndexByte(rest, '\n')
	if nl < 0 || nl > maxHeaderDigits+1 {
		return nil, nil, greyerr.Invalid(field, "the %s line ends with a newline after at most %d digits", InferenceHeaderContentLength, maxHeaderDigits)
	}
	digits := rest[:nl]
	if len(digits) > 0 && digits[len(digits)-1] == '\r' {
		digits = digits[:len(digits)-1]
	}
	n := int64(0)
	for i, c := range digits {
		if c < '0' || c > '9' || (i == 0 && c == '0' && len(digits) > 1) {
			return nil, nil, greyerr.Invalid(field, "%s %q is not a decimal length", InferenceHeaderContentLength, digits)
		}
		n = n*10 + int64(c-'0')
	}
	if len(digits) == 0 {
		return nil, nil, greyerr.Invalid(field, "%s has no length", InferenceHeaderContentLength)
	}
	rest = rest[nl+1:]
	if n > int64(len(rest)) {
		return nil, nil, greyerr.Invalid(field, "%s is %d, but the body has %d bytes after that line", InferenceHeaderContentLength, n, len(rest))
	}
	if n > MaxBinaryHeader {
		return nil, nil, greyerr.Invalid(field, "%s is %d, more than the %d-byte limit of a JSON header", InferenceHeaderContentLength, n, MaxBinaryHeader)
	}
	return rest[:n:n], rest[n:], nil
}

// AppendBinaryBody appends to dst an object in the binary form with header
// (the JSON header) and raw (the binary part).
func AppendBinaryBody(dst, header, raw []byte) []byte {
	dst = append(dst, BinaryBodyPrefix...)
	dst = strconv.AppendInt(dst, int64(len(header)), 10)
	dst = append(dst, '\n')
	dst = append(dst, header...)
	return append(dst, raw...)
}

// binaryRequestHeader is the JSON header of a binary request: a Request
// whose inputs are read by DecodeBinaryTensors.
type binaryRequestHeader struct {
	Model      string            `json:"model"`
	ID         string            `json:"id,omitempty"`
	Parameters map[string]any    `json:"parameters,omitempty"`
	Inputs     []json.RawMessage `json:"inputs"`
	Outputs    []RequestedOutput `json:"outputs,omitempty"`
}

// DecodeBinaryRequest reads an inference payload in the binary form and
// checks it as DecodeRequest does. The input tensors' Data alias body (no
// copy, no per-element work).
func DecodeBinaryRequest(body []byte) (*Request, ModelRef, error) {
	header, raw, err := ParseBinaryBody(body, "payload")
	if err != nil {
		return nil, ModelRef{}, err
	}
	var h binaryRequestHeader
	if err := strictJSON(header, &h); err != nil {
		return nil, ModelRef{}, greyerr.Invalid("payload", "the JSON header is not an inference request: %v", err)
	}
	ins, err := DecodeBinaryTensors(h.Inputs, raw, "inputs")
	if err != nil {
		return nil, ModelRef{}, err
	}
	req := &Request{Model: h.Model, ID: h.ID, Parameters: h.Parameters, Inputs: ins, Outputs: h.Outputs}
	ref, err := CheckRequest(req)
	if err != nil {
		return nil, ModelRef{}, err
	}
	return req, ref, nil
}

// DecodeRequest reads an inference payload in JSON form and checks it
// (CheckRequest).
func DecodeRequest(payload []byte) (*Request, ModelRef, error) {
	var req Request
	if err := strictJSON(payload, &req); err != nil {
		return nil, ModelRef{}, fmt.Errorf("not an inference request: %w", err)
	}
	ref, err := CheckRequest(&req)
	if err != nil {
		return nil, ModelRef{}, err
	}
	return &req, ref, nil
}

// DecodePayload reads an inference payload in either form: binary when it
// starts with BinaryBodyPrefix, else JSON.
func DecodePayload(payload []byte) (*Request, ModelRef, error) {
	if IsBinaryBody(payload) {
		return DecodeBinaryRequest(payload)
	}
	return DecodeRequest(payload)
}

// strictJSON decodes exactly one JSON object into v, refusing unknown
// fields and trailing data.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON object")
	}
	return nil
}

// CheckRequest checks a decoded request: a model reference, at least one
// input, each input well formed and named once, every input with the same
// batch dimension first, every requested output named. It returns the
// parsed model reference.
func CheckRequest(req *Request) (ModelRef, error) {
	if req.Model == "" {
		return ModelRef{}, greyerr.Invalid("model", "an inference request names a model")
	}
	ref, err := ParseModelRef(req.Model)
	if err != nil {
		return ModelRef{}, err
	}
	if len(req.Inputs) == 0 {
		return ModelRef{}, greyerr.Invalid("inputs", "an inference request needs at least one input tensor")
	}
	seen := make(map[string]bool, len(req.Inputs))
	for i := range req.Inputs {
		in := &req.Inputs[i]
		field := fmt.Sprintf("inputs[%d]", i)
		if err := in.Validate(field); err != nil {
			return ModelRef{}, err
		}
		if seen[in.Name] {
			return ModelRef{}, greyerr.Invalid(field+".name", "input %q is given twice", in.Name)
		}
		seen[in.Name] = true
		if len(in.Shape) == 0 || in.Shape[0] != req.Inputs[0].Shape[0] {
			return ModelRef{}, greyerr.Invalid(field+".shape", "every input needs the same batch dimension first (%v against %v)", in.Shape, req.Inputs[0].Shape)
		}
	}
	for i, o := range req.Outputs {
		if o.Name == "" {
			return ModelRef{}, greyerr.Invalid(fmt.Sprintf("outputs[%d].name", i), "a requested output needs a name")
		}
	}
	return ref, nil
}

// binaryResponseHeader is the JSON header of a binary response.
type binaryResponseHeader struct {
	ModelName    string            `json:"model_name"`
	ModelVersion string            `json:"model_version"`
	ID           string            `json:"id,omitempty"`
	Parameters   map[string]any    `json:"parameters,omitempty"`
	Outputs      []json.RawMessage `json:"outputs"`
}

// EncodeBinaryResponse writes resp in the binary form: its outputs' bytes
// in the binary part, as they are (no per-element work).
func EncodeBinaryResponse(resp *Response) ([]byte, error) {
	for i := range resp.Outputs {
		if err := resp.Outputs[i].Validate(fmt.Sprintf("outputs[%d]", i)); err != nil {
			return nil, err
		}
	}
	es, raw := BinaryEntries(resp.Outputs)
	type header struct {
		ModelName    string         `json:"model_name"`
		ModelVersion string         `json:"model_version"`
		ID           string         `json:"id,omitempty"`
		Parameters   map[string]any `json:"parameters,omitempty"`
		Outputs      []BinaryEntry  `json:"outputs"`
	}
	h, err := json.Marshal(header{ModelName: resp.ModelName, ModelVersion: resp.ModelVersion, ID: resp.ID, Parameters: resp.Parameters, Outputs: es})
	if err != nil {
		return nil, fmt.Errorf("encode the response header: %w", err)
	}
	return AppendBinaryBody(make([]byte, 0, len(BinaryBodyPrefix)+12+len(h)+len(raw)), h, raw), nil
}

// DecodeBinaryResponse reads a response in the binary form (a stored
// result): its outputs' Data alias body.
func DecodeBinaryResponse(body []byte) (*Response, error) {
	header, raw, err := ParseBinaryBody(body, "result")
	if err != nil {
		return nil, err
	}
	var h binaryResponseHeader
	if err := strictJSON(header, &h); err != nil {
		return nil, greyerr.Invalid("result", "the JSON header is not an inference response: %v", err)
	}
	outs, err := DecodeBinaryTensors(h.Outputs, raw, "outputs")
	if err != nil {
		return nil, err
	}
	return &Response{ModelName: h.ModelName, ModelVersion: h.ModelVersion, ID: h.ID, Parameters: h.Parameters, Outputs: outs}, nil
}

// BinaryToJSON returns the JSON form of a result object: a body in the
// binary form becomes the response's JSON (tensor data as numbers); any
// other body is returned as it is.
func BinaryToJSON(body []byte) ([]byte, error) {
	if !IsBinaryBody(body) {
		return body, nil
	}
	resp, err := DecodeBinaryResponse(body)
	if err != nil {
		return nil, err
	}
	return json.Marshal(resp)
}

// BinaryDataBytes is the length of r's binary form's data part: its
// outputs' bytes (worker.BinaryEncoder).
func (r Response) BinaryDataBytes() int {
	n := 0
	for _, t := range r.Outputs {
		n += len(t.Data)
	}
	return n
}

// EncodeBinary returns r in the binary form (EncodeBinaryResponse): a
// worker stores a response too large to keep inline that way
// (worker.BinaryEncoder), its tensors' bytes as they are.
func (r Response) EncodeBinary() ([]byte, error) { return EncodeBinaryResponse(&r) }

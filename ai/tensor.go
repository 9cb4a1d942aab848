package ai

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/grey-distributed/grey/greyerr"
)

// Datatype is an Open Inference Protocol tensor datatype ("FP32", "INT64", …).
type Datatype string

// The datatypes Grey carries. BYTES (strings) and FP16/BF16 are not
// supported in JSON form: a tensor of those types is refused with a clear
// error.
const (
	Bool   Datatype = "BOOL"
	Uint8  Datatype = "UINT8"
	Uint16 Datatype = "UINT16"
	Uint32 Datatype = "UINT32"
	Uint64 Datatype = "UINT64"
	Int8   Datatype = "INT8"
	Int16  Datatype = "INT16"
	Int32  Datatype = "INT32"
	Int64  Datatype = "INT64"
	FP32   Datatype = "FP32"
	FP64   Datatype = "FP64"
)

// Size returns the bytes of one element, or 0 for a datatype Grey does not
// carry.
func (d Datatype) Size() int {
	switch d {
	case Bool, Uint8, Int8:
		return 1
	case Uint16, Int16:
		return 2
	case Uint32, Int32, FP32:
		return 4
	case Uint64, Int64, FP64:
		return 8
	}
	return 0
}

// MaxElements bounds the elements of one tensor (64 Mi): a shape past it is
// refused before anything is allocated.
const MaxElements = 64 << 20

// Tensor is a named, typed, shaped array. Data holds the elements as
// little-endian bytes in row-major order (len = elements × Datatype.Size()).
type Tensor struct {
	// Name is the model's input or output name.
	Name string
	// Datatype of the elements.
	Datatype Datatype
	// Shape, outermost dimension first; the batch dimension is Shape[0].
	Shape []int64
	// Data is the elements, little-endian, row-major.
	Data []byte
	// Parameters are the tensor's Open Inference Protocol parameters,
	// carried as they came (nil when none).
	Parameters map[string]any
}

// Elements returns the number of elements the shape holds, or an error
// naming field when a dimension is negative or the product is past
// MaxElements.
func Elements(shape []int64, field string) (int64, error) {
	n := int64(1)
	for i, d := range shape {
		if d < 0 {
			return 0, greyerr.Invalid(field, "dimension %d is %d: dimensions must not be negative", i, d)
		}
		if d > 0 && n > MaxElements/d {
			return 0, greyerr.Invalid(field, "shape %v holds more than %d elements", shape, MaxElements)
		}
		n *= d
	}
	return n, nil
}

// Validate checks that t is well formed: a name, a supported datatype, and
// exactly as many bytes as its shape needs. field prefixes error fields
// ("inputs[0]").
func (t *Tensor) Validate(field string) error {
	if t.Name == "" {
		return greyerr.Invalid(field+".name", "a tensor needs a name")
	}
	sz := t.Datatype.Size()
	if sz == 0 {
		return greyerr.Invalid(field+".datatype", "datatype %q is not supported (want one of BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP32, FP64)", t.Datatype)
	}
	n, err := Elements(t.Shape, field+".shape")
	if err != nil {
		return err
	}
	if int64(len(t.Data)) != n*int64(sz) {
		return greyerr.Invalid(field+".data", "shape %v of %s needs %d elements, got %d", t.Shape, t.Datatype, n, int64(len(t.Data))/int64(sz))
	}
	return nil
}

// tensorJSON is the Open Inference Protocol JSON form of a tensor.
type tensorJSON struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   Datatype        `json:"datatype"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data"`
}

// MarshalJSON writes t in the Open Inference Protocol form, data flat in
// row-major order. Floats are written in their shortest exact form for
// their width (so an FP32 output's JSON, and its digest, depend only on its
// bits); NaN and infinities, which JSON lacks, are the strings "NaN",
// "Infinity" and "-Infinity".
func (t Tensor) MarshalJSON() ([]byte, error) {
	if err := t.Validate("tensor"); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(len(t.Data)*3 + 2)
	b.WriteByte('[')
	sz := t.Datatype.Size()
	var num []byte
	for i := 0; i < len(t.Data); i += sz {
		if i > 0 {
			b.WriteByte(',')
		}
		num = appendElement(num[:0], t.Datatype, t.Data[i:i+sz])
		b.Write(num)
	}
	b.WriteByte(']')
	shape := t.Shape
	if shape == nil {
		shape = []int64{}
	}
	return json.Marshal(tensorJSON{Name: t.Name, Shape: shape, Datatype: t.Datatype, Parameters: t.Parameters, Data: b.Bytes()})
}

func appendElement(dst []byte, d Datatype, e []byte) []byte {
	le := binary.LittleEndian
	switch d {
	case Bool:
		return strconv.AppendBool(dst, e[0] != 0)
	case Uint8:
		return strconv.AppendUint(dst, uint64(e[0]), 10)
	case Uint16:
		return strconv.AppendUint(dst, uint64(le.Uint16(e)), 10)
	case Uint32:
		return strconv.AppendUint(dst, uint64(le.Uint32(e)), 10)
	case Uint64:
		return strconv.AppendUint(dst, le.Uint64(e), 10)
	case Int8:
		return strconv.AppendInt(dst, int64(int8(e[0])), 10)
	case Int16:
		return strconv.AppendInt(dst, int64(int16(le.Uint16(e))), 10)
	case Int32:
		return strconv.AppendInt(dst, int64(int32(le.Uint32(e))), 10)
	case Int64:
		return strconv.AppendInt(dst, int64(le.Uint64(e)), 10)
	case FP32:
		return appendFloat(dst, float64(math.Float32frombits(le.Uint32(e))), 32)
	case FP64:
		return appendFloat(dst, math.Float64frombits(le.Uint64(e)), 64)
	}
	return dst
}

func appendFloat(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Infinity"`...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, bits)
}

// UnmarshalJSON reads the Open Inference Protocol form: data flat or nested
// (row-major either way), each element in range for the datatype. It checks
// the element count against the shape (Validate).
func (t *Tensor) UnmarshalJSON(b []byte) error {
	var j tensorJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return greyerr.Invalid("tensor", "not an Open Inference Protocol tensor: %v", err)
	}
	field := "tensor"
	if j.Name != "" {
		field = "tensor " + strconv.Quote(j.Name)
	}
	sz := j.Datatype.Size()
	if sz == 0 {
		return greyerr.Invalid(field+".datatype", "datatype %q is not supported (want one of BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP32, FP64)", j.Datatype)
	}
	n, err := Elements(j.Shape, field+".shape")
	if err != nil {
		return err
	}
	if j.Shape == nil {
		return greyerr.Invalid(field+".shape", "a tensor needs a shape")
	}
	if len(bytes.TrimSpace(j.Data)) == 0 {
		return greyerr.Invalid(field+".data", "a tensor needs data")
	}
	data, err := parseData(j.Data, j.Datatype, n, j.Shape, field)
	if err != nil {
		return err
	}
	*t = Tensor{Name: j.Name, Datatype: j.Datatype, Shape: j.Shape, Data: data, Parameters: j.Parameters}
	return t.Validate(field)
}

// parseData reads a tensor's data, flat or nested arrays of elements in
// row-major order, into little-endian bytes. raw is valid JSON (the
// decoder checked it), so a scan of its bytes suffices: it costs one
// number parse per element where a token decoder costs several
// allocations.
func parseData(raw []byte, d Datatype, n int64, shape []int64, field string) ([]byte, error) {
	data := make([]byte, 0, n*int64(d.Size()))
	var count int64
	depth := 0
	for i := 0; i < len(raw); {
		switch c := raw[i]; c {
		case ' ', '\t', '\n', '\r', ',':
			i++
		case '[':
			if depth++; depth > 33 {
				return nil, greyerr.Invalid(field+".data", "data must be an array of elements (nested at most 32 deep)")
			}
			i++
		case ']':
			depth--
			i++
		case '{':
			return nil, greyerr.Invalid(field+".data", "data must be an array of elements (nested at most 32 deep)")
		default:
			j := i + 1
			if c == '"' {
				for j < len(raw) && raw[j] != '"' {
					if raw[j] == '\\' {
						j++
					}
					j++
				}
				j++
			} else {
				for j < len(raw) && raw[j] != ',' && raw[j] != ']' && raw[j] != ' ' && raw[j] != '\t' && raw[j] != '\n' && raw[j] != '\r' {
					j++
				}
			}
			if j > len(raw) {
				j = len(raw)
			}
			if count >= n {
				return nil, greyerr.Invalid(field+".data", "shape %v of %s holds %d elements, data has more", shape, d, n)
			}
			var err error
			if data, err = appendParsed(data, d, raw[i:j]); err != nil {
				return nil, greyerr.Invalid(field+".data", "element %d: %v", count, err)
			}
			count++
			i = j
		}
	}
	if count != n {
		return nil, greyerr.Invalid(field+".data", "shape %v of %s holds %d elements, data has %d", shape, d, n, count)
	}
	return data, nil
}

// appendParsed appends one element, tok as it appears in the JSON.
func appendParsed(dst []byte, d Datatype, tok []byte) ([]byte, error) {
	le := binary.LittleEndian
	str := string(tok)
	if d == Bool {
		switch str {
		case "true":
			return append(dst, 1), nil
		case "false":
			return append(dst, 0), nil
		}
		return nil, fmt.Errorf("want true or false, got %s", str)
	}
	if d == FP32 || d == FP64 {
		bits := 64
		if d == FP32 {
			bits = 32
		}
		var f float64
		switch {
		case str == `"NaN"`:
			f = math.NaN()
		case str == `"Infinity"`:
			f = math.Inf(1)
		case str == `"-Infinity"`:
			f = math.Inf(-1)
		case tok[0] == '"':
			return nil, fmt.Errorf("want a number, got the string %s", str)
		case str == "true" || str == "false" || str == "null":
			return nil, fmt.Errorf("want a number, got %s", str)
		default:
			var err error
			if f, err = strconv.ParseFloat(str, bits); err != nil {
				return nil, fmt.Errorf("%s is out of range for %s", str, d)
			}
		}
		if d == FP32 {
			return le.AppendUint32(dst, math.Float32bits(float32(f))), nil
		}
		return le.AppendUint64(dst, math.Float64bits(f)), nil
	}
	if tok[0] == '"' || str == "true" || str == "false" || str == "null" {
		return nil, fmt.Errorf("want an integer, got %s", str)
	}
	bits := 8 * d.Size()
	switch d {
	case Uint8, Uint16, Uint32, Uint64:
		v, err := strconv.ParseUint(str, 10, bits)
		if err != nil {
			return nil, fmt.Errorf("%s is not a %s", str, d)
		}
		switch bits {
		case 8:
			return append(dst, byte(v)), nil
		case 16:
			return le.AppendUint16(dst, uint16(v)), nil
		case 32:
			return le.AppendUint32(dst, uint32(v)), nil
		}
		return le.AppendUint64(dst, v), nil
	}
	v, err := strconv.ParseInt(str, 10, bits)
	if err != nil {
		return nil, fmt.Errorf("%s is not an %s", str, d)
	}
	switch bits {
	case 8:
		return append(dst, byte(int8(v))), nil
	case 16:
		return le.AppendUint16(dst, uint16(int16(v))), nil
	case 32:
		return le.AppendUint32(dst, uint32(int32(v))), nil
	}
	return le.AppendUint64(dst, uint64(v)), nil
}

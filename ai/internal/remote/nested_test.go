package remote

import (
	"bytes"
	"slices"
	"testing"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/greyerr"
)

func TestNestedRoundTrip(t *testing.T) {
	x := ai.Tensor{Name: "x", Datatype: ai.Int32, Shape: []int64{2, 3}, Data: []byte{1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 255, 255, 255, 255}}
	raw, err := Nested(&x)
	if err != nil || string(raw) != "[[1,2,3],[4,5,-1]]" {
		t.Fatalf("nested: %s, %v", raw, err)
	}
	rows, err := Rows(&x)
	if err != nil || len(rows) != 2 || string(rows[1]) != "[4,5,-1]" {
		t.Fatalf("rows: %s, %v", rows, err)
	}
	back, err := FromNested("x", ai.Int32, raw)
	if err != nil || !slices.Equal(back.Shape, x.Shape) || !bytes.Equal(back.Data, x.Data) {
		t.Fatalf("from nested: %+v, %v", back, err)
	}
	scalar, err := FromNested("s", ai.FP64, []byte("2.5"))
	if err != nil || len(scalar.Shape) != 0 || len(scalar.Data) != 8 {
		t.Fatalf("a scalar: %+v, %v", scalar, err)
	}
	for _, bad := range []string{`[[1,2],[3]]`, `[[1,2],3]`, `[1,[2]]`, `[[1],[2],[3,4]]`, `["a"]`, `[1.5]`, `[`, `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`} {
		if _, err := FromNested("x", ai.Int32, []byte(bad)); !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Errorf("%s: %v, want InvalidArgument", bad, err)
		}
	}
}

// FuzzFromNested: a nested JSON value is read into a valid tensor, which
// writes back to lists that read to the same tensor, or is refused with
// InvalidArgument.
func FuzzFromNested(f *testing.F) {
	f.Add([]byte(`[[1,2],[3,4]]`), uint8(0))
	f.Add([]byte(`[[true,false]]`), uint8(3))
	f.Add([]byte(`[[1,2],[3]]`), uint8(1))
	f.Add([]byte(`["NaN", 1e39]`), uint8(0))
	dts := []ai.Datatype{ai.FP32, ai.Int64, ai.Uint8, ai.Bool, ai.FP64, ai.Int8}
	f.Fuzz(func(t *testing.T, raw []byte, which uint8) {
		dt := dts[int(which)%len(dts)]
		x, err := FromNested("x", dt, raw)
		if err != nil {
			if !greyerr.Is(err, greyerr.InvalidArgument) {
				t.Fatalf("an error that is not InvalidArgument: %v", err)
			}
			return
		}
		if err := x.Validate("x"); err != nil {
			t.Fatalf("not valid: %v", err)
		}
		again, err := Nested(&x)
		if err != nil {
			t.Fatalf("nested: %v", err)
		}
		y, err := FromNested("x", dt, again)
		if err != nil || !slices.Equal(x.Shape, y.Shape) || !bytes.Equal(x.Data, y.Data) {
			t.Fatalf("round trip of %s: %+v then %+v (%v)", again, x, y, err)
		}
	})
}

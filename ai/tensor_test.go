package ai_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/greyerr"
)

func TestTensorJSONRoundTrip(t *testing.T) {
	in := `{"name":"x","shape":[2,3],"datatype":"FP32","data":[[1,2.5,-3],[1e-7,"NaN",4]]}`
	var x ai.Tensor
	if err := json.Unmarshal([]byte(in), &x); err != nil {
		t.Fatal(err)
	}
	if len(x.Data) != 24 {
		t.Fatalf("data bytes = %d, want 24", len(x.Data))
	}
	b, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"x","shape":[2,3],"datatype":"FP32","data":[1,2.5,-3,1e-07,"NaN",4]}`
	if string(b) != want {
		t.Fatalf("got %s\nwant %s", b, want)
	}
}

func TestTensorJSONErrors(t *testing.T) {
	for name, in := range map[string]string{
		"too few":       `{"name":"x","shape":[2,2],"datatype":"INT32","data":[1,2,3]}`,
		"too many":      `{"name":"x","shape":[2],"datatype":"INT32","data":[1,2,3]}`,
		"range":         `{"name":"x","shape":[1],"datatype":"INT8","data":[300]}`,
		"type":          `{"name":"x","shape":[1],"datatype":"STRING","data":["a"]}`,
		"negative dim":  `{"name":"x","shape":[-1],"datatype":"FP32","data":[]}`,
		"not a number":  `{"name":"x","shape":[1],"datatype":"FP32","data":[true]}`,
		"huge":          `{"name":"x","shape":[100000,100000],"datatype":"FP32","data":[]}`,
		"unknown field": `{"name":"x","shape":[1],"datatype":"FP32","data":[1],"extra":1}`,
		"no name":       `{"shape":[1],"datatype":"FP32","data":[1]}`,
		"float for int": `{"name":"x","shape":[1],"datatype":"INT64","data":[1.5]}`,
		"no data":       `{"name":"x","shape":[1],"datatype":"FP32"}`,
	} {
		var x ai.Tensor
		err := json.Unmarshal([]byte(in), &x)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		var ge *greyerr.Error
		if !errors.As(err, &ge) || ge.Code != greyerr.InvalidArgument {
			t.Errorf("%s: %v is not InvalidArgument", name, err)
		}
	}
}

func TestStackSplit(t *testing.T) {
	mk := func(rows int64, v byte) []ai.Tensor {
		d := make([]byte, rows*2*4)
		for i := range d {
			d[i] = v
		}
		return []ai.Tensor{{Name: "x", Datatype: ai.FP32, Shape: []int64{rows, 2}, Data: d}}
	}
	b, rows, err := ai.Stack([][]ai.Tensor{mk(1, 1), mk(3, 2), mk(2, 3)})
	if err != nil {
		t.Fatal(err)
	}
	if b[0].Shape[0] != 6 || len(rows) != 3 {
		t.Fatalf("stacked shape %v rows %v", b[0].Shape, rows)
	}
	parts, err := ai.Split(b, rows)
	if err != nil {
		t.Fatal(err)
	}
	for r, want := range []byte{1, 2, 3} {
		p := parts[r][0]
		if p.Shape[0] != rows[r] || p.Data[0] != want || p.Data[len(p.Data)-1] != want {
			t.Errorf("part %d: shape %v first %d", r, p.Shape, p.Data[0])
		}
	}
	if ai.Stackable(mk(1, 0), []ai.Tensor{{Name: "x", Datatype: ai.FP32, Shape: []int64{1, 3}, Data: make([]byte, 12)}}) {
		t.Error("different inner shapes stack")
	}
}

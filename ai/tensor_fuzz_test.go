package ai_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/grey-distributed/grey/ai"
)

// FuzzTensorJSON: any input either is refused or decodes to a valid tensor
// whose JSON decodes back to the same tensor.
func FuzzTensorJSON(f *testing.F) {
	for _, s := range []string{
		`{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,"NaN"]]}`,
		`{"name":"b","shape":[3],"datatype":"BOOL","data":[true,false,true]}`,
		`{"name":"i","shape":[1],"datatype":"INT64","data":[-9223372036854775808]}`,
		`{"name":"s","shape":[],"datatype":"UINT8","data":255}`,
		`{"name":"e","shape":[2],"datatype":"FP64","data":[1e308,"-Infinity"]}`,
		`{"name":"q","shape":[1],"datatype":"FP32","data":["N\"aN"]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var x ai.Tensor
		if err := json.Unmarshal(b, &x); err != nil {
			return
		}
		if err := x.Validate("x"); err != nil {
			t.Fatalf("decoded an invalid tensor: %v", err)
		}
		out, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		var y ai.Tensor
		if err := json.Unmarshal(out, &y); err != nil {
			t.Fatalf("re-decoding %s: %v", out, err)
		}
		if y.Name != x.Name || y.Datatype != x.Datatype {
			t.Fatalf("round trip changed the tensor: %s", out)
		}
		// NaN payloads do not survive "NaN", so floats compare by their
		// JSON, which must be stable; other types by their bytes.
		if x.Datatype == ai.FP32 || x.Datatype == ai.FP64 {
			again, err := json.Marshal(y)
			if err != nil || !bytes.Equal(again, out) {
				t.Fatalf("JSON not stable: %s then %s (%v)", out, again, err)
			}
		} else if !bytes.Equal(y.Data, x.Data) {
			t.Fatalf("round trip changed the tensor: %s", out)
		}
	})
}

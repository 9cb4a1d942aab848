package oipruntime

import (
	"strconv"
	"testing"

	"github.com/grey-distributed/grey/greyerr"
)

// FuzzDecodeResponse feeds a server's inference answer, JSON or with
// binary tensors (headerLen not empty: the Inference-Header-Content-Length
// header): it is read into valid tensors or refused with a coded error,
// never a panic.
func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte(`{"model_name":"m","outputs":[{"name":"y","shape":[2,2],"datatype":"FP32","parameters":null,"data":[1,2,3,4]},{"name":"label","shape":[2],"datatype":"INT64","data":[0,1]}]}`), "", "y")
	f.Add([]byte(`{"outputs":[{"name":"y","shape":[1,2],"datatype":"BYTES","data":["a","b"]}]}`), "", "")
	f.Add([]byte(`{"outputs":[{"name":"y","shape":[1,2],"datatype":"FP32","data":[[1],[2]]}]}`), "", "")
	f.Add([]byte(`not json`), "", "label")
	bin := `{"outputs":[{"name":"y","shape":[1,2],"datatype":"FP32","parameters":{"binary_data_size":8}},{"name":"n","shape":[1],"datatype":"INT64","data":[3]}]}`
	f.Add([]byte(bin+"\x00\x00\x80?\x00\x00\x00@"), strconv.Itoa(len(bin)), "y")
	f.Add([]byte(bin+"\x00\x00\x80?"), strconv.Itoa(len(bin)), "")
	f.Add([]byte(bin), "-1", "")
	f.Fuzz(func(t *testing.T, body []byte, headerLen, name string) {
		var names []string
		if name != "" {
			names = []string{name}
		}
		out, err := decodeResponse(body, headerLen, names)
		if err != nil {
			if greyerr.CodeOf(err) == "" {
				t.Fatalf("an error without a code: %v", err)
			}
			return
		}
		for i := range out {
			if err := out[i].Validate("output"); err != nil {
				t.Fatalf("a decoded output is not valid: %v", err)
			}
		}
		if names != nil && (len(out) != 1 || out[0].Name != name) {
			t.Fatalf("asked for %q, got %d outputs", name, len(out))
		}
	})
}

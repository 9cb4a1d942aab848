package tfsruntime

import (
	"testing"

	"github.com/grey-distributed/grey/ai"
)

// FuzzDecode feeds a server's predict answer, in both forms, for a
// signature of two outputs and one of one: it is read into valid tensors
// or refused, never a panic.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"outputs":{"y":[[1,2],[3,4]],"label":[0,1]}}`))
	f.Add([]byte(`{"outputs":[[1,2],[3,4]]}`))
	f.Add([]byte(`{"predictions":[{"y":[1,2],"label":0},{"y":[3,4],"label":1}]}`))
	f.Add([]byte(`{"predictions":[[1,2],[3,4]]}`))
	f.Add([]byte(`{"outputs":{"y":[[1,2],[3]],"label":[true]}}`))
	two := &model{outputs: map[string]spec{"y": {datatype: ai.FP32}, "label": {datatype: ai.Int64}}, order: []string{"label", "y"}}
	one := &model{outputs: map[string]spec{"y": {datatype: ai.FP32}}, order: []string{"y"}}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, m := range []*model{two, one} {
			for _, dec := range []func([]byte) (map[string]ai.Tensor, error){m.decodeColumns, m.decodeRows} {
				out, err := dec(body)
				if err != nil {
					continue
				}
				for n, o := range out {
					if err := o.Validate(n); err != nil {
						t.Fatalf("a decoded output is not valid: %v", err)
					}
					if _, ok := m.outputs[n]; !ok {
						t.Fatalf("decoded an output %q the signature lacks", n)
					}
				}
			}
		}
	})
}

package ai_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/grey-distributed/grey/ai"
)

// BenchmarkDecodePayload compares reading one inference request of
// 1×N FP32 in the JSON form and in the binary form (what the submit check
// and the executor each do once per task).
func BenchmarkDecodePayload(b *testing.B) {
	for _, n := range []int{16, 256, 2048} {
		vs := make([]float32, n)
		for i := range vs {
			vs[i] = float32(i)*0.37 + 0.001
		}
		x := fp32(vs...)
		req := ai.Request{Model: "mlp:1", Inputs: []ai.Tensor{{Name: "x", Datatype: ai.FP32, Shape: []int64{1, int64(n)}, Data: x}}}
		js, err := json.Marshal(req)
		if err != nil {
			b.Fatal(err)
		}
		es, raw := ai.BinaryEntries(req.Inputs)
		h, _ := json.Marshal(map[string]any{"model": req.Model, "inputs": es})
		bin := ai.AppendBinaryBody(nil, h, raw)
		for _, c := range []struct {
			form string
			body []byte
		}{{"json", js}, {"binary", bin}} {
			b.Run(fmt.Sprintf("%s/%d", c.form, n), func(b *testing.B) {
				b.SetBytes(int64(len(c.body)))
				b.ReportAllocs()
				for b.Loop() {
					if _, _, err := ai.DecodePayload(c.body); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

package inference_test

import (
	"encoding/json"
	"testing"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/executor/inference"
)

// FuzzValidatePayload: any bytes are refused or accepted without a panic,
// and an accepted payload is an inference request whose every input is a
// valid tensor with the same batch dimension.
func FuzzValidatePayload(f *testing.F) {
	f.Add([]byte(payload("mlp", 2, 1)))
	f.Add([]byte(`{"model":"m@stable","inputs":[{"name":"x","datatype":"INT8","shape":[1,2],"data":[[1,2]]}],"outputs":[{"name":"y"}]}`))
	f.Add([]byte(`{"model":"m:1","inputs":[{"name":"x","datatype":"BOOL","shape":[0],"data":[]}]}`))
	f.Add([]byte(`{"model":"m","inputs":[{"name":"x","datatype":"FP64","shape":[1],"data":["NaN"]}]}`))
	f.Add([]byte(`{"model":"m","inputs":[{"name":"x","datatype":"FP32","shape":[99999999,99999999],"data":[]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if inference.ValidatePayload(json.RawMessage(b)) != nil {
			return
		}
		var req ai.Request
		if err := json.Unmarshal(b, &req); err != nil {
			t.Fatalf("accepted, but does not decode: %v", err)
		}
		if _, err := ai.ParseModelRef(req.Model); err != nil {
			t.Fatalf("accepted a bad model reference %q", req.Model)
		}
		if len(req.Inputs) == 0 {
			t.Fatal("accepted a request without inputs")
		}
		for i := range req.Inputs {
			if err := req.Inputs[i].Validate("x"); err != nil || req.Inputs[i].Shape[0] != req.Inputs[0].Shape[0] {
				t.Fatalf("accepted input %d: %v", i, err)
			}
		}
	})
}

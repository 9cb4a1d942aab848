package admission_test

import (
	"context"
	"testing"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/admission"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// FuzzCheck feeds arbitrary payloads (outside input) to the submit hook: it
// never panics, every refusal is a coded error, and an accepted task
// carries exactly the framework label and digest of a model of its tenant.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		`{"model":"mlp","inputs":[]}`, `{"model":"mlp:1"}`, `{"model":"tfmlp@latest"}`, `{"model":"gmlp"}`,
		`{"model":""}`, `{"model":7}`, `[]`, `null`, `{"model":"a:b:c"}`, `{"model":"mlp@"}`, `"x"`, `{`,
	} {
		f.Add([]byte(s), "acme")
	}
	f.Add([]byte(payload("mlp")), "acme")
	f.Add(binaryBody("mlp", "FP32", 8, make([]byte, 8)), "acme")
	f.Add(binaryBody("tfmlp", "FP32", 8, make([]byte, 12)), "acme")
	c := admission.New(source, admission.TenantModels(map[string][]string{"limited": {"mlp"}}))
	f.Fuzz(func(t *testing.T, payload []byte, tenant string) {
		sp := task.Spec{Kind: ai.Kind, Payload: payload}
		err := c.Check(context.Background(), tenant, &sp)
		if err != nil {
			if greyerr.CodeOf(err) == greyerr.Internal || greyerr.CodeOf(err) == "" {
				t.Fatalf("uncoded refusal: %v", err)
			}
			if sp.Constraints != nil || sp.Headers != nil {
				t.Fatalf("a refused spec was changed: %+v", sp)
			}
			return
		}
		d := sp.Headers[ai.ModelDigestHeader]
		if d != mlpDigest && d != tfDigest {
			t.Fatalf("accepted with digest %q", d)
		}
		n := 0
		for k := range sp.Constraints.Labels {
			if len(k) > len(ai.FrameworkLabelPrefix) && k[:len(ai.FrameworkLabelPrefix)] == ai.FrameworkLabelPrefix {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("accepted with labels %v", sp.Constraints.Labels)
		}
	})
}

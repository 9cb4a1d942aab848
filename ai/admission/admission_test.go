package admission_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/admission"
	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/worker"
)

// models is a ModelSource holding a few models of two tenants.
type models map[string]ai.Model // "tenant/name" → latest version

func (m models) Resolve(_ context.Context, tenant string, ref ai.ModelRef) (ai.Model, error) {
	md, ok := m[tenant+"/"+ref.Name]
	if !ok || (ref.Version != "" && ref.Version != md.Version) || (ref.Alias != "" && ref.Alias != ai.LatestAlias) {
		return ai.Model{}, greyerr.New(greyerr.NotFound, "model %s not found", ref)
	}
	return md, nil
}

func (m models) Fetch(context.Context, string, string) (io.ReadCloser, error) {
	return nil, greyerr.New(greyerr.Unimplemented, "not in this test")
}

const (
	mlpDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	tfDigest  = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

var source = models{
	"acme/mlp":     {TenantID: "acme", Name: "mlp", Version: "1", Framework: ai.PyTorch, Digest: mlpDigest},
	"acme/tfmlp":   {TenantID: "acme", Name: "tfmlp", Version: "1", Framework: ai.TensorFlow, Digest: tfDigest},
	"globex/gmlp":  {TenantID: "globex", Name: "gmlp", Version: "3", Framework: ai.PyTorch, Digest: mlpDigest},
	"limited/mlp":  {TenantID: "limited", Name: "mlp", Version: "1", Framework: ai.PyTorch, Digest: mlpDigest},
	"limited/mlp2": {TenantID: "limited", Name: "mlp2", Version: "1", Framework: ai.PyTorch, Digest: mlpDigest},
}

func payload(model string) json.RawMessage {
	return json.RawMessage(`{"model":` + mustJSON(model) + `,"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]}`)
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func node(t *testing.T) *greytest.Node {
	t.Helper()
	check := admission.New(source, admission.TenantModels(map[string][]string{"limited": {"mlp"}})).Check
	return greytest.NewNode(t, engine.Config{Kinds: []string{ai.Kind}, SubmitHooks: map[string]engine.SubmitHook{ai.Kind: check}})
}

// Submit refuses what the bad-input list names: another tenant's
// model and a missing one (404), a model outside the tenant's allowed list
// (403), a bad reference, a payload that is no object or whose tensors or
// fields are malformed (the hook is the kind's one payload check), a
// user-set digest header, and a framework label that contradicts the model
// (400).
func TestSubmitRefusals(t *testing.T) {
	n := node(t)
	ctx := context.Background()
	cases := []struct {
		name   string
		tenant string
		spec   task.Spec
		code   greyerr.Code
		status int
	}{
		{"missing model", "acme", task.Spec{Kind: ai.Kind, Payload: payload("nope")}, greyerr.NotFound, 404},
		{"another tenant's model", "acme", task.Spec{Kind: ai.Kind, Payload: payload("gmlp")}, greyerr.NotFound, 404},
		{"missing version", "acme", task.Spec{Kind: ai.Kind, Payload: payload("mlp:9")}, greyerr.NotFound, 404},
		{"not allowed", "limited", task.Spec{Kind: ai.Kind, Payload: payload("mlp2")}, greyerr.PermissionDenied, 403},
		{"bad reference", "acme", task.Spec{Kind: ai.Kind, Payload: payload("Bad Name")}, greyerr.InvalidArgument, 400},
		{"no model", "acme", task.Spec{Kind: ai.Kind, Payload: json.RawMessage(`{"inputs":[]}`)}, greyerr.InvalidArgument, 400},
		{"not an object", "acme", task.Spec{Kind: ai.Kind, Payload: json.RawMessage(`[1,2]`)}, greyerr.InvalidArgument, 400},
		{"too few elements", "acme", task.Spec{Kind: ai.Kind, Payload: json.RawMessage(`{"model":"mlp","inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1]}]}`)}, greyerr.InvalidArgument, 400},
		{"no inputs", "acme", task.Spec{Kind: ai.Kind, Payload: json.RawMessage(`{"model":"mlp","inputs":[]}`)}, greyerr.InvalidArgument, 400},
		{"unknown field", "acme", task.Spec{Kind: ai.Kind, Payload: json.RawMessage(`{"model":"mlp","input":[]}`)}, greyerr.InvalidArgument, 400},
		{"user digest header", "acme", task.Spec{Kind: ai.Kind, Payload: payload("mlp"), Headers: map[string]string{ai.ModelDigestHeader: tfDigest}}, greyerr.InvalidArgument, 400},
		{"wrong framework label", "acme", task.Spec{Kind: ai.Kind, Payload: payload("mlp"), Constraints: &task.Constraints{Labels: map[string]string{"grey.ai/tensorflow": "true"}}}, greyerr.InvalidArgument, 400},
	}
	for _, c := range cases {
		_, err := n.Engine.Submit(ctx, c.tenant, []task.Spec{c.spec}, false)
		if greyerr.CodeOf(err) != c.code || greyerr.HTTPStatus(c.code) != c.status {
			t.Errorf("%s: %v, want %s (%d)", c.name, err, c.code, c.status)
		}
	}
	// In a batch, the refusal names the task.
	_, err := n.Engine.Submit(ctx, "acme", []task.Spec{{Kind: ai.Kind, Payload: payload("mlp")}, {Kind: ai.Kind, Payload: payload("Bad Name")}}, true)
	var ge *greyerr.Error
	if !errors.As(err, &ge) || ge.Field != "tasks[1].payload.model" {
		t.Errorf("batch: %v, want the field tasks[1].payload.model", err)
	}
	if ts, _, err := n.Engine.List(ctx, "acme", engine.ListOptions{}); err != nil || len(ts) != 0 {
		t.Errorf("refused submits stored %d tasks (%v)", len(ts), err)
	}
}

// An accepted task carries the framework constraint and the resolved
// digest; the caller's spec maps are not changed.
func TestSubmitStampsRouting(t *testing.T) {
	n := node(t)
	hdr := map[string]string{"x-trace": "1"}
	cons := &task.Constraints{Labels: map[string]string{"zone": "a"}, GPU: 1}
	res, err := n.Engine.Submit(context.Background(), "acme", []task.Spec{{Kind: ai.Kind, Payload: payload("mlp:1"), Headers: hdr, Constraints: cons}}, false)
	if err != nil {
		t.Fatal(err)
	}
	tk := res.Tasks[0]
	if tk.Constraints.Labels["grey.ai/pytorch"] != "true" || tk.Constraints.Labels["zone"] != "a" || tk.Constraints.GPU != 1 {
		t.Errorf("constraints = %+v", tk.Constraints)
	}
	if tk.Headers[ai.ModelDigestHeader] != mlpDigest || tk.Headers["x-trace"] != "1" {
		t.Errorf("headers = %v", tk.Headers)
	}
	if len(hdr) != 1 || len(cons.Labels) != 1 {
		t.Errorf("the caller's maps changed: %v %v", hdr, cons.Labels)
	}
	res, err = n.Engine.Submit(context.Background(), "acme", []task.Spec{{Kind: ai.Kind, Payload: payload("tfmlp")}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Tasks[0].Constraints.Labels["grey.ai/tensorflow"] != "true" || res.Tasks[0].Headers[ai.ModelDigestHeader] != tfDigest {
		t.Errorf("tensorflow task: %+v %v", res.Tasks[0].Constraints, res.Tasks[0].Headers)
	}
	// Other kinds pass untouched.
	res, err = n.Engine.Submit(context.Background(), "acme", []task.Spec{{Kind: "noop"}}, false)
	if err != nil || res.Tasks[0].Constraints != nil || res.Tasks[0].Headers[ai.ModelDigestHeader] != "" {
		t.Errorf("noop: %v %+v", err, res)
	}
}

func lease(t *testing.T, n *greytest.Node, id string, labels map[string]string, warm ...string) []worker.Assignment {
	t.Helper()
	resp, err := n.Engine.Lease(context.Background(), &worker.LeaseRequest{WorkerID: id, Kinds: []string{ai.Kind}, Labels: labels, Max: 10, Warm: warm})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Tasks
}

// A task goes only to a worker serving its model's framework, and a worker
// that reports the model warm is preferred over a cold one while the task
// is fresh; after the locality delay the cold worker takes it.
func TestRoutingByFrameworkAndWarmth(t *testing.T) {
	n := node(t)
	ctx := context.Background()
	pt := ai.Labels([]ai.RuntimeInfo{{Frameworks: map[ai.Framework]string{ai.PyTorch: "1.13"}, Devices: []string{"cpu"}}})
	tf := ai.Labels([]ai.RuntimeInfo{{Frameworks: map[ai.Framework]string{ai.TensorFlow: "2.21"}, Devices: []string{"cpu"}}})
	if _, err := n.Engine.Submit(ctx, "acme", []task.Spec{{Kind: ai.Kind, Payload: payload("mlp")}}, false); err != nil {
		t.Fatal(err)
	}
	if got := lease(t, n, "tf-worker", tf); len(got) != 0 {
		t.Fatalf("a tensorflow-only worker leased %d pytorch tasks", len(got))
	}
	if got := lease(t, n, "pt-warm", pt, mlpDigest); len(got) != 1 {
		t.Fatalf("the pytorch worker leased %d, want 1", len(got))
	}
	// Now pt-warm has reported mlp warm: a cold pytorch worker leaves a
	// fresh task to it, then takes it once the delay has passed.
	if _, err := n.Engine.Submit(ctx, "acme", []task.Spec{{Kind: ai.Kind, Payload: payload("mlp")}}, false); err != nil {
		t.Fatal(err)
	}
	if got := lease(t, n, "pt-cold", pt); len(got) != 0 {
		t.Fatalf("a cold worker leased a fresh task of a model warm elsewhere")
	}
	time.Sleep(60 * time.Millisecond)
	if got := lease(t, n, "pt-cold", pt); len(got) != 1 {
		t.Fatalf("after the locality delay the cold worker leased %d, want 1", len(got))
	}
	// The lease protocol refuses an oversized warm list.
	many := make([]string, worker.MaxWarm+1)
	for i := range many {
		many[i] = mlpDigest
	}
	if _, err := n.Engine.Lease(ctx, &worker.LeaseRequest{WorkerID: "w", Kinds: []string{ai.Kind}, Max: 1, Warm: many}); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Fatalf("warm list of %d: %v", len(many), err)
	}
}

// memData is an engine.TaskData over a map of uploaded objects.
type memData map[string][]byte

func (d memData) ResolvePayload(_ context.Context, field, _, ref string) (*task.DataRef, error) {
	b, ok := d[ref]
	if !ok {
		return nil, greyerr.Invalid(field, "no object %q", ref)
	}
	return &task.DataRef{Ref: ref, Size: int64(len(b)), SHA256: "x"}, nil
}

func (d memData) Read(_ context.Context, _ string, ref *task.DataRef) ([]byte, error) {
	return d[ref.Ref], nil
}

func (memData) StoreResult(context.Context, string, task.ID, []byte) (*task.DataRef, error) {
	return nil, greyerr.New(greyerr.Unimplemented, "not in this test")
}
func (memData) InlineMax() int { return 1 << 20 }
func (memData) SweepResults(context.Context, func(string, string) bool) (int, error) {
	return 0, nil
}

// memDataBytes hands back the bytes while resolving
// (engine.PayloadDataResolver), as taskdata.Store does.
type memDataBytes struct{ memData }

func (d memDataBytes) ResolvePayloadData(ctx context.Context, field, tenant, ref string) (*task.DataRef, []byte, error) {
	r, err := d.ResolvePayload(ctx, field, tenant, ref)
	if err != nil {
		return nil, nil, err
	}
	return r, d.memData[ref], nil
}

// A payload given by payload_ref is checked at submit like an inline one:
// another tenant's or a missing model is 404, a model outside the allowed
// list 403, a bad reference 400 (prefixed in a batch); an accepted task is
// stamped for routing and keeps its reference. Both ways the engine can get
// the object's bytes (with the resolve, or by a read after it).
func TestSubmitPayloadRef(t *testing.T) {
	objs := memData{
		"uploads/mlp":  payload("mlp"),
		"uploads/gmlp": payload("gmlp"),
		"uploads/nope": payload("nope"),
		"uploads/mlp2": payload("mlp2"),
		"uploads/bad":  payload("Bad Name"),
		"uploads/arr":  json.RawMessage(`[1,2]`),
	}
	for _, data := range []engine.TaskData{objs, memDataBytes{objs}} {
		check := admission.New(source, admission.TenantModels(map[string][]string{"limited": {"mlp"}})).Check
		n := greytest.NewNode(t, engine.Config{Kinds: []string{ai.Kind}, SubmitHooks: map[string]engine.SubmitHook{ai.Kind: check}, Data: data})
		ctx := context.Background()
		cases := []struct {
			name, tenant, ref string
			code              greyerr.Code
		}{
			{"missing model", "acme", "uploads/nope", greyerr.NotFound},
			{"another tenant's model", "acme", "uploads/gmlp", greyerr.NotFound},
			{"not allowed", "limited", "uploads/mlp2", greyerr.PermissionDenied},
			{"bad reference", "acme", "uploads/bad", greyerr.InvalidArgument},
			{"not an object", "acme", "uploads/arr", greyerr.InvalidArgument},
		}
		for _, c := range cases {
			_, err := n.Engine.Submit(ctx, c.tenant, []task.Spec{{Kind: ai.Kind, PayloadRef: c.ref}}, false)
			if greyerr.CodeOf(err) != c.code {
				t.Errorf("%T %s: %v, want %s", data, c.name, err, c.code)
			}
		}
		_, err := n.Engine.Submit(ctx, "acme", []task.Spec{{Kind: ai.Kind, PayloadRef: "uploads/mlp"}, {Kind: ai.Kind, PayloadRef: "uploads/bad"}}, true)
		var ge *greyerr.Error
		if !errors.As(err, &ge) || ge.Field != "tasks[1].payload.model" {
			t.Errorf("%T batch: %v, want the field tasks[1].payload.model", data, err)
		}
		if ts, _, err := n.Engine.List(ctx, "acme", engine.ListOptions{}); err != nil || len(ts) != 0 {
			t.Errorf("%T: refused submits stored %d tasks (%v)", data, len(ts), err)
		}
		res, err := n.Engine.Submit(ctx, "acme", []task.Spec{{Kind: ai.Kind, PayloadRef: "uploads/mlp", Headers: map[string]string{"x-trace": "1"}}}, false)
		if err != nil {
			t.Fatalf("%T: %v", data, err)
		}
		tk := res.Tasks[0]
		if tk.Constraints == nil || tk.Constraints.Labels["grey.ai/pytorch"] != "true" || tk.Headers[ai.ModelDigestHeader] != mlpDigest || tk.Headers["x-trace"] != "1" {
			t.Errorf("%T: stamped %+v %v", data, tk.Constraints, tk.Headers)
		}
		if tk.PayloadRef != "uploads/mlp" || len(tk.Payload) != 0 || tk.PayloadObject == nil {
			t.Errorf("%T: the task should keep its reference: ref %q payload %d bytes object %+v", data, tk.PayloadRef, len(tk.Payload), tk.PayloadObject)
		}
	}
}

// binaryBody is an inference payload in the binary form for model: one
// FP32 input of shape [1,2] whose entry says size bytes, followed by raw.
func binaryBody(model, datatype string, size int, raw []byte) []byte {
	h := `{"model":` + mustJSON(model) + `,"inputs":[{"name":"x","shape":[1,2],"datatype":"` + datatype + `","parameters":{"binary_data_size":` + mustJSON(size) + `}}]}`
	return ai.AppendBinaryBody(nil, []byte(h), raw)
}

// A payload_ref naming a body in the binary form is checked whole at
// submit: the model as for JSON (another tenant's: 404), and the body's
// framing (a header length past the object, byte counts that do not add
// up, a datatype whose size disagrees: 400 naming the payload field). An
// accepted task is stamped for routing, keeps its reference, and its lease
// hands the worker the body's bytes as PayloadBinary, untouched. A binary
// body for a kind that does not read it is refused (400 on payload_ref).
func TestSubmitBinaryPayloadRef(t *testing.T) {
	raw := []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40}
	good := binaryBody("mlp", "FP32", 8, raw)
	overrun := append([]byte(ai.BinaryBodyPrefix+"500\n"), good[len(ai.BinaryBodyPrefix)+4:]...)
	objs := memData{
		"uploads/good":     good,
		"uploads/gmlp":     binaryBody("gmlp", "FP32", 8, raw),
		"uploads/overrun":  overrun,
		"uploads/addup":    binaryBody("mlp", "FP32", 8, append(raw, 1, 2, 3, 4)),
		"uploads/short":    binaryBody("mlp", "FP32", 12, append(raw, 1, 2, 3, 4)),
		"uploads/datatype": binaryBody("mlp", "FP64", 8, raw),
	}
	check := admission.New(source, nil).Check
	n := greytest.NewNode(t, engine.Config{Kinds: []string{ai.Kind, "echo"}, SubmitHooks: map[string]engine.SubmitHook{ai.Kind: check},
		BinaryPayloads: map[string]bool{ai.Kind: true}, Data: memDataBytes{objs}})
	ctx := context.Background()
	cases := []struct {
		name, kind, ref, field string
		code                   greyerr.Code
	}{
		{"another tenant's model", ai.Kind, "uploads/gmlp", "", greyerr.NotFound},
		{"header length overruns the object", ai.Kind, "uploads/overrun", "payload", greyerr.InvalidArgument},
		{"byte counts do not add up", ai.Kind, "uploads/addup", "payload.inputs", greyerr.InvalidArgument},
		{"byte count against the shape", ai.Kind, "uploads/short", "payload.inputs[0].data", greyerr.InvalidArgument},
		{"wrong datatype size", ai.Kind, "uploads/datatype", "payload.inputs[0].data", greyerr.InvalidArgument},
		{"a kind that does not read binary", "echo", "uploads/good", "payload_ref", greyerr.InvalidArgument},
	}
	for _, c := range cases {
		_, err := n.Engine.Submit(ctx, "acme", []task.Spec{{Kind: c.kind, PayloadRef: c.ref}}, false)
		var ge *greyerr.Error
		if !errors.As(err, &ge) || ge.Code != c.code || ge.Field != c.field {
			t.Errorf("%s: %v, want %s on field %q", c.name, err, c.code, c.field)
		}
	}
	if ts, _, err := n.Engine.List(ctx, "acme", engine.ListOptions{}); err != nil || len(ts) != 0 {
		t.Fatalf("refused submits stored %d tasks (%v)", len(ts), err)
	}
	res, err := n.Engine.Submit(ctx, "acme", []task.Spec{{Kind: ai.Kind, PayloadRef: "uploads/good"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	tk := res.Tasks[0]
	if tk.Constraints == nil || tk.Constraints.Labels["grey.ai/pytorch"] != "true" || tk.Headers[ai.ModelDigestHeader] != mlpDigest || tk.PayloadRef != "uploads/good" || len(tk.Payload) != 0 {
		t.Fatalf("accepted task %+v", tk)
	}
	pt := ai.Labels([]ai.RuntimeInfo{{Frameworks: map[ai.Framework]string{ai.PyTorch: "1.13"}, Devices: []string{"cpu"}}})
	got := lease(t, n, "w", pt)
	// The lease names the object (the leader does not read it) and the
	// worker fetches its bytes through the worker protocol.
	if len(got) != 1 || len(got[0].Payload) != 0 || len(got[0].PayloadBinary) != 0 || !got[0].PayloadFetch ||
		got[0].PayloadObject == nil || got[0].PayloadObject.Size != int64(len(good)) {
		t.Fatalf("lease = %+v", got)
	}
	rc, err := n.Engine.FetchPayload(ctx, &worker.PayloadRequest{TaskID: got[0].TaskID, Attempt: got[0].Attempt, WorkerID: "w"})
	if err != nil {
		t.Fatal(err)
	}
	fetched, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(fetched) != string(good) {
		t.Fatalf("fetched %d bytes (%v), want the object's %d", len(fetched), err, len(good))
	}
	// The lease's JSON carries no body, only the reference.
	wire, _ := json.Marshal(got[0])
	var back worker.Assignment
	if err := json.Unmarshal(wire, &back); err != nil || !back.PayloadFetch || back.PayloadObject == nil || len(back.PayloadBinary) != 0 {
		t.Fatalf("the lease's JSON: %v %+v", err, back)
	}
	// Without BinaryPayloads for the kind the engine refuses the body.
	n2 := greytest.NewNode(t, engine.Config{Kinds: []string{ai.Kind}, SubmitHooks: map[string]engine.SubmitHook{ai.Kind: check}, Data: memDataBytes{objs}})
	if _, err := n2.Engine.Submit(ctx, "acme", []task.Spec{{Kind: ai.Kind, PayloadRef: "uploads/good"}}, false); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Fatalf("a server that does not take binary bodies: %v", err)
	}
}

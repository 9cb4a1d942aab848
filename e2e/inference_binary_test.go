package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/pyruntime/pyruntimetest"
	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/proof"
	"github.com/grey-distributed/grey/task"
)

// binaryRequest is an inference request for model in the binary form: the
// tensors' bytes after the JSON header, as the object a tenant uploads.
func binaryRequest(t *testing.T, model, id string, inputs []ai.Tensor) []byte {
	t.Helper()
	es, raw := ai.BinaryEntries(inputs)
	h, err := json.Marshal(map[string]any{"model": model, "id": id, "inputs": es})
	if err != nil {
		t.Fatal(err)
	}
	return ai.AppendBinaryBody(nil, h, raw)
}

// TestInferenceBinaryBody: a tenant uploads a request in the Open Inference
// Protocol binary form and submits it by payload_ref to a real greyd with
// torch's Python runtime. A 1,000-row request's tensors reach the model as
// bytes and its output, too large to keep inline, is stored in the binary
// form; the Go client gives back the JSON, equal to the model run directly
// in Python; the proof verifies with the objects' digests and a replay
// reproduces it. A one-row request's small result stays inline JSON (and
// greyctl submits the body with --payload-binary). A body whose header
// length overruns it is refused at submit (400), and another tenant naming
// the upload gets 404.
func TestInferenceBinaryBody(t *testing.T) {
	const rows = 1000
	torchPy, mlp, ok := torchE2E(t, pyruntimetest.TorchMLP, rows)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	g, acme, _ := startInference(ctx, t, torchRuntime(torchPy)+`tasks:
  max_payload_bytes: 4096
`, mlp)

	body := binaryRequest(t, "mlp:1", "all", mlp.Inputs)
	ref, err := acme.UploadPayload(ctx, body)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	yes := true
	tk, err := acme.Submit(ctx, task.Spec{Kind: ai.Kind, PayloadRef: ref, RequireProof: &yes})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	done, err := acme.Wait(ctx, tk.ID)
	if err != nil || done.Status != task.Completed {
		t.Fatalf("task: %v %+v", err, done)
	}
	if done.ResultRef == nil {
		t.Fatalf("a %d-row result was kept inline (%d bytes)", rows, len(done.Result))
	}
	stored, err := acme.Result(ctx, tk.ID)
	if err != nil || !ai.IsBinaryBody(stored) {
		t.Fatalf("the stored result is not in the binary form: %v %.60q", err, stored)
	}
	var resp ai.Response
	if err := json.Unmarshal(done.Result, &resp); err != nil {
		t.Fatalf("the client's JSON of the binary result: %v", err)
	}
	if resp.ID != "all" || resp.ModelVersion != "1" {
		t.Fatalf("response %+v", resp)
	}
	worst := 0.0
	for r := range rows {
		worst = max(worst, compareRow(t, r, oneRow(resp.Outputs, r), mlp.Outputs))
	}
	ring, err := acme.KeyRing(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := acme.Proof(ctx, tk.ID)
	if err != nil || !rec.Verified {
		t.Fatalf("proof: %v %+v", err, rec)
	}
	if _, err := proof.Verify(rec.Envelope, ring, proof.Expect{TaskID: string(tk.ID), TenantID: "acme",
		InputDigest: proof.InputDigest(done), OutputDigest: proof.OutputDigest(done)}); err != nil {
		t.Fatalf("proof does not verify here: %v", err)
	}
	if proof.InputDigest(done) != proof.Digest(body) || proof.OutputDigest(done) != proof.Digest(stored) {
		t.Fatal("the proof's digests are not those of the uploaded body and the stored result")
	}
	rep, err := acme.Replay(ctx, tk.ID)
	if err != nil || !rep.Match {
		t.Fatalf("replay of the binary task: %v %+v", err, rep)
	}

	// One row, by greyctl: a small result stays inline JSON.
	file := filepath.Join(t.TempDir(), "one.bin")
	if err := os.WriteFile(file, binaryRequest(t, "mlp:1", "one", oneRow(mlp.Inputs, 7)), 0o600); err != nil {
		t.Fatal(err)
	}
	res := greyctl(t, g.URL(), time.Minute, "--tenant", "acme", "-o", "json", "task", "submit", "--kind", ai.Kind, "--payload-binary", file, "--wait")
	if res.Code != 0 {
		t.Fatalf("greyctl --payload-binary: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	var one task.Task
	if err := json.Unmarshal([]byte(res.Stdout), &one); err != nil || one.ResultRef != nil {
		t.Fatalf("one-row task: %v %+v", err, one)
	}
	var oneResp ai.Response
	if err := json.Unmarshal(one.Result, &oneResp); err != nil {
		t.Fatal(err)
	}
	compareRow(t, 7, oneResp.Outputs, mlp.Outputs)

	// Bad input: a header length past the object (400), another
	// tenant's upload (404).
	bad := append([]byte(ai.BinaryBodyPrefix+"99999999\n"), body[strings.IndexByte(string(body), '\n')+1:]...)
	badRef, err := acme.UploadPayload(ctx, bad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acme.Submit(ctx, task.Spec{Kind: ai.Kind, PayloadRef: badRef}); greyerr.CodeOf(err) != greyerr.InvalidArgument {
		t.Fatalf("a header length past the object: %v, want invalid_argument", err)
	}
	globex, err := client.New(g.URL(), client.WithTenant("globex"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := globex.Submit(ctx, task.Spec{Kind: ai.Kind, PayloadRef: ref}); greyerr.CodeOf(err) != greyerr.NotFound {
		t.Fatalf("globex naming acme's upload: %v, want not_found", err)
	}
	t.Logf("%d rows in one binary task: largest relative difference from Python %.3g; stored result %d bytes", rows, worst, len(stored))
}

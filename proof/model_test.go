package proof

import (
	"encoding/base64"
	"strings"
	"testing"
)

// TestModelInStatement: an inference run's statement names its model, the
// signature covers it, and it reads back; a run without one has no
// "model" key at all (older statements encode byte for byte as before).
func TestModelInStatement(t *testing.T) {
	k := mustKey(t)
	r := testRun()
	r.Kind = "inference"
	r.Model = &Model{Name: "mlp", Version: "1", Digest: "sha256:" + Digest([]byte("model")), Framework: "pytorch",
		FrameworkVersion: "1.13.0", Runtime: "grey-python", RuntimeVersion: "0.1.0", Device: "cpu"}
	env := mustSignBatch(t, k, r)
	got, err := Verify(env, NewKeyRing(k.Public()), expectRun(r))
	if err != nil {
		t.Fatal(err)
	}
	if m := got.Predicate.Executions[0].Model; m == nil || *m != *r.Model {
		t.Fatalf("model read back %+v, want %+v", m, r.Model)
	}
	plain := mustSignBatch(t, k, testRun())
	body, _ := base64.StdEncoding.DecodeString(plain.Payload)
	if strings.Contains(string(body), `"model"`) {
		t.Fatalf("a statement without a model names one: %s", body)
	}
	bad := r
	m := *r.Model
	m.Digest = "md5:abc"
	bad.Model = &m
	if err := NewStatement("acme", "node-1", "", bad).Validate(); err == nil || !strings.Contains(err.Error(), "malformed model") {
		t.Fatalf("a malformed model digest: %v", err)
	}
}

package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/proof"
	"github.com/grey-distributed/grey/worker"
)

// proofTask runs one echo task to completion on a real node and returns its
// id and the greyctl environment.
func proofTask(t *testing.T) (string, map[string]string, *proof.Key) {
	t.Helper()
	n, env := realServer(t, engine.Config{}, "")
	n.StartWorkers(t, worker.Options{Concurrency: 2}, nil)
	env["GREY_TENANT"] = "acme"
	r := greyctl(t, env, "task", "submit", "--kind", "echo", "--payload", `{"msg":"<hello & bye>"}`, "--wait", "-o", "json")
	if r.code != 0 {
		t.Fatalf("submit: %d %s", r.code, r.stderr)
	}
	var tk struct {
		ID      string `json:"id"`
		ProofID string `json:"proof_id"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &tk); err != nil || tk.ProofID == "" {
		t.Fatalf("submitted task %s (%v): want a proof_id", r.stdout, err)
	}
	return tk.ID, env, n.Signer.Key
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProofVerify(t *testing.T) {
	t.Parallel()
	id, env, key := proofTask(t)

	r := greyctl(t, env, "proof", "verify", id)
	if r.code != 0 || !strings.Contains(r.stdout, "is valid") || !strings.Contains(r.stdout, "output digest: sha256:") || !strings.Contains(r.stdout, "matches the stored payload") {
		t.Fatalf("verify: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = greyctl(t, env, "proof", "verify", id, "-o", "json")
	var rep verifyReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); r.code != 0 || err != nil || !rep.Valid || rep.Statement == nil || rep.Statement.Predicate.Executions[0].TaskID != id {
		t.Fatalf("verify -o json: %d %v %s", r.code, err, r.stdout)
	}

	// The envelope from "proof get" verifies offline with the node's key.
	got := greyctl(t, env, "proof", "get", id)
	if got.code != 0 {
		t.Fatalf("proof get: %d %s", got.code, got.stderr)
	}
	envFile := writeFile(t, "proof.json", got.stdout)
	pubFile := writeFile(t, "node.pub", string(key.PublicPEM()))
	if r := greyctl(t, env, "proof", "verify", id, "--file", envFile, "--key", pubFile); r.code != 0 {
		t.Fatalf("verify --file --key: %d %s %s", r.code, r.stdout, r.stderr)
	}
	short := greyctl(t, env, "proof", "get", id, "-o", "json")
	var rec proof.Record
	if err := json.Unmarshal([]byte(short.stdout), &rec); err != nil || !rec.Verified || rec.Short.TaskID != id || rec.Short.Platform != "software" {
		t.Fatalf("proof get -o json: %v %s", err, short.stdout)
	}

	// Tampering: each fails with exit 1 naming what differs.
	var e proof.Envelope
	if err := json.Unmarshal([]byte(got.stdout), &e); err != nil {
		t.Fatal(err)
	}
	body, _ := base64.StdEncoding.DecodeString(e.Payload)
	otherKey, _ := proof.GenerateKey()
	cases := []struct {
		name, want string
		args       []string
	}{
		{"payload edited", "signature does not verify", []string{"--file", writeFile(t, "a.json", tamper(t, e, strings.Replace(string(body), `"attempt":1`, `"attempt":2`, 1)))}},
		{"wrong key", "unknown key id", []string{"--file", envFile, "--key", writeFile(t, "other.pub", string(otherKey.PublicPEM()))}},
		{"garbage file", "not JSON", []string{"--file", writeFile(t, "g.json", "{not json")}},
	}
	for _, tc := range cases {
		r := greyctl(t, env, append([]string{"proof", "verify", id}, tc.args...)...)
		wantCode := 1
		if tc.name == "garbage file" {
			wantCode = 2
		}
		if r.code != wantCode || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", tc.name, r.code, r.stderr, wantCode, tc.want)
		}
	}
	// A proof re-signed for another task's digests (a valid signature
	// over the wrong output) names the output digest.
	st, err := proof.DecodeStatement(&e)
	if err != nil {
		t.Fatal(err)
	}
	st.Subject[0].Digest["sha256"] = proof.Digest([]byte(`"forged"`)) // a one-task batch
	forged, err := proof.Sign(key, st)
	if err != nil {
		t.Fatal(err)
	}
	fb, _ := json.Marshal(forged)
	r = greyctl(t, env, "proof", "verify", id, "--file", writeFile(t, "forged.json", string(fb)))
	if r.code != 1 || !strings.Contains(r.stderr, "output digest differs") {
		t.Fatalf("forged output: exit %d %q", r.code, r.stderr)
	}
	// Another tenant cannot see the task at all.
	other := map[string]string{"GREY_SERVER": env["GREY_SERVER"], "GREY_TENANT": "globex"}
	if r := greyctl(t, other, "proof", "verify", id); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("other tenant: exit %d %q", r.code, r.stderr)
	}
}

// tamper returns e with its payload replaced by body (signature kept).
func tamper(t *testing.T, e proof.Envelope, body string) string {
	t.Helper()
	e.Payload = base64.StdEncoding.EncodeToString([]byte(body))
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTaskReplay(t *testing.T) {
	t.Parallel()
	id, env, _ := proofTask(t)
	r := greyctl(t, env, "task", "replay", id)
	if r.code != 0 || !strings.Contains(r.stdout, "Match:") || !strings.Contains(r.stdout, "true") {
		t.Fatalf("replay: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = greyctl(t, env, "task", "replay", id, "-o", "json")
	var rep proof.Replay
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || !rep.Match || rep.StoredDigest == "" || rep.StoredDigest != rep.ProofDigest {
		t.Fatalf("replay -o json: %v %s", err, r.stdout)
	}
}

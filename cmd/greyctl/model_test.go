package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/modelstore"
	"github.com/grey-distributed/grey/api"
	"github.com/grey-distributed/grey/artifact"
	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/blobstore/fileblob"
	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/greytest"
)

// fakeTorchScript is a zip laid out like torch.jit.save's output.
func fakeTorchScript(t *testing.T, salt string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range []string{"m/data.pkl", "m/constants.pkl", "m/code/__torch__/m.py", "m/version"} {
		w, _ := zw.Create(name)
		_, _ = w.Write([]byte(name + salt))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// savedModelDir writes a directory laid out like a SavedModel.
func savedModelDir(t *testing.T) string {
	d := t.TempDir()
	_ = os.MkdirAll(filepath.Join(d, "variables"), 0o755)
	_ = os.WriteFile(filepath.Join(d, "saved_model.pb"), []byte("graph"), 0o644)
	_ = os.WriteFile(filepath.Join(d, "variables", "variables.index"), []byte("index"), 0o644)
	return d
}

func TestModelCommands(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{})
	reg := blobstore.NewRegistry()
	if err := fileblob.Register(reg); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	store, err := modelstore.Open(t.Context(), reg, "file://"+filepath.ToSlash(dir), modelstore.Options{TempDir: t.TempDir()}, blobstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	srv := httptest.NewServer(api.New(n.Engine, api.Options{ModelRegistry: store, Logger: greytest.Logger(t)}))
	t.Cleanup(srv.Close)
	env := map[string]string{"GREY_SERVER": srv.URL, "GREY_TENANT": "acme"}
	other := map[string]string{"GREY_SERVER": srv.URL, "GREY_TENANT": "globex"}

	pt := fakeTorchScript(t, "1")
	file := writeFile(t, "mlp.pt", string(pt))
	r := greyctl(t, env, "model", "push", "--name", "mlp", "--version", "v1", "--framework", "pytorch", file)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "mlp:v1 "+artifact.Digest(pt) {
		t.Fatalf("push: %d %q %s", r.code, r.stdout, r.stderr)
	}
	// The same push again is harmless; other bytes under v1 are refused.
	if r := greyctl(t, env, "model", "push", "--name", "mlp", "--version", "v1", "--framework", "pytorch", file); r.code != 0 {
		t.Fatalf("push again: %d %s", r.code, r.stderr)
	}
	r = greyctl(t, env, "model", "push", "--name", "mlp", "--version", "v1", "--framework", "pytorch", writeFile(t, "x.pt", string(fakeTorchScript(t, "2"))))
	if r.code != 1 || !strings.Contains(r.stderr, "immutable") {
		t.Fatalf("push other bytes: %d %s", r.code, r.stderr)
	}
	// Bad input: not a model, the wrong framework, missing flags.
	r = greyctl(t, env, "model", "push", "--name", "mlp", "--version", "v9", "--framework", "pytorch", writeFile(t, "notes.txt", "just text"))
	if r.code != 1 || !strings.Contains(r.stderr, "not a TorchScript model") {
		t.Fatalf("push text: %d %s", r.code, r.stderr)
	}
	r = greyctl(t, env, "model", "push", "--name", "mlp", "--version", "v9", "--framework", "tensorflow", file)
	if r.code != 1 || !strings.Contains(r.stderr, "not a TensorFlow SavedModel") {
		t.Fatalf("push TorchScript as tensorflow: %d %s", r.code, r.stderr)
	}
	if r := greyctl(t, env, "model", "push", "--name", "mlp", "--version", "v9", file); r.code != 2 {
		t.Fatalf("push without --framework: %d %s", r.code, r.stderr)
	}
	if r := greyctl(t, env, "model", "push", "--name", "mlp", "--version", "v9", "--framework", "onnx", file); r.code != 2 {
		t.Fatalf("push --framework onnx: %d %s", r.code, r.stderr)
	}

	// A directory is tarred the same way every time: the same digest.
	sm := savedModelDir(t)
	r = greyctl(t, env, "model", "push", "--name", "linear", "--version", "1", "--framework", "tensorflow", "-o", "json", sm)
	var m1 ai.Model
	if err := json.Unmarshal([]byte(r.stdout), &m1); r.code != 0 || err != nil || m1.Framework != ai.TensorFlow {
		t.Fatalf("push dir: %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = greyctl(t, env, "model", "push", "--name", "linear", "--version", "2", "--framework", "tensorflow", "-o", "json", sm)
	var m2 ai.Model
	if err := json.Unmarshal([]byte(r.stdout), &m2); r.code != 0 || err != nil || m2.Digest != m1.Digest {
		t.Fatalf("push the same dir as v2: %d %q (digest %s, first %s)", r.code, r.stderr, m2.Digest, m1.Digest)
	}

	r = greyctl(t, env, "model", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "NAME") || !strings.Contains(r.stdout, "mlp") || !strings.Contains(r.stdout, "linear") {
		t.Fatalf("list: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = greyctl(t, env, "model", "list", "-o", "json", "--name", "lin")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 2 || strings.Contains(r.stdout, "mlp") {
		t.Fatalf("list --name lin: %d %q", r.code, r.stdout)
	}
	r = greyctl(t, env, "model", "get", "linear", "-o", "json")
	var info client.ModelInfo
	if err := json.Unmarshal([]byte(r.stdout), &info); r.code != 0 || err != nil || len(info.Versions) != 2 || info.Aliases["latest"] != "2" {
		t.Fatalf("get linear: %d %q %v", r.code, r.stdout, err)
	}

	// Aliases.
	if r := greyctl(t, env, "model", "alias", "set", "linear@stable", "1"); r.code != 0 || !strings.Contains(r.stdout, "linear@stable -> linear:1") {
		t.Fatalf("alias set: %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = greyctl(t, env, "model", "get", "linear@stable", "-o", "json")
	var got ai.Model
	if err := json.Unmarshal([]byte(r.stdout), &got); r.code != 0 || err != nil || got.Version != "1" {
		t.Fatalf("get linear@stable: %d %q", r.code, r.stdout)
	}
	if r := greyctl(t, env, "model", "alias", "set", "linear@latest", "1"); r.code != 1 || !strings.Contains(r.stderr, "managed") {
		t.Fatalf("alias set latest: %d %s", r.code, r.stderr)
	}
	if r := greyctl(t, env, "model", "delete", "linear:1"); r.code != 1 || !strings.Contains(r.stderr, "alias stable") {
		t.Fatalf("delete an aliased version: %d %s", r.code, r.stderr)
	}
	if r := greyctl(t, env, "model", "alias", "delete", "linear@stable"); r.code != 0 {
		t.Fatalf("alias delete: %d %s", r.code, r.stderr)
	}
	if r := greyctl(t, env, "model", "delete", "linear:1"); r.code != 0 {
		t.Fatalf("delete: %d %s", r.code, r.stderr)
	}
	if r := greyctl(t, env, "model", "get", "linear:1"); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("get a deleted version: %d %s", r.code, r.stderr)
	}

	// Another tenant sees nothing.
	if r := greyctl(t, other, "model", "list", "-o", "json"); r.code != 0 || r.stdout != "" {
		t.Fatalf("another tenant's list: %d %q", r.code, r.stdout)
	}
	for _, ref := range []string{"mlp", "mlp:v1", "mlp@latest"} {
		if r := greyctl(t, other, "model", "get", ref); r.code != 1 || !strings.Contains(r.stderr, "not found") {
			t.Fatalf("another tenant's get %s: %d %q", ref, r.code, r.stderr)
		}
	}
	if r := greyctl(t, other, "model", "delete", "mlp:v1"); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("another tenant's delete: %d %q", r.code, r.stderr)
	}

	// A worker-only node's source: resolve and fetch as the task's tenant.
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	src := client.ModelSource(c)
	ctx := t.Context()
	m, err := src.Resolve(ctx, "acme", ai.ModelRef{Name: "mlp", Alias: "latest"})
	if err != nil || m.Version != "v1" || m.Digest != artifact.Digest(pt) {
		t.Fatalf("Resolve: %+v %v", m, err)
	}
	rc, err := src.Fetch(ctx, "acme", m.Digest)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	_ = rc.Close()
	if err != nil || !bytes.Equal(b, pt) {
		t.Fatalf("Fetch: %d bytes, %v", len(b), err)
	}
	if _, err := src.Resolve(ctx, "globex", ai.ModelRef{Name: "mlp", Version: "v1"}); !greyerr.Is(err, greyerr.NotFound) {
		t.Fatalf("Resolve as another tenant: %v", err)
	}
	if _, err := src.Fetch(ctx, "globex", m.Digest); !greyerr.Is(err, greyerr.NotFound) {
		t.Fatalf("Fetch as another tenant: %v", err)
	}
	// A digest mismatch after download: the stored blob altered behind the
	// registry's back.
	p := filepath.Join(dir, "tenants", "acme", "models", strings.TrimPrefix(m.Digest, "sha256:"))
	bad := append([]byte(nil), pt...)
	bad[10] ^= 0xff
	if err := os.WriteFile(p, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if rc, err := src.Fetch(ctx, "acme", m.Digest); err == nil {
		_, err = io.ReadAll(rc)
		_ = rc.Close()
		if err == nil {
			t.Fatal("a tampered artifact was downloaded without an error")
		}
	}

	// Push progress is reported through the callback.
	var last int64
	data := fakeTorchScript(t, "3")
	ca, _ := client.New(srv.URL, client.WithTenant("acme"))
	if _, err := ca.PushModel(ctx, client.PushModelSpec{Name: "mlp", Version: "v3", Framework: ai.PyTorch, Size: int64(len(data)), Progress: func(sent, total int64) { last = sent }}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if last != int64(len(data)) {
		t.Errorf("progress ended at %d of %d", last, len(data))
	}
}

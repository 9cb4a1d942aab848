package modelstore_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/modelstore"
	"github.com/grey-distributed/grey/artifact"
	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/blobstore/fileblob"
	"github.com/grey-distributed/grey/greyerr"
)

func newStore(t *testing.T, opts modelstore.Options) (*modelstore.Store, string) {
	t.Helper()
	dir := t.TempDir()
	u, err := fileblob.URL(dir)
	if err != nil {
		t.Fatal(err)
	}
	reg := blobstore.NewRegistry()
	if err := fileblob.Register(reg); err != nil {
		t.Fatal(err)
	}
	if opts.TempDir == "" {
		opts.TempDir = t.TempDir()
	}
	s, err := modelstore.Open(t.Context(), reg, u, opts, blobstore.Options{Environment: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, dir
}

// torchScript builds a zip laid out like torch.jit.save's output; salt
// makes distinct bytes.
func torchScript(t testing.TB, salt string) []byte {
	return zipOf(t, map[string]string{
		"mlp/data.pkl":                   "pickle" + salt,
		"mlp/constants.pkl":              "c",
		"mlp/code/__torch__/mlp.py":      "def forward(self, x): return x",
		"mlp/data/0":                     "weights",
		"mlp/version":                    "3",
		"mlp/code/__torch__/mlp.py.pkl":  "dbg",
		"mlp/.data/serialization_id.txt": "1",
	})
}

func zipOf(t testing.TB, files map[string]string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range sortedKeys(files) {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(files[name]))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sortedKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

type entry struct {
	name string
	typ  byte
	body string
	link string
}

func tarOf(t testing.TB, entries ...entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body)), Linkname: e.link}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			_, _ = tw.Write([]byte(e.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func savedModel(t testing.TB, salt string) []byte {
	return tarOf(t,
		entry{name: "saved_model.pb", typ: tar.TypeReg, body: "graph" + salt},
		entry{name: "variables/", typ: tar.TypeDir},
		entry{name: "variables/variables.index", typ: tar.TypeReg, body: "idx"},
		entry{name: "variables/variables.data-00000-of-00001", typ: tar.TypeReg, body: "data"},
		entry{name: "assets/", typ: tar.TypeDir},
	)
}

func push(t *testing.T, s *modelstore.Store, tenant, name, version string, f ai.Framework, b []byte) *ai.Model {
	t.Helper()
	m, created, err := s.Push(t.Context(), tenant, modelstore.PushSpec{Name: name, Version: version, Framework: f}, bytes.NewReader(b))
	if err != nil || !created {
		t.Fatalf("Push %s:%s: created=%v err=%v", name, version, created, err)
	}
	return m
}

func wantCode(t *testing.T, what string, err error, code greyerr.Code, contains string) {
	t.Helper()
	if !greyerr.Is(err, code) {
		t.Fatalf("%s: err = %v, want code %s", what, err, code)
	}
	if contains != "" && !strings.Contains(err.Error(), contains) {
		t.Fatalf("%s: err = %v, want it to say %q", what, err, contains)
	}
}

func TestPushGetResolveFetch(t *testing.T) {
	t.Parallel()
	s, dir := newStore(t, modelstore.Options{})
	ctx := t.Context()
	data := torchScript(t, "1")
	m := push(t, s, "acme", "mlp", "v1", ai.PyTorch, data)
	if m.Digest != artifact.Digest(data) || m.Size != int64(len(data)) || m.TenantID != "acme" || m.Framework != ai.PyTorch || m.CreatedAt.IsZero() {
		t.Errorf("Push = %+v", m)
	}
	if strings.Join(m.Aliases, ",") != "latest" {
		t.Errorf("aliases = %v, want [latest]", m.Aliases)
	}
	// The layout the package doc promises.
	for _, p := range []string{
		"tenants/acme/models/" + strings.TrimPrefix(m.Digest, "sha256:"),
		"tenants/acme/model-index/mlp/versions/v1.json",
		"tenants/acme/model-index/mlp/aliases/latest",
	} {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p))); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, ref := range []string{"mlp", "mlp@latest", "mlp:v1"} {
		r, err := ai.ParseModelRef(ref)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Resolve(ctx, "acme", r)
		if err != nil {
			t.Fatalf("Resolve %s: %v", ref, err)
		}
		if got.Version != "v1" || got.Digest != m.Digest {
			t.Errorf("Resolve %s = %+v", ref, got)
		}
	}
	rc, err := s.Fetch(ctx, "acme", m.Digest)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	_ = rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Fetch: %d bytes, %v", len(got), err)
	}
	// v2 moves latest.
	m2 := push(t, s, "acme", "mlp", "v2", ai.PyTorch, torchScript(t, "2"))
	r, _ := ai.ParseModelRef("mlp")
	if got, err := s.Resolve(ctx, "acme", r); err != nil || got.Version != "v2" || got.Digest != m2.Digest {
		t.Fatalf("latest after v2 = %+v, %v", got, err)
	}
	info, err := s.Describe(ctx, "acme", "mlp")
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Versions) != 2 || info.Versions[0].Version != "v1" || info.Versions[1].Version != "v2" || info.Aliases["latest"] != "v2" {
		t.Errorf("Describe = %+v", info)
	}
	if len(info.Versions[0].Aliases) != 0 || strings.Join(info.Versions[1].Aliases, ",") != "latest" {
		t.Errorf("version aliases = %v / %v", info.Versions[0].Aliases, info.Versions[1].Aliases)
	}
	if _, err := s.Get(ctx, "acme", ai.ModelRef{Name: "mlp", Version: "v9"}); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("Get v9: %v", err)
	}
	if _, err := s.Get(ctx, "acme", ai.ModelRef{Name: "mlp", Alias: "stable"}); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("Get @stable: %v", err)
	}
	if _, err := s.Get(ctx, "acme", ai.ModelRef{Name: "nope", Alias: "latest"}); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("Get nope: %v", err)
	}
}

func TestPushIdempotentAndImmutable(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, modelstore.Options{})
	ctx := t.Context()
	data := torchScript(t, "1")
	m := push(t, s, "acme", "mlp", "v1", ai.PyTorch, data)
	again, created, err := s.Push(ctx, "acme", modelstore.PushSpec{Name: "mlp", Version: "v1", Framework: ai.PyTorch}, bytes.NewReader(data))
	if err != nil || created || again.Digest != m.Digest || !again.CreatedAt.Equal(m.CreatedAt) {
		t.Fatalf("same push again: %+v created=%v err=%v", again, created, err)
	}
	_, _, err = s.Push(ctx, "acme", modelstore.PushSpec{Name: "mlp", Version: "v1", Framework: ai.PyTorch}, bytes.NewReader(torchScript(t, "other")))
	wantCode(t, "other bytes, same version", err, greyerr.AlreadyExists, "immutable")
	got, err := s.Get(ctx, "acme", ai.ModelRef{Name: "mlp", Version: "v1"})
	if err != nil || got.Digest != m.Digest {
		t.Fatalf("v1 changed: %+v %v", got, err)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, modelstore.Options{MaxBytes: 16384})
	ctx := t.Context()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(savedModel(t, ""))
	_ = zw.Close()
	stateDict := zipOf(t, map[string]string{"sd/data.pkl": "p", "sd/data/0": "w", "sd/version": "3"})
	cases := []struct {
		name               string
		model, version, fw string
		body               []byte
		code               greyerr.Code
		says               string
	}{
		{"not a model (pytorch)", "m", "v1", "pytorch", []byte("hello, I am a text file"), greyerr.InvalidArgument, "not a TorchScript model"},
		{"not a model (tensorflow)", "m", "v1", "tensorflow", []byte("hello, I am a text file"), greyerr.InvalidArgument, "not a TensorFlow SavedModel"},
		{"weights, not TorchScript", "m", "v1", "pytorch", stateDict, greyerr.InvalidArgument, "torch.save of weights"},
		{"zip without data.pkl", "m", "v1", "pytorch", zipOf(t, map[string]string{"m/code/x.py": "x"}), greyerr.InvalidArgument, "no data.pkl"},
		{"zip entries outside a top dir", "m", "v1", "pytorch", zipOf(t, map[string]string{"data.pkl": "x", "constants.pkl": "c"}), greyerr.InvalidArgument, "not a TorchScript model"},
		{"SavedModel pushed as pytorch", "m", "v1", "pytorch", savedModel(t, ""), greyerr.InvalidArgument, "--framework tensorflow"},
		{"TorchScript pushed as tensorflow", "m", "v1", "tensorflow", torchScript(t, ""), greyerr.InvalidArgument, "--framework pytorch"},
		{"tar without saved_model.pb", "m", "v1", "tensorflow", tarOf(t, entry{name: "variables/", typ: tar.TypeDir}), greyerr.InvalidArgument, "no saved_model.pb"},
		{"tar without variables", "m", "v1", "tensorflow", tarOf(t, entry{name: "saved_model.pb", typ: tar.TypeReg, body: "g"}), greyerr.InvalidArgument, "no variables/"},
		{"tar path escapes", "m", "v1", "tensorflow", tarOf(t, entry{name: "../saved_model.pb", typ: tar.TypeReg, body: "g"}), greyerr.InvalidArgument, "leaves the model directory"},
		{"tar absolute path", "m", "v1", "tensorflow", tarOf(t, entry{name: "/etc/saved_model.pb", typ: tar.TypeReg, body: "g"}), greyerr.InvalidArgument, "not a relative path"},
		{"tar symlink", "m", "v1", "tensorflow", tarOf(t, entry{name: "saved_model.pb", typ: tar.TypeSymlink, link: "/etc/passwd"}), greyerr.InvalidArgument, "links and devices"},
		{"gzipped tar", "m", "v1", "tensorflow", gz.Bytes(), greyerr.InvalidArgument, "gzip"},
		{"empty", "m", "v1", "pytorch", nil, greyerr.InvalidArgument, "empty"},
		{"too large", "m", "v1", "pytorch", bytes.Repeat([]byte("x"), 16385), greyerr.TooLarge, "ai.max_model_bytes"},
		{"bad name", "M!", "v1", "pytorch", torchScript(t, ""), greyerr.InvalidArgument, "name"},
		{"bad version", "m", "V 1", "pytorch", torchScript(t, ""), greyerr.InvalidArgument, "version"},
		{"bad framework", "m", "v1", "onnx", torchScript(t, ""), greyerr.InvalidArgument, "framework"},
	}
	for _, c := range cases {
		_, _, err := s.Push(ctx, "acme", modelstore.PushSpec{Name: c.model, Version: c.version, Framework: ai.Framework(c.fw)}, bytes.NewReader(c.body))
		wantCode(t, c.name, err, c.code, c.says)
	}
	// Nothing was stored by any of them.
	if n, count, err := s.Usage(ctx, "acme"); err != nil || n != 0 || count != 0 {
		t.Errorf("usage after refused pushes: %d bytes, %d, %v", n, count, err)
	}
	if ms, _, err := s.List(ctx, "acme", modelstore.ListOptions{}); err != nil || len(ms) != 0 {
		t.Errorf("list after refused pushes: %v %v", ms, err)
	}
	if _, _, err := s.Push(ctx, "bad tenant!", modelstore.PushSpec{Name: "m", Version: "v1", Framework: ai.PyTorch}, bytes.NewReader(torchScript(t, ""))); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Errorf("bad tenant: %v", err)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestPushReadError(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, modelstore.Options{})
	_, _, err := s.Push(t.Context(), "acme", modelstore.PushSpec{Name: "m", Version: "v1", Framework: ai.PyTorch}, failingReader{})
	wantCode(t, "read error", err, greyerr.InvalidArgument, "connection reset")
}

func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, modelstore.Options{})
	ctx := t.Context()
	m := push(t, s, "acme", "mlp", "v1", ai.PyTorch, torchScript(t, "1"))
	if _, err := s.SetAlias(ctx, "acme", "mlp", "stable", "v1"); err != nil {
		t.Fatal(err)
	}
	ref := ai.ModelRef{Name: "mlp", Version: "v1"}
	if _, err := s.Resolve(ctx, "globex", ref); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("Resolve by another tenant: %v", err)
	}
	if _, err := s.Resolve(ctx, "globex", ai.ModelRef{Name: "mlp", Alias: "stable"}); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("Resolve alias by another tenant: %v", err)
	}
	if _, err := s.Fetch(ctx, "globex", m.Digest); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("Fetch by another tenant: %v", err)
	}
	if _, err := s.Describe(ctx, "globex", "mlp"); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("Describe by another tenant: %v", err)
	}
	if err := s.Delete(ctx, "globex", "mlp", "v1"); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("Delete by another tenant: %v", err)
	}
	if _, err := s.SetAlias(ctx, "globex", "mlp", "stable", "v1"); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("SetAlias by another tenant: %v", err)
	}
	if err := s.DeleteAlias(ctx, "globex", "mlp", "stable"); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("DeleteAlias by another tenant: %v", err)
	}
	if ms, _, err := s.List(ctx, "globex", modelstore.ListOptions{}); err != nil || len(ms) != 0 {
		t.Errorf("List by another tenant: %v %v", ms, err)
	}
	// The same bytes pushed by globex are globex's own copy.
	m2 := push(t, s, "globex", "mlp", "v1", ai.PyTorch, torchScript(t, "1"))
	if m2.Digest != m.Digest || m2.TenantID != "globex" {
		t.Errorf("globex push = %+v", m2)
	}
	if err := s.Delete(ctx, "globex", "mlp", "v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Resolve(ctx, "acme", ref); err != nil {
		t.Errorf("acme's model after globex deleted its own: %v", err)
	}
}

func TestAliasesAndDelete(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	stored := map[string]int64{}
	s, _ := newStore(t, modelstore.Options{Storage: func(_ context.Context, tenant string, delta int64, _ bool) error {
		mu.Lock()
		defer mu.Unlock()
		stored[tenant] += delta
		return nil
	}})
	ctx := t.Context()
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	_ = clock
	d1 := torchScript(t, "1")
	push(t, s, "acme", "mlp", "v1", ai.PyTorch, d1)
	push(t, s, "acme", "mlp", "v2", ai.PyTorch, torchScript(t, "2"))
	push(t, s, "acme", "mlp", "v3", ai.PyTorch, d1) // same bytes as v1: one artifact
	if n, count, _ := s.Usage(ctx, "acme"); count != 2 || stored["acme"] != n {
		t.Fatalf("usage = %d bytes in %d artifacts, counted %d", n, count, stored["acme"])
	}
	if _, err := s.SetAlias(ctx, "acme", "mlp", "latest", "v1"); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Errorf("set latest: %v", err)
	}
	if err := s.DeleteAlias(ctx, "acme", "mlp", "latest"); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Errorf("delete latest: %v", err)
	}
	if _, err := s.SetAlias(ctx, "acme", "mlp", "stable", "v9"); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("alias to a missing version: %v", err)
	}
	m, err := s.SetAlias(ctx, "acme", "mlp", "stable", "v1")
	if err != nil || m.Version != "v1" || strings.Join(m.Aliases, ",") != "stable" {
		t.Fatalf("SetAlias = %+v, %v", m, err)
	}
	// Deleting a version a user alias names is refused.
	err = s.Delete(ctx, "acme", "mlp", "v1")
	wantCode(t, "delete aliased", err, greyerr.FailedPrecondition, "alias stable")
	// Move stable, then v1 can go; its bytes stay (v3 has them).
	if _, err := s.SetAlias(ctx, "acme", "mlp", "stable", "v2"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "acme", "mlp", "v1"); err != nil {
		t.Fatal(err)
	}
	if _, count, _ := s.Usage(ctx, "acme"); count != 2 {
		t.Errorf("artifacts after deleting v1 = %d, want 2 (v3 shares v1's bytes)", count)
	}
	// Deleting latest (v3) moves latest to v2, and removes the shared bytes.
	if err := s.Delete(ctx, "acme", "mlp", "v3"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, "acme", ai.ModelRef{Name: "mlp", Alias: "latest"}); err != nil || got.Version != "v2" {
		t.Fatalf("latest after deleting v3 = %+v, %v", got, err)
	}
	if n, count, _ := s.Usage(ctx, "acme"); count != 1 || stored["acme"] != n {
		t.Errorf("usage = %d bytes in %d artifacts, counted %d", n, count, stored["acme"])
	}
	if err := s.DeleteAlias(ctx, "acme", "mlp", "stable"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAlias(ctx, "acme", "mlp", "stable"); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("delete stable twice: %v", err)
	}
	if err := s.Delete(ctx, "acme", "mlp", "v2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Describe(ctx, "acme", "mlp"); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("Describe after the last version went: %v", err)
	}
	if _, err := s.Get(ctx, "acme", ai.ModelRef{Name: "mlp", Alias: "latest"}); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("latest after the last version went: %v", err)
	}
	if stored["acme"] != 0 {
		t.Errorf("counted bytes after deleting everything = %d", stored["acme"])
	}
	if err := s.Delete(ctx, "acme", "mlp", "v2"); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("delete twice: %v", err)
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, modelstore.Options{})
	ctx := t.Context()
	push(t, s, "acme", "alpha", "v1", ai.PyTorch, torchScript(t, "a1"))
	push(t, s, "acme", "alpha", "v2", ai.PyTorch, torchScript(t, "a2"))
	push(t, s, "acme", "beta", "1", ai.TensorFlow, savedModel(t, "b"))
	push(t, s, "acme", "alphabet", "x", ai.PyTorch, torchScript(t, "ab"))
	all, next, err := s.List(ctx, "acme", modelstore.ListOptions{})
	if err != nil || next != "" {
		t.Fatal(err, next)
	}
	var refs []string
	for _, m := range all {
		refs = append(refs, m.Name+":"+m.Version)
	}
	if got := strings.Join(refs, " "); got != "alpha:v1 alpha:v2 alphabet:x beta:1" {
		t.Errorf("List = %s", got)
	}
	// Pages of two.
	var paged []string
	cursor := ""
	for i := 0; ; i++ {
		page, next, err := s.List(ctx, "acme", modelstore.ListOptions{Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			paged = append(paged, m.Name+":"+m.Version)
		}
		if next == "" || i > 5 {
			break
		}
		cursor = next
	}
	if strings.Join(paged, " ") != strings.Join(refs, " ") {
		t.Errorf("paged = %v", paged)
	}
	byName, _, err := s.List(ctx, "acme", modelstore.ListOptions{Name: "alpha"})
	if err != nil || len(byName) != 3 {
		t.Errorf("List name alpha = %v, %v", byName, err)
	}
	if _, _, err := s.List(ctx, "acme", modelstore.ListOptions{Cursor: "garbage!"}); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Errorf("bad cursor: %v", err)
	}
	if _, _, err := s.List(ctx, "acme", modelstore.ListOptions{Name: "../x"}); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Errorf("bad name filter: %v", err)
	}
}

func TestDigestMismatch(t *testing.T) {
	t.Parallel()
	s, dir := newStore(t, modelstore.Options{})
	ctx := t.Context()
	data := torchScript(t, "1")
	m := push(t, s, "acme", "mlp", "v1", ai.PyTorch, data)
	p := filepath.Join(dir, "tenants", "acme", "models", strings.TrimPrefix(m.Digest, "sha256:"))
	tampered := append([]byte(nil), data...)
	tampered[len(tampered)/2] ^= 0xff
	if err := os.WriteFile(p, tampered, 0o600); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Fetch(ctx, "acme", m.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	_, err = io.ReadAll(rc)
	wantCode(t, "tampered artifact", err, greyerr.Internal, "do not match the digest")
}

func TestAllowed(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, modelstore.Options{TenantModels: map[string][]string{"acme": {"mlp"}}})
	ctx := t.Context()
	push(t, s, "acme", "mlp", "v1", ai.PyTorch, torchScript(t, "1"))
	push(t, s, "acme", "cnn", "v1", ai.PyTorch, torchScript(t, "2"))
	push(t, s, "globex", "cnn", "v1", ai.PyTorch, torchScript(t, "2"))
	if err := s.Allowed("acme", "mlp"); err != nil {
		t.Error(err)
	}
	wantCode(t, "Allowed acme cnn", s.Allowed("acme", "cnn"), greyerr.PermissionDenied, "ai.tenant_models")
	_, err := s.Resolve(ctx, "acme", ai.ModelRef{Name: "cnn", Alias: "latest"})
	wantCode(t, "Resolve acme cnn", err, greyerr.PermissionDenied, "ai.tenant_models")
	if _, err := s.Resolve(ctx, "globex", ai.ModelRef{Name: "cnn", Alias: "latest"}); err != nil {
		t.Errorf("unlisted tenant: %v", err)
	}
	// Get (greyctl model get) still describes it.
	if _, err := s.Get(ctx, "acme", ai.ModelRef{Name: "cnn", Alias: "latest"}); err != nil {
		t.Errorf("Get of a model the tenant may not run: %v", err)
	}
	if _, err := modelstore.New(nil, modelstore.Options{TenantModels: map[string][]string{"acme": {"Bad Name"}}}); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Errorf("bad tenant_models: %v", err)
	}
}

func TestTarDirDeterministicAndUnpack(t *testing.T) {
	t.Parallel()
	mk := func() string {
		d := t.TempDir()
		_ = os.MkdirAll(filepath.Join(d, "variables"), 0o755)
		_ = os.MkdirAll(filepath.Join(d, "assets"), 0o755)
		_ = os.WriteFile(filepath.Join(d, "saved_model.pb"), []byte("graph"), 0o600)
		_ = os.WriteFile(filepath.Join(d, "variables", "variables.index"), []byte("idx"), 0o644)
		return d
	}
	d1, d2 := mk(), mk()
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	_ = os.Chtimes(filepath.Join(d2, "saved_model.pb"), old, old)
	var b1, b2 bytes.Buffer
	if err := modelstore.TarDir(d1, &b1); err != nil {
		t.Fatal(err)
	}
	if err := modelstore.TarDir(d2, &b2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1.Bytes(), b2.Bytes()) {
		t.Fatal("the same directory gave different tars")
	}
	if err := modelstore.Check(ai.TensorFlow, bytes.NewReader(b1.Bytes()), int64(b1.Len())); err != nil {
		t.Fatalf("Check(TarDir) = %v", err)
	}
	out := filepath.Join(t.TempDir(), "m")
	if err := modelstore.Unpack(bytes.NewReader(b1.Bytes()), out, int64(b1.Len())); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(out, "variables", "variables.index")); err != nil || string(b) != "idx" {
		t.Fatalf("unpacked: %q %v", b, err)
	}
	// Unpack refuses what Check refuses.
	evil := tarOf(t, entry{name: "saved_model.pb", typ: tar.TypeReg, body: "g"}, entry{name: "variables/../../x", typ: tar.TypeReg, body: "x"})
	if err := modelstore.Unpack(bytes.NewReader(evil), filepath.Join(t.TempDir(), "e"), int64(len(evil))); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Errorf("Unpack of an escaping path: %v", err)
	}
	// A tar claiming more file bytes than allowed is refused.
	if err := modelstore.Unpack(bytes.NewReader(b1.Bytes()), filepath.Join(t.TempDir(), "small"), 4); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Errorf("Unpack past maxBytes: %v", err)
	}
	// A symbolic link in the directory is refused.
	_ = os.Symlink("/etc/passwd", filepath.Join(d1, "link"))
	if err := modelstore.TarDir(d1, io.Discard); err == nil {
		t.Error("TarDir followed or kept a symlink")
	}
}

func FuzzCheck(f *testing.F) {
	f.Add([]byte(torchScript(f, "1")), true)
	f.Add([]byte(savedModel(f, "1")), false)
	f.Add([]byte("PK\x03\x04garbage"), true)
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, b []byte, torch bool) {
		fw := ai.TensorFlow
		if torch {
			fw = ai.PyTorch
		}
		err := modelstore.Check(fw, bytes.NewReader(b), int64(len(b)))
		if err != nil && !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Fatalf("Check: %v is not InvalidArgument", err)
		}
		if err == nil && !torch {
			// What Check accepts unpacks without leaving the directory.
			dir := t.TempDir()
			if err := modelstore.Unpack(bytes.NewReader(b), filepath.Join(dir, "m"), int64(len(b))); err != nil && !greyerr.Is(err, greyerr.InvalidArgument) {
				t.Fatalf("Unpack of a checked tar: %v", err)
			}
			_ = filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error {
				if !strings.HasPrefix(p, dir) {
					t.Fatalf("unpacked %s outside %s", p, dir)
				}
				return nil
			})
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"name":"mlp","version":"v1","framework":"pytorch","digest":"sha256:` + strings.Repeat("a", 64) + `","size":3}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := modelstore.ParseManifest(b)
		if err != nil {
			if !greyerr.Is(err, greyerr.Internal) {
				t.Fatalf("ParseManifest: %v", err)
			}
			return
		}
		if ai.ValidName("name", m.Name) != nil || !m.Framework.Valid() || m.Size <= 0 {
			t.Fatalf("accepted %+v", m)
		}
	})
}

func TestConcurrentPushes(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, modelstore.Options{})
	ctx := t.Context()
	const n = 8
	var wg sync.WaitGroup
	created := make(chan bool, 2*n)
	errs := make(chan error, 2*n)
	// The same bytes: one push creates, the others answer the version.
	same := torchScript(t, "same")
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, c, err := s.Push(ctx, "acme", modelstore.PushSpec{Name: "m", Version: "v1", Framework: ai.PyTorch}, bytes.NewReader(same))
			created <- c
			errs <- err
		}()
	}
	// Different bytes for v2: one wins, the others are AlreadyExists.
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, c, err := s.Push(ctx, "acme", modelstore.PushSpec{Name: "m", Version: "v2", Framework: ai.PyTorch}, bytes.NewReader(torchScript(t, "v2-"+string(rune('a'+i)))))
			created <- c
			if err != nil && !greyerr.Is(err, greyerr.AlreadyExists) {
				errs <- err
			} else {
				errs <- nil
			}
		}()
	}
	wg.Wait()
	close(created)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	wins := 0
	for c := range created {
		if c {
			wins++
		}
	}
	if wins != 2 {
		t.Fatalf("%d pushes created a version, want 2 (one per version)", wins)
	}
	// The losers' bytes were dropped: one artifact per version.
	if _, count, err := s.Usage(ctx, "acme"); err != nil || count != 2 {
		t.Fatalf("artifacts = %d (%v), want 2", count, err)
	}
}

// A test whose runtime serves other artifacts replaces the check.
func TestCustomCheck(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, modelstore.Options{Check: func(f ai.Framework, r io.ReaderAt, size int64) error {
		b := make([]byte, size)
		if _, err := r.ReadAt(b, 0); err != nil && err != io.EOF {
			return err
		}
		if !bytes.HasPrefix(b, []byte("{")) {
			return greyerr.Invalid("body", "not a mem model")
		}
		return nil
	}})
	push(t, s, "acme", "mem", "1", ai.PyTorch, []byte(`{"layers":[]}`))
	if _, _, err := s.Push(t.Context(), "acme", modelstore.PushSpec{Name: "mem", Version: "2", Framework: ai.PyTorch}, bytes.NewReader(torchScript(t, ""))); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Fatalf("custom check not applied: %v", err)
	}
}

package api_test

import (
	"archive/zip"
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/modelstore"
	"github.com/grey-distributed/grey/api"
	"github.com/grey-distributed/grey/artifact"
	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/blobstore/memblob"
	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/greyerr"
)

func torchZip(t *testing.T, salt string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range []string{"m/data.pkl", "m/constants.pkl", "m/code/__torch__/m.py"} {
		w, _ := zw.Create(n)
		_, _ = w.Write([]byte(n + salt))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestModelRoutes holds the model routes to the spec and to the bad-input
// cases: not a model, wrong framework, wrong Content-Type, too large,
// another tenant's model (404), aliases and deletes.
func TestModelRoutes(t *testing.T) {
	t.Parallel()
	b, err := memblob.Open(blobstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := modelstore.New(b, modelstore.Options{MaxBytes: 64 << 10, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, engine.Config{}, api.Options{ModelRegistry: reg})
	pt := torchZip(t, "1")
	push := "/api/v1/models/mlp/versions/v1?framework=pytorch"
	var m ai.Model
	r := e.ok(t, call{method: "POST", path: push, tenant: "acme", body: pt, contentType: "application/octet-stream"}, http.StatusCreated, &m)
	if m.Digest != artifact.Digest(pt) || m.Framework != ai.PyTorch || r.header.Get("Location") != "/api/v1/models/mlp/versions/v1" {
		t.Fatalf("push = %+v (Location %q)", m, r.header.Get("Location"))
	}
	e.ok(t, call{method: "POST", path: push, tenant: "acme", body: pt, contentType: "application/octet-stream"}, http.StatusOK, nil)
	e.fail(t, call{method: "POST", path: push, tenant: "acme", body: torchZip(t, "2"), contentType: "application/octet-stream"}, http.StatusConflict, greyerr.AlreadyExists, "")
	e.fail(t, call{method: "POST", path: "/api/v1/models/mlp/versions/v2?framework=pytorch", tenant: "acme", body: "plain text", contentType: "application/octet-stream"}, http.StatusBadRequest, greyerr.InvalidArgument, "body")
	e.fail(t, call{method: "POST", path: "/api/v1/models/mlp/versions/v2?framework=tensorflow", tenant: "acme", body: pt, contentType: "application/x-tar"}, http.StatusBadRequest, greyerr.InvalidArgument, "body")
	e.fail(t, call{method: "POST", path: "/api/v1/models/mlp/versions/v2?framework=pytorch", tenant: "acme", body: pt, contentType: "text/plain", bad: true}, http.StatusBadRequest, greyerr.InvalidArgument, "Content-Type")
	e.fail(t, call{method: "POST", path: "/api/v1/models/mlp/versions/v2", tenant: "acme", body: pt, contentType: "application/octet-stream", bad: true}, http.StatusBadRequest, greyerr.InvalidArgument, "framework")
	e.fail(t, call{method: "POST", path: "/api/v1/models/mlp/versions/v2?framework=onnx", tenant: "acme", body: pt, contentType: "application/octet-stream", bad: true}, http.StatusBadRequest, greyerr.InvalidArgument, "framework")
	e.fail(t, call{method: "POST", path: "/api/v1/models/mlp/versions/v2?framework=pytorch", tenant: "acme", body: bytes.Repeat([]byte("x"), 64<<10+1), contentType: "application/octet-stream"}, http.StatusRequestEntityTooLarge, greyerr.TooLarge, "body")
	e.fail(t, call{method: "POST", path: "/api/v1/models/Bad!/versions/v2?framework=pytorch", tenant: "acme", body: pt, contentType: "application/octet-stream", bad: true}, http.StatusBadRequest, greyerr.InvalidArgument, "name")

	// Reads, by version, alias and digest.
	e.ok(t, call{method: "GET", path: "/api/v1/models/mlp/versions/v1", tenant: "acme"}, http.StatusOK, &m)
	e.ok(t, call{method: "GET", path: "/api/v1/models/mlp/aliases/latest", tenant: "acme"}, http.StatusOK, &m)
	var info modelstore.Info
	e.ok(t, call{method: "GET", path: "/api/v1/models/mlp", tenant: "acme"}, http.StatusOK, &info)
	if len(info.Versions) != 1 || info.Aliases["latest"] != "v1" {
		t.Fatalf("info = %+v", info)
	}
	for _, ref := range []string{m.Digest, "mlp:v1", "mlp@latest", "mlp"} {
		r := e.do(t, call{method: "GET", path: "/api/v1/models/" + ref + "/content", tenant: "acme"})
		if r.status != http.StatusOK || !bytes.Equal(r.body, pt) || r.header.Get("ETag") != `"`+m.Digest+`"` {
			t.Fatalf("content %s: %d, %d bytes", ref, r.status, len(r.body))
		}
	}
	var list struct {
		Models     []ai.Model `json:"models"`
		NextCursor string     `json:"next_cursor"`
	}
	e.ok(t, call{method: "GET", path: "/api/v1/models?name=ml&limit=5", tenant: "acme"}, http.StatusOK, &list)
	if len(list.Models) != 1 || list.NextCursor != "" {
		t.Fatalf("list = %+v", list)
	}

	// Another tenant: 404 everywhere, an empty list.
	for _, p := range []string{"/api/v1/models/mlp", "/api/v1/models/mlp/versions/v1", "/api/v1/models/mlp/aliases/latest", "/api/v1/models/" + m.Digest + "/content", "/api/v1/models/mlp/content"} {
		e.fail(t, call{method: "GET", path: p, tenant: "globex"}, http.StatusNotFound, greyerr.NotFound, "")
	}
	e.fail(t, call{method: "DELETE", path: "/api/v1/models/mlp/versions/v1", tenant: "globex"}, http.StatusNotFound, greyerr.NotFound, "")
	e.fail(t, call{method: "PUT", path: "/api/v1/models/mlp/aliases/stable", tenant: "globex", body: map[string]string{"version": "v1"}}, http.StatusNotFound, greyerr.NotFound, "")
	e.ok(t, call{method: "GET", path: "/api/v1/models", tenant: "globex"}, http.StatusOK, &list)
	if len(list.Models) != 0 {
		t.Fatalf("globex sees %+v", list.Models)
	}

	// Aliases and deletes.
	e.ok(t, call{method: "PUT", path: "/api/v1/models/mlp/aliases/stable", tenant: "acme", body: map[string]string{"version": "v1"}}, http.StatusOK, &m)
	if strings.Join(m.Aliases, ",") != "latest,stable" {
		t.Fatalf("aliases = %v", m.Aliases)
	}
	e.fail(t, call{method: "PUT", path: "/api/v1/models/mlp/aliases/stable", tenant: "acme", body: map[string]any{"version": "v1", "x": 1}, bad: true}, http.StatusBadRequest, greyerr.InvalidArgument, "x")
	e.fail(t, call{method: "PUT", path: "/api/v1/models/mlp/aliases/latest", tenant: "acme", body: map[string]string{"version": "v1"}}, http.StatusBadRequest, greyerr.InvalidArgument, "alias")
	e.fail(t, call{method: "DELETE", path: "/api/v1/models/mlp/versions/v1", tenant: "acme"}, http.StatusConflict, greyerr.FailedPrecondition, "")
	if r := e.do(t, call{method: "DELETE", path: "/api/v1/models/mlp/aliases/stable", tenant: "acme"}); r.status != http.StatusNoContent {
		t.Fatalf("delete alias: %d %s", r.status, r.body)
	}
	if r := e.do(t, call{method: "DELETE", path: "/api/v1/models/mlp/versions/v1", tenant: "acme"}); r.status != http.StatusNoContent {
		t.Fatalf("delete version: %d %s", r.status, r.body)
	}
	e.fail(t, call{method: "GET", path: "/api/v1/models/mlp", tenant: "acme"}, http.StatusNotFound, greyerr.NotFound, "")
}

// TestModelRoutesWithoutRegistry: a server without a registry answers 501.
func TestModelRoutesWithoutRegistry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, engine.Config{}, api.Options{})
	r := e.do(t, call{method: "GET", path: "/api/v1/models", tenant: "acme"})
	if r.status != http.StatusNotImplemented {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
}

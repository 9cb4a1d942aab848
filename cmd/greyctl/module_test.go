package main

import (
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grey-distributed/grey/api"
	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/blobstore/fileblob"
	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/modules"
)

func TestModuleCommands(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{})
	reg := blobstore.NewRegistry()
	if err := fileblob.Register(reg); err != nil {
		t.Fatal(err)
	}
	store, err := modules.Open(t.Context(), reg, "file://"+filepath.ToSlash(t.TempDir()), modules.Options{}, blobstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	srv := httptest.NewServer(api.New(n.Engine, api.Options{Modules: store, Logger: greytest.Logger(t)}))
	t.Cleanup(srv.Close)
	env := map[string]string{"GREY_SERVER": srv.URL, "GREY_TENANT": "acme"}

	r := greyctl(t, env, "module", "push", writeFile(t, "m.wasm", "\x00asm fake module"))
	digest := strings.TrimSpace(r.stdout)
	if r.code != 0 || digest != modules.Digest([]byte("\x00asm fake module")) {
		t.Fatalf("push: %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = greyctl(t, env, "module", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "DIGEST") || !strings.Contains(r.stdout, digest) {
		t.Fatalf("list: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = greyctl(t, env, "module", "list", "-o", "json")
	var m modules.Module
	if err := json.Unmarshal([]byte(r.stdout), &m); r.code != 0 || err != nil || m.Digest != digest || m.Size != 16 {
		t.Fatalf("list -o json: %d %q %v", r.code, r.stdout, err)
	}
	other := map[string]string{"GREY_SERVER": srv.URL, "GREY_TENANT": "globex"}
	if r := greyctl(t, other, "module", "list", "-o", "json"); r.code != 0 || r.stdout != "" {
		t.Fatalf("another tenant's list: %d %q", r.code, r.stdout)
	}
	if r := greyctl(t, other, "module", "get", digest); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("another tenant's get: %d %q", r.code, r.stderr)
	}
}

package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/grey-distributed/grey/api"
	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/blobstore/memblob"
	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/modules"
)

// TestDeleteModule: DELETE /api/v1/modules/{digest} removes the tenant's
// module (204), answers 404 for another tenant's and for a second delete,
// and 400 for a malformed digest; an upload beyond the storage quota is
// 413.
func TestDeleteModule(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{})
	b, err := memblob.Open(blobstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store, err := modules.New(b, modules.Options{Quota: func(_ context.Context, _ string) (int64, int64, error) {
		return 64, 0, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(n.Engine, api.Options{Modules: store, Logger: greytest.Logger(t)}))
	t.Cleanup(srv.Close)
	do := func(method, path, tenant string, body []byte) (int, map[string]any) {
		req, _ := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
		req.Header.Set("X-Grey-Tenant", tenant)
		if body != nil {
			req.Header.Set("Content-Type", "application/wasm")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	wasm := []byte("\x00asm module bytes, forty of them.......")
	code, m := do("POST", "/api/v1/modules", "acme", wasm)
	if code != http.StatusCreated {
		t.Fatalf("upload: %d %v", code, m)
	}
	digest := m["digest"].(string)
	// 40 stored + 40 more > 64: the quota refuses.
	if code, body := do("POST", "/api/v1/modules", "acme", append([]byte("\x00asm another"), wasm[12:]...)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("upload over the storage quota: %d %v", code, body)
	}
	if code, _ := do("DELETE", "/api/v1/modules/"+digest, "other", nil); code != http.StatusNotFound {
		t.Errorf("another tenant's delete: %d", code)
	}
	if code, _ := do("DELETE", "/api/v1/modules/sha256:xyz", "acme", nil); code != http.StatusBadRequest {
		t.Errorf("bad digest: %d", code)
	}
	if code, body := do("DELETE", "/api/v1/modules/"+digest, "acme", nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d %v", code, body)
	}
	if code, _ := do("GET", "/api/v1/modules/"+digest, "acme", nil); code != http.StatusNotFound {
		t.Errorf("get after delete: %d", code)
	}
	if code, _ := do("DELETE", "/api/v1/modules/"+digest, "acme", nil); code != http.StatusNotFound {
		t.Errorf("second delete: %d", code)
	}
}

package client_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/grey-distributed/grey/client"
)

// PushModuleProgress reports the module's bytes as they are sent, ending
// at its size, and still returns the stored module.
func TestPushModuleProgress(t *testing.T) {
	var got int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = len(b)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"digest": "sha256:00", "size": len(b)})
	}))
	defer srv.Close()
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	wasm := make([]byte, 300_000)
	var last, total int64
	calls := 0
	m, err := c.PushModuleProgress(t.Context(), wasm, func(sent, tot int64) {
		if sent < last {
			t.Errorf("progress went back from %d to %d", last, sent)
		}
		last, total = sent, tot
		calls++
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != len(wasm) || m.Digest != "sha256:00" {
		t.Fatalf("server got %d bytes, module %+v", got, m)
	}
	if calls == 0 || last != int64(len(wasm)) || total != int64(len(wasm)) {
		t.Fatalf("progress: %d calls, last %d of %d, want %d", calls, last, total, len(wasm))
	}
}

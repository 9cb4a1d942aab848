package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grey-distributed/grey/modules"
)

// moduleFake is fakeGrey with POST /api/v1/modules: it records each
// tenant's uploads and answers like the server (the bytes are not checked).
type moduleFake struct {
	*fakeGrey
	url string

	mu     sync.Mutex
	pushes map[string][][]byte // tenant → uploads
}

func newModuleFake(t *testing.T) *moduleFake {
	t.Helper()
	f := &moduleFake{fakeGrey: newFakeGrey(t), pushes: map[string][][]byte{}}
	target, err := url.Parse(f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.FlushInterval = -1 // the watch is a stream
	mux := http.NewServeMux()
	mux.Handle("/", proxy)
	mux.HandleFunc("POST /api/v1/modules", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		tn := tenant(r)
		f.mu.Lock()
		f.pushes[tn] = append(f.pushes[tn], b)
		f.mu.Unlock()
		reply(w, http.StatusCreated, map[string]any{"digest": modules.Digest(b), "size": len(b), "tenant_id": tn, "created_at": time.Now().UTC()})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func TestBenchModule(t *testing.T) {
	t.Parallel()
	f := newModuleFake(t)
	env := map[string]string{"GREY_SERVER": f.url}
	wasm := []byte("\x00asm\x01\x00\x00\x00 not really a module")
	digest := modules.Digest(wasm)
	path := filepath.Join(t.TempDir(), "m.wasm")
	if err := os.WriteFile(path, wasm, 0o600); err != nil {
		t.Fatal(err)
	}

	r := greyctl(t, env, "bench", "--tasks", "30", "--tenants", "3", "--batch", "7", "--module", path, "--payload", `{"input":"hi"}`, "-q")
	if r.code != 0 {
		t.Fatalf("bench --module: %+v", r)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("bench printed %q: %v", r.stdout, err)
	}
	if res["module"] != digest || res["tasks"] != 30.0 || res["failed"] != 0.0 {
		t.Errorf("result = %s, want module %s, 30 tasks, none failed", r.stdout, digest)
	}
	if ms, ok := res["module_push_ms"].(float64); !ok || ms <= 0 {
		t.Errorf("result = %s, want a positive module_push_ms", r.stdout)
	}
	// The module was pushed once for each tenant, before any task.
	f.mu.Lock()
	pushes := f.pushes
	f.mu.Unlock()
	if len(pushes) != 3 {
		t.Errorf("pushed for tenants %v, want bench-1..bench-3", pushes)
	}
	for _, tn := range []string{"bench-1", "bench-2", "bench-3"} {
		if len(pushes[tn]) != 1 || string(pushes[tn][0]) != string(wasm) {
			t.Errorf("tenant %s: %d pushes, want 1 of the file", tn, len(pushes[tn]))
		}
	}
	// Every task is a wasm task naming the module, with the rest of the payload.
	f.fakeGrey.mu.Lock()
	specs := f.fakeGrey.specs
	f.fakeGrey.mu.Unlock()
	if len(specs) != 30 {
		t.Fatalf("%d tasks submitted, want 30", len(specs))
	}
	for _, s := range specs {
		var p map[string]any
		if s.Kind != "wasm" || json.Unmarshal(s.Payload, &p) != nil || !reflect.DeepEqual(p, map[string]any{"module": digest, "input": "hi"}) {
			t.Fatalf("task spec kind %q payload %s, want wasm {module, input}", s.Kind, s.Payload)
		}
	}

	// --kind wasm and a payload naming the same module are fine.
	r = greyctl(t, env, "bench", "--tasks", "2", "--kind", "wasm", "--module", path, "--payload", `{"module":"`+digest+`"}`, "-q")
	if r.code != 0 {
		t.Errorf("bench --kind wasm --module with the same module in --payload: %+v", r)
	}

	other := modules.Digest([]byte("other"))
	for _, args := range [][]string{
		{"--module", path, "--kind", "noop"},
		{"--module", filepath.Join(t.TempDir(), "missing.wasm")},
		{"--module", path, "--payload", `[1]`},
		{"--module", path, "--payload", `"text"`},
		{"--module", path, "--payload", `{"module":"` + other + `"}`},
		{"--module", path, "--payload", `{"module":7}`},
		{"--module", "-", "--payload", "@-"},
	} {
		r := greyctl(t, env, append([]string{"bench", "--tasks", "1", "-q"}, args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, "--") {
			t.Errorf("greyctl bench %q = %+v, want a usage error (exit code 2)", args, r)
		}
	}
}

func TestWasmPayload(t *testing.T) {
	t.Parallel()
	d := modules.Digest([]byte("m"))
	tests := []struct {
		base, want string
		wantErr    bool
	}{
		{base: "", want: `{"module":"` + d + `"}`},
		{base: "  ", want: `{"module":"` + d + `"}`},
		{base: `{"input":{"a":1},"args":["x"]}`, want: `{"args":["x"],"input":{"a":1},"module":"` + d + `"}`},
		{base: `{"module":"` + d + `","input":"x"}`, want: `{"input":"x","module":"` + d + `"}`},
		{base: `{"module":"` + strings.TrimPrefix(d, "sha256:") + `"}`, want: `{"module":"` + d + `"}`}, // bare hex names the same module
		{base: `{"module":"sha256:00"}`, wantErr: true},
		{base: `{"module":null}`, wantErr: true},
		{base: `null`, wantErr: true},
		{base: `[]`, wantErr: true},
		{base: `3`, wantErr: true},
	}
	for _, tc := range tests {
		got, err := wasmPayload(json.RawMessage(tc.base), d)
		if tc.wantErr {
			if err == nil || exitCodeOf(err) != exitUsage {
				t.Errorf("wasmPayload(%s) = %s, %v; want a usage error", tc.base, got, err)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("wasmPayload(%s) = %s, %v; want %s", tc.base, got, err, tc.want)
		}
	}
}

func TestScenarioTenants(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  benchConfig
		want []string
	}{
		{benchConfig{Scenario: "throughput", Tenants: 3}, []string{"bench-1", "bench-2", "bench-3"}},
		{benchConfig{Scenario: "latency", Tenants: 3}, []string{"bench-1"}},
		{benchConfig{Scenario: "noisy-neighbor", Tenants: 3}, []string{noisyTenant, quietTenant}},
	} {
		if got := scenarioTenants(tc.cfg); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("scenarioTenants(%s) = %v, want %v", tc.cfg.Scenario, got, tc.want)
		}
	}
}

package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/worker"
)

func loadExecConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	c, err := config.LoadBytes([]byte(yaml), "grey.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Servers and worker-only nodes build their kinds with executors: every
// kind is there, the built-ins replayable.
func TestExecutorsFromConfig(t *testing.T) {
	t.Parallel()
	c := loadExecConfig(t, `
executors:
  http:
    allow_hosts: [api.example.com, "*.hooks.example.com:8443"]
    tenant_allow_hosts: {acme: [10.0.0.5]}
    max_response_bytes: 100
  wasm:
    allow: [clock]
    tenant_allow: {acme: [random]}
    tenant_max_memory_pages: {acme: 512}
`)
	c.Executors.Wasm.CacheDir = t.TempDir()
	r, err := executors(t.Context(), c, nil, inferenceDeps{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	if got, want := r.Kinds(), []string{"echo", "fail", "http", "noop", "sleep", "wasm"}; !slices.Equal(got, want) {
		t.Errorf("kinds %v, want %v", got, want)
	}
	h := r.Handlers()
	if len(h) != 6 || h["wasm"] != worker.Handler(r.Wasm()) {
		t.Errorf("handlers %v", h)
	}
	if d, ok := h["echo"].(worker.Deterministic); !ok || !d.Deterministic(&worker.Job{}) {
		t.Error("echo is not replayable")
	}
}

func TestExecutorsRefuseBadOptions(t *testing.T) {
	t.Parallel()
	// Invalid settings are refused when the configuration is loaded.
	_, err := config.LoadBytes([]byte(`
executors:
  http:
    allow_hosts: ["https://api.example.com/x", "a.*.com"]
    tenant_allow_hosts: {"Bad Tenant": [x.com]}
    max_response_bytes: 0
  wasm:
    max_memory_pages: 70000
    allow: [network]
    module_url: relative/dir
`), "grey.yaml", nil)
	for _, want := range []string{"executors.http.allow_hosts", "not a URL", "leading \"*.\"", "executors.http.tenant_allow_hosts", "executors.http.max_response_bytes", "executors.wasm.max_memory_pages", "executors.wasm.allow", "executors.wasm.module_url"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config error %v does not mention %s", err, want)
		}
	}
	// A cache directory that is a file fails at startup.
	c := loadExecConfig(t, "{}")
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c.Executors.Wasm.CacheDir = f
	if r, err := executors(t.Context(), c, nil, inferenceDeps{}, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "cache dir") {
		if r != nil {
			_ = r.Close(context.Background())
		}
		t.Errorf("cache_dir on a file: %v", err)
	}
}

// A follower's fallback: the leader's API, as the task's tenant, or
// nothing while it leads.
func TestLeaderSource(t *testing.T) {
	t.Parallel()
	mod := []byte("\x00asm\x01\x00\x00\x00")
	sum := sha256.Sum256(mod)
	d := "sha256:" + hex.EncodeToString(sum[:])
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/modules/"+d+"/content" || r.Header.Get(client.TenantHeader) != "acme" || r.Header.Get("Authorization") != "Bearer tok" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":{"code":"not_found","message":"no such module"}}`))
			return
		}
		_, _ = w.Write(mod)
	}))
	defer srv.Close()
	leader := ""
	ls := leaderSource(func() string { return leader }, "tok")
	if _, err := ls.Get(t.Context(), "acme", d); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("no leader: %v", err)
	}
	leader = srv.URL
	if b, err := ls.Get(t.Context(), "acme", d); err != nil || string(b) != string(mod) {
		t.Errorf("from the leader: %q %v", b, err)
	}
	if _, err := ls.Get(t.Context(), "other", d); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("another tenant: %v", err)
	}
}

// With ai.runtimes a node builds the inference kind from the ai block
// (cache under the data dir by default); without drivers or a model
// source it refuses to start, naming ai.runtimes. The worker pool grows by
// ai.concurrency, and inference tasks default to ai.inference_timeout.
func TestExecutorsInference(t *testing.T) {
	t.Parallel()
	c := loadExecConfig(t, `
ai:
  inference_timeout: 12s
  concurrency: 40
  batching: {max_batch_size: 16, max_queue_delay: 3ms, models: {mlp: {max_batch_size: 4}}}
  runtimes:
    - {name: cpu, url: "nop://local", frameworks: [pytorch]}
`)
	c.Node.DataDir = t.TempDir()
	c.Executors.Wasm.CacheDir = t.TempDir()
	if _, err := executors(t.Context(), c, nil, inferenceDeps{}, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "ai.runtimes") {
		t.Fatalf("no runtime drivers: %v", err)
	}
	reg := ai.NewRegistry()
	_ = reg.Register("nop", ai.OpenerFunc(func(context.Context, *url.URL, ai.OpenOptions) (ai.Driver, error) { return nopDriver{}, nil }))
	if _, err := executors(t.Context(), c, nil, inferenceDeps{runtimes: reg}, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "model source") {
		t.Fatalf("no model source: %v", err)
	}
	ic, err := inferenceConfig(c, inferenceDeps{runtimes: reg, models: nopSource{}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if ic.CacheDir != filepath.Join(c.Node.DataDir, "model-cache") || ic.Timeout != 12*time.Second || ic.Batching.MaxBatchSize != 16 ||
		ic.Batching.MaxQueueDelay != 3*time.Millisecond || ic.ModelBatching["mlp"].MaxBatchSize != 4 ||
		len(ic.Runtimes) != 1 || ic.Runtimes[0].URL != "nop://local" || !slices.Equal(ic.Runtimes[0].Frameworks, []ai.Framework{ai.PyTorch}) {
		t.Fatalf("inference config %+v", ic)
	}
	r, err := executors(t.Context(), c, nil, inferenceDeps{runtimes: reg, models: nopSource{}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	if r.Inference() == nil || !slices.Contains(r.Kinds(), ai.Kind) {
		t.Fatalf("kinds %v", r.Kinds())
	}
	if got := workerConcurrency(c); got != c.Worker.Concurrency+40 {
		t.Errorf("worker concurrency %d, want worker.concurrency + 40", got)
	}
	if got := kindTimeouts(c)[ai.Kind]; got != 12*time.Second {
		t.Errorf("inference default timeout %v", got)
	}
	plain := loadExecConfig(t, "{}")
	if workerConcurrency(plain) != plain.Worker.Concurrency {
		t.Error("the pool grew without runtimes")
	}
}

type nopDriver struct{}

func (nopDriver) Info(context.Context) (ai.RuntimeInfo, error)           { return ai.RuntimeInfo{}, nil }
func (nopDriver) Load(context.Context, ai.LoadSpec) (ai.LoadInfo, error) { return ai.LoadInfo{}, nil }
func (nopDriver) Unload(context.Context, string) error                   { return nil }
func (nopDriver) Close() error                                           { return nil }
func (nopDriver) Infer(context.Context, string, []ai.Tensor, []string) ([]ai.Tensor, error) {
	return nil, nil
}

type nopSource struct{}

func (nopSource) Resolve(context.Context, string, ai.ModelRef) (ai.Model, error) {
	return ai.Model{}, nil
}
func (nopSource) Fetch(context.Context, string, string) (io.ReadCloser, error) { return nil, nil }

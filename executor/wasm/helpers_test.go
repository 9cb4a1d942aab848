package wasmexec_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/grey-distributed/grey/api"
	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/blobstore/memblob"
	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/engine"
	wasmexec "github.com/grey-distributed/grey/executor/wasm"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/modules"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/worker"
)

// wasmDir holds the test modules, built once per test binary by TestMain.
var wasmDir string

// sharedCache is a compilation cache shared by the tests' executors, so a
// module is compiled once per test binary (compiling a Go module takes
// seconds under the race detector).
var sharedCache wazero.CompilationCache

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "grey-wasm-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if err := buildModules(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		wasmDir = dir
		if sharedCache, err = wazero.NewCompilationCacheWithDir(filepath.Join(dir, "cache")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer sharedCache.Close(context.Background())
		return m.Run()
	}()
	os.Exit(code)
}

// buildModules builds the example modules and the test module with
// GOOS=wasip1 GOARCH=wasm into dir: wordcount, sha256, misbehave.
func buildModules(dir string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("the go tool is needed to build the test modules: %w", err)
	}
	for _, pkgs := range [][]string{{"./examples/wasm/..."}, {"./executor/wasm/testdata/misbehave"}} {
		args := append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)
		cmd := exec.Command(goBin, args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("GOOS=wasip1 GOARCH=wasm go %v: %v\n%s", args, err, out)
		}
	}
	return nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the test directory")
		}
		dir = parent
	}
}

// readModule returns a built test module.
func readModule(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(wasmDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Hand-assembled modules.
var (
	// unreachableWasm: (module (func (export "_start") unreachable))
	unreachableWasm = []byte{
		0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
		0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: () -> ()
		0x03, 0x02, 0x01, 0x00, // func 0: type 0
		0x07, 0x0a, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00, // export "_start"
		0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b, // code: unreachable
	}
	// libraryWasm: (module (func (export "run"))): no _start.
	libraryWasm = []byte{
		0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
		0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
		0x03, 0x02, 0x01, 0x00,
		0x07, 0x07, 0x01, 0x03, 'r', 'u', 'n', 0x00, 0x00,
		0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b,
	}
	// emptyWasm: (module (func (export "_start"))): runs, prints nothing.
	emptyWasm = []byte{
		0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
		0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
		0x03, 0x02, 0x01, 0x00,
		0x07, 0x0a, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00,
		0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b,
	}
	// nopWasm: emptyWasm with a nop: another module that does the same.
	nopWasm = []byte{
		0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
		0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
		0x03, 0x02, 0x01, 0x00,
		0x07, 0x0a, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00,
		0x0a, 0x05, 0x01, 0x03, 0x00, 0x01, 0x0b,
	}
	// envImportWasm: imports env.f and exports it as _start.
	envImportWasm = []byte{
		0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
		0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
		0x02, 0x09, 0x01, 0x03, 'e', 'n', 'v', 0x01, 'f', 0x00, 0x00, // import env.f
		0x07, 0x0a, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00,
	}
)

// env is a single-node engine with the module API over HTTP and a worker
// pool running the wasm kind.
type env struct {
	node  *greytest.Node
	store *modules.Store
	ex    *wasmexec.Executor
	url   string
	hc    *http.Client
	v     *api.Validator
}

var validator = sync.OnceValues(api.NewValidator)

func newEnv(t *testing.T, cfg wasmexec.Config) *env {
	t.Helper()
	v, err := validator()
	if err != nil {
		t.Fatal(err)
	}
	n := greytest.NewNode(t, engine.Config{})
	b, err := memblob.Open(blobstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store, err := modules.New(b, modules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if cfg.Source == nil {
		cfg.Source = store
	}
	if cfg.CompilationCache == nil {
		cfg.CompilationCache = sharedCache
	}
	ex, err := wasmexec.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ex.Close(context.Background()) })
	store.SetValidator(ex.Validate)
	n.Engine.RegisterKinds(wasmexec.Kind)
	srv := httptest.NewServer(api.New(n.Engine, api.Options{Modules: store, Logger: greytest.Logger(t)}))
	t.Cleanup(srv.Close)
	n.StartWorkers(t, worker.Options{Concurrency: 4, LeaseWait: 200 * time.Millisecond}, map[string]worker.Handler{wasmexec.Kind: ex})
	return &env{node: n, store: store, ex: ex, url: srv.URL, hc: srv.Client(), v: v}
}

func (e *env) client(t testing.TB, tenant string) *client.Client {
	t.Helper()
	c, err := client.New(e.url, client.WithTenant(tenant))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// push uploads a module for tenant and returns its digest.
func (e *env) push(t testing.TB, tenant string, wasm []byte) string {
	t.Helper()
	m, err := e.client(t, tenant).PushModule(t.Context(), wasm)
	if err != nil {
		t.Fatalf("push module: %v", err)
	}
	if m.Digest != modules.Digest(wasm) || m.Size != int64(len(wasm)) || m.TenantID != tenant {
		t.Fatalf("push answered %+v", m)
	}
	return m.Digest
}

// raw sends a request checked against the OpenAPI spec (request and
// response) and returns the status and body.
func (e *env) raw(t testing.TB, method, path, tenant, contentType string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, e.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if tenant != "" {
		req.Header.Set(api.TenantHeader, tenant)
	}
	if err := e.v.ValidateRequest(req, body); err != nil {
		t.Fatalf("%s %s: request does not match the spec: %v", method, path, err)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.v.ValidateResponse(req, resp.StatusCode, resp.Header, rb); err != nil {
		t.Fatalf("%s %s: response %d does not match the spec: %v\n%s", method, path, resp.StatusCode, err, rb)
	}
	return resp.StatusCode, resp.Header, rb
}

// payload builds a wasm payload.
func payload(t testing.TB, p wasmexec.Payload) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// run submits a wasm task for tenant (no retries unless retries > 0) and
// waits for it to finish.
func (e *env) run(t testing.TB, tenant string, p wasmexec.Payload, timeout time.Duration, retries int) *task.Task {
	t.Helper()
	spec := task.Spec{Kind: wasmexec.Kind, Payload: payload(t, p), Retry: &task.RetryPolicy{MaxRetries: &retries, BaseDelay: task.Duration(time.Millisecond), MaxDelay: task.Duration(time.Millisecond)}}
	if timeout > 0 {
		spec.Timeout = task.Duration(timeout)
	}
	c := e.client(t, tenant)
	tk, err := c.Submit(t.Context(), spec)
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	done, err := c.Wait(ctx, tk.ID)
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	return done
}

// wantResult requires a completed task with the given JSON result.
func wantResult(t testing.TB, tk *task.Task, want string) {
	t.Helper()
	if tk.Status != task.Completed {
		t.Fatalf("task %s: status %s (error %+v), want completed", tk.ID, tk.Status, tk.Error)
	}
	var got, w any
	if err := json.Unmarshal(tk.Result, &got); err != nil {
		t.Fatalf("result %s: %v", tk.Result, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		t.Fatalf("result = %s, want %s", tk.Result, want)
	}
}

// wantFailure requires a failed task whose every attempt failed with code
// (and retryable as given), and returns the last message.
func wantFailure(t testing.TB, tk *task.Task, code string, retryable bool) string {
	t.Helper()
	if tk.Status != task.Failed || tk.Error == nil {
		t.Fatalf("task %s: status %s (result %s), want failed", tk.ID, tk.Status, tk.Result)
	}
	if tk.Error.Code != code || tk.Error.Retryable != retryable {
		t.Fatalf("task error = %+v, want code %s retryable %v", tk.Error, code, retryable)
	}
	if len(tk.Attempts) == 0 {
		t.Fatal("no attempts recorded")
	}
	for _, a := range tk.Attempts {
		if a.Error == nil || a.Error.Code != code || a.Error.Retryable != retryable {
			t.Fatalf("attempt %d error = %+v, want code %s retryable %v", a.N, a.Error, code, retryable)
		}
	}
	return tk.Error.Message
}

package wasmexec_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/grey-distributed/grey/client"
	wasmexec "github.com/grey-distributed/grey/executor/wasm"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/modules"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/worker"
)

func TestExamplesRunThroughTheEngine(t *testing.T) {
	t.Parallel()
	e := newEnv(t, wasmexec.Config{})
	wc := e.push(t, "acme", readModule(t, "wordcount"))
	sh := e.push(t, "acme", readModule(t, "sha256"))

	// A JSON string input reaches stdin as its text.
	tk := e.run(t, "acme", wasmexec.Payload{Module: wc, Input: json.RawMessage(`"the quick brown fox\njumps  over\tthe lazy dog"`)}, 0, 0)
	wantResult(t, tk, `{"words":9}`)
	// Other JSON reaches stdin as its compact encoding: {"a":["x","y z"]} is 2 words.
	tk = e.run(t, "acme", wasmexec.Payload{Module: wc, Input: json.RawMessage(`{"a": ["x", "y z"]}`)}, 0, 0)
	wantResult(t, tk, `{"words":2}`)
	// No input: an empty stdin.
	tk = e.run(t, "acme", wasmexec.Payload{Module: wc}, 0, 0)
	wantResult(t, tk, `{"words":0}`)

	text := "hello, wasm"
	sum := sha256.Sum256([]byte(text))
	want := `{"sha256":"` + hex.EncodeToString(sum[:]) + `"}`
	tk = e.run(t, "acme", wasmexec.Payload{Module: sh, Input: json.RawMessage(`"hello, wasm"`)}, 0, 0)
	wantResult(t, tk, want)
	// Raw bytes through input_base64.
	bin := []byte{0, 1, 2, 0xff, 0xfe}
	sum = sha256.Sum256(bin)
	tk = e.run(t, "acme", wasmexec.Payload{Module: sh, InputBase64: base64.StdEncoding.EncodeToString(bin)}, 0, 0)
	wantResult(t, tk, `{"sha256":"`+hex.EncodeToString(sum[:])+`"}`)

	// Determinism: the same module and input give the same output.
	again := e.run(t, "acme", wasmexec.Payload{Module: sh, InputBase64: base64.StdEncoding.EncodeToString(bin)}, 0, 0)
	if string(again.Result) != string(tk.Result) {
		t.Errorf("second run gave %s, first %s", again.Result, tk.Result)
	}
	// The compiled modules came from the cache (compiled at upload).
	if size, hits, _ := e.ex.CacheStats(); size != 2 || hits < 6 {
		t.Errorf("cache size %d hits %d, want 2 and >= 6", size, hits)
	}
}

func TestModuleAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, wasmexec.Config{})
	wasm := readModule(t, "wordcount")
	digest := modules.Digest(wasm)

	status, hdr, body := e.raw(t, "POST", "/api/v1/modules", "acme", "application/wasm", wasm)
	if status != http.StatusCreated {
		t.Fatalf("upload: %d %s", status, body)
	}
	var m client.Module
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if m.Digest != digest || m.Size != int64(len(wasm)) || m.TenantID != "acme" || m.CreatedAt.IsZero() {
		t.Errorf("upload answered %+v", m)
	}
	if hdr.Get("Location") != "/api/v1/modules/"+digest {
		t.Errorf("Location = %q", hdr.Get("Location"))
	}
	// Again: 200, same module.
	if status, _, body = e.raw(t, "POST", "/api/v1/modules", "acme", "application/octet-stream", wasm); status != http.StatusOK {
		t.Fatalf("second upload: %d %s", status, body)
	}
	status, _, body = e.raw(t, "GET", "/api/v1/modules/"+digest, "acme", "", nil)
	if status != http.StatusOK || !strings.Contains(string(body), digest) {
		t.Fatalf("get: %d %s", status, body)
	}
	status, hdr, body = e.raw(t, "GET", "/api/v1/modules/"+digest+"/content", "acme", "", nil)
	if status != http.StatusOK || string(body) != string(wasm) || hdr.Get("Content-Type") != "application/wasm" {
		t.Fatalf("content: %d %q, %d bytes", status, hdr.Get("Content-Type"), len(body))
	}
	// The client checks the digest of what it downloads.
	got, err := e.client(t, "acme").ModuleContent(t.Context(), digest)
	if err != nil || string(got) != string(wasm) {
		t.Fatalf("ModuleContent: %v", err)
	}

	// Listed for acme (through the client), not for another tenant.
	if ms, err := e.client(t, "acme").ListModules(t.Context()); err != nil || len(ms) != 1 || ms[0].Digest != digest {
		t.Fatalf("ListModules(acme) = %+v, %v", ms, err)
	}
	if ms, err := e.client(t, "other").ListModules(t.Context()); err != nil || len(ms) != 0 {
		t.Fatalf("ListModules(other) = %+v, %v", ms, err)
	}

	// Tenant isolation: another tenant sees nothing.
	for _, p := range []string{"/api/v1/modules/" + digest, "/api/v1/modules/" + digest + "/content"} {
		if status, _, body = e.raw(t, "GET", p, "other", "", nil); status != http.StatusNotFound {
			t.Errorf("GET %s as another tenant: %d %s, want 404", p, status, body)
		}
	}
	// ... and cannot run it, although it is compiled and cached for acme.
	tk := e.run(t, "other", wasmexec.Payload{Module: digest}, 0, 0)
	wantFailure(t, tk, wasmexec.CodeModuleNotFound, false)

	// Bad digests are 400, unknown ones 404.
	if status, _, _ = e.raw(t, "GET", "/api/v1/modules/"+strings.Repeat("0", 64), "acme", "", nil); status != http.StatusNotFound {
		t.Errorf("unknown digest: %d, want 404", status)
	}

	// Invalid modules are refused with 400 and a message that says why.
	for _, tc := range []struct {
		name string
		body []byte
		msg  string
	}{
		{"not wasm", []byte("this is not a wasm module"), "does not compile"},
		{"library", libraryWasm, `exports no "_start"`},
		{"foreign import", envImportWasm, "imports env.f"},
	} {
		status, _, body := e.raw(t, "POST", "/api/v1/modules", "acme", "application/wasm", tc.body)
		var eb greyerr.Error
		_ = json.Unmarshal(body, &eb)
		if status != http.StatusBadRequest || eb.Code != greyerr.InvalidArgument || !strings.Contains(eb.Message, tc.msg) {
			t.Errorf("%s: %d %s, want 400 invalid_argument mentioning %q", tc.name, status, body, tc.msg)
		}
		if _, err := e.store.Stat(t.Context(), "acme", modules.Digest(tc.body)); len(tc.body) > 0 && !greyerr.Is(err, greyerr.NotFound) {
			t.Errorf("%s: refused module was stored (%v)", tc.name, err)
		}
	}
	// A JSON body by mistake, or none (requests the spec itself refuses).
	for ct, body := range map[string]string{"application/json": `{"module":1}`, "application/wasm": ""} {
		resp, err := e.hc.Post(e.url+"/api/v1/modules", ct, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		rb, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s upload %q: %d %s, want 400", ct, body, resp.StatusCode, rb)
		}
	}
}

func TestFailuresAreClassifiedAndTheWorkerKeepsRunning(t *testing.T) {
	t.Parallel()
	e := newEnv(t, wasmexec.Config{MaxOutputBytes: 64 << 10})
	mb := e.push(t, "acme", readModule(t, "misbehave"))
	trap := e.push(t, "acme", unreachableWasm)

	cases := []struct {
		name      string
		p         wasmexec.Payload
		timeout   time.Duration
		code      string
		retryable bool
		msg       string
	}{
		{"unreachable", wasmexec.Payload{Module: trap}, 0, wasmexec.CodeTrap, false, "unreachable"},
		{"go panic", wasmexec.Payload{Module: mb, Args: []string{"panic"}}, 0, wasmexec.CodeTrap, false, "panic: boom"},
		{"exit code", wasmexec.Payload{Module: mb, Args: []string{"exit"}}, 0, wasmexec.CodeExit, false, "exited with code 3; stderr: giving up"},
		{"out of memory", wasmexec.Payload{Module: mb, Args: []string{"oom"}}, 0, wasmexec.CodeOOM, false, "limit 256 pages (16 MiB)"},
		{"task memory limit", wasmexec.Payload{Module: mb, Args: []string{"alloc", "8"}, MaxMemoryPages: 64}, 0, wasmexec.CodeOOM, false, "limit 64 pages (4 MiB)"},
		{"infinite loop", wasmexec.Payload{Module: mb, Args: []string{"loop"}}, 200 * time.Millisecond, "timeout", true, "exceeded its timeout"},
		{"huge output", wasmexec.Payload{Module: mb, Args: []string{"flood"}}, 0, wasmexec.CodeOutputTooLarge, false, "output exceeds 65536 bytes"},
		{"capability not granted", wasmexec.Payload{Module: mb, Args: []string{"entropy"}, Allow: []string{"clock"}}, 0, wasmexec.CodeCapabilityDenied, false, "nor tenant_allow.acme grants it"},
		{"bad payload", wasmexec.Payload{Module: "sha256:nope"}, 0, wasmexec.CodeInvalidPayload, false, "module digest"},
		{"unknown module", wasmexec.Payload{Module: modules.Digest([]byte("x"))}, 0, wasmexec.CodeModuleNotFound, false, "has no module"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			tk := e.run(t, "acme", tc.p, tc.timeout, 0)
			msg := wantFailure(t, tk, tc.code, tc.retryable)
			t.Logf("%s: %s", tc.code, msg)
			if !strings.Contains(msg, tc.msg) {
				t.Errorf("message %q does not mention %q", msg, tc.msg)
			}
			if tc.timeout > 0 && time.Since(start) > 20*time.Second {
				t.Errorf("the loop ran %s", time.Since(start))
			}
			// The worker is still there: the next task completes.
			ok := e.run(t, "acme", wasmexec.Payload{Module: mb, Args: []string{"echo"}, Input: json.RawMessage(`{"still":"alive"}`)}, 0, 0)
			wantResult(t, ok, `{"still":"alive"}`)
		})
	}
	// A retryable failure is retried, and each attempt records its code.
	tk := e.run(t, "acme", wasmexec.Payload{Module: mb, Args: []string{"loop"}}, 100*time.Millisecond, 1)
	wantFailure(t, tk, "timeout", true)
	if len(tk.Attempts) != 2 {
		t.Errorf("%d attempts, want 2", len(tk.Attempts))
	}
	// Within the limit, allocating works; non-JSON stdout is a JSON string.
	wantResult(t, e.run(t, "acme", wasmexec.Payload{Module: mb, Args: []string{"alloc", "8"}}, 0, 0), `{"allocated_mib":8}`)
	wantResult(t, e.run(t, "acme", wasmexec.Payload{Module: mb}, 0, 0), `"plain text, not JSON\n"`)
}

func TestTenantMemoryLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, wasmexec.Config{MaxMemoryPages: 256, TenantMaxMemoryPages: map[string]uint32{"small": 80}})
	mb := readModule(t, "misbehave")
	for _, ten := range []string{"big", "small"} {
		d := e.push(t, ten, mb)
		tk := e.run(t, ten, wasmexec.Payload{Module: d, Args: []string{"alloc", "8"}}, 0, 0)
		if ten == "big" {
			wantResult(t, tk, `{"allocated_mib":8}`)
		} else {
			msg := wantFailure(t, tk, wasmexec.CodeOOM, false)
			if !strings.Contains(msg, "limit 80 pages (5 MiB)") {
				t.Errorf("message %q", msg)
			}
		}
	}
}

func TestSandboxIsDeterministicUnlessAllowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, wasmexec.Config{Allow: []string{wasmexec.CapClock, wasmexec.CapRandom}})
	mb := e.push(t, "acme", readModule(t, "misbehave"))
	type entropy struct {
		Now       int64  `json:"now"`
		ElapsedNS int64  `json:"elapsed_ns"`
		Random    string `json:"random"`
	}
	get := func(allow ...string) entropy {
		tk := e.run(t, "acme", wasmexec.Payload{Module: mb, Args: []string{"entropy"}, Allow: allow}, 0, 0)
		if tk.Status != task.Completed {
			t.Fatalf("status %s: %+v", tk.Status, tk.Error)
		}
		var v entropy
		if err := json.Unmarshal(tk.Result, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	a, b := get(), get()
	if a != b {
		t.Errorf("two sandboxed runs differ: %+v and %+v", a, b)
	}
	// The same as wazero's own defaults (the executor supplies its own
	// copy of the fake random source).
	var out bytes.Buffer
	rt := wazero.NewRuntime(t.Context())
	defer rt.Close(context.Background())
	wasi_snapshot_preview1.MustInstantiate(t.Context(), rt)
	if _, err := rt.InstantiateWithConfig(t.Context(), readModule(t, "misbehave"), wazero.NewModuleConfig().WithArgs("module", "entropy").WithStdout(&out)); err != nil {
		t.Fatal(err)
	}
	var plain entropy
	if err := json.Unmarshal(out.Bytes(), &plain); err != nil {
		t.Fatalf("plain wazero run printed %q: %v", out.Bytes(), err)
	}
	if plain != a {
		t.Errorf("sandboxed run %+v, plain wazero defaults %+v", a, plain)
	}
	// wazero's fake wall clock starts at 2022-01-01 and never reads the host's.
	if now := time.Unix(0, a.Now); now.Year() != 2022 {
		t.Errorf("sandboxed time.Now() = %s, want wazero's fake 2022 epoch", now)
	}
	c, d := get("clock", "random"), get("clock", "random")
	if c.Random == d.Random || c.Random == a.Random {
		t.Errorf("random capability gave repeated bytes: %s, %s (fake %s)", c.Random, d.Random, a.Random)
	}
	if now := time.Unix(0, c.Now); time.Since(now).Abs() > time.Hour {
		t.Errorf("clock capability: time.Now() = %s", now)
	}
	// No filesystem: nothing is preopened.
	tk := e.run(t, "acme", wasmexec.Payload{Module: mb, Args: []string{"files"}}, 0, 0)
	if tk.Status != task.Completed || strings.Contains(string(tk.Result), "<nil>") {
		t.Errorf("reading /etc/passwd: %s %s", tk.Status, tk.Result)
	}
}

func TestRemoteWorkerFetchesModulesOverTheAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, wasmexec.Config{})
	d := e.push(t, "acme", readModule(t, "wordcount"))
	// A second executor, as on a remote worker: no store, only the API.
	c, err := client.New(e.url)
	if err != nil {
		t.Fatal(err)
	}
	remote, err := wasmexec.New(context.Background(), wasmexec.Config{Source: wasmexec.SourceFunc(c.ModuleContentFor), CompilationCache: sharedCache})
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close(context.Background())
	job := &worker.Job{Assignment: worker.Assignment{TaskID: "t1", TenantID: "acme", Kind: "wasm", Payload: payload(t, wasmexec.Payload{Module: d, Input: json.RawMessage(`"a b"`)})}}
	res, err := remote.Work(t.Context(), job)
	if err != nil {
		t.Fatal(err)
	}
	if string(res.(json.RawMessage)) != `{"words":2}` {
		t.Errorf("result %s", res)
	}
	// Another tenant cannot fetch it.
	job.TenantID = "other"
	if _, err := remote.Work(t.Context(), job); wasmexec.CodeOf(err) != wasmexec.CodeModuleNotFound || !worker.IsPermanent(err) {
		t.Errorf("other tenant: %v (code %q)", err, wasmexec.CodeOf(err))
	}
	// Chain falls through NotFound to the next source.
	ch := wasmexec.Chain(e.store, wasmexec.SourceFunc(c.ModuleContentFor))
	if _, err := ch.Get(t.Context(), "acme", d); err != nil {
		t.Error(err)
	}
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, wasmexec.Config{CacheModules: 1})
	a := e.push(t, "acme", emptyWasm)
	b := e.push(t, "acme", nopWasm) // evicts a
	for range 2 {
		for _, d := range []string{a, b} {
			if tk := e.run(t, "acme", wasmexec.Payload{Module: d}, 0, 0); tk.Status != task.Completed || tk.Result != nil {
				t.Fatalf("%s: %s %s %+v", d, tk.Status, tk.Result, tk.Error)
			}
		}
	}
	if size, _, misses := e.ex.CacheStats(); size != 1 || misses < 4 {
		t.Errorf("cache size %d misses %d, want 1 and >= 4", size, misses)
	}
}

// BenchmarkWasmCached runs modules from the compiled-module cache on a
// tiny input: the executor's per-task cost (a fresh instance, WASI, stdout
// capture, and for the Go wordcount module the Go runtime's start-up).
func BenchmarkWasmCached(b *testing.B) {
	ctx := context.Background()
	wasm := readModule(b, "wordcount")
	digest := modules.Digest(wasm)
	src := wasmexec.SourceFunc(func(context.Context, string, string) ([]byte, error) { return wasm, nil })
	ex, err := wasmexec.New(ctx, wasmexec.Config{Source: src, CompilationCache: sharedCache})
	if err != nil {
		b.Fatal(err)
	}
	defer ex.Close(ctx)
	job := &worker.Job{Assignment: worker.Assignment{TaskID: "t", TenantID: "acme", Kind: "wasm",
		Payload: payload(b, wasmexec.Payload{Module: digest, Input: json.RawMessage(`"one two three"`)})}}
	if _, err := ex.Work(ctx, job); err != nil { // compile once
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if _, err := ex.Work(ctx, job); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
	})
	// The hand-written echo module (examples/wasm/echo): reads stdin and
	// writes it to stdout, no language runtime to start.
	b.Run("echo", func(b *testing.B) {
		echo := readEcho(b)
		ex, err := wasmexec.New(ctx, wasmexec.Config{Source: wasmexec.SourceFunc(func(context.Context, string, string) ([]byte, error) { return echo, nil })})
		if err != nil {
			b.Fatal(err)
		}
		defer ex.Close(ctx)
		job := &worker.Job{Assignment: worker.Assignment{TaskID: "t", TenantID: "acme", Kind: "wasm",
			Payload: payload(b, wasmexec.Payload{Module: modules.Digest(echo), Input: json.RawMessage(`"one two three"`)})}}
		for b.Loop() {
			res, err := ex.Work(ctx, job)
			if err != nil {
				b.Fatal(err)
			}
			if string(res.(json.RawMessage)) != `"one two three"` {
				b.Fatalf("result %s", res)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
	})
	// The executor's own overhead: a module that does nothing.
	b.Run("empty-module", func(b *testing.B) {
		ex, err := wasmexec.New(ctx, wasmexec.Config{Source: wasmexec.SourceFunc(func(context.Context, string, string) ([]byte, error) { return emptyWasm, nil })})
		if err != nil {
			b.Fatal(err)
		}
		defer ex.Close(ctx)
		job := &worker.Job{Assignment: worker.Assignment{TaskID: "t", TenantID: "acme", Kind: "wasm",
			Payload: payload(b, wasmexec.Payload{Module: modules.Digest(emptyWasm), Input: json.RawMessage(`"x"`)})}}
		for b.Loop() {
			if _, err := ex.Work(ctx, job); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := ex.Work(ctx, job); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
	})
}

// A capability granted to one tenant (tenant_allow) is not granted to
// another.
func TestTenantAllow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, wasmexec.Config{TenantAllow: map[string][]string{"acme": {wasmexec.CapClock}}})
	m := readModule(t, "misbehave")
	ma, mg := e.push(t, "acme", m), e.push(t, "globex", m)
	if tk := e.run(t, "acme", wasmexec.Payload{Module: ma, Args: []string{"entropy"}, Allow: []string{wasmexec.CapClock}}, 0, 0); tk.Status != task.Completed {
		t.Fatalf("acme with clock: %s %+v", tk.Status, tk.Error)
	}
	tk := e.run(t, "globex", wasmexec.Payload{Module: mg, Args: []string{"entropy"}, Allow: []string{wasmexec.CapClock}}, 0, 0)
	if tk.Status != task.Failed || tk.Error == nil || tk.Error.Code != wasmexec.CodeCapabilityDenied || !strings.Contains(tk.Error.Message, "tenant_allow.globex") {
		t.Fatalf("globex with clock: %s %+v; want capability_denied", tk.Status, tk.Error)
	}
	if tk := e.run(t, "acme", wasmexec.Payload{Module: ma, Args: []string{"entropy"}, Allow: []string{wasmexec.CapRandom}}, 0, 0); tk.Status != task.Failed || tk.Error.Code != wasmexec.CodeCapabilityDenied {
		t.Fatalf("acme with random (not granted): %s %+v", tk.Status, tk.Error)
	}
}

// TestMaxInstances: with one instance allowed, a task waits for the
// running one to end (here a loop stopped by its 1 s timeout) before it
// runs, however many tasks the worker runs at once.
func TestMaxInstances(t *testing.T) {
	t.Parallel()
	e := newEnv(t, wasmexec.Config{MaxInstances: 1})
	mb := e.push(t, "acme", readModule(t, "misbehave"))
	// The loop is submitted without waiting (its failure is read below, on
	// the test's goroutine).
	c := e.client(t, "acme")
	noRetry := 0
	lt, err := c.Submit(t.Context(), task.Spec{Kind: wasmexec.Kind, Payload: payload(t, wasmexec.Payload{Module: mb, Args: []string{"loop"}}),
		Timeout: task.Duration(time.Second), Retry: &task.RetryPolicy{MaxRetries: &noRetry}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the loop holds the instance
	echo := e.run(t, "acme", wasmexec.Payload{Module: mb, Args: []string{"echo"}, Input: json.RawMessage(`{"n":1}`)}, 0, 0)
	wantResult(t, echo, `{"n":1}`)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	loop, err := c.Wait(ctx, lt.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantFailure(t, loop, "timeout", true)
	if loop.StartedAt == nil || echo.FinishedAt == nil || echo.FinishedAt.Sub(*loop.StartedAt) < 900*time.Millisecond {
		t.Fatalf("the echo task finished at %v, the loop started at %v: it did not wait for the only instance", echo.FinishedAt, loop.StartedAt)
	}
}

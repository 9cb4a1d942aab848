// Package wasmexec is Grey's wasm task kind: it runs WebAssembly (WASI
// preview 1 command) modules from the module store on wazero, one fresh
// instance per task, with the task's input on stdin and its result read
// from stdout.
//
// Payload (see docs/EXECUTORS.md):
//
//	{"module": "sha256:<hex>",        // required: a module the task's tenant uploaded
//	 "input": <any JSON>,             // stdin: a JSON string gives its text, other JSON its compact encoding
//	 "input_base64": "<base64>",      // or raw bytes for stdin (not with input)
//	 "args": ["--flag", "x"],         // argv after the program name "module"
//	 "allow": ["clock", "random"],    // capabilities, honoured only if executors.wasm.allow lists them
//	 "max_memory_pages": 64}          // lowers the memory limit for this task
//
// Sandbox: no filesystem (no preopened directories), no network, no
// environment variables, and by default no real clock and no real
// randomness: wazero's defaults are deterministic fakes (the wall clock
// reads a fixed epoch that advances 1ms per reading, the monotonic clock
// starts at 0 and advances 1ms per reading, sleeping returns at once, and
// random_get reads a fixed-seed pseudo-random stream), so the same module
// and input give the same output. "allow": ["clock"] gives the real wall
// and monotonic clocks and real sleeping; "random" gives crypto/rand.
//
// Limits: linear memory (executors.wasm.max_memory_pages, per tenant
// executors.wasm.tenant_max_memory_pages, lowered per task by
// max_memory_pages), wall time (the task's timeout: the module is stopped
// when its context ends, infinite loops included), stdout size
// (executors.wasm.max_output_bytes).
//
// Failures carry codes (see errors.go): wasm_trap, wasm_oom, wasm_exit,
// output_too_large, wasm_invalid, module_not_found, wasm_capability_denied,
// invalid_payload are permanent; module_unavailable and timeout are retried.
package wasmexec

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mathrand "math/rand"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
	"golang.org/x/sync/singleflight"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/modules"
	"github.com/grey-distributed/grey/worker"
)

// Kind is the task kind this executor runs.
const Kind = "wasm"

// Capabilities a task may ask for (and executors.wasm.allow may grant).
const (
	// CapClock gives the module the real wall clock, monotonic clock and
	// sleeping.
	CapClock = "clock"
	// CapRandom gives the module crypto/rand as random_get.
	CapRandom = "random"
)

// Defaults of Config.
const (
	DefaultMaxMemoryPages = 256     // 16 MiB
	DefaultMaxInstances   = 64      // with 16 MiB each, 1 GiB at most
	DefaultMaxOutputBytes = 1 << 20 // 1 MiB
	DefaultCacheModules   = 64
	// stderrKeep is how much of stderr is kept for error messages.
	stderrKeep = 4096
	// validateTimeout bounds linking a module at upload.
	validateTimeout = 10 * time.Second
	// programName is argv[0].
	programName = "module"
)

// Config configures an Executor.
type Config struct {
	// Source gives the modules' bytes (the module store, or the API for a
	// remote worker). Required to run tasks; Validate works without it.
	Source Source
	// MaxMemoryPages bounds an instance's linear memory, in 64 KiB pages
	// (default 256 = 16 MiB; at most 65536).
	MaxMemoryPages uint32
	// TenantMaxMemoryPages overrides MaxMemoryPages per tenant (up or down).
	TenantMaxMemoryPages map[string]uint32
	// MaxOutputBytes bounds stdout (default 1 MiB); more fails the task
	// with output_too_large.
	MaxOutputBytes int64
	// Allow lists the capabilities every tenant's tasks may ask for
	// (CapClock, CapRandom); empty: none.
	Allow []string
	// TenantAllow adds capabilities per tenant.
	TenantAllow map[string][]string
	// CacheModules bounds the compiled modules kept in memory (default 64).
	CacheModules int
	// MaxInstances bounds the instances running at once (default
	// DefaultMaxInstances); a task over it waits for one to end, or for its
	// context. With MaxMemoryPages it bounds wasm's memory.
	MaxInstances int
	// CompilationCache, when set, is wazero's compilation cache (for
	// example wazero.NewCompilationCacheWithDir, so compiled code survives
	// restarts); default an in-memory cache, or one under CacheDir. The
	// Executor does not close it.
	CompilationCache wazero.CompilationCache
	// CacheDir, when CompilationCache is nil, keeps compiled code in this
	// directory so it survives restarts (executors.wasm.cache_dir).
	CacheDir string
	// Logger receives the executor's logs.
	Logger *slog.Logger
}

// Executor runs wasm tasks; it is a worker.Handler and safe for concurrent
// use.
type Executor struct {
	cfg      Config
	hardCap  uint32
	rt       wazero.Runtime
	ccache   wazero.CompilationCache
	ownCache bool
	cache    *moduleCache
	flight   singleflight.Group
	allow    map[string]bool
	// tenantAllow holds the capabilities granted per tenant.
	tenantAllow map[string]map[string]bool
	// pools recycles small linear memories between instances.
	pools memoryPools
	// baseConfig is every instance's module configuration before the
	// task's own settings.
	baseConfig wazero.ModuleConfig
	// instances holds a token per running instance (MaxInstances).
	instances chan struct{}
}

var _ worker.Handler = (*Executor)(nil)

// New returns an executor with its own wazero runtime.
func New(ctx context.Context, cfg Config) (*Executor, error) {
	if cfg.MaxMemoryPages == 0 {
		cfg.MaxMemoryPages = DefaultMaxMemoryPages
	}
	if cfg.MaxOutputBytes <= 0 {
		cfg.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if cfg.CacheModules <= 0 {
		cfg.CacheModules = DefaultCacheModules
	}
	if cfg.MaxInstances <= 0 {
		cfg.MaxInstances = DefaultMaxInstances
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	hardCap := cfg.MaxMemoryPages
	for t, p := range cfg.TenantMaxMemoryPages {
		if p == 0 || p > 65536 {
			return nil, fmt.Errorf("wasm: tenant %s: max memory pages must be 1 to 65536, got %d", t, p)
		}
		hardCap = max(hardCap, p)
	}
	if hardCap > 65536 {
		return nil, fmt.Errorf("wasm: max memory pages must be 1 to 65536, got %d", hardCap)
	}
	allow := map[string]bool{}
	for _, c := range cfg.Allow {
		if c != CapClock && c != CapRandom {
			return nil, fmt.Errorf("wasm: unknown capability %q (want %s or %s)", c, CapClock, CapRandom)
		}
		allow[c] = true
	}
	tenantAllow := map[string]map[string]bool{}
	for t, caps := range cfg.TenantAllow {
		tenantAllow[t] = map[string]bool{}
		for _, c := range caps {
			if c != CapClock && c != CapRandom {
				return nil, fmt.Errorf("wasm: tenant %s: unknown capability %q (want %s or %s)", t, c, CapClock, CapRandom)
			}
			tenantAllow[t][c] = true
		}
	}
	e := &Executor{cfg: cfg, hardCap: hardCap, cache: newModuleCache(cfg.CacheModules), allow: allow, tenantAllow: tenantAllow, instances: make(chan struct{}, cfg.MaxInstances),
		baseConfig: wazero.NewModuleConfig().WithName("")}
	e.ccache = cfg.CompilationCache
	switch {
	case e.ccache != nil:
	case cfg.CacheDir != "":
		cc, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("wasm: cache dir: %w", err)
		}
		e.ccache, e.ownCache = cc, true
	default:
		e.ccache, e.ownCache = wazero.NewCompilationCache(), true
	}
	rc := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(true).
		WithMemoryLimitPages(hardCap).
		WithCompilationCache(e.ccache)
	e.rt = wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, e.rt); err != nil {
		_ = e.rt.Close(ctx)
		return nil, fmt.Errorf("wasm: instantiate WASI: %w", err)
	}
	return e, nil
}

// Close releases the runtime and the compiled modules.
func (e *Executor) Close(ctx context.Context) error {
	// Closing the runtime frees the memories of instances still running.
	e.pools.off.Store(true)
	e.cache.closeAll()
	err := e.rt.Close(ctx)
	if e.ownCache {
		_ = e.ccache.Close(ctx)
	}
	return err
}

// CacheStats reports the compiled-module cache: entries, hits, misses.
func (e *Executor) CacheStats() (size int, hits, misses uint64) { return e.cache.stats() }

// Payload is the payload of a wasm task.
type Payload struct {
	// Module is the digest of a module the task's tenant uploaded.
	Module string `json:"module"`
	// Input is the module's stdin: a JSON string gives its text, any other
	// JSON value its compact encoding; absent or null gives an empty stdin.
	Input json.RawMessage `json:"input,omitempty"`
	// InputBase64 is raw stdin bytes, base64 (standard encoding); not
	// together with Input.
	InputBase64 string `json:"input_base64,omitempty"`
	// Args are the arguments after argv[0] ("module").
	Args []string `json:"args,omitempty"`
	// Allow asks for capabilities (CapClock, CapRandom), each honoured only
	// if executors.wasm.allow lists it.
	Allow []string `json:"allow,omitempty"`
	// MaxMemoryPages lowers the memory limit for this task (0: the limit).
	MaxMemoryPages uint32 `json:"max_memory_pages,omitempty"`
}

// taskSpec is a decoded, checked payload.
type taskSpec struct {
	digest string
	stdin  []byte
	args   []string
	clock  bool
	random bool
	pages  uint32
}

func (e *Executor) decode(j *worker.Job) (*taskSpec, error) {
	var p Payload
	dec := json.NewDecoder(bytes.NewReader(j.Payload))
	dec.DisallowUnknownFields()
	if len(bytes.TrimSpace(j.Payload)) == 0 {
		return nil, permanent(CodeInvalidPayload, `payload is required: {"module":"sha256:…","input":…}`)
	}
	if err := dec.Decode(&p); err != nil {
		return nil, permanentWrap(CodeInvalidPayload, err, "bad payload")
	}
	digest, _, err := modules.ParseDigest("module", p.Module)
	if err != nil {
		return nil, permanentWrap(CodeInvalidPayload, err, "bad payload")
	}
	ts := &taskSpec{digest: digest, args: append([]string{programName}, p.Args...)}
	in := bytes.TrimSpace(p.Input)
	switch {
	case len(in) > 0 && p.InputBase64 != "":
		return nil, permanent(CodeInvalidPayload, "bad payload: give input or input_base64, not both")
	case p.InputBase64 != "":
		if ts.stdin, err = base64.StdEncoding.DecodeString(p.InputBase64); err != nil {
			return nil, permanentWrap(CodeInvalidPayload, err, "bad payload: input_base64")
		}
	case len(in) == 0 || string(in) == "null":
	case in[0] == '"':
		var s string
		if err := json.Unmarshal(in, &s); err != nil {
			return nil, permanentWrap(CodeInvalidPayload, err, "bad payload: input")
		}
		ts.stdin = []byte(s)
	default:
		var buf bytes.Buffer
		if err := json.Compact(&buf, in); err != nil {
			return nil, permanentWrap(CodeInvalidPayload, err, "bad payload: input")
		}
		ts.stdin = buf.Bytes()
	}
	for _, c := range p.Allow {
		switch c {
		case CapClock, CapRandom:
		default:
			return nil, permanent(CodeInvalidPayload, "bad payload: unknown capability %q in allow (want %q or %q)", c, CapClock, CapRandom)
		}
		if !e.allow[c] && !e.tenantAllow[j.TenantID][c] {
			return nil, permanent(CodeCapabilityDenied, "the task asks for %q but neither executors.wasm.allow nor tenant_allow.%s grants it", c, j.TenantID)
		}
		ts.clock = ts.clock || c == CapClock
		ts.random = ts.random || c == CapRandom
	}
	ts.pages = e.memoryLimit(j.TenantID)
	if p.MaxMemoryPages > 0 {
		ts.pages = min(ts.pages, p.MaxMemoryPages)
	}
	return ts, nil
}

// memoryLimit is tenant's memory limit in pages.
func (e *Executor) memoryLimit(tenant string) uint32 {
	if p, ok := e.cfg.TenantMaxMemoryPages[tenant]; ok {
		return p
	}
	return e.cfg.MaxMemoryPages
}

// Work implements worker.Handler.
func (e *Executor) Work(ctx context.Context, j *worker.Job) (any, error) {
	ts, err := e.decode(j)
	if err != nil {
		return nil, err
	}
	ent, err := e.compiled(ctx, j.TenantID, ts.digest)
	if err != nil {
		return nil, err
	}
	defer e.cache.release(ent)
	select {
	case e.instances <- struct{}{}:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	defer func() { <-e.instances }()
	return e.run(ctx, ent, ts)
}

// compiled returns the tenant's module, compiled, from the cache or the
// source. Concurrent misses of one module fetch and compile it once.
func (e *Executor) compiled(ctx context.Context, tenant, digest string) (*cacheEntry, error) {
	key := tenant + "/" + digest
	for try := 0; ; try++ {
		if ent := e.cache.acquire(key); ent != nil {
			return ent, nil
		}
		if try == 2 {
			// Evicted each time between compile and use (a cache smaller
			// than the working set): compile for this task alone.
			cm, err := e.load(ctx, tenant, digest)
			if err != nil {
				return nil, err
			}
			ent := newCacheEntry(key, cm)
			ent.evicted = true
			return ent, nil
		}
		ch := e.flight.DoChan(key, func() (any, error) {
			// Shared by every waiter: not bound to the first one's context.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
			defer cancel()
			cm, err := e.load(fctx, tenant, digest)
			if err != nil {
				return nil, err
			}
			e.cache.release(e.cache.add(key, cm)) // waiters acquire it
			return nil, nil
		})
		select {
		case r := <-ch:
			if r.Err != nil {
				return nil, r.Err
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("wasm: waiting for module %s: %w", digest, context.Cause(ctx))
		}
	}
}

// load fetches the tenant's module from the source and compiles it.
func (e *Executor) load(ctx context.Context, tenant, digest string) (wazero.CompiledModule, error) {
	if e.cfg.Source == nil {
		return nil, retryable(CodeModuleUnavailable, nil, "this worker has no module source")
	}
	b, err := e.cfg.Source.Get(ctx, tenant, digest)
	if err != nil {
		if greyerr.Is(err, greyerr.NotFound) {
			return nil, permanent(CodeModuleNotFound, "tenant %s has no module %s (upload it with POST /api/v1/modules)", tenant, digest)
		}
		return nil, retryable(CodeModuleUnavailable, err, "fetch module %s", digest)
	}
	if got := modules.Digest(b); got != digest {
		return nil, retryable(CodeModuleUnavailable, nil, "module source returned bytes of %s for %s", got, digest)
	}
	cm, err := e.compile(ctx, b)
	if err != nil {
		return nil, permanentWrap(CodeInvalidModule, err, "module %s", digest)
	}
	return cm, nil
}

// compile compiles b and checks that it is a runnable WASI command.
func (e *Executor) compile(ctx context.Context, b []byte) (wazero.CompiledModule, error) {
	cm, err := e.rt.CompileModule(ctx, b)
	if err != nil {
		return nil, err
	}
	if err := e.checkShape(cm); err != nil {
		_ = cm.Close(ctx)
		return nil, err
	}
	return cm, nil
}

// checkShape refuses modules the executor cannot run.
func (e *Executor) checkShape(cm wazero.CompiledModule) error {
	start, ok := cm.ExportedFunctions()["_start"]
	if !ok {
		return errors.New(`it exports no "_start" function: the wasm kind runs WASI command modules (a program with a main function, e.g. GOOS=wasip1 GOARCH=wasm go build), not libraries`)
	}
	if len(start.ParamTypes()) != 0 || len(start.ResultTypes()) != 0 {
		return errors.New(`its "_start" function must take no parameters and return nothing`)
	}
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		if mod != wasi_snapshot_preview1.ModuleName {
			return fmt.Errorf("it imports %s.%s: only %s functions are available", mod, name, wasi_snapshot_preview1.ModuleName)
		}
	}
	if len(cm.ImportedMemories()) > 0 {
		return errors.New("it imports a memory: modules must define their own")
	}
	for name, m := range cm.ExportedMemories() {
		if m.Min() > e.hardCap {
			return fmt.Errorf("memory %q needs %d pages (%s) at start, over the limit of %d pages (%s)", name, m.Min(), pagesBytes(m.Min()), e.hardCap, pagesBytes(e.hardCap))
		}
	}
	return nil
}

// Validate checks that wasm is a module this executor can run: it
// compiles, is a WASI command, and links (no code runs but a start
// section's). The compiled module is cached for tenant/digest. It is the
// module store's upload check; errors are greyerr InvalidArgument errors
// naming the request body.
func (e *Executor) Validate(ctx context.Context, tenant, digest string, wasm []byte) error {
	cm, err := e.compile(ctx, wasm)
	if err != nil {
		return invalidModule(err)
	}
	lctx, cancel := context.WithTimeout(ctx, validateTimeout)
	defer cancel()
	lim := &memoryLimiter{limit: uint64(e.hardCap) * pageSize}
	mod, err := e.rt.InstantiateModule(experimental.WithMemoryAllocator(lctx, lim), cm,
		wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if mod != nil {
		_ = mod.Close(context.Background())
	}
	if err != nil {
		_ = cm.Close(ctx)
		return invalidModule(fmt.Errorf("it does not link: %w", err))
	}
	ent := e.cache.add(tenant+"/"+digest, cm)
	e.cache.release(ent)
	return nil
}

func invalidModule(err error) error {
	msg := err.Error()
	if !strings.HasPrefix(msg, "it ") {
		msg = "it does not compile: " + msg
	}
	return greyerr.Invalid("body", "must be a WASI command module the wasm kind can run, but %s", msg)
}

// fakeRandSeed is the seed of wazero's default random source
// (internal/platform.NewFakeRandSource in wazero v1.12.0).
const fakeRandSeed = 42

// fakeRand is wazero's default, deterministic random source (math/rand
// seeded with fakeRandSeed), created at the first read: seeding it costs
// more than running a small module, and most modules never call
// random_get. One instance reads it, from one goroutine.
type fakeRand struct{ r io.Reader }

// Read implements io.Reader.
func (f *fakeRand) Read(p []byte) (int, error) {
	if f.r == nil {
		f.r = mathrand.New(mathrand.NewSource(fakeRandSeed))
	}
	return f.r.Read(p)
}

// errOutputTooLarge stops a module whose stdout outgrew the limit.
var errOutputTooLarge = errors.New("output too large")

// run instantiates the module once, feeding ts.stdin, and turns stdout
// into the result.
func (e *Executor) run(parent context.Context, ent *cacheEntry, ts *taskSpec) (res any, err error) {
	limitBytes := uint64(ts.pages) * pageSize
	for _, m := range ent.mems {
		if m.pages > ts.pages {
			return nil, permanent(CodeOOM, "memory %q needs %d pages (%s) at start, over this task's limit of %d pages (%s)", m.name, m.pages, pagesBytes(m.pages), ts.pages, pagesBytes(ts.pages))
		}
	}
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	out := &limitedWriter{max: e.cfg.MaxOutputBytes, onOverflow: func() { cancel(errOutputTooLarge) }}
	stderr := &headWriter{max: stderrKeep}
	lim := &memoryLimiter{limit: limitBytes, pools: &e.pools}
	mc := e.baseConfig.
		WithArgs(ts.args...).
		WithStdin(bytes.NewReader(ts.stdin)).
		WithStdout(out).
		WithStderr(stderr)
	if ts.clock {
		mc = mc.WithSysWalltime().WithSysNanotime().WithSysNanosleep()
	}
	if ts.random {
		mc = mc.WithRandSource(rand.Reader)
	} else {
		mc = mc.WithRandSource(&fakeRand{})
	}
	defer func() {
		// wazero panics if an allocator cannot give a memory its minimum;
		// the check above should make that impossible.
		if r := recover(); r != nil {
			res, err = nil, permanent(CodeOOM, "could not allocate the module's memory (limit %d pages): %v", ts.pages, r)
		}
	}()
	mod, err := e.rt.InstantiateModule(experimental.WithMemoryAllocator(ctx, lim), ent.cm, mc)
	if mod != nil {
		_ = mod.Close(context.Background())
	}
	if out.overflowed {
		return nil, permanent(CodeOutputTooLarge, "output exceeds %d bytes (executors.wasm.max_output_bytes)", e.cfg.MaxOutputBytes)
	}
	if err != nil {
		return nil, e.failure(parent, err, stderr, lim, ts.pages)
	}
	return result(out.buf.Bytes(), e.cfg.MaxOutputBytes)
}

// failure classifies a failed run.
func (e *Executor) failure(parent context.Context, err error, stderr *headWriter, lim *memoryLimiter, pages uint32) error {
	if parent.Err() != nil {
		// Timeout, cancellation, lease loss or shutdown: the pool
		// classifies (timeout is retryable, code "timeout").
		return fmt.Errorf("wasm: module stopped: %w", context.Cause(parent))
	}
	tail := stderr.text()
	if lim.refused.Load() || strings.Contains(tail, "out of memory") {
		return permanent(CodeOOM, "module ran out of memory: limit %d pages (%s)%s", pages, pagesBytes(pages), detail(tail))
	}
	var ee *sys.ExitError
	if errors.As(err, &ee) {
		if strings.Contains(tail, "panic:") || strings.Contains(tail, "fatal error:") {
			return permanent(CodeTrap, "module panicked (exit code %d)%s", ee.ExitCode(), detail(tail))
		}
		return permanent(CodeExit, "module exited with code %d%s", ee.ExitCode(), detail(tail))
	}
	msg := err.Error()
	if i := strings.Index(msg, "wasm error: "); i >= 0 {
		msg = msg[i+len("wasm error: "):]
		if j := strings.IndexByte(msg, '\n'); j >= 0 {
			msg = msg[:j]
		}
		return permanent(CodeTrap, "module trapped: %s%s", msg, detail(tail))
	}
	return permanentWrap(CodeInvalidModule, err, "instantiate module%s", detail(tail))
}

// detail formats stderr for an error message.
func detail(stderr string) string {
	s := strings.TrimSpace(stderr)
	if s == "" {
		return ""
	}
	const max = 1024
	if len(s) > max {
		s = s[:max]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	return "; stderr: " + s
}

// result turns stdout into the task result: valid JSON as is, anything
// else as a JSON string (invalid UTF-8 replaced by U+FFFD); empty is null.
func result(out []byte, max int64) (any, error) {
	t := bytes.TrimSpace(out)
	if len(t) == 0 {
		return nil, nil
	}
	if json.Valid(t) {
		return json.RawMessage(slices.Clone(t)), nil
	}
	b, err := json.Marshal(string(out))
	if err != nil {
		return nil, permanentWrap(CodeOutputTooLarge, err, "encode output")
	}
	if int64(len(b)) > max {
		return nil, permanent(CodeOutputTooLarge, "output exceeds %d bytes once encoded as a JSON string (executors.wasm.max_output_bytes)", max)
	}
	return json.RawMessage(b), nil
}

func pagesBytes(p uint32) string {
	b := uint64(p) * pageSize
	if b%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", b>>20)
	}
	return fmt.Sprintf("%d KiB", b>>10)
}

// limitedWriter keeps up to max bytes; a write past it sets overflowed,
// calls onOverflow (which stops the module) and fails.
type limitedWriter struct {
	buf        bytes.Buffer
	max        int64
	overflowed bool
	onOverflow func()
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if w.overflowed {
		return 0, errOutputTooLarge
	}
	if int64(w.buf.Len()+len(p)) > w.max {
		w.overflowed = true
		w.onOverflow()
		return 0, errOutputTooLarge
	}
	return w.buf.Write(p)
}

// headWriter keeps the first max bytes and discards the rest.
type headWriter struct {
	buf bytes.Buffer
	max int
}

func (w *headWriter) Write(p []byte) (int, error) {
	if room := w.max - w.buf.Len(); room > 0 {
		w.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (w *headWriter) text() string { return w.buf.String() }

var _ io.Writer = (*limitedWriter)(nil)

// ValidatePayload implements worker.PayloadValidator: the payload's shape
// (fields, the module digest, one input form, known capability names),
// not what this node's configuration grants (a worker node may grant
// more).
func (e *Executor) ValidatePayload(payload json.RawMessage) error {
	if len(bytes.TrimSpace(payload)) == 0 {
		return errors.New(`wasm: payload is required: {"module":"sha256:…","input":…}`)
	}
	var p Payload
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("wasm: bad payload: %w", err)
	}
	if _, _, err := modules.ParseDigest("module", p.Module); err != nil {
		return fmt.Errorf("wasm: bad payload: %w", err)
	}
	if in := bytes.TrimSpace(p.Input); len(in) > 0 && string(in) != "null" && p.InputBase64 != "" {
		return errors.New("wasm: bad payload: give input or input_base64, not both")
	}
	if p.InputBase64 != "" {
		if _, err := base64.StdEncoding.DecodeString(p.InputBase64); err != nil {
			return fmt.Errorf("wasm: bad payload: input_base64: %w", err)
		}
	}
	for _, c := range p.Allow {
		if c != CapClock && c != CapRandom {
			return fmt.Errorf("wasm: bad payload: unknown capability %q in allow (want %q or %q)", c, CapClock, CapRandom)
		}
	}
	return nil
}

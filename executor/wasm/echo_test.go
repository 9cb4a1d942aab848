package wasmexec_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	wasmexec "github.com/grey-distributed/grey/executor/wasm"
	"github.com/grey-distributed/grey/modules"
	"github.com/grey-distributed/grey/worker"
)

// echoPath is the hand-written echo module (examples/wasm/echo), relative
// to the module root.
const echoPath = "examples/wasm/echo/echo.wasm"

// readEcho returns the committed echo module.
func readEcho(t testing.TB) []byte {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, echoPath))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEchoModule runs the committed echo module through the engine: it
// copies stdin to stdout, whatever its size, and stops with
// output_too_large past max_output_bytes.
func TestEchoModule(t *testing.T) {
	t.Parallel()
	const maxOut = 200 << 10
	e := newEnv(t, wasmexec.Config{MaxOutputBytes: maxOut})
	d := e.push(t, "acme", readEcho(t))

	// Text that is not JSON comes back as a JSON string.
	tk := e.run(t, "acme", wasmexec.Payload{Module: d, Input: json.RawMessage(`"hello, wasm"`)}, 0, 0)
	wantResult(t, tk, `"hello, wasm"`)
	// JSON input comes back as the same JSON value.
	tk = e.run(t, "acme", wasmexec.Payload{Module: d, Input: json.RawMessage(`{"a": [1, "x y"]}`)}, 0, 0)
	wantResult(t, tk, `{"a":[1,"x y"]}`)
	// No input, no output: the result is null.
	tk = e.run(t, "acme", wasmexec.Payload{Module: d}, 0, 0)
	if tk.Result != nil && string(tk.Result) != "null" {
		t.Errorf("empty input: result %s, want null", tk.Result)
	}
	// More than one read buffer (65520 bytes): every byte comes back in order.
	big := make([]byte, 150_000)
	for i := range big {
		big[i] = 'a' + byte(i%26)
	}
	big[0], big[len(big)-1] = '<', '>'
	tk = e.run(t, "acme", wasmexec.Payload{Module: d, InputBase64: base64.StdEncoding.EncodeToString(big)}, 0, 0)
	want, err := json.Marshal(string(big))
	if err != nil {
		t.Fatal(err)
	}
	wantResult(t, tk, string(want))
	// Over max_output_bytes: the write fails and the task with it.
	tk = e.run(t, "acme", wasmexec.Payload{Module: d, InputBase64: base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("z"), maxOut+1))}, 0, 0)
	if msg := wantFailure(t, tk, wasmexec.CodeOutputTooLarge, false); !strings.Contains(msg, "max_output_bytes") {
		t.Errorf("message %q does not name the setting", msg)
	}
}

// TestEchoModuleMatchesSource rebuilds echo.wasm from echo.wat with wabt's
// wat2wasm and requires the committed binary to be the same bytes. It
// skips where wat2wasm is not installed (Debian: apt-get install wabt);
// TestEchoModule checks the binary's behaviour everywhere.
func TestEchoModuleMatchesSource(t *testing.T) {
	t.Parallel()
	tool, err := exec.LookPath("wat2wasm")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("wat2wasm not installed: scripts/services.sh tools installs it (Debian package wabt)")
		}
		t.Skip("wat2wasm not installed (scripts/services.sh tools, or apt-get install wabt): cannot rebuild echo.wasm from echo.wat")
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "echo.wasm")
	cmd := exec.Command(tool, filepath.Join(root, "examples/wasm/echo/echo.wat"), "-o", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	built, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(built, readEcho(t)) {
		t.Errorf("%s is stale: wat2wasm echo.wat gives %d different bytes; rebuild it (see echo.wat)", echoPath, len(built))
	}
}

// withCustomSection returns wasm with a custom section named "bench"
// holding n appended: a module that behaves the same but has another
// digest, so nothing has compiled it yet.
func withCustomSection(wasm []byte, n uint64) []byte {
	var payload []byte
	payload = binary.AppendUvarint(payload, uint64(len("bench")))
	payload = append(payload, "bench"...)
	payload = binary.AppendUvarint(payload, n)
	out := append([]byte(nil), wasm...)
	out = append(out, 0) // custom section
	out = binary.AppendUvarint(out, uint64(len(payload)))
	return append(out, payload...)
}

// BenchmarkWasmCold is the first task of a module nobody has compiled: each
// iteration runs a module with a new digest (the module plus a custom
// section with a counter), so the executor fetches it from the source,
// compiles it (the compilation cache has never seen its bytes), caches it
// and runs it once. A greyd pays the compile at upload (POST
// /api/v1/modules) instead, and a remote worker at its first task of the
// module.
func BenchmarkWasmCold(b *testing.B) {
	ctx := context.Background()
	for _, m := range []struct {
		name string
		wasm []byte
	}{
		{"echo", readEcho(b)},
		{"wordcount", readModule(b, "wordcount")},
	} {
		b.Run(m.name, func(b *testing.B) {
			var next []byte
			src := wasmexec.SourceFunc(func(context.Context, string, string) ([]byte, error) { return next, nil })
			ex, err := wasmexec.New(ctx, wasmexec.Config{Source: src, CacheModules: 1})
			if err != nil {
				b.Fatal(err)
			}
			defer ex.Close(ctx)
			var i uint64
			for b.Loop() {
				b.StopTimer()
				i++
				next = withCustomSection(m.wasm, i)
				job := &worker.Job{Assignment: worker.Assignment{TaskID: "t", TenantID: "acme", Kind: "wasm",
					Payload: payload(b, wasmexec.Payload{Module: modules.Digest(next), Input: json.RawMessage(`"one two"`)})}}
				b.StartTimer()
				if _, err := ex.Work(ctx, job); err != nil {
					b.Fatal(err)
				}
			}
			if _, _, misses := ex.CacheStats(); misses < uint64(b.N) {
				b.Fatalf("%d cache misses for %d cold runs", misses, b.N)
			}
			b.ReportMetric(float64(len(m.wasm)), "module-bytes")
		})
	}
}

// dumpWasm writes the first 65520 bytes of its fresh one-page memory to
// stdout, so a task can see whether its memory held anything:
//
//	(module
//	  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
//	  (memory (export "memory") 1)
//	  (func (export "_start")
//	    (i32.store (i32.const 65520) (i32.const 0))      ;; iovec.buf = 0
//	    (i32.store (i32.const 65524) (i32.const 65520))  ;; iovec.len = 65520
//	    (drop (call $fd_write (i32.const 1) (i32.const 65520) (i32.const 1) (i32.const 65528)))))
var dumpWasm = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
	0x01, 0x0c, 0x02, 0x60, 0x04, 0x7f, 0x7f, 0x7f, 0x7f, 0x01, 0x7f, 0x60, 0x00, 0x00, // types
	0x02, 0x23, 0x01, 0x16, 'w', 'a', 's', 'i', '_', 's', 'n', 'a', 'p', 's', 'h', 'o', 't', '_',
	'p', 'r', 'e', 'v', 'i', 'e', 'w', '1', 0x08, 'f', 'd', '_', 'w', 'r', 'i', 't', 'e', 0x00, 0x00, // import
	0x03, 0x02, 0x01, 0x01, // func: type 1
	0x05, 0x03, 0x01, 0x00, 0x01, // memory: min 1
	0x07, 0x13, 0x02, 0x06, 'm', 'e', 'm', 'o', 'r', 'y', 0x02, 0x00, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x01, // exports
	0x0a, 0x27, 0x01, 0x25, 0x00, // code
	0x41, 0xf0, 0xff, 0x03, 0x41, 0x00, 0x36, 0x02, 0x00,
	0x41, 0xf4, 0xff, 0x03, 0x41, 0xf0, 0xff, 0x03, 0x36, 0x02, 0x00,
	0x41, 0x01, 0x41, 0xf0, 0xff, 0x03, 0x41, 0x01, 0x41, 0xf8, 0xff, 0x03, 0x10, 0x00, 0x1a, 0x0b,
}

// TestFreshMemoryPerTask alternates the echo module, which fills its
// memory with the task's input, with a module that prints its own memory:
// however linear memories are recycled, a task never sees another's bytes.
func TestFreshMemoryPerTask(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	echo := readEcho(t)
	byDigest := map[string][]byte{modules.Digest(echo): echo, modules.Digest(dumpWasm): dumpWasm}
	ex, err := wasmexec.New(ctx, wasmexec.Config{Source: wasmexec.SourceFunc(func(_ context.Context, _, d string) ([]byte, error) {
		return byDigest[d], nil
	})})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close(ctx)
	secret := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("s"), 65000))
	job := func(p wasmexec.Payload) *worker.Job {
		return &worker.Job{Assignment: worker.Assignment{TaskID: "t", TenantID: "acme", Kind: "wasm", Payload: payload(t, p)}}
	}
	fill, dump := job(wasmexec.Payload{Module: modules.Digest(echo), InputBase64: secret}), job(wasmexec.Payload{Module: modules.Digest(dumpWasm)})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for range 50 {
				if _, err := ex.Work(ctx, fill); err != nil {
					t.Error(err)
					return
				}
				res, err := ex.Work(ctx, dump)
				if err != nil {
					t.Error(err)
					return
				}
				var mem string
				if err := json.Unmarshal(res.(json.RawMessage), &mem); err != nil {
					t.Error(err)
					return
				}
				if len(mem) != 65520 || strings.Trim(mem, "\x00") != "" {
					t.Errorf("a fresh instance's memory holds %d non-zero bytes of %d", len(strings.ReplaceAll(mem, "\x00", "")), len(mem))
					return
				}
			}
		})
	}
	wg.Wait()
}

package executor_test

import (
	"context"
	"encoding/json"
	"io"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/executor"
	"github.com/grey-distributed/grey/executor/httpexec"
	"github.com/grey-distributed/grey/executor/inference"
	wasmexec "github.com/grey-distributed/grey/executor/wasm"
	"github.com/grey-distributed/grey/worker"
)

func TestRegistryHasEveryKind(t *testing.T) {
	r, err := executor.New(t.Context(), executor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	want := []string{"echo", "fail", httpexec.Kind, "noop", "sleep", wasmexec.Kind}
	if got := r.Kinds(); !slices.Equal(got, want) {
		t.Errorf("kinds %v, want %v", got, want)
	}
	h := r.Handlers()
	for _, k := range want {
		if got, ok := r.Handler(k); !ok || got == nil || h[k] == nil {
			t.Errorf("no handler for %s", k)
		}
	}
	if _, ok := r.Handler("bogus"); ok {
		t.Error("a handler for an unknown kind")
	}
	if w, _ := r.Handler(wasmexec.Kind); w != worker.Handler(r.Wasm()) {
		t.Error("Wasm is not the wasm kind's handler")
	}
	// Handlers is a copy: changing it does not change the registry.
	delete(h, "echo")
	if _, ok := r.Handler("echo"); !ok {
		t.Error("deleting from Handlers changed the registry")
	}
	// The built-ins are replayable and run.
	echo, _ := r.Handler("echo")
	if d, ok := echo.(worker.Deterministic); !ok || !d.Deterministic(&worker.Job{}) {
		t.Error("echo is not deterministic")
	}
	res, err := echo.Work(t.Context(), &worker.Job{Assignment: worker.Assignment{Kind: "echo", Payload: json.RawMessage(`{"a":1}`)}})
	if err != nil || string(res.(json.RawMessage)) != `{"a":1}` {
		t.Errorf("echo: %v %v", res, err)
	}
}

func TestRegistryRefusesBadOptions(t *testing.T) {
	for name, o := range map[string]executor.Options{
		"wasm memory":     {Wasm: wasmexec.Config{MaxMemoryPages: 70000}},
		"wasm capability": {Wasm: wasmexec.Config{Allow: []string{"network"}}},
		"http host":       {HTTP: httpexec.Config{AllowHosts: []string{"a.*.com"}}},
	} {
		r, err := executor.New(t.Context(), o)
		if err == nil {
			_ = r.Close(context.Background())
			t.Errorf("%s: no error", name)
			continue
		}
		if p := strings.SplitN(name, " ", 2)[0] + ":"; !strings.HasPrefix(err.Error(), p) {
			t.Errorf("%s: error %q does not start with %q", name, err, p)
		}
	}
}

// The inference kind is built only on a node with runtimes; a node
// without them still refuses malformed inference payloads at submit.
func TestRegistryInference(t *testing.T) {
	r, err := executor.New(t.Context(), executor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	if _, ok := r.Handler(inference.Kind); ok || r.Inference() != nil {
		t.Fatal("an inference handler without runtimes")
	}
	if err := r.ValidatePayload(inference.Kind, json.RawMessage(`{"model":"m","inputs":[]}`)); err == nil {
		t.Fatal("a malformed inference payload passed")
	}
	if err := r.ValidatePayload(inference.Kind, json.RawMessage(`{"model":"m","inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}]}`)); err != nil {
		t.Fatal(err)
	}

	reg := ai.NewRegistry()
	_ = reg.Register("nop", ai.OpenerFunc(func(context.Context, *url.URL, ai.OpenOptions) (ai.Driver, error) { return nopDriver{}, nil }))
	r2, err := executor.New(t.Context(), executor.Options{Inference: inference.Config{
		Registry: reg, Runtimes: []inference.RuntimeConfig{{Name: "cpu", URL: "nop://"}},
		Source: nopSource{}, CacheDir: t.TempDir(), CacheBytes: 1 << 20,
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close(context.Background())
	if h, ok := r2.Handler(inference.Kind); !ok || h != worker.Handler(r2.Inference()) {
		t.Fatal("no inference handler with a runtime")
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

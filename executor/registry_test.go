package executor_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/grey-distributed/grey/executor"
	"github.com/grey-distributed/grey/executor/httpexec"
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

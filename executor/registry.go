package executor

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"

	"github.com/grey-distributed/grey/executor/httpexec"
	"github.com/grey-distributed/grey/executor/inference"
	wasmexec "github.com/grey-distributed/grey/executor/wasm"
	"github.com/grey-distributed/grey/worker"
)

// Options configures the executors New builds. They are plain values: the
// caller (greyd) translates its configuration into them and says where
// wasm modules come from (Wasm.Source), the one thing that differs between
// a server and a worker-only node.
type Options struct {
	// Wasm configures the wasm kind; Wasm.Source gives the modules' bytes.
	Wasm wasmexec.Config
	// HTTP configures the http kind.
	HTTP httpexec.Config
	// Inference configures the inference kind, built only when
	// Inference.Runtimes is not empty (ai.runtimes): Inference.Registry
	// opens them (the binary registers the runtime drivers it links) and
	// Inference.Source serves the tenants' models.
	Inference inference.Config
}

// Registry is a node's executors by task kind: the built-ins, wasm, http
// and, on a node with model runtimes, inference. A server advertises its kinds and replays tasks with its handlers;
// a worker-only node leases the same kinds, so both run exactly the same
// set. Handlers that implement worker.Deterministic can be replayed.
type Registry struct {
	handlers map[string]worker.Handler
	wasm     *wasmexec.Executor
	http     *httpexec.Executor
	infer    *inference.Executor
}

// New builds every executor Grey has from o. Close the Registry to
// release them.
func New(ctx context.Context, o Options) (*Registry, error) {
	wasmH, err := wasmexec.New(ctx, o.Wasm)
	if err != nil {
		return nil, err // "wasm: …"
	}
	httpH, err := httpexec.New(o.HTTP)
	if err != nil {
		_ = wasmH.Close(ctx)
		return nil, err // "http: …"
	}
	r := &Registry{handlers: Builtins(), wasm: wasmH, http: httpH}
	r.handlers[wasmexec.Kind] = wasmH
	r.handlers[httpexec.Kind] = httpH
	if len(o.Inference.Runtimes) > 0 {
		if r.infer, err = inference.New(ctx, o.Inference); err != nil {
			httpH.Close()
			_ = wasmH.Close(ctx)
			return nil, err // "inference: …"
		}
		r.handlers[inference.Kind] = r.infer
	}
	return r, nil
}

// Kinds returns the kinds the registry runs, sorted.
func (r *Registry) Kinds() []string { return slices.Sorted(maps.Keys(r.handlers)) }

// Handler returns the handler of kind, if the registry has one.
func (r *Registry) Handler(kind string) (worker.Handler, bool) {
	h, ok := r.handlers[kind]
	return h, ok
}

// Handlers returns a copy of the handlers by kind (for the engine's
// replays and a worker pool's registrations).
func (r *Registry) Handlers() map[string]worker.Handler { return maps.Clone(r.handlers) }

// ValidatePayload checks a task's payload at submit with its kind's
// handler, where that handler implements worker.PayloadValidator (looking
// through wrappers); other kinds, and kinds the registry lacks, pass.
func (r *Registry) ValidatePayload(kind string, payload json.RawMessage) error {
	h, ok := r.handlers[kind]
	if !ok && kind == inference.Kind {
		// A server without runtimes still refuses malformed inference
		// requests: worker nodes run them.
		return inference.ValidatePayload(payload)
	}
	for ok {
		if v, is := h.(worker.PayloadValidator); is {
			return v.ValidatePayload(payload)
		}
		w, is := h.(worker.Wrapper)
		if !is {
			break
		}
		h = w.Unwrap()
	}
	return nil
}

// Wasm returns the wasm executor, whose Validate checks modules at upload.
func (r *Registry) Wasm() *wasmexec.Executor { return r.wasm }

// Inference returns the inference executor (its Warm lists the models
// loaded on this node), or nil when the node has no runtimes.
func (r *Registry) Inference() *inference.Executor { return r.infer }

// Close releases the executors' resources (the wasm runtime, idle HTTP
// connections, the model runtimes).
func (r *Registry) Close(ctx context.Context) error {
	r.http.Close()
	var ierr error
	if r.infer != nil {
		ierr = r.infer.Close()
	}
	return errors.Join(r.wasm.Close(ctx), ierr)
}

package server

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/batch"

	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/executor"
	"github.com/grey-distributed/grey/executor/httpexec"
	"github.com/grey-distributed/grey/executor/inference"
	wasmexec "github.com/grey-distributed/grey/executor/wasm"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/modules"
)

// WithRuntimeRegistry gives the node the model runtime drivers of this
// binary (cmd/greyd links them): each of ai.runtimes opens with the driver
// registered for its URL's scheme.
func WithRuntimeRegistry(reg *ai.Registry) Option {
	return func(o *options) { o.runtimes = reg }
}

// WithModelSource gives the node the source of the tenants' models that
// its inference executor resolves and fetches through: the model registry
// on a server, the API on a worker-only node.
func WithModelSource(src ai.ModelSource) Option {
	return func(o *options) { o.models = src }
}

// inferenceDeps are what the inference kind needs besides the
// configuration: the runtime drivers, the model source and the metrics
// registry (nil: none).
type inferenceDeps struct {
	runtimes *ai.Registry
	models   ai.ModelSource
	metrics  prometheus.Registerer
}

// executors builds a node's executor registry from executors.* and ai.*,
// the one place a server and a worker-only node get their kinds from. The
// differences between them are src, where wasm modules come from (the
// module store, then the leader, on a server; the API on a worker-only
// node), and inf.models, where models come from.
func executors(ctx context.Context, cfg *config.Config, src wasmexec.Source, inf inferenceDeps, logger *slog.Logger) (*executor.Registry, error) {
	wc, hc := cfg.Executors.Wasm, cfg.Executors.HTTP
	o := executor.Options{
		Wasm: wasmexec.Config{
			Source:         src,
			MaxMemoryPages: uint32(wc.MaxMemoryPages),
			MaxOutputBytes: wc.MaxOutputBytes,
			Allow:          wc.Allow,
			TenantAllow:    wc.TenantAllow,
			CacheModules:   wc.CacheModules,
			MaxInstances:   wc.MaxInstances,
			CacheDir:       wc.CacheDir,
			Logger:         logger.With("component", "wasm"),
		},
		HTTP: httpexec.Config{
			AllowHosts:       hc.AllowHosts,
			TenantAllowHosts: hc.TenantAllowHosts,
			AllowPrivate:     hc.AllowPrivate,
			MaxResponseBytes: hc.MaxResponseBytes,
		},
	}
	if len(wc.TenantMaxMemoryPages) > 0 {
		o.Wasm.TenantMaxMemoryPages = make(map[string]uint32, len(wc.TenantMaxMemoryPages))
		for t, p := range wc.TenantMaxMemoryPages {
			o.Wasm.TenantMaxMemoryPages[t] = uint32(p)
		}
	}
	if len(cfg.AI.Runtimes) > 0 {
		var err error
		if o.Inference, err = inferenceConfig(cfg, inf, logger); err != nil {
			return nil, err
		}
	}
	r, err := executor.New(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("executors: %w", err)
	}
	return r, nil
}

// openModules opens a server's module store: executors.wasm.module_url,
// default file://<node.data_dir>/modules, through reg with bopts.
func openModules(ctx context.Context, cfg *config.Config, reg *blobstore.Registry, bopts blobstore.Options) (*modules.Store, error) {
	wc := cfg.Executors.Wasm
	u := wc.ModuleURL
	if u == "" {
		var err error
		if u, err = modules.DefaultURL(cfg.Node.DataDir); err != nil {
			return nil, err
		}
	}
	if err := reg.Check(u); err != nil {
		return nil, fmt.Errorf("executors.wasm.module_url: %w", err)
	}
	bopts.Name = modules.Kind
	store, err := modules.Open(ctx, reg, u, modules.Options{MaxBytes: wc.MaxModuleBytes}, bopts)
	if err != nil {
		return nil, fmt.Errorf("executors.wasm.module_url: %w", err)
	}
	return store, nil
}

// clientSource fetches modules over the API (GET
// /api/v1/modules/{digest}/content, as the task's tenant): the source of a
// worker-only node, which has no access to the servers' module bucket. The
// client checks the bytes against the digest.
func clientSource(c *client.Client) wasmexec.Source {
	return wasmexec.SourceFunc(c.ModuleContentFor)
}

// leaderSource fetches modules from the API at the address leader returns
// (a base URL such as http://10.0.0.1:8080; "" means there is none to ask,
// for example because this server leads, and answers NotFound). A follower
// whose in-process workers cannot read the leader's module bucket (file://
// buckets are local to a server) falls back to it. token is the bearer
// token sent, if any; opts add client options (mutual TLS with the node
// certificate).
func leaderSource(leader func() string, token string, opts ...client.Option) wasmexec.Source {
	var mu sync.Mutex
	clients := map[string]*client.Client{}
	return wasmexec.SourceFunc(func(ctx context.Context, tenant, digest string) ([]byte, error) {
		addr := leader()
		if addr == "" {
			return nil, greyerr.New(greyerr.NotFound, "module %s not found", digest)
		}
		mu.Lock()
		c := clients[addr]
		if c == nil {
			opts := append([]client.Option{client.WithUserAgent("greyd-wasm/1")}, opts...)
			if token != "" {
				opts = append(opts, client.WithToken(token))
			}
			var err error
			if c, err = client.New(addr, opts...); err != nil {
				mu.Unlock()
				return nil, err
			}
			clients[addr] = c
		}
		mu.Unlock()
		return c.ModuleContentFor(ctx, tenant, digest)
	})
}

// inferenceConfig translates the ai block into the inference executor's
// configuration.
func inferenceConfig(cfg *config.Config, inf inferenceDeps, logger *slog.Logger) (inference.Config, error) {
	a := &cfg.AI
	if inf.runtimes == nil {
		return inference.Config{}, &config.Error{Key: "ai.runtimes", Msg: "this build links no model runtime drivers"}
	}
	if inf.models == nil {
		return inference.Config{}, &config.Error{Key: "ai.runtimes", Msg: "this node has no model source to serve inference tasks from"}
	}
	c := inference.Config{
		Registry: inf.runtimes,
		Timeout:  a.InferenceTimeout.Std(),
		Source:   inf.models,
		CacheDir: a.CacheDir, CacheBytes: a.CacheBytes,
		Batching:     batch.Config{MaxBatchSize: a.Batching.MaxBatchSize, MaxQueueDelay: a.Batching.MaxQueueDelay.Std()},
		TenantModels: a.TenantModels,
		Registerer:   inf.metrics,
		Logger:       logger.With("component", "inference"),
	}
	if c.CacheDir == "" {
		c.CacheDir = filepath.Join(cfg.Node.DataDir, "model-cache")
	}
	for _, r := range a.Runtimes {
		rc := inference.RuntimeConfig{Name: r.Name, URL: r.URL}
		for _, f := range r.Frameworks {
			rc.Frameworks = append(rc.Frameworks, ai.Framework(f))
		}
		c.Runtimes = append(c.Runtimes, rc)
	}
	if len(a.Batching.Models) > 0 {
		c.ModelBatching = make(map[string]batch.Config, len(a.Batching.Models))
		for name, m := range a.Batching.Models {
			c.ModelBatching[name] = batch.Config{MaxBatchSize: m.MaxBatchSize, MaxQueueDelay: m.MaxQueueDelay.Std()}
		}
	}
	return c, nil
}

// workerConcurrency is how many tasks a node's worker pool runs at once:
// worker.concurrency, plus ai.concurrency when the node runs inference, so
// that enough inference tasks are in flight for batches to fill without
// taking the slots of other kinds.
func workerConcurrency(cfg *config.Config) int {
	n := cfg.Worker.Concurrency
	if len(cfg.AI.Runtimes) > 0 {
		n += cfg.AI.Concurrency
	}
	return n
}

// kindTimeouts are the default timeouts of kinds with their own
// (ai.inference_timeout for inference tasks), applied at submit.
func kindTimeouts(cfg *config.Config) map[string]time.Duration {
	return map[string]time.Duration{ai.Kind: cfg.AI.InferenceTimeout.Std()}
}

package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/executor"
	"github.com/grey-distributed/grey/executor/httpexec"
	wasmexec "github.com/grey-distributed/grey/executor/wasm"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/modules"
)

// executors builds a node's executor registry from executors.*, the one
// place a server and a worker-only node get their kinds from. The only
// difference between them is src, where wasm modules come from: the module
// store (then the leader) on a server, the API on a worker-only node.
func executors(ctx context.Context, cfg *config.Config, src wasmexec.Source, logger *slog.Logger) (*executor.Registry, error) {
	wc, hc := cfg.Executors.Wasm, cfg.Executors.HTTP
	o := executor.Options{
		Wasm: wasmexec.Config{
			Source:         src,
			MaxMemoryPages: uint32(wc.MaxMemoryPages),
			MaxOutputBytes: wc.MaxOutputBytes,
			Allow:          wc.Allow,
			TenantAllow:    wc.TenantAllow,
			CacheModules:   wc.CacheModules,
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

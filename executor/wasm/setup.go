package wasmexec

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/tetratelabs/wazero"

	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/modules"
)

// Setup builds what a greyd server needs for the wasm kind from its
// configuration: the module store (executors.wasm.module_url, default
// file://<node.data_dir>/modules, opened through reg with bopts) with the
// executor as its upload check, and the executor, reading modules from the
// store and then from fallback (nil: none; a follower passes LeaderSource).
func Setup(ctx context.Context, cfg *config.Config, reg *blobstore.Registry, bopts blobstore.Options, fallback Source, logger *slog.Logger) (*modules.Store, *Executor, error) {
	wc := cfg.Executors.Wasm
	u := wc.ModuleURL
	if u == "" {
		var err error
		if u, err = modules.DefaultURL(cfg.Node.DataDir); err != nil {
			return nil, nil, err
		}
	}
	if err := reg.Check(u); err != nil {
		return nil, nil, fmt.Errorf("executors.wasm.module_url: %w", err)
	}
	bopts.Name = modules.Kind
	store, err := modules.Open(ctx, reg, u, modules.Options{MaxBytes: wc.MaxModuleBytes}, bopts)
	if err != nil {
		return nil, nil, fmt.Errorf("executors.wasm.module_url: %w", err)
	}
	ecfg, err := ConfigFrom(cfg, Chain(store, fallback), logger)
	if err != nil {
		_ = store.Close()
		return nil, nil, err
	}
	ex, err := New(ctx, ecfg)
	if err != nil {
		_ = store.Close()
		return nil, nil, err
	}
	store.SetValidator(ex.Validate)
	return store, ex, nil
}

// ConfigFrom builds the executor's Config from executors.wasm, reading
// modules from src. Worker-only nodes use it with ClientSource.
func ConfigFrom(cfg *config.Config, src Source, logger *slog.Logger) (Config, error) {
	wc := cfg.Executors.Wasm
	ecfg := Config{
		Source:         src,
		MaxMemoryPages: uint32(wc.MaxMemoryPages),
		MaxOutputBytes: wc.MaxOutputBytes,
		Allow:          wc.Allow,
		TenantAllow:    wc.TenantAllow,
		CacheModules:   wc.CacheModules,
		Logger:         logger,
	}
	if len(wc.TenantMaxMemoryPages) > 0 {
		ecfg.TenantMaxMemoryPages = make(map[string]uint32, len(wc.TenantMaxMemoryPages))
		for t, p := range wc.TenantMaxMemoryPages {
			ecfg.TenantMaxMemoryPages[t] = uint32(p)
		}
	}
	if wc.CacheDir != "" {
		cc, err := wazero.NewCompilationCacheWithDir(wc.CacheDir)
		if err != nil {
			return Config{}, fmt.Errorf("executors.wasm.cache_dir: %w", err)
		}
		ecfg.CompilationCache = cc
	}
	return ecfg, nil
}

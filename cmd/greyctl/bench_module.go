package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/grey-distributed/grey/modules"
)

// wasmKind is the task kind that runs a module (executor/wasm).
const wasmKind = "wasm"

// benchModule is the module --module names: its bytes and digest.
type benchModule struct {
	path   string
	wasm   []byte
	digest string
}

// readBenchModule reads --module (a file, or - for stdin).
func readBenchModule(path string, readFile func(string) ([]byte, error), stdin io.Reader) (*benchModule, error) {
	var (
		b   []byte
		err error
	)
	if path == "-" {
		b, err = io.ReadAll(stdin)
	} else {
		b, err = readFile(path)
	}
	if err != nil {
		return nil, usageErrorf("--module: %w", err)
	}
	if len(b) == 0 {
		return nil, usageErrorf("--module: %s is empty", path)
	}
	return &benchModule{path: path, wasm: b, digest: modules.Digest(b)}, nil
}

// wasmPayload returns base (a JSON object, or nothing) with "module" set to
// digest: the payload of every task when --module is given. A base that
// already names another module is a usage error.
func wasmPayload(base json.RawMessage, digest string) (json.RawMessage, error) {
	fields := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(base)) > 0 {
		if err := json.Unmarshal(base, &fields); err != nil || fields == nil {
			return nil, usageErrorf("--payload: with --module it must be a JSON object (the wasm payload without \"module\"), got %s", base)
		}
	}
	if m, ok := fields["module"]; ok {
		var named string
		if err := json.Unmarshal(m, &named); err != nil {
			return nil, usageErrorf("--payload: \"module\" must be a string, got %s", m)
		}
		if d, _, err := modules.ParseDigest("module", named); err != nil || d != digest {
			return nil, usageErrorf("--payload names module %s but --module is %s", named, digest)
		}
	}
	d, err := json.Marshal(digest)
	if err != nil {
		return nil, fmt.Errorf("encode module digest: %w", err)
	}
	fields["module"] = d
	out, err := json.Marshal(fields)
	if err != nil {
		return nil, fmt.Errorf("encode payload: %w", err)
	}
	return out, nil
}

// scenarioTenants are the tenants a scenario submits as: each needs its own
// copy of the module (modules are per tenant).
func scenarioTenants(cfg benchConfig) []string {
	switch cfg.Scenario {
	case "latency":
		return []string{"bench-1"}
	case "noisy-neighbor":
		return []string{noisyTenant, quietTenant}
	default:
		out := make([]string, cfg.Tenants)
		for i := range out {
			out[i] = fmt.Sprintf("bench-%d", i+1)
		}
		return out
	}
}

// pushBenchModule uploads m for every tenant (as greyctl module push does)
// before the benchmark starts, and returns how long the first upload took:
// on a server that has not seen the module, that is the cold compile (the
// server compiles a module when it is uploaded) plus the upload itself.
func pushBenchModule(ctx context.Context, a *app, tenants []string, m *benchModule) (time.Duration, error) {
	var first time.Duration
	for i, tn := range tenants {
		c, err := a.client(tn)
		if err != nil {
			return 0, err
		}
		start := time.Now()
		got, err := c.PushModule(ctx, m.wasm)
		if err != nil {
			return 0, fmt.Errorf("push module %s for tenant %s: %w", m.path, tn, err)
		}
		if i == 0 {
			first = time.Since(start)
		}
		if got.Digest != m.digest {
			return 0, fmt.Errorf("push module %s for tenant %s: the server stored %s, want %s", m.path, tn, got.Digest, m.digest)
		}
	}
	return first, nil
}

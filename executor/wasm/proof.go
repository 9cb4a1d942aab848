package wasmexec

import (
	"encoding/json"
	"runtime/debug"
	"sync"

	"github.com/grey-distributed/grey/modules"
	"github.com/grey-distributed/grey/proof"
	"github.com/grey-distributed/grey/worker"
)

// wazeroVersion is the linked wazero module's version ("unknown" when the
// build recorded none).
var wazeroVersion = sync.OnceValue(func() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "github.com/tetratelabs/wazero" {
				return "wazero " + m.Version
			}
		}
	}
	return "unknown"
})

// Measure implements worker.Measurer: a wasm task's measurement is its
// module's content address, run by wazero.
func (e *Executor) Measure(j *worker.Job) proof.Executor {
	x := proof.Executor{Name: Kind, Version: wazeroVersion(), Digest: "unknown"}
	// Only the module matters here: a light decode (the task ran, so the
	// payload is valid).
	var p struct {
		Module string `json:"module"`
	}
	if json.Unmarshal(j.Payload, &p) == nil {
		if d, _, err := modules.ParseDigest("module", p.Module); err == nil {
			x.Digest = d // "sha256:<hex>"
		}
	}
	return x
}

// Deterministic implements worker.Deterministic: a wasm run is
// deterministic unless the task was granted the clock or randomness.
func (e *Executor) Deterministic(j *worker.Job) bool {
	ts, err := e.decode(j)
	return err == nil && !ts.clock && !ts.random
}

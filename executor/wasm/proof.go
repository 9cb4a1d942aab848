package wasmexec

import (
	"runtime/debug"
	"sync"

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
	if ts, err := e.decode(j); err == nil {
		x.Digest = ts.digest // "sha256:<hex>"
	}
	return x
}

// Deterministic implements worker.Deterministic: a wasm run is
// deterministic unless the task was granted the clock or randomness.
func (e *Executor) Deterministic(j *worker.Job) bool {
	ts, err := e.decode(j)
	return err == nil && !ts.clock && !ts.random
}

package wasmexec

import (
	"errors"
	"fmt"

	"github.com/grey-distributed/grey/worker"
)

// Error codes recorded in task.Error.Code for failed wasm attempts (the
// pool records "timeout" itself when an attempt outlives its timeout).
const (
	// CodeInvalidPayload: the payload is not a wasm payload (permanent).
	CodeInvalidPayload = "invalid_payload"
	// CodeModuleNotFound: the tenant has no module with that digest (permanent).
	CodeModuleNotFound = "module_not_found"
	// CodeModuleUnavailable: the module store could not be read (retryable).
	CodeModuleUnavailable = "module_unavailable"
	// CodeInvalidModule: the module does not compile or link (permanent).
	CodeInvalidModule = "wasm_invalid"
	// CodeCapabilityDenied: the task asked for a capability the
	// configuration does not allow (permanent).
	CodeCapabilityDenied = "wasm_capability_denied"
	// CodeTrap: the module trapped or its runtime panicked (permanent).
	CodeTrap = "wasm_trap"
	// CodeOOM: the module needed more memory than its limit (permanent).
	CodeOOM = "wasm_oom"
	// CodeExit: the module exited with a non-zero code (permanent).
	CodeExit = "wasm_exit"
	// CodeOutputTooLarge: stdout exceeded max_output_bytes (permanent).
	CodeOutputTooLarge = "output_too_large"
)

// permanent returns a coded error the pool does not retry.
func permanent(code string, format string, args ...any) error {
	return worker.Permanent(worker.Fail(code, "wasm: "+fmt.Sprintf(format, args...), nil))
}

// permanentWrap is permanent with a cause.
func permanentWrap(code string, err error, format string, args ...any) error {
	return worker.Permanent(worker.Fail(code, "wasm: "+fmt.Sprintf(format, args...), err))
}

// retryable returns a coded error the pool retries.
func retryable(code string, err error, format string, args ...any) error {
	return worker.Fail(code, "wasm: "+fmt.Sprintf(format, args...), err)
}

// CodeOf returns the code of an error returned by Work ("" if it has none).
func CodeOf(err error) string {
	var ce worker.CodedError
	if errors.As(err, &ce) {
		return ce.Code()
	}
	return ""
}

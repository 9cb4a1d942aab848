package inference

import (
	"context"
	"errors"
	"fmt"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/worker"
)

// Error codes recorded in task.Error.Code for failed inference attempts
// (the pool records "timeout" itself when an attempt outlives its timeout).
const (
	// CodeInvalidInput: the payload is not an inference request, or its
	// tensors do not fit the model (wrong name, shape, datatype or size)
	// (permanent).
	CodeInvalidInput = "invalid_input"
	// CodeModelNotFound: the tenant has no such model (permanent).
	CodeModelNotFound = "model_not_found"
	// CodeModelNotAllowed: ai.tenant_models does not list the model for
	// the tenant (permanent).
	CodeModelNotAllowed = "model_not_allowed"
	// CodeModelRegistry: the model registry could not be read (retryable).
	CodeModelRegistry = "model_registry"
	// CodeModelDigest: the fetched artifact does not hash to the model's
	// digest (permanent: the stored copy is not what was pushed).
	CodeModelDigest = "model_digest_mismatch"
	// CodeModelTooLarge: the model does not fit the node's model cache
	// (permanent here; routing may find a node with a larger cache).
	CodeModelTooLarge = "model_too_large"
	// CodeNoRuntime: no runtime of the node serves the model's framework
	// (permanent).
	CodeNoRuntime = "no_runtime"
	// CodeModelError: the artifact is not a model for its framework, or
	// the model raised (permanent).
	CodeModelError = "model_error"
	// CodeRuntimeUnavailable: the runtime failed (its process died, the
	// server did not answer): the task is retried (retryable).
	CodeRuntimeUnavailable = "runtime_unavailable"
)

// permanent returns a coded error the pool does not retry.
func permanent(code string, err error, format string, args ...any) error {
	return worker.Permanent(worker.Fail(code, "inference: "+fmt.Sprintf(format, args...), err))
}

// retryable returns a coded error the pool retries.
func retryable(code string, err error, format string, args ...any) error {
	return worker.Fail(code, "inference: "+fmt.Sprintf(format, args...), err)
}

// runtimeError maps an error of a runtime call (load or infer) to the
// task's error by the ai.Driver contract. what says which call.
func runtimeError(ctx context.Context, err error, what string) error {
	if ctx.Err() != nil {
		// The attempt's deadline or cancellation: the pool classifies it
		// (timeout, lease lost, shutdown).
		return fmt.Errorf("inference: %s: %w", what, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return retryable(CodeRuntimeUnavailable, err, "%s timed out in the runtime", what)
	}
	switch greyerr.CodeOf(err) {
	case greyerr.Unavailable, greyerr.ResourceExhausted, greyerr.NotFound, greyerr.Canceled, greyerr.DeadlineExceeded:
		return retryable(CodeRuntimeUnavailable, err, "%s", what)
	case greyerr.InvalidArgument:
		return permanent(CodeInvalidInput, err, "%s", what)
	}
	return permanent(CodeModelError, err, "%s", what)
}

// CodeOf returns the code of an error returned by Work ("" if it has none).
func CodeOf(err error) string {
	var ce worker.CodedError
	if errors.As(err, &ce) {
		return ce.Code()
	}
	return ""
}

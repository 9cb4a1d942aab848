package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/grey-distributed/grey/proof"
)

// Job is a leased task as its handler sees it.
type Job struct {
	Assignment
	// Replayed, on a replay (greyctl task replay), is the proven execution
	// being reproduced, nil otherwise: a handler may run the task as it
	// ran then (an inference padded to its batch's rows).
	Replayed *proof.Execution
}

// Decode unmarshals the payload into v.
func (j *Job) Decode(v any) error {
	if len(j.Payload) == 0 {
		return nil
	}
	if err := json.Unmarshal(j.Payload, v); err != nil {
		return Permanent(fmt.Errorf("decode %s payload: %w", j.Kind, err))
	}
	return nil
}

// Handler executes tasks of one kind. The result is marshalled to JSON
// (a json.RawMessage or []byte holding JSON is used as is). A returned error
// fails the attempt; it is retried unless it is Permanent.
type Handler interface {
	Work(ctx context.Context, j *Job) (any, error)
}

// Measurer is implemented by handlers that can say exactly what code runs a
// job (for example a wasm module's digest): the measurement in its proof.
// A handler without it is measured as the worker binary (see
// Options.Executor).
type Measurer interface {
	Measure(j *Job) proof.Executor
}

// Measured is a result that carries its own measurement: a handler that
// learns what ran a job only while running it (an inference task's model
// version, resolved from an alias, and its runtime) returns its result as a
// Measured. Value is the result proper (what is stored and digested);
// Executor, when set, replaces the handler's Measurer (or the worker
// binary) as the proof's measurement; Model, when set, is named in the
// proof. EncodeResult encodes Value alone.
type Measured struct {
	// Value is the result.
	Value any
	// Executor is the measurement, or nil for the usual one.
	Executor *proof.Executor
	// Model is the model that ran, or nil.
	Model *proof.Model
}

// Deterministic is implemented by handlers whose output depends only on the
// job (kind, payload, and what the payload names); only such jobs can be
// replayed to check a proof's output digest.
type Deterministic interface {
	Deterministic(j *Job) bool
}

// PayloadValidator is implemented by handlers that can tell from a
// payload alone that it can never run (a malformed shape, a value out of
// range): the server refuses such a task at submit (400, field payload)
// instead of storing it to fail later. It must not depend on anything a
// worker node could configure differently (allowlists, capabilities).
type PayloadValidator interface {
	ValidatePayload(payload json.RawMessage) error
}

// Wrapper is implemented by handlers that wrap another (middleware such as
// metrics); the pool and replays look through them for Measurer and
// Deterministic.
type Wrapper interface {
	Unwrap() Handler
}

// Unwrapped returns the first handler in h's chain of Wrappers that
// implements T, if any.
func Unwrapped[T any](h Handler) (T, bool) {
	for h != nil {
		if t, ok := h.(T); ok {
			return t, true
		}
		w, ok := h.(Wrapper)
		if !ok {
			break
		}
		h = w.Unwrap()
	}
	var zero T
	return zero, false
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, j *Job) (any, error)

// Work implements Handler.
func (f HandlerFunc) Work(ctx context.Context, j *Job) (any, error) { return f(ctx, j) }

type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying: the task fails at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// CodedError lets a handler give its failure a short machine-readable code.
type CodedError interface {
	error
	// Code is a short class such as "executor" or "http_4xx".
	Code() string
}

// Fail returns a handler error carrying a task error code (see CodedError):
// message, then ": cause" when cause is not nil. It is retried unless
// wrapped in Permanent.
func Fail(code, message string, cause error) error {
	return &codedError{code: code, msg: message, err: cause}
}

type codedError struct {
	code string
	msg  string
	err  error
}

func (e *codedError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *codedError) Unwrap() error { return e.err }

// Code implements CodedError.
func (e *codedError) Code() string { return e.code }

var _ CodedError = (*codedError)(nil)

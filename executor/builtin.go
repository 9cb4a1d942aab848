// Package executor holds Grey's task kinds and the Registry that puts them
// together: the built-ins (noop, echo, sleep and fail, for tests and
// benchmarks) and the wasm and http executors of the subpackages, each a
// worker.Handler. Servers and worker-only nodes build their executors with
// the same New, so they run the same kinds.
package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/grey-distributed/grey/worker"
)

// Builtins returns the built-in handlers by kind. All four are
// deterministic (worker.Deterministic): their output depends only on the
// payload, so their tasks can be replayed.
func Builtins() map[string]worker.Handler {
	return map[string]worker.Handler{
		"noop":  deterministic{work: noop},
		"echo":  deterministic{work: echo},
		"sleep": deterministic{work: sleep, validate: validateSleep},
		"fail":  deterministic{work: fail, validate: validateFail},
	}
}

// deterministic is a handler whose output depends only on its job, with
// an optional payload check for submit.
type deterministic struct {
	work     worker.HandlerFunc
	validate func(json.RawMessage) error
}

// Work implements worker.Handler.
func (d deterministic) Work(ctx context.Context, j *worker.Job) (any, error) { return d.work(ctx, j) }

// Deterministic implements worker.Deterministic.
func (deterministic) Deterministic(*worker.Job) bool { return true }

// ValidatePayload implements worker.PayloadValidator.
func (d deterministic) ValidatePayload(p json.RawMessage) error {
	if d.validate == nil {
		return nil
	}
	return d.validate(p)
}

// decodePayload decodes a built-in kind's payload as Job.Decode does (an
// absent payload is the zero value).
func decodePayload(p json.RawMessage, v any) error {
	if len(p) == 0 {
		return nil
	}
	return json.Unmarshal(p, v)
}

func validateSleep(p json.RawMessage) error {
	var sp SleepPayload
	if err := decodePayload(p, &sp); err != nil {
		return fmt.Errorf(`sleep: want {"ms": N}: %w`, err)
	}
	if sp.MS < 0 {
		return fmt.Errorf("sleep: ms must not be negative, got %d", sp.MS)
	}
	return nil
}

func validateFail(p json.RawMessage) error {
	var fp FailPayload
	if err := decodePayload(p, &fp); err != nil {
		return fmt.Errorf(`fail: want {"message": "…", "retryable": bool}: %w`, err)
	}
	return nil
}

func noop(context.Context, *worker.Job) (any, error) { return nil, nil }

// echo returns its payload as the result.
func echo(_ context.Context, j *worker.Job) (any, error) { return j.Payload, nil }

// SleepPayload is the payload of the sleep kind.
type SleepPayload struct {
	// MS is how long to sleep, in milliseconds.
	MS int64 `json:"ms"`
}

func sleep(ctx context.Context, j *worker.Job) (any, error) {
	var p SleepPayload
	if err := j.Decode(&p); err != nil {
		return nil, err
	}
	if p.MS < 0 {
		return nil, worker.Permanent(errors.New("sleep: ms must not be negative"))
	}
	t := time.NewTimer(time.Duration(p.MS) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return json.RawMessage(`{"slept_ms":` + itoa(p.MS) + `}`), nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// FailPayload is the payload of the fail kind.
type FailPayload struct {
	// Message is the error message.
	Message string `json:"message"`
	// Retryable says whether Grey should retry.
	Retryable bool `json:"retryable"`
}

func fail(_ context.Context, j *worker.Job) (any, error) {
	var p FailPayload
	if err := j.Decode(&p); err != nil {
		return nil, err
	}
	if p.Message == "" {
		p.Message = "failed on purpose"
	}
	err := errors.New(p.Message)
	if !p.Retryable {
		return nil, worker.Permanent(err)
	}
	return nil, err
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

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
	"time"

	"github.com/grey-distributed/grey/worker"
)

// Builtins returns the built-in handlers by kind. All four are
// deterministic (worker.Deterministic): their output depends only on the
// payload, so their tasks can be replayed.
func Builtins() map[string]worker.Handler {
	return map[string]worker.Handler{
		"noop":  deterministic(noop),
		"echo":  deterministic(echo),
		"sleep": deterministic(sleep),
		"fail":  deterministic(fail),
	}
}

// deterministic is a handler whose output depends only on its job.
type deterministic worker.HandlerFunc

// Work implements worker.Handler.
func (d deterministic) Work(ctx context.Context, j *worker.Job) (any, error) { return d(ctx, j) }

// Deterministic implements worker.Deterministic.
func (deterministic) Deterministic(*worker.Job) bool { return true }

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

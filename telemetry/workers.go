package telemetry

import (
	"context"
	"sync"

	"github.com/grey-distributed/grey/worker"
)

// WorkerSlots keeps grey_workers in step with a worker pool of a fixed
// number of slots: wrap every handler of the pool with Wrap.
type WorkerSlots struct {
	m     *Metrics
	slots int

	mu   sync.Mutex
	busy int
}

// WorkerSlots returns a tracker for a pool of slots (its concurrency) and
// sets grey_workers to 0 active, slots idle.
func (m *Metrics) WorkerSlots(slots int) *WorkerSlots {
	w := &WorkerSlots{m: m, slots: slots}
	m.SetWorkers(0, slots)
	return w
}

// Wrap returns h counting its runs as active slots. The pool still sees
// h's own measurement and determinism through the wrapper
// (worker.Wrapper).
func (w *WorkerSlots) Wrap(h worker.Handler) worker.Handler {
	return &slotHandler{w: w, h: h}
}

// slotHandler is a handler counted by WorkerSlots.
type slotHandler struct {
	w *WorkerSlots
	h worker.Handler
}

// Work implements worker.Handler.
func (s *slotHandler) Work(ctx context.Context, j *worker.Job) (any, error) {
	s.w.add(1)
	defer s.w.add(-1)
	return s.h.Work(ctx, j)
}

// Unwrap implements worker.Wrapper.
func (s *slotHandler) Unwrap() worker.Handler { return s.h }

func (w *WorkerSlots) add(d int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.busy += d
	w.m.SetWorkers(w.busy, max(w.slots-w.busy, 0))
}

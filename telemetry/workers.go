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

// Wrap returns h counting its runs as active slots.
func (w *WorkerSlots) Wrap(h worker.Handler) worker.Handler {
	return worker.HandlerFunc(func(ctx context.Context, j *worker.Job) (any, error) {
		w.add(1)
		defer w.add(-1)
		return h.Work(ctx, j)
	})
}

func (w *WorkerSlots) add(d int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.busy += d
	w.m.SetWorkers(w.busy, max(w.slots-w.busy, 0))
}

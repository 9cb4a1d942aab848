package client

import "github.com/grey-distributed/grey/worker"

// NewWorker returns a worker pool that leases tasks from the cluster through
// c, runs them with the handlers registered on it, and reports the outcomes:
//
//	w := c.NewWorker(worker.Options{WorkerID: "resize-1", Concurrency: 8})
//	w.HandleFunc("resize", func(ctx context.Context, j *worker.Job) (any, error) { ... })
//	err := w.Run(ctx)
//
// The pool speaks the same lease protocol as greyd's built-in workers.
func (c *Client) NewWorker(opts worker.Options) *worker.Pool {
	return worker.NewPool(c, opts)
}

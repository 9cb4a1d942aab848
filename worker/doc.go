// Package worker runs tasks: it holds the lease protocol (Coordinator and its
// messages) and Pool, which leases tasks, executes them with registered
// handlers, heartbeats its leases and reports outcomes in batches. The same
// Pool runs inside greyd (against the engine) and in remote workers (against
// the HTTP client), so both follow one protocol.
package worker

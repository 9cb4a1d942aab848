// Package engine is Grey's task service: it turns client and worker requests
// into Raft commands (stamping times, ids and retry decisions first, so the
// FSM stays deterministic), runs the leader's loops (delays, lease expiry,
// timeouts, garbage collection), and serves reads, waits and watches from
// the state store. It implements worker.Coordinator, so the in-process
// worker pool and the HTTP worker endpoints share one lease protocol.
package engine

// Package pyruntime is the ai.Driver for scheme "python": it starts Grey's
// Python model runtime (ai/runtime/python, embedded in the binary) as a
// child process of the worker, talks to it over stdin/stdout with
// length-prefixed frames (see protocol.go), and supervises it.
//
// The URL names the interpreter by its absolute path:
//
//	python:///usr/bin/python3?device=auto&threads=1&restart_min=100ms&restart_max=30s
//
// Query keys (all optional; an unknown key is an error):
//   - device: where a model goes when its LoadSpec says "": "auto" (CUDA
//     when torch sees a GPU, else CPU; the default), "cpu", "cuda", "cuda:N".
//   - threads: CPU threads per framework in the process (default 1). One
//     thread makes a reduction's rounding independent of the machine (a sum
//     split over a different number of threads may differ in its last bit,
//     which would break proofs' replay), and a worker runs several
//     processes and tasks on its cores: more threads each would
//     oversubscribe them. Raise it for large models on a dedicated worker.
//   - restart_min, restart_max: the exponential backoff between restarts
//     of a process that died (defaults 100ms and 30s; it resets once a
//     process has run for a minute).
//   - start_timeout: how long a new process may take to be ready (60s).
//   - load_timeout: how long a load may take when its context has no
//     deadline (5m); OpenOptions.Timeout bounds an inference likewise (30s).
//
// Supervision: a process that dies fails every call in flight with
// greyerr Unavailable (retryable); the next call starts a new process
// after the backoff, and models loaded before are loaded again in it on
// demand (the driver keeps every LoadSpec; an Infer for a key the new
// process lacks loads it first). The driver answers Load for a key it
// knows without asking the process, taking the spec's Path as the one to
// load from after a restart; when that file is gone by then, the Infer
// fails NotFound (load it again).
//
// Deadlines: the process runs requests one at a time. When a call's
// context ends while the process runs it, the call fails with the
// context's code (DeadlineExceeded, Canceled) and the process is killed
// and restarted: a Python thread cannot be cancelled, and a hung model
// would otherwise hold the runtime forever (the other calls in flight fail
// Unavailable and are retried). A call whose context ends while it still
// waits its turn is only dropped (a cancel frame).
//
// On Linux the process gets SIGKILL when the worker dies (parent-death
// signal); anywhere it exits when its stdin closes. Inputs or outputs past
// the frame limit (1 GiB less the header's 4 MiB) are refused with
// TooLarge / FailedPrecondition before a frame is written.
//
// The process's stdout is the protocol channel (the runtime points
// descriptor 1 at stderr before loading anything, so a model that prints
// cannot corrupt it); each stderr line goes to the logger.
package pyruntime

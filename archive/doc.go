// Package archive is Grey's port to durable task history: the finished
// tasks that have left (or will leave) the Raft state, with their spec,
// attempts, result, usage, cost and proof envelope.
//
// The package follows the gocloud.dev pattern. Store is the portable type:
// it validates arguments, scopes every call to one tenant, retries transient
// failures with exponential backoff, encodes the opaque list cursors,
// records metrics and traces, and maps errors to Grey's codes. A Driver
// implements only primitives, each with a written contract, and declares
// what it supports in Capabilities. Drivers register with a Registry by URL
// scheme (mem://, postgres://, ...); this package imports none of them, so
// the core stays free of database SDKs. archivetest is the conformance
// suite every driver passes.
package archive

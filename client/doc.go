// Package client is the Go client of Grey's HTTP API (/api/v1). It is what
// greyctl is built on, what the end-to-end tests drive clusters with, and the
// supported way for Go programs to submit, inspect, cancel, wait for and watch
// tasks, to read cluster state, and to run their own workers.
//
// # Servers and failover
//
// New takes a comma-separated list of server base URLs. A request goes to the
// server that answered last (initially the first in the list); when that
// server cannot be reached, or answers 503 Service Unavailable, the client
// moves on to the next one. GET and DELETE requests also move on after a
// connection broke mid-request; POST requests move on only when the connection
// could not be opened at all, so a submit is never silently sent twice (use
// Spec.IdempotencyKey to make retries of your own safe).
//
// # Errors
//
// Errors returned by the server are *greyerr.Error values carrying the code of
// the response body (and RetryAfter from the Retry-After header), so callers
// branch with greyerr.CodeOf or greyerr.Is. When no server answers, the error
// has code Unavailable; when ctx ends, it is ctx's error (code Canceled or
// DeadlineExceeded).
//
// # Tenants and usage
//
// CreateTenant, GetTenant, ListTenants, UpdateTenant and DeleteTenant manage
// tenants and their quotas (tenant.Quota), and Usage reports usage and cost
// per tenant. These are admin routes: where the server has an admin token,
// pass it with WithToken; without it they fail with code Unauthenticated.
// Quota refusals of submits carry the quota's name in the error's Reason
// (e.g. "max_queued", "submit_rate") and, for 429s, RetryAfter.
//
// # Workers
//
// Client implements worker.Coordinator over the /api/v1/workers endpoints, so
// a worker.Pool runs against a remote cluster exactly as the built-in workers
// run inside greyd; NewWorker returns such a pool.
//
// # Stability
//
// The exported API follows the HTTP contract of api/openapi.yaml; additions
// are backwards compatible.
package client

// Package scheduler decides, on the leader, which ready task goes to which
// worker next. It keeps leader-local queues derived from the state store
// (rebuilt when leadership is gained, fed by the store's change stream):
// per-tenant ready heaps ordered by priority, a delay heap for run_at and
// retry backoff, and a deadline heap for leases and timeouts.
//
// Tenants are served by weighted deficit round robin: each visit adds the
// tenant's weight to its deficit and every dispatched task costs one, so
// over any backlogged window each tenant's share of dispatches tends to
// weight/Σweights and a flood from one tenant cannot delay another by more
// than one round. Within a tenant, higher priority first, then older first.
//
// The scheduler only proposes; every lease is granted by a Raft command
// that the state store re-checks, so a stale queue entry can never lease a
// task twice.
package scheduler

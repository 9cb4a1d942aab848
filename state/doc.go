// Package state is Grey's replicated state store: the in-memory, indexed
// picture of tasks that the Raft FSM mutates. Writes are deterministic
// functions of (Raft index, request): the requests carry every timestamp and
// id, so no clock, randomness or I/O is used here. Reads are safe from any
// goroutine. Stored tasks are immutable once published: every write clones
// the task it changes, so a reader's pointer never changes under it.
//
// The tenant is the leading component of every index; every read takes the
// tenant and answers NotFound for another tenant's task.
package state

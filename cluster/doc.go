// Package cluster owns Grey's replicated core: the hashicorp/raft node with
// raft-wal as log and stable store and file snapshots, the typed command log
// (MsgType), and the FSM that applies commands to the state store.
//
// The FSM is deterministic and dumb: Apply decodes a command and calls one
// state-store method. Times, ids and retry decisions are stamped by the
// caller before the command enters Raft.
package cluster

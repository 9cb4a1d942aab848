package cluster

import (
	"encoding/json"
	"fmt"
)

// MsgType identifies a command in the Raft log. Values are explicit and
// append-only: never renumber or reuse one; retire a type with a
// Deprecated comment.
type MsgType uint8

// The command types.
const (
	// SubmitMsg carries a state.SubmitRequest.
	SubmitMsg MsgType = 1
	// LeaseMsg carries a state.LeaseRequest.
	LeaseMsg MsgType = 2
	// StartMsg carries a state.StartRequest.
	StartMsg MsgType = 3
	// HeartbeatMsg carries a state.HeartbeatRequest.
	HeartbeatMsg MsgType = 4
	// CompleteMsg carries a state.CompleteRequest.
	CompleteMsg MsgType = 5
	// FailMsg carries a state.FailRequest reported by a worker.
	FailMsg MsgType = 6
	// RetryMsg carries a state.FailRequest issued by the leader itself
	// (expired leases, timeouts); it retries or fails the attempt.
	RetryMsg MsgType = 7
	// CancelMsg carries a state.CancelRequest.
	CancelMsg MsgType = 8
	// GCMsg carries a state.GCRequest.
	GCMsg MsgType = 9
	// BatchMsg carries several commands applied in order in one entry.
	BatchMsg MsgType = 10
	// TenantPutMsg carries a state.TenantPutRequest.
	TenantPutMsg MsgType = 11
	// TenantDeleteMsg carries a state.TenantDeleteRequest.
	TenantDeleteMsg MsgType = 12
	// NodeRegisterMsg carries a state.NodeRegisterRequest.
	NodeRegisterMsg MsgType = 13
	// NodeRemoveMsg carries a state.NodeRemoveRequest.
	NodeRemoveMsg MsgType = 14
	// ClusterInitMsg carries a state.ClusterInitRequest.
	ClusterInitMsg MsgType = 15
)

// IgnoreUnknownTypeFlag marks a command that an older server may skip if it
// does not know the type (for rolling upgrades).
const IgnoreUnknownTypeFlag MsgType = 128

// String names the type.
func (t MsgType) String() string {
	switch t &^ IgnoreUnknownTypeFlag {
	case SubmitMsg:
		return "submit"
	case LeaseMsg:
		return "lease"
	case StartMsg:
		return "start"
	case HeartbeatMsg:
		return "heartbeat"
	case CompleteMsg:
		return "complete"
	case FailMsg:
		return "fail"
	case RetryMsg:
		return "retry"
	case CancelMsg:
		return "cancel"
	case GCMsg:
		return "gc"
	case BatchMsg:
		return "batch"
	case TenantPutMsg:
		return "tenant_put"
	case TenantDeleteMsg:
		return "tenant_delete"
	case NodeRegisterMsg:
		return "node_register"
	case NodeRemoveMsg:
		return "node_remove"
	case ClusterInitMsg:
		return "cluster_init"
	}
	return fmt.Sprintf("msg(%d)", uint8(t))
}

// Command is one typed command, used inside a batch.
type Command struct {
	Type MsgType         `json:"type"`
	Data json.RawMessage `json:"data"`
}

// NewCommand encodes msg as a command of type t.
func NewCommand(t MsgType, msg any) (Command, error) {
	b, err := json.Marshal(msg)
	if err != nil {
		return Command{}, fmt.Errorf("encode %s: %w", t, err)
	}
	return Command{Type: t, Data: b}, nil
}

// Encode writes the type byte followed by the JSON payload.
func Encode(t MsgType, msg any) ([]byte, error) {
	b, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", t, err)
	}
	out := make([]byte, 1+len(b))
	out[0] = byte(t)
	copy(out[1:], b)
	return out, nil
}

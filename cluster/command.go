package cluster

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	gojson "github.com/goccy/go-json"
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
	// BatchMsg carries several commands applied in order in one entry, as
	// a JSON array of {type, data}: the format of earlier versions, still
	// applied from old logs but no longer written (see FramedBatchMsg).
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
	// FramedBatchMsg carries several commands applied in order in one
	// entry, framed in binary: for each, its type byte, its length as a
	// uvarint and its payload. Unlike BatchMsg (a JSON array, which the
	// encoder had to re-validate and the decoder re-scan), the payloads are
	// copied once and sliced without parsing. Batch is its one writer.
	FramedBatchMsg MsgType = 16
	// ProofBlobMsg carries raw bytes, not JSON: a proof envelope that a
	// CompleteMsg later in the same FramedBatchMsg names by position (its
	// items' Proof, 1-based over the batch's blobs). Only valid inside a
	// framed batch; the bytes are copied and sliced, never parsed.
	ProofBlobMsg MsgType = 17
	// APIKeyPutMsg carries a state.APIKeyPutRequest: a new API key.
	APIKeyPutMsg MsgType = 18
	// APIKeyRevokeMsg carries a state.APIKeyRevokeRequest.
	APIKeyRevokeMsg MsgType = 19
	// APIKeyUsedMsg carries a state.APIKeyUsedRequest: the leader's batch
	// of keys' last-used times (at most about one per key a minute).
	APIKeyUsedMsg MsgType = 20
	// BlobBytesMsg carries a state.BlobBytesRequest: bytes a tenant's
	// objects in blob buckets gained (a reservation, refused over quota) or
	// lost.
	BlobBytesMsg MsgType = 21
	// SinkAckMsg carries a state.SinkAckRequest: a sink (the archive, an
	// event stream) acknowledged the finished tasks through a Raft index.
	SinkAckMsg MsgType = 22
	// PackedProofMsg is a ProofBlobMsg packed by the leader: the 32-byte
	// SHA-256 of the envelope (its proof id), then the envelope as one S2
	// block. The servers store it as it comes, without hashing or
	// decompressing it, and the log, the replication and the servers'
	// memory carry about a sixth of the bytes. The leader writes it only
	// when every server has said it reads it (state.FeaturePackedProofs).
	PackedProofMsg MsgType = 23
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
	case FramedBatchMsg:
		return "framed_batch"
	case ProofBlobMsg:
		return "proof_blob"
	case APIKeyPutMsg:
		return "apikey_put"
	case APIKeyRevokeMsg:
		return "apikey_revoke"
	case APIKeyUsedMsg:
		return "apikey_used"
	case BlobBytesMsg:
		return "blob_bytes"
	case SinkAckMsg:
		return "sink_ack"
	case PackedProofMsg:
		return "packed_proof"
	}
	return fmt.Sprintf("msg(%d)", uint8(t))
}

// command is one typed command inside a batch entry, as decoded.
type command struct {
	Type MsgType         `json:"type"`
	Data json.RawMessage `json:"data"`
}

// Encode writes one command's entry: the type byte followed by the JSON
// payload. Batch entries are written by Batch, never here.
func Encode(t MsgType, msg any) ([]byte, error) {
	if t == BatchMsg || t == FramedBatchMsg || t == ProofBlobMsg || t == PackedProofMsg {
		return nil, fmt.Errorf("encode %s: build batches with Batch", t)
	}
	// goccy/go-json, as Add: the same bytes as encoding/json
	// (TestCommandCodecMatchesEncodingJSON) for less CPU on every lease.
	b, err := gojson.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", t, err)
	}
	out := make([]byte, 1+len(b))
	out[0] = byte(t)
	copy(out[1:], b)
	return out, nil
}

// decodeFramed splits a FramedBatchMsg payload into its commands; their
// Data alias b.
func decodeFramed(b []byte) ([]command, error) {
	var cmds []command
	for len(b) > 0 {
		t := MsgType(b[0])
		n, k := binary.Uvarint(b[1:])
		if k <= 0 || uint64(len(b)-1-k) < n {
			return nil, fmt.Errorf("framed batch: command %d is truncated", len(cmds))
		}
		start := 1 + k
		cmds = append(cmds, command{Type: t, Data: b[start : start+int(n)]})
		b = b[start+int(n):]
	}
	return cmds, nil
}

package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	gojson "github.com/goccy/go-json"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/tenant"
)

// Cmd is one command bound to the type of the FSM's result for it, so that
// Apply returns that type and no caller casts an any. Build one with the
// constructor named after its command (Submit, Lease, ...): they are the
// one place that pairs a MsgType with its request and result types, next
// to the FSM switch that honours the pairing.
type Cmd[R any] struct {
	t   MsgType
	msg any
}

// Type is the command's MsgType.
func (c Cmd[R]) Type() MsgType { return c.t }

// Submit stores new tasks.
func Submit(r *state.SubmitRequest) Cmd[*state.SubmitResult] {
	return Cmd[*state.SubmitResult]{SubmitMsg, r}
}

// Lease grants leases on ready tasks.
func Lease(r *state.LeaseRequest) Cmd[*state.LeaseResult] {
	return Cmd[*state.LeaseResult]{LeaseMsg, r}
}

// Start marks leased attempts running; one outcome per item.
func Start(r *state.StartRequest) Cmd[[]state.Outcome] { return Cmd[[]state.Outcome]{StartMsg, r} }

// Heartbeat extends leases; the result lists those lost.
func Heartbeat(r *state.HeartbeatRequest) Cmd[[]state.Lost] {
	return Cmd[[]state.Lost]{HeartbeatMsg, r}
}

// Complete records completed attempts; one outcome per item. Its proofs
// travel as blobs of the same batch (Batch.Blob), not in its JSON.
func Complete(r *state.CompleteRequest) Cmd[[]state.Outcome] {
	return Cmd[[]state.Outcome]{CompleteMsg, r}
}

// Fail records attempts a worker reports failed; one outcome per item.
func Fail(r *state.FailRequest) Cmd[[]state.Outcome] { return Cmd[[]state.Outcome]{FailMsg, r} }

// Retry fails or retries attempts the leader itself ends (expired leases,
// timeouts); one outcome per item.
func Retry(r *state.FailRequest) Cmd[[]state.Outcome] { return Cmd[[]state.Outcome]{RetryMsg, r} }

// Cancel cancels a task; the result is the cancelled task.
func Cancel(r *state.CancelRequest) Cmd[*task.Task] { return Cmd[*task.Task]{CancelMsg, r} }

// GC removes finished tasks; the result is how many went.
func GC(r *state.GCRequest) Cmd[int] { return Cmd[int]{GCMsg, r} }

// SinkAck moves a sink's cursor in the feed of finished tasks; it has no
// result.
func SinkAck(r *state.SinkAckRequest) Cmd[struct{}] { return Cmd[struct{}]{SinkAckMsg, r} }

// TenantPut creates or replaces a tenant; the result is the stored tenant.
func TenantPut(r *state.TenantPutRequest) Cmd[*tenant.Tenant] {
	return Cmd[*tenant.Tenant]{TenantPutMsg, r}
}

// TenantDelete deletes a tenant; the result is the deleted tenant.
func TenantDelete(r *state.TenantDeleteRequest) Cmd[*tenant.Tenant] {
	return Cmd[*tenant.Tenant]{TenantDeleteMsg, r}
}

// NodeRegister registers or updates a node; the result is the stored node.
func NodeRegister(r *state.NodeRegisterRequest) Cmd[*state.Node] {
	return Cmd[*state.Node]{NodeRegisterMsg, r}
}

// NodeRemove removes a node; it has no result.
func NodeRemove(r *state.NodeRemoveRequest) Cmd[struct{}] { return Cmd[struct{}]{NodeRemoveMsg, r} }

// ClusterInit sets the cluster id once; the result is the id in force.
func ClusterInit(r *state.ClusterInitRequest) Cmd[string] { return Cmd[string]{ClusterInitMsg, r} }

// APIKeyPut stores a new API key; the result is the stored key.
func APIKeyPut(r *state.APIKeyPutRequest) Cmd[*state.APIKey] {
	return Cmd[*state.APIKey]{APIKeyPutMsg, r}
}

// APIKeyRevoke revokes an API key; the result is the revoked key.
func APIKeyRevoke(r *state.APIKeyRevokeRequest) Cmd[*state.APIKey] {
	return Cmd[*state.APIKey]{APIKeyRevokeMsg, r}
}

// APIKeyUsed records keys' last-used times; the result is how many changed.
func APIKeyUsed(r *state.APIKeyUsedRequest) Cmd[int] { return Cmd[int]{APIKeyUsedMsg, r} }

// BlobBytes adds to or takes from a tenant's bytes in blob buckets; the
// result is its blob bytes after the command.
func BlobBytes(r *state.BlobBytesRequest) Cmd[int64] { return Cmd[int64]{BlobBytesMsg, r} }

// Entry is the command's encoded log entry (see Encode).
func (c Cmd[R]) Entry() ([]byte, error) { return Encode(c.t, c.msg) }

// Apply replicates one command through n and returns the FSM's result as
// the command's type. It returns an Unavailable error when n is not the
// leader, and the store's error when the command was refused.
func Apply[R any](ctx context.Context, n *Node, c Cmd[R]) (R, error) {
	var zero R
	b, err := c.Entry()
	if err != nil {
		return zero, greyerr.Wrap(greyerr.Internal, err, "encode command")
	}
	resp, err := n.propose(ctx, c.t, b)
	if err != nil {
		return zero, err
	}
	return resultAs[R](c.t, resp)
}

// resultAs converts the FSM's response to R: an error response is
// returned as the error; nil is R's zero value (a command without a
// result); any other type is a bug in the pairing of command and result.
func resultAs[R any](t MsgType, resp any) (R, error) {
	var zero R
	switch v := resp.(type) {
	case nil:
		return zero, nil
	case R:
		return v, nil
	case error:
		return zero, v
	}
	return zero, greyerr.New(greyerr.Internal, "%s: the state machine returned %T, want %T", t, resp, zero)
}

// Batch builds one replicated entry of several commands, applied in order
// and atomically (no reader sees part of it). It is the one writer of the
// framed entry encoding (FramedBatchMsg): for each command, its type byte,
// its payload's length as a uvarint and the payload. The zero Batch is
// empty and ready to use; a Batch is not safe for concurrent use.
type Batch struct {
	items []batchItem
	size  int   // the entry's length so far
	err   error // the first encoding error
}

// batchItem is one command of a Batch, framed by Entry.
type batchItem struct {
	t    MsgType
	data []byte
}

// Slot names one command's result in a batch's results. The zero Slot
// names none: its result is R's zero value.
type Slot[R any] struct{ i int } // 1-based

// BatchResults are the results of an applied batch, read through the
// Slot each Add returned.
type BatchResults struct{ res []any }

// Of is the slot's command's result.
func (s Slot[R]) Of(r BatchResults) R {
	var v R
	if s.i > 0 {
		// The constructors pair each command with the FSM's result
		// type (TestEveryCommandReturnsItsType applies each), and ApplyBatch
		// turned error results into its error.
		v, _ = r.res[s.i-1].(R)
	}
	return v
}

// Add appends c to b and returns the slot of its result.
func Add[R any](b *Batch, c Cmd[R]) Slot[R] {
	data, err := gojson.Marshal(c.msg)
	if err != nil && b.err == nil {
		b.err = fmt.Errorf("encode %s: %w", c.t, err)
	}
	b.frame(c.t, data)
	return Slot[R]{len(b.items)}
}

// Blob appends raw bytes that a later Complete of the same batch names by
// position (CompleteItem.Proof, 1-based over the batch's blobs). They are
// framed as they are, never encoded or parsed, and copied only by Entry:
// p must not change until the batch is applied.
func (b *Batch) Blob(p []byte) {
	b.frame(ProofBlobMsg, p)
}

// PackedBlob is Blob for an envelope packed with state.PackProof: the
// later Complete names it by position among the batch's blobs the same
// way. Only for clusters whose servers all read PackedProofMsg.
func (b *Batch) PackedBlob(p state.ProofBlob) {
	id, err := hex.DecodeString(p.ID)
	if err != nil || len(id) != sha256.Size || p.Packed == nil {
		if b.err == nil {
			b.err = fmt.Errorf("packed proof blob: id %q is not a hex SHA-256, or nothing is packed", p.ID)
		}
		return
	}
	data := make([]byte, 0, len(id)+len(p.Packed))
	b.frame(PackedProofMsg, append(append(data, id...), p.Packed...))
}

func (b *Batch) frame(t MsgType, data []byte) {
	if b.items == nil {
		b.items = make([]batchItem, 0, 4)
		b.size = 1
	}
	b.items = append(b.items, batchItem{t, data})
	b.size += 1 + binary.MaxVarintLen64 + len(data)
}

// Len is the number of commands (blobs included) in b.
func (b *Batch) Len() int { return len(b.items) }

// Entry is the encoded log entry, a FramedBatchMsg; each call writes a
// new one.
func (b *Batch) Entry() ([]byte, error) {
	if b.err != nil {
		return nil, b.err
	}
	out := make([]byte, 1, max(b.size, 1))
	out[0] = byte(FramedBatchMsg)
	for _, it := range b.items {
		out = append(out, byte(it.t))
		out = binary.AppendUvarint(out, uint64(len(it.data)))
		out = append(out, it.data...)
	}
	return out, nil
}

// ApplyBatch replicates b as one entry through n. A command's error
// result (a refused submit, say) is returned as the error; the other
// commands of the entry have applied all the same.
func ApplyBatch(ctx context.Context, n *Node, b *Batch) (BatchResults, error) {
	entry, err := b.Entry()
	if err != nil {
		return BatchResults{}, greyerr.Wrap(greyerr.Internal, err, "encode batch")
	}
	resp, err := n.propose(ctx, BatchMsg, entry)
	if err != nil {
		return BatchResults{}, err
	}
	return b.results(resp)
}

// results checks the FSM's response to b: one result per command, the
// first error result (a command the store refused) as the error.
func (b *Batch) results(resp any) (BatchResults, error) {
	res, ok := resp.([]any)
	if !ok || len(res) != len(b.items) {
		return BatchResults{}, greyerr.New(greyerr.Internal, "batch: the state machine returned %T for %d commands", resp, len(b.items))
	}
	for _, r := range res {
		if err, ok := r.(error); ok {
			return BatchResults{}, err
		}
	}
	return BatchResults{res}, nil
}

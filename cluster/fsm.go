package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	gojson "github.com/goccy/go-json"
	"io"
	"log/slog"

	"github.com/hashicorp/raft"

	"github.com/grey-distributed/grey/state"
)

// FSM applies committed commands to the state store.
type FSM struct {
	store   *state.Store
	logger  *slog.Logger
	inBatch bool              // applying a batch entry (only the FSM goroutine touches it)
	blobs   []state.ProofBlob // the current batch's proof blobs
}

// NewFSM returns an FSM over store.
func NewFSM(store *state.Store, logger *slog.Logger) *FSM {
	return &FSM{store: store, logger: logger}
}

var _ raft.BatchingFSM = (*FSM)(nil)

// Apply implements raft.FSM.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand || len(l.Data) == 0 {
		return nil
	}
	return f.apply(l.Index, MsgType(l.Data[0]), l.Data[1:])
}

// ApplyBatch implements raft.BatchingFSM.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	for i, l := range logs {
		out[i] = f.Apply(l)
	}
	return out
}

// apply decodes one command and calls one store method. A command that does
// not decode is a corrupt log: it panics rather than diverge from the peers.
func (f *FSM) apply(index uint64, t MsgType, data []byte) any {
	dec := func(v any) {
		if err := gojson.Unmarshal(data, v); err != nil {
			panic(fmt.Sprintf("grey fsm: index %d: decode %s: %v", index, t, err))
		}
	}
	switch t {
	case SubmitMsg:
		var r state.SubmitRequest
		dec(&r)
		res, err := f.store.Submit(index, &r)
		if err != nil {
			return err
		}
		return res
	case LeaseMsg:
		var r state.LeaseRequest
		dec(&r)
		return f.store.Lease(index, &r)
	case StartMsg:
		var r state.StartRequest
		dec(&r)
		return f.store.Start(index, &r)
	case HeartbeatMsg:
		var r state.HeartbeatRequest
		dec(&r)
		return f.store.Heartbeat(index, &r)
	case CompleteMsg:
		var r state.CompleteRequest
		dec(&r)
		if len(r.Proofs) == 0 {
			r.Blobs = f.blobs // the proof blobs earlier in its batch
		}
		return f.store.Complete(index, &r)
	case FailMsg, RetryMsg:
		var r state.FailRequest
		dec(&r)
		return f.store.Fail(index, &r)
	case CancelMsg:
		var r state.CancelRequest
		dec(&r)
		t, err := f.store.Cancel(index, &r)
		if err != nil {
			return err
		}
		return t
	case GCMsg:
		var r state.GCRequest
		dec(&r)
		return f.store.GC(index, &r)
	case SinkAckMsg:
		var r state.SinkAckRequest
		dec(&r)
		if err := f.store.SinkAck(index, &r); err != nil {
			return err
		}
		return nil
	case TenantPutMsg:
		var r state.TenantPutRequest
		dec(&r)
		t, err := f.store.PutTenant(index, &r)
		if err != nil {
			return err
		}
		return t
	case TenantDeleteMsg:
		var r state.TenantDeleteRequest
		dec(&r)
		t, err := f.store.DeleteTenant(index, &r)
		if err != nil {
			return err
		}
		return t
	case NodeRegisterMsg:
		var r state.NodeRegisterRequest
		dec(&r)
		n, err := f.store.RegisterNode(index, &r)
		if err != nil {
			return err
		}
		return n
	case NodeRemoveMsg:
		var r state.NodeRemoveRequest
		dec(&r)
		if err := f.store.RemoveNode(index, &r); err != nil {
			return err
		}
		return nil
	case ClusterInitMsg:
		var r state.ClusterInitRequest
		dec(&r)
		return f.store.InitCluster(index, &r)
	case APIKeyPutMsg:
		var r state.APIKeyPutRequest
		dec(&r)
		k, err := f.store.PutAPIKey(index, &r)
		if err != nil {
			return err
		}
		return k
	case APIKeyRevokeMsg:
		var r state.APIKeyRevokeRequest
		dec(&r)
		k, err := f.store.RevokeAPIKey(index, &r)
		if err != nil {
			return err
		}
		return k
	case APIKeyUsedMsg:
		var r state.APIKeyUsedRequest
		dec(&r)
		return f.store.MarkAPIKeysUsed(index, &r)
	case BlobBytesMsg:
		var r state.BlobBytesRequest
		dec(&r)
		n, err := f.store.AddBlobBytes(index, &r)
		if err != nil {
			return err
		}
		return n
	case BatchMsg, FramedBatchMsg:
		var cmds []command
		if t == FramedBatchMsg {
			var err error
			if cmds, err = decodeFramed(data); err != nil {
				panic(fmt.Sprintf("grey fsm: index %d: %v", index, err))
			}
		} else {
			dec(&cmds)
		}
		out := make([]any, len(cmds))
		// One Raft entry is one atomic write: no reader sees a task
		// started but not yet completed by the same entry.
		if !f.inBatch {
			f.inBatch = true
			f.store.BeginBatch(index)
			defer func() { f.inBatch = false; f.store.EndBatch() }()
		}
		f.blobs = f.blobs[:0]
		defer func() { clear(f.blobs); f.blobs = f.blobs[:0] }() // the store keeps its own references
		for i, c := range cmds {
			switch c.Type {
			case ProofBlobMsg:
				// Copied: the entry's buffer is not ours to keep.
				f.blobs = append(f.blobs, state.ProofBlob{Env: append([]byte(nil), c.Data...)})
				continue
			case PackedProofMsg:
				if len(c.Data) <= sha256.Size {
					panic(fmt.Sprintf("grey fsm: index %d: packed proof of %d bytes", index, len(c.Data)))
				}
				f.blobs = append(f.blobs, state.ProofBlob{
					ID:     hex.EncodeToString(c.Data[:sha256.Size]),
					Packed: append([]byte(nil), c.Data[sha256.Size:]...),
				})
				continue
			}
			out[i] = f.apply(index, c.Type, c.Data)
		}
		return out
	}
	if t&IgnoreUnknownTypeFlag != 0 {
		f.logger.Warn("ignoring unknown command type", "type", uint8(t), "index", index)
		return nil
	}
	panic(fmt.Sprintf("grey fsm: index %d: unknown command type %d", index, uint8(t)))
}

// Snapshot implements raft.FSM.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{sn: f.store.Snapshot()}, nil
}

// Restore implements raft.FSM.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	return f.store.Restore(rc)
}

type fsmSnapshot struct{ sn *state.Snapshot }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.sn.WriteTo(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("write snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

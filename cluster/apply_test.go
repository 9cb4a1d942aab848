package cluster_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/grey-distributed/grey/cluster"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/tenant"
)

// leader opens a one-server cluster and waits until it leads.
func leader(t *testing.T) (*cluster.Node, *state.Store) { return greytest.Leader(t) }

// Apply returns each command's own result type, a refused command's error
// as the error, and nothing for a command without a result.
func TestApplyIsTyped(t *testing.T) {
	t.Parallel()
	n, st := leader(t)
	ctx := context.Background()
	sub, err := cluster.Apply(ctx, n, cluster.Submit(&state.SubmitRequest{Now: t0, AutoCreate: &tenant.Tenant{ID: "acme"},
		Tasks: []*task.Task{mkTask(idA, "acme", nil), mkTask(idB, "acme", nil)}}))
	if err != nil || len(sub.Tasks) != 2 || len(sub.Created) != 2 || !sub.Created[0] {
		t.Fatalf("submit = %+v, %v", sub, err)
	}
	if _, err := cluster.Apply(ctx, n, cluster.Submit(&state.SubmitRequest{Now: t0, Tasks: []*task.Task{mkTask(idA, "acme", nil)}})); !greyerr.Is(err, greyerr.AlreadyExists) {
		t.Fatalf("resubmit err = %v, want AlreadyExists", err)
	}
	lease, err := cluster.Apply(ctx, n, cluster.Lease(&state.LeaseRequest{Now: t0, WorkerID: "w1", Deadline: t0.Add(time.Minute),
		Items: []state.Ref{{TaskID: idA, Attempt: 1}, {TaskID: idB, Attempt: 2}}}))
	if err != nil || len(lease.Leased) != 1 || len(lease.Refused) != 1 || lease.Refused[0] != idB {
		t.Fatalf("lease = %+v, %v; want A leased, B refused (wrong attempt)", lease, err)
	}
	id, err := cluster.Apply(ctx, n, cluster.ClusterInit(&state.ClusterInitRequest{Now: t0, ClusterID: "c1"}))
	if err != nil || id != "c1" {
		t.Fatalf("cluster init = %q, %v", id, err)
	}
	if _, err := cluster.Apply(ctx, n, cluster.NodeRemove(&state.NodeRemoveRequest{Now: t0, ID: "nobody"})); err != nil && !greyerr.Is(err, greyerr.NotFound) {
		t.Fatalf("node remove err = %v", err)
	}
	if st.ClusterID() != "c1" {
		t.Fatal("the store did not apply the commands")
	}
}

// ApplyBatch applies one framed entry and hands back each command's result
// through its slot; blobs are named by position by the completion.
func TestApplyBatchSlots(t *testing.T) {
	t.Parallel()
	n, st := leader(t)
	ctx := context.Background()
	ref := func(id string) state.Ref { return state.Ref{TaskID: id, Attempt: 1} }
	if _, err := cluster.Apply(ctx, n, cluster.Submit(&state.SubmitRequest{Now: t0, AutoCreate: &tenant.Tenant{ID: "acme"},
		Tasks: []*task.Task{mkTask(idA, "acme", nil), mkTask(idB, "acme", nil)}})); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Apply(ctx, n, cluster.Lease(&state.LeaseRequest{Now: t0, WorkerID: "w1", Deadline: t0.Add(time.Minute), Items: []state.Ref{ref(idA), ref(idB)}})); err != nil {
		t.Fatal(err)
	}
	var b cluster.Batch
	var unused cluster.Slot[[]state.Outcome]
	b.Blob([]byte(`{"envelope":1}`))
	starts := cluster.Add(&b, cluster.Start(&state.StartRequest{Now: t0, WorkerID: "w1", Items: []state.StartItem{{Ref: ref(idA), At: t0}, {Ref: state.Ref{TaskID: idC, Attempt: 1}, At: t0}}}))
	dones := cluster.Add(&b, cluster.Complete(&state.CompleteRequest{Now: t0, WorkerID: "w1", Items: []state.CompleteItem{{Ref: ref(idA), Result: json.RawMessage(`1`), Proof: 1, At: t0}}}))
	fails := cluster.Add(&b, cluster.Fail(&state.FailRequest{Now: t0, WorkerID: "w2", Items: []state.FailItem{{Ref: ref(idB), Error: task.Error{Message: "x"}, At: t0}}}))
	if b.Len() != 4 {
		t.Fatalf("Len = %d, want 4 (a blob and three commands)", b.Len())
	}
	res, err := cluster.ApplyBatch(ctx, n, &b)
	if err != nil {
		t.Fatal(err)
	}
	if o := starts.Of(res); len(o) != 2 || !o[0].Accepted || o[1].Accepted {
		t.Errorf("starts = %+v; want A accepted, the unknown task refused", o)
	}
	if o := dones.Of(res); len(o) != 1 || !o[0].Accepted {
		t.Errorf("completions = %+v", o)
	}
	if o := fails.Of(res); len(o) != 1 || o[0].Accepted {
		t.Errorf("failures = %+v; want refused (another worker's lease)", o)
	}
	if o := unused.Of(res); o != nil {
		t.Errorf("the zero slot = %+v, want nothing", o)
	}
	a, _ := st.Get("acme", idA)
	if a.Status != task.Completed || string(st.Proof(a.ProofID)) != `{"envelope":1}` {
		t.Fatalf("A = %s with proof %q", a.Status, st.Proof(a.ProofID))
	}
}

// A batch whose command does not encode is refused before it is proposed;
// Encode writes single commands only.
func TestBatchEncodingErrors(t *testing.T) {
	t.Parallel()
	var b cluster.Batch
	cluster.Add(&b, cluster.Complete(&state.CompleteRequest{Now: t0, Items: []state.CompleteItem{{Result: json.RawMessage(`{not json`)}}}))
	if _, err := b.Entry(); err == nil {
		t.Fatal("a batch with an unencodable command has an entry")
	}
	var empty cluster.Batch
	if e, err := empty.Entry(); err != nil || len(e) != 1 || cluster.MsgType(e[0]) != cluster.FramedBatchMsg {
		t.Fatalf("empty batch entry = %v, %v", e, err)
	}
	for _, mt := range []cluster.MsgType{cluster.BatchMsg, cluster.FramedBatchMsg, cluster.ProofBlobMsg} {
		if _, err := cluster.Encode(mt, []int{1}); err == nil {
			t.Errorf("Encode(%s) wrote a batch by hand", mt)
		}
	}
}

// fsmResult applies c's entry at index and checks that the FSM's response
// is c's result type (or nil for a command without a result), which is
// what Apply and Slot.Of rely on.
func fsmResult[R any](t *testing.T, fsm *cluster.FSM, index uint64, c cluster.Cmd[R]) {
	t.Helper()
	e, err := c.Entry()
	if err != nil {
		t.Fatal(err)
	}
	resp := fsm.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: e})
	if err, ok := resp.(error); ok {
		t.Fatalf("%s: %v", c.Type(), err)
	}
	if _, ok := resp.(R); !ok && resp != nil {
		var want R
		t.Errorf("%s: the FSM returned %T, the command promises %T", c.Type(), resp, want)
	}
}

func TestEveryCommandReturnsItsType(t *testing.T) {
	t.Parallel()
	fsm := cluster.NewFSM(state.New(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	ref := func(id string) state.Ref { return state.Ref{TaskID: id, Attempt: 1} }
	key := &state.APIKey{ID: "k1", Tenant: "acme", CreatedAt: t0}
	i := uint64(0)
	next := func() uint64 { i++; return i }
	fsmResult(t, fsm, next(), cluster.Submit(&state.SubmitRequest{Now: t0, AutoCreate: &tenant.Tenant{ID: "acme"}, Tasks: []*task.Task{mkTask(idA, "acme", nil), mkTask(idB, "acme", nil), mkTask(idC, "acme", nil)}}))
	fsmResult(t, fsm, next(), cluster.Lease(&state.LeaseRequest{Now: t0, WorkerID: "w1", Deadline: t0.Add(time.Minute), Items: []state.Ref{ref(idA), ref(idB)}}))
	fsmResult(t, fsm, next(), cluster.Heartbeat(&state.HeartbeatRequest{Now: t0, WorkerID: "w1", Deadline: t0.Add(time.Minute), Items: []state.Ref{ref(idA)}}))
	fsmResult(t, fsm, next(), cluster.Start(&state.StartRequest{Now: t0, WorkerID: "w1", Items: []state.StartItem{{Ref: ref(idA), At: t0}}}))
	fsmResult(t, fsm, next(), cluster.Complete(&state.CompleteRequest{Now: t0, WorkerID: "w1", Items: []state.CompleteItem{{Ref: ref(idA), At: t0}}}))
	fsmResult(t, fsm, next(), cluster.Fail(&state.FailRequest{Now: t0, WorkerID: "w1", Items: []state.FailItem{{Ref: ref(idB), At: t0}}}))
	fsmResult(t, fsm, next(), cluster.Retry(&state.FailRequest{Now: t0, Items: []state.FailItem{{Ref: ref(idB), At: t0}}}))
	fsmResult(t, fsm, next(), cluster.Cancel(&state.CancelRequest{Now: t0, TenantID: "acme", TaskID: idC}))
	fsmResult(t, fsm, next(), cluster.GC(&state.GCRequest{Now: t0, Before: t0}))
	fsmResult(t, fsm, next(), cluster.TenantPut(&state.TenantPutRequest{Now: t0, Tenant: &tenant.Tenant{ID: "globex"}, Create: true}))
	fsmResult(t, fsm, next(), cluster.TenantDelete(&state.TenantDeleteRequest{Now: t0, ID: "globex"}))
	fsmResult(t, fsm, next(), cluster.NodeRegister(&state.NodeRegisterRequest{Now: t0, Node: state.Node{ID: "w9", Role: "worker"}}))
	fsmResult(t, fsm, next(), cluster.NodeRemove(&state.NodeRemoveRequest{Now: t0, ID: "w9"}))
	fsmResult(t, fsm, next(), cluster.ClusterInit(&state.ClusterInitRequest{Now: t0, ClusterID: "c1"}))
	fsmResult(t, fsm, next(), cluster.APIKeyPut(&state.APIKeyPutRequest{Now: t0, Key: key}))
	fsmResult(t, fsm, next(), cluster.APIKeyUsed(&state.APIKeyUsedRequest{Now: t0, Uses: []state.APIKeyUse{{ID: "k1", At: t0}}}))
	fsmResult(t, fsm, next(), cluster.APIKeyRevoke(&state.APIKeyRevokeRequest{Now: t0, ID: "k1", Tenant: "acme"}))
	fsmResult(t, fsm, next(), cluster.BlobBytes(&state.BlobBytesRequest{Now: t0, Tenant: "acme", Delta: 42}))
}

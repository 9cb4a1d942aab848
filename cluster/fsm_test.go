package cluster_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/grey-distributed/grey/cluster"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/tenant"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func mkTask(id, tenant string, mod func(*task.Task)) *task.Task {
	t := &task.Task{ID: id, TenantID: tenant, Spec: task.Spec{Kind: "noop", Type: task.Stateless}, Status: task.Pending, CreatedAt: t0}
	if mod != nil {
		mod(t)
	}
	return t
}

const (
	idA = "01900000-0000-7000-8000-00000000000a"
	idB = "01900000-0000-7000-8000-00000000000b"
	idC = "01900000-0000-7000-8000-00000000000c"
)

// history is a fixed command log exercising every message type.
func history(t *testing.T) [][]byte {
	t.Helper()
	enc := func(mt cluster.MsgType, v any) []byte { return encode(t, mt, v) }
	retryAt := t0.Add(time.Second)
	return [][]byte{
		enc(cluster.SubmitMsg, &state.SubmitRequest{Now: t0, AutoCreate: &tenant.Tenant{ID: "acme"}, Tasks: []*task.Task{
			mkTask(idA, "acme", nil),
			mkTask(idB, "acme", func(x *task.Task) { x.DependsOn = []string{idA}; x.Type = task.Pipeline }),
			mkTask(idC, "acme", func(x *task.Task) { x.StateKey = "k"; x.Type = task.Stateful }),
		}}),
		enc(cluster.LeaseMsg, &state.LeaseRequest{Now: t0, WorkerID: "w1", Deadline: t0.Add(time.Minute), Items: []state.Ref{{TaskID: idA, Attempt: 1}, {TaskID: idB, Attempt: 1}, {TaskID: idC, Attempt: 1}}}),
		enc(cluster.HeartbeatMsg, &state.HeartbeatRequest{Now: t0, WorkerID: "w1", Deadline: t0.Add(2 * time.Minute), Items: []state.Ref{{TaskID: idA, Attempt: 1}}}),
		batchEntry(t, func(b *cluster.Batch) {
			cluster.Add(b, cluster.Start(historyStart()))
			cluster.Add(b, cluster.Complete(historyDone()))
		}),
		enc(cluster.RetryMsg, &state.FailRequest{Now: t0, Items: []state.FailItem{{Ref: state.Ref{TaskID: idC, Attempt: 1}, Error: task.Error{Message: "lease expired", Retryable: true, Code: "lease_expired"}, RetryAt: &retryAt, At: t0}}}),
		enc(cluster.CancelMsg, &state.CancelRequest{Now: t0, TenantID: "acme", TaskID: idC}),
		enc(cluster.GCMsg, &state.GCRequest{Now: t0, Before: t0.Add(-time.Hour)}),
	}
}

func apply(t *testing.T, logs [][]byte) (*state.Store, []any) {
	t.Helper()
	st := state.New()
	fsm := cluster.NewFSM(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var out []any
	for i, b := range logs {
		out = append(out, fsm.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: b}))
	}
	return st, out
}

func snapshotBytes(t *testing.T, st *state.Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := st.Snapshot().WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFSMAppliesHistory(t *testing.T) {
	t.Parallel()
	st, out := apply(t, history(t))
	lease := out[1].(*state.LeaseResult)
	// B waits for A; C is first on its key: A and C leased, B refused.
	if len(lease.Leased) != 2 || len(lease.Refused) != 1 || lease.Refused[0] != idB {
		t.Fatalf("lease = %+v", lease)
	}
	a, _ := st.Get("acme", idA)
	if a.Status != task.Completed || string(a.Result) != "42" || a.Lease != nil {
		t.Fatalf("A = %+v", a)
	}
	if !st.Ready(idB) {
		t.Fatal("B not ready after A completed")
	}
	c, _ := st.Get("acme", idC)
	if c.Status != task.Cancelled || len(c.Attempts) != 1 {
		t.Fatalf("C = %+v", c)
	}
	if _, err := st.Get("globex", idA); !greyerr.Is(err, greyerr.NotFound) {
		t.Fatal("another tenant sees the task")
	}
}

func TestFSMIsDeterministicAndSnapshotsRoundTrip(t *testing.T) {
	t.Parallel()
	h := history(t)
	s1, _ := apply(t, h)
	s2, _ := apply(t, h)
	b1, b2 := snapshotBytes(t, s1), snapshotBytes(t, s2)
	if !bytes.Equal(b1, b2) {
		t.Fatal("same log, different state")
	}
	restored := state.New()
	if err := restored.Restore(bytes.NewReader(b1)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snapshotBytes(t, restored), b1) {
		t.Fatal("restore changed the state")
	}
	if !restored.Ready(idB) || restored.Index() != s1.Index() {
		t.Fatal("derived indexes not rebuilt")
	}
}

func TestRestoreRejectsGarbage(t *testing.T) {
	t.Parallel()
	st := state.New()
	for _, in := range []string{"", "not json", `{"version":99}` + "\n", `{"version":1}` + "\n{broken"} {
		if err := st.Restore(bytes.NewReader([]byte(in))); err == nil {
			t.Errorf("restore %q: no error", in)
		}
	}
}

func TestFSMPanicsOnUnknownCommand(t *testing.T) {
	t.Parallel()
	fsm := cluster.NewFSM(state.New(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	// Unknown but flagged ignorable: skipped.
	if r := fsm.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: []byte{byte(cluster.IgnoreUnknownTypeFlag | 77), '{', '}'}}); r != nil {
		t.Fatalf("ignorable command returned %v", r)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("unknown command did not panic")
		}
	}()
	fsm.Apply(&raft.Log{Index: 2, Type: raft.LogCommand, Data: []byte{77, '{', '}'}})
}

// Proof envelopes shared by a batch are stored once, survive snapshots, and
// go when the last task that refers to them is collected; signing keys
// outlive their node.
func TestFSMProofsAndKeys(t *testing.T) {
	t.Parallel()
	enc := func(mt cluster.MsgType, v any) []byte { return encode(t, mt, v) }
	env := json.RawMessage(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"k","sig":"AA=="}]}`)
	ref := func(id string) state.Ref { return state.Ref{TaskID: id, Attempt: 1} }
	logs := [][]byte{
		enc(cluster.NodeRegisterMsg, &state.NodeRegisterRequest{Now: t0, Node: state.Node{ID: "w9", Role: "worker", KeyID: "k9", PublicKey: []byte("0123456789abcdef0123456789abcdef")}}),
		enc(cluster.SubmitMsg, &state.SubmitRequest{Now: t0, AutoCreate: &tenant.Tenant{ID: "acme"}, Tasks: []*task.Task{mkTask(idA, "acme", nil), mkTask(idB, "acme", nil), mkTask(idC, "acme", nil)}}),
		enc(cluster.LeaseMsg, &state.LeaseRequest{Now: t0, WorkerID: "w1", Deadline: t0.Add(time.Minute), Items: []state.Ref{ref(idA), ref(idB), ref(idC)}}),
		// A and B share proof 1; C finishes an hour later with its own.
		enc(cluster.CompleteMsg, &state.CompleteRequest{Now: t0, WorkerID: "w1", Proofs: [][]byte{env},
			Items: []state.CompleteItem{{Ref: ref(idA), Proof: 1, At: t0}, {Ref: ref(idB), Proof: 1, At: t0}}}),
		enc(cluster.CompleteMsg, &state.CompleteRequest{Now: t0.Add(time.Hour), WorkerID: "w1", Proofs: [][]byte{[]byte(`{"other":1}`)},
			Items: []state.CompleteItem{{Ref: ref(idC), Proof: 1, At: t0.Add(time.Hour)}}}),
		enc(cluster.NodeRemoveMsg, &state.NodeRemoveRequest{Now: t0, ID: "w9"}),
	}
	st, _ := apply(t, logs)
	a, _ := st.Get("acme", idA)
	b, _ := st.Get("acme", idB)
	c, _ := st.Get("acme", idC)
	if a.ProofID == "" || a.ProofID != b.ProofID || c.ProofID == a.ProofID || st.ProofCount() != 2 {
		t.Fatalf("proof ids A %q B %q C %q, %d stored; want A=B≠C, 2 stored", a.ProofID, b.ProofID, c.ProofID, st.ProofCount())
	}
	if string(st.Proof(a.ProofID)) != string(env) {
		t.Fatalf("stored envelope = %s", st.Proof(a.ProofID))
	}
	if k := st.SigningKey("k9"); k == nil || k.NodeID != "w9" || st.Node("w9") != nil {
		t.Fatalf("key after node removal = %+v (node %+v); want the key kept, the node gone", k, st.Node("w9"))
	}
	restored := state.New()
	if err := restored.Restore(bytes.NewReader(snapshotBytes(t, st))); err != nil {
		t.Fatal(err)
	}
	if restored.ProofCount() != 2 || string(restored.Proof(a.ProofID)) != string(env) || restored.SigningKey("k9") == nil {
		t.Fatal("proofs or keys lost in the snapshot")
	}
	// Collect A and B (finished at t0), not C: A and B's proof goes.
	fsm := cluster.NewFSM(restored, slog.New(slog.NewTextHandler(io.Discard, nil)))
	fsm.Apply(&raft.Log{Index: restored.Index() + 1, Type: raft.LogCommand, Data: enc(cluster.GCMsg, &state.GCRequest{Now: t0.Add(2 * time.Hour), Before: t0.Add(time.Minute)})})
	if restored.ProofCount() != 1 || restored.Proof(a.ProofID) != nil || restored.Proof(c.ProofID) == nil {
		t.Fatalf("after GC: %d proofs, A's %v, C's %v; want only C's", restored.ProofCount(), restored.Proof(a.ProofID) != nil, restored.Proof(c.ProofID) != nil)
	}
}

// Batches are written framed; the JSON batches of earlier versions still
// apply the same way (their entries stay in old logs).
func TestBatchEncodingsApplyAlike(t *testing.T) {
	t.Parallel()
	h := history(t)
	framed := -1
	for i, b := range h {
		if cluster.MsgType(b[0]) == cluster.FramedBatchMsg {
			framed = i
		}
	}
	if framed < 0 {
		t.Fatal("history has no framed batch: Batch should frame")
	}
	// The JSON array of {type, data} that earlier versions wrote.
	type jsonCommand struct {
		Type cluster.MsgType `json:"type"`
		Data any             `json:"data"`
	}
	js, err := json.Marshal([]jsonCommand{{cluster.StartMsg, historyStart()}, {cluster.CompleteMsg, historyDone()}})
	if err != nil {
		t.Fatal(err)
	}
	old := append([][]byte(nil), h...)
	old[framed] = append([]byte{byte(cluster.BatchMsg)}, js...)
	a, _ := apply(t, h)
	b, _ := apply(t, old)
	if !bytes.Equal(snapshotBytes(t, a), snapshotBytes(t, b)) {
		t.Fatal("a JSON batch and a framed batch of the same commands applied differently")
	}
}

// Proof envelopes travel as raw blob commands in a framed batch, named by
// position by the completion that follows.
func TestFSMProofBlobsInBatch(t *testing.T) {
	t.Parallel()
	enc := func(mt cluster.MsgType, v any) []byte { return encode(t, mt, v) }
	ref := func(id string) state.Ref { return state.Ref{TaskID: id, Attempt: 1} }
	blob1, blob2 := []byte(`{"envelope":1}`), []byte(`{"envelope":2}`)
	done := &state.CompleteRequest{Now: t0, WorkerID: "w1",
		Items: []state.CompleteItem{{Ref: ref(idA), Proof: 2, At: t0}, {Ref: ref(idB), Proof: 1, At: t0}, {Ref: ref(idC), At: t0}}}
	logs := [][]byte{
		enc(cluster.SubmitMsg, &state.SubmitRequest{Now: t0, AutoCreate: &tenant.Tenant{ID: "acme"}, Tasks: []*task.Task{mkTask(idA, "acme", nil), mkTask(idB, "acme", nil), mkTask(idC, "acme", nil)}}),
		enc(cluster.LeaseMsg, &state.LeaseRequest{Now: t0, WorkerID: "w1", Deadline: t0.Add(time.Minute), Items: []state.Ref{ref(idA), ref(idB), ref(idC)}}),
		batchEntry(t, func(b *cluster.Batch) {
			b.Blob(blob1)
			b.Blob(blob2)
			cluster.Add(b, cluster.Complete(done))
		}),
	}
	st, out := apply(t, logs)
	res := out[2].([]any)
	if len(res) != 3 || res[0] != nil || res[1] != nil {
		t.Fatalf("batch results = %#v; want nothing for the blobs", res)
	}
	a, _ := st.Get("acme", idA)
	b, _ := st.Get("acme", idB)
	c, _ := st.Get("acme", idC)
	if string(st.Proof(a.ProofID)) != string(blob2) || string(st.Proof(b.ProofID)) != string(blob1) || c.ProofID != "" {
		t.Fatalf("A's proof %q, B's %q, C's id %q", st.Proof(a.ProofID), st.Proof(b.ProofID), c.ProofID)
	}
}

// encode is cluster.Encode for tests.
func encode(t *testing.T, mt cluster.MsgType, v any) []byte {
	t.Helper()
	b, err := cluster.Encode(mt, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// batchEntry is the framed entry that fill builds.
func batchEntry(t *testing.T, fill func(*cluster.Batch)) []byte {
	t.Helper()
	var b cluster.Batch
	fill(&b)
	e, err := b.Entry()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// historyStart and historyDone are the start and completion of A that the
// history batches.
func historyStart() *state.StartRequest {
	return &state.StartRequest{Now: t0, WorkerID: "w1", Items: []state.StartItem{{Ref: state.Ref{TaskID: idA, Attempt: 1}, At: t0}}}
}

func historyDone() *state.CompleteRequest {
	return &state.CompleteRequest{Now: t0, WorkerID: "w1", Items: []state.CompleteItem{{Ref: state.Ref{TaskID: idA, Attempt: 1}, Result: json.RawMessage(`42`), At: t0}}}
}

// A packed proof blob (the leader's hash and S2 block) applies like the
// raw one: same proof id, same bytes back, the same snapshot; it may sit
// beside a raw blob in one batch, and a packed blob too short to hold a
// hash stops the FSM rather than storing garbage.
func TestFSMPackedProofBlobs(t *testing.T) {
	t.Parallel()
	enc := func(mt cluster.MsgType, v any) []byte { return encode(t, mt, v) }
	ref := func(id string) state.Ref { return state.Ref{TaskID: id, Attempt: 1} }
	env1 := []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"` + strings.Repeat("eyJfdHlwZSI6", 200) + `"}`)
	env2 := []byte(`{"envelope":2}`)
	done := &state.CompleteRequest{Now: t0, WorkerID: "w1",
		Items: []state.CompleteItem{{Ref: ref(idA), Proof: 1, At: t0}, {Ref: ref(idB), Proof: 2, At: t0}, {Ref: ref(idC), Proof: 1, At: t0}}}
	head := [][]byte{
		enc(cluster.SubmitMsg, &state.SubmitRequest{Now: t0, AutoCreate: &tenant.Tenant{ID: "acme"}, Tasks: []*task.Task{mkTask(idA, "acme", nil), mkTask(idB, "acme", nil), mkTask(idC, "acme", nil)}}),
		enc(cluster.LeaseMsg, &state.LeaseRequest{Now: t0, WorkerID: "w1", Deadline: t0.Add(time.Minute), Items: []state.Ref{ref(idA), ref(idB), ref(idC)}}),
	}
	raw := append(append([][]byte(nil), head...), batchEntry(t, func(b *cluster.Batch) {
		b.Blob(env1)
		b.Blob(env2)
		cluster.Add(b, cluster.Complete(done))
	}))
	packed := append(append([][]byte(nil), head...), batchEntry(t, func(b *cluster.Batch) {
		b.PackedBlob(state.PackProof(env1))
		b.Blob(env2) // an older leader's blob beside a packed one
		cluster.Add(b, cluster.Complete(done))
	}))
	if len(packed[2]) >= len(raw[2]) {
		t.Fatalf("packed entry is %d bytes, raw %d: packing saved nothing", len(packed[2]), len(raw[2]))
	}
	want, _ := apply(t, raw)
	got, _ := apply(t, packed)
	a, _ := got.Get("acme", idA)
	b, _ := got.Get("acme", idB)
	c, _ := got.Get("acme", idC)
	sum := sha256.Sum256(env1)
	if a.ProofID != hex.EncodeToString(sum[:]) || c.ProofID != a.ProofID {
		t.Fatalf("packed proof ids %q, %q; want the envelope's SHA-256 %x", a.ProofID, c.ProofID, sum)
	}
	if !bytes.Equal(got.Proof(a.ProofID), env1) || !bytes.Equal(got.Proof(b.ProofID), env2) {
		t.Fatalf("proofs back: %q / %q", got.Proof(a.ProofID), got.Proof(b.ProofID))
	}
	if !bytes.Equal(snapshotBytes(t, got), snapshotBytes(t, want)) {
		t.Fatal("a packed and a raw proof blob left different snapshots")
	}

	var bad cluster.Batch
	bad.PackedBlob(state.ProofBlob{ID: "not-hex", Packed: []byte{1}})
	if _, err := bad.Entry(); err == nil {
		t.Fatal("a packed blob without a SHA-256 id was framed")
	}
	if _, err := cluster.Encode(cluster.PackedProofMsg, env1); err == nil {
		t.Fatal("Encode wrote a packed proof outside a batch")
	}
	short := []byte{byte(cluster.FramedBatchMsg), byte(cluster.PackedProofMsg), 4, 1, 2, 3, 4}
	defer func() {
		if recover() == nil {
			t.Fatal("a packed proof of 4 bytes was applied")
		}
	}()
	apply(t, append(append([][]byte(nil), head...), short))
}

package engine_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/executor"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/proof"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/tenant"
	"github.com/grey-distributed/grey/worker"
)

func boolp(b bool) *bool { return &b }

// Every completed task gets a proof by default; it verifies with the
// cluster's registered key against the stored payload and result, and the
// task view says only that it has one.
func TestProofSignedForCompletedTask(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{})
	n.StartWorkers(t, worker.Options{Concurrency: 2}, nil)
	// Non-canonical JSON in and out: the digests must still match what is
	// stored.
	tk := submit(t, n.Engine, "acme", task.Spec{Kind: "echo", Payload: json.RawMessage(`{ "b": "<&>",  "a": [1, 2] }`)})[0]
	got := wait(t, n.Engine, "acme", tk.ID)
	if got.Status != task.Completed || len(got.ProofID) != 64 {
		t.Fatalf("task = status %s proof_id %q; want completed with a proof id", got.Status, got.ProofID)
	}
	rec, err := n.Engine.Proof(context.Background(), "acme", tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Verified || rec.Problem != "" || rec.NodeID != "test-1" || rec.ProofID != got.ProofID {
		t.Fatalf("record = verified %v problem %q node %q", rec.Verified, rec.Problem, rec.NodeID)
	}
	if rec.Short.TaskID != tk.ID || rec.Short.Platform != proof.PlatformSoftware || !strings.HasPrefix(rec.Short.Measurement, "sha256:") || rec.Short.Signature == "" || rec.Short.Timestamp == 0 {
		t.Fatalf("short form = %+v", rec.Short)
	}
	// Independently: the envelope verifies with the key from SigningKeys
	// and binds this task's digests.
	keys := n.Engine.SigningKeys()
	if len(keys) != 1 || keys[0].KeyID != n.Signer.Key.KeyID() || keys[0].NodeID != "test-1" {
		t.Fatalf("signing keys = %+v", keys)
	}
	st, err := proof.Verify(rec.Envelope, proof.NewKeyRing(keys[0].PublicKey), proof.Expect{
		TaskID: tk.ID, TenantID: "acme", InputDigest: proof.JSONDigest(got.Payload), OutputDigest: proof.JSONDigest(got.Result),
	})
	if err != nil {
		t.Fatal(err)
	}
	// The digests are of the RFC 8785 form, whatever the spacing and key
	// order of the bytes submitted and stored.
	canon := `{"a":[1,2],"b":"<&>"}`
	if x, out, _ := st.Find(tk.ID); x.InputDigest != proof.Digest([]byte(canon)) || out != proof.Digest([]byte(canon)) {
		t.Fatalf("digests %s / %s, want the SHA-256 of %s", x.InputDigest, out, canon)
	}
	x, _, ok := st.Find(tk.ID)
	if !ok || st.Predicate.TenantID != "acme" || st.Predicate.NodeID != "test-1" || x.Kind != "echo" || x.Attempt != 1 || x.Executor.Name != "grey-worker" || x.FinishedAt.Before(x.StartedAt) {
		t.Fatalf("predicate = %+v", st.Predicate)
	}
	// Another tenant learns nothing.
	if _, err := n.Engine.Proof(context.Background(), "globex", tk.ID); !greyerr.Is(err, greyerr.NotFound) {
		t.Fatalf("other tenant's proof: %v, want not found", err)
	}
}

// A worker whose proof does not match what it reported is caught by the
// server's check, naming what differs.
func TestProofMismatchIsReported(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{})
	ctx := context.Background()
	tk := submit(t, n.Engine, "acme", task.Spec{Kind: "echo", Payload: json.RawMessage(`"in"`)})[0]
	lr, err := n.Engine.Lease(ctx, &worker.LeaseRequest{WorkerID: "w1", Kinds: []string{"echo"}, Max: 1, Wait: task.Duration(5 * time.Second)})
	if err != nil || len(lr.Tasks) != 1 || !lr.Tasks[0].Prove {
		t.Fatalf("lease = %+v, %v; want one task asking for a proof", lr, err)
	}
	a := lr.Tasks[0]
	now := time.Now().UTC()
	env, err := n.Signer.Sign(ctx, a.TenantID, proof.Run{TaskID: a.TaskID, Kind: a.Kind, Payload: a.Payload,
		Output: []byte(`"something else"`), Attempt: a.Attempt, StartedAt: now, FinishedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	res, err := n.Engine.Complete(ctx, &worker.CompleteRequest{WorkerID: "w1", Reports: []worker.Report{
		{TaskID: a.TaskID, Attempt: a.Attempt, Status: task.Completed, Result: json.RawMessage(`"in"`), Proof: 1, At: now},
	}, Proofs: []json.RawMessage{env}})
	if err != nil || !res.Results[0].Accepted {
		t.Fatalf("complete = %+v, %v", res, err)
	}
	rec, err := n.Engine.Proof(ctx, "acme", tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Verified || !strings.Contains(rec.Problem, "output digest differs") {
		t.Fatalf("record = verified %v problem %q; want an output digest mismatch", rec.Verified, rec.Problem)
	}
}

// require_proof makes a proof mandatory: a worker without a key cannot
// complete the task; proofs off leave other tasks without one, and the 404
// says why.
func TestRequireProofAndProofsOff(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{ProofsOff: true, Retry: fastRetry()})
	// A pool without a signer (an application's own worker).
	ctx, stop := context.WithCancel(context.Background())
	pool := worker.NewPool(n.Engine, worker.Options{Concurrency: 2, Logger: greytest.Logger(t)})
	pool.Handle("echo", executor.Builtins()["echo"])
	done := make(chan error, 1)
	go func() { done <- pool.Run(ctx) }()
	t.Cleanup(func() { stop(); <-done })
	plain := submit(t, n.Engine, "acme", task.Spec{Kind: "echo", Payload: json.RawMessage(`1`)})[0]
	strict := submit(t, n.Engine, "acme", task.Spec{Kind: "echo", Payload: json.RawMessage(`2`), RequireProof: boolp(true)})[0]
	if got := wait(t, n.Engine, "acme", plain.ID); got.Status != task.Completed || got.ProofID != "" {
		t.Fatalf("plain task = %s proof %q; want completed without proof", got.Status, got.ProofID)
	}
	if _, err := n.Engine.Proof(ctx, "acme", plain.ID); !greyerr.Is(err, greyerr.NotFound) || !strings.Contains(err.Error(), "proofs were off") {
		t.Fatalf("proof of plain task: %v; want not found because proofs were off", err)
	}
	got := wait(t, n.Engine, "acme", strict.ID)
	if got.Status != task.Failed || got.Error == nil || got.Error.Code != "proof_missing" {
		t.Fatalf("strict task = %s %+v; want failed for want of a proof", got.Status, got.Error)
	}
}

// A tenant's require_proof true makes proofs mandatory even when the
// cluster's setting is off; the signing pool then proves every task.
func TestTenantRequireProof(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{ProofsOff: true})
	ctx := context.Background()
	if _, err := n.Engine.CreateTenant(ctx, &tenant.Tenant{ID: "bank", Quota: tenant.Quota{RequireProof: boolp(true)}}); err != nil {
		t.Fatal(err)
	}
	n.StartWorkers(t, worker.Options{Concurrency: 2}, nil)
	tk := submit(t, n.Engine, "bank", task.Spec{Kind: "echo", Payload: json.RawMessage(`"x"`), RequireProof: boolp(false)})[0]
	if got := wait(t, n.Engine, "bank", tk.ID); got.Status != task.Completed || got.ProofID == "" {
		t.Fatalf("task = %s proof %q; want a proof (the tenant requires it)", got.Status, got.ProofID)
	}
}

// Replays re-run deterministic kinds and compare digests; other kinds and
// unfinished tasks are refused.
func TestReplay(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{})
	custom := worker.HandlerFunc(func(ctx context.Context, j *worker.Job) (any, error) { return time.Now().UnixNano(), nil })
	n.StartWorkers(t, worker.Options{Concurrency: 2}, map[string]worker.Handler{"clock": custom})
	ctx := context.Background()
	tk := submit(t, n.Engine, "acme", task.Spec{Kind: "echo", Payload: json.RawMessage(`{"n":[1,2,3]}`)})[0]
	wait(t, n.Engine, "acme", tk.ID)
	r, err := n.Engine.Replay(ctx, "acme", tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Match || r.ReplayDigest != r.StoredDigest || r.ProofDigest != r.StoredDigest || r.Error != "" {
		t.Fatalf("replay = %+v; want a match with the stored and proven digests", r)
	}
	nd := submit(t, n.Engine, "acme", task.Spec{Kind: "clock"})[0]
	wait(t, n.Engine, "acme", nd.ID)
	if _, err := n.Engine.Replay(ctx, "acme", nd.ID); !greyerr.Is(err, greyerr.FailedPrecondition) || !strings.Contains(err.Error(), "cannot be replayed") {
		t.Fatalf("replay of a non-deterministic kind: %v", err)
	}
	if _, err := n.Engine.Replay(ctx, "globex", tk.ID); !greyerr.Is(err, greyerr.NotFound) {
		t.Fatalf("replay by another tenant: %v, want not found", err)
	}
}

// A task with require_tee waits with a visible reason and never runs on a
// software worker; a worker on that platform runs it.
func TestRequireTEE(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{})
	n.StartWorkers(t, worker.Options{Concurrency: 2}, nil) // software
	ctx := context.Background()
	tk := submit(t, n.Engine, "acme", task.Spec{Kind: "echo", Payload: json.RawMessage(`"secret"`), RequireTEE: "sgx"})[0]
	plain := submit(t, n.Engine, "acme", task.Spec{Kind: "echo", Payload: json.RawMessage(`"plain"`)})[0]
	wait(t, n.Engine, "acme", plain.ID) // the software worker is working
	got, err := n.Engine.Get(ctx, "acme", tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != task.Pending || !strings.Contains(got.WaitingReason, "TEE platform sgx") {
		t.Fatalf("tee task = %s (%q); want pending, waiting for sgx", got.Status, got.WaitingReason)
	}
	sgx := &proof.Signer{Key: n.Signer.Key, NodeID: "test-1", Attester: fakeAttester{"sgx"}}
	n.StartWorkers(t, worker.Options{Concurrency: 1, Signer: sgx, WorkerID: "enclave-1"}, nil)
	done := wait(t, n.Engine, "acme", tk.ID)
	if done.Status != task.Completed || done.Attempts[0].WorkerID != "enclave-1" {
		t.Fatalf("tee task = %s on %+v; want completed by enclave-1", done.Status, done.Attempts)
	}
	rec, err := n.Engine.Proof(ctx, "acme", tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	st, err := proof.DecodeStatement(rec.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Verified || st.Predicate.Platform != "sgx" || len(st.Predicate.TEEQuote) != 1024 {
		t.Fatalf("tee proof: verified %v (%s) platform %q quote %d bytes", rec.Verified, rec.Problem, st.Predicate.Platform, len(st.Predicate.TEEQuote))
	}
	if _, err := n.Engine.Submit(ctx, "acme", []task.Spec{{Kind: "echo", RequireTEE: "enclave"}}, false); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Fatalf("unknown platform: %v, want invalid", err)
	}
	if _, err := n.Engine.Lease(ctx, &worker.LeaseRequest{WorkerID: "w", Kinds: []string{"echo"}, Max: 1, Platform: "enclave"}); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Fatalf("lease from an unknown platform: %v, want invalid", err)
	}
}

// fakeAttester stands in for SGX hardware in the scheduler test: it makes
// a quote in the SGX v3 layout (48-byte header with the version, then the
// report body whose last 64 bytes at 320 are the report data).
type fakeAttester struct{ platform string }

func (f fakeAttester) Platform() string { return f.platform }
func (f fakeAttester) Quote(_ context.Context, reportData []byte) ([]byte, error) {
	q := make([]byte, 1024)
	q[0] = 3 // version 3, little-endian
	copy(q[48+320:], reportData)
	return q, nil
}

// One signature covers a batch of one tenant's tasks: every task's proof
// verifies for that task, and no envelope shows another tenant's task.
func TestProofBatchesPerTenant(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{})
	ctx := context.Background()
	var specs []task.Spec
	for i := range 100 {
		specs = append(specs, task.Spec{Kind: "echo", Payload: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
	}
	var ids []struct{ tenant, id string }
	for _, ten := range []string{"acme", "globex"} {
		res, err := n.Engine.Submit(ctx, ten, specs, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range res.Tasks {
			ids = append(ids, struct{ tenant, id string }{ten, tk.ID})
		}
	}
	n.StartWorkers(t, worker.Options{Concurrency: 32}, nil)
	proofs := map[string]bool{}
	for _, x := range ids {
		got := wait(t, n.Engine, x.tenant, x.id)
		rec, err := n.Engine.Proof(ctx, x.tenant, x.id)
		if err != nil || !rec.Verified {
			t.Fatalf("task %s: %v %+v", x.id, err, rec)
		}
		st, err := proof.DecodeStatement(rec.Envelope)
		if err != nil {
			t.Fatal(err)
		}
		if st.Predicate.TenantID != x.tenant || len(st.Predicate.Executions) > proof.MaxBatch {
			t.Fatalf("task %s of %s: proof of tenant %s with %d tasks", x.id, x.tenant, st.Predicate.TenantID, len(st.Predicate.Executions))
		}
		for _, e := range st.Predicate.Executions {
			if _, err := n.Engine.Get(ctx, x.tenant, e.TaskID); err != nil {
				t.Fatalf("proof of %s covers %s, not a task of %s: %v", x.id, e.TaskID, x.tenant, err)
			}
		}
		proofs[got.ProofID] = true
	}
	t.Logf("%d tasks, %d proofs", len(ids), len(proofs))
}

// A worker node's key is registered when it joins; another node presenting
// the same key is refused, a malformed key is invalid, and the key stays
// after its node is removed.
func TestJoinRegistersSigningKey(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{})
	ctx := context.Background()
	k, _ := proof.GenerateKey()
	if _, err := n.Engine.Join(ctx, &engine.JoinRequest{NodeID: "w1", Role: "worker", PublicKey: k.Public()}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Engine.Join(ctx, &engine.JoinRequest{NodeID: "w2", Role: "worker", PublicKey: k.Public()}); !greyerr.Is(err, greyerr.AlreadyExists) || !strings.Contains(err.Error(), "already registered by node w1") {
		t.Fatalf("same key, other node: %v", err)
	}
	if _, err := n.Engine.Join(ctx, &engine.JoinRequest{NodeID: "w3", Role: "worker", PublicKey: []byte("short")}); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Fatalf("malformed key: %v", err)
	}
	if err := n.Engine.RemoveMember(ctx, "w1"); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, sk := range n.Engine.SigningKeys() {
		found = found || (sk.KeyID == k.KeyID() && sk.NodeID == "w1")
	}
	if !found {
		t.Fatalf("w1's key gone after removal: %+v", n.Engine.SigningKeys())
	}
}

// lyingAttester's quotes carry report data that binds nothing.
type lyingAttester struct{ fakeAttester }

func (l lyingAttester) Quote(ctx context.Context, _ []byte) ([]byte, error) {
	return l.fakeAttester.Quote(ctx, make([]byte, 64))
}

// A TEE quote that does not bind its statement and key fails the check.
func TestTEEQuoteMustBind(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{})
	liar := &proof.Signer{Key: n.Signer.Key, NodeID: "test-1", Attester: lyingAttester{fakeAttester{"sgx"}}}
	n.StartWorkers(t, worker.Options{Concurrency: 1, Signer: liar}, nil)
	tk := submit(t, n.Engine, "acme", task.Spec{Kind: "echo", Payload: json.RawMessage(`1`), RequireTEE: "sgx"})[0]
	wait(t, n.Engine, "acme", tk.ID)
	rec, err := n.Engine.Proof(context.Background(), "acme", tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Verified || !strings.Contains(rec.Problem, "does not bind") {
		t.Fatalf("proof with an unbound quote: verified %v, problem %q", rec.Verified, rec.Problem)
	}
}

// The leader packs proof envelopes only once every server registered
// that it reads them; either way the proof comes back byte for byte and
// verifies. A server of an older build registers no features, so its
// cluster keeps writing raw envelopes.
func TestProofsPackedOnlyWhenEveryServerReadsThem(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		features []string
		want     []string
	}{
		{"older build", nil, []string{}},
		{"this build", state.ServerFeatures(), []string{state.FeaturePackedProofs}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			n := greytest.NewNode(t, engine.Config{Self: state.Node{ID: "test-1", Role: "server", APIAddr: "http://127.0.0.1:0", Features: c.features}})
			greytest.Eventually(t, 5*time.Second, func() bool { return slices.Equal(n.Engine.Cluster("").LogFeatures, c.want) })
			ci := n.Engine.Cluster("")
			if len(ci.Members) != 1 || !slices.Equal(ci.Members[0].Features, c.features) {
				t.Fatalf("members = %+v; want one server with features %v", ci.Members, c.features)
			}
			n.StartWorkers(t, worker.Options{Concurrency: 2}, nil)
			var tasks []task.Spec
			for i := range 20 {
				tasks = append(tasks, task.Spec{Kind: "echo", Payload: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
			}
			for _, tk := range submit(t, n.Engine, "acme", tasks...) {
				got := wait(t, n.Engine, "acme", tk.ID)
				rec, err := n.Engine.Proof(context.Background(), "acme", tk.ID)
				if err != nil {
					t.Fatal(err)
				}
				if sum := sha256.Sum256(n.Store.Proof(got.ProofID)); !rec.Verified || hex.EncodeToString(sum[:]) != got.ProofID {
					t.Fatalf("proof of %s: verified %v (%s), envelope hash %x, proof id %s", tk.ID, rec.Verified, rec.Problem, sum, got.ProofID)
				}
			}
		})
	}
}

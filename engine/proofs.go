package engine

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/proof"
	"github.com/grey-distributed/grey/proof/tee"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/worker"
)

// MaxProofBytes bounds one proof envelope: proof.MaxBatch tasks and a TEE
// quote.
const MaxProofBytes = 256 << 10

// maxReplays bounds replays running at once on one server.
const maxReplays = 4

// proofPolicy says whether a task's completion should carry a proof (want)
// and whether one is mandatory (strict): a task's or its tenant's
// require_proof true is strict; otherwise the task's, then the tenant's,
// then the cluster's setting decides whether workers are asked to sign.
func (e *Engine) proofPolicy(t *task.Task) (want, strict bool) {
	tp := e.store.Quota(t.TenantID).RequireProof
	if (t.RequireProof != nil && *t.RequireProof) || (tp != nil && *tp) {
		return true, true
	}
	switch {
	case t.RequireProof != nil:
		return *t.RequireProof, false
	case tp != nil:
		return *tp, false
	}
	return !e.cfg.ProofsOff, false
}

// checkProof decides what happens to a completed report whose proof is
// proofs[ref-1] (ref 0: none): "" keeps it, a code turns it into a failed
// attempt with message msg.
func (e *Engine) checkProof(t *task.Task, ref int, proofs []json.RawMessage) (code, msg string) {
	switch {
	case ref < 0 || ref > len(proofs):
		return "proof_invalid", "the report refers to proof " + strconv.Itoa(ref) + " of " + strconv.Itoa(len(proofs))
	case ref > 0 && len(proofs[ref-1]) > MaxProofBytes:
		return "proof_too_large", "the worker's proof exceeds " + strconv.Itoa(MaxProofBytes) + " bytes"
	case ref > 0 || t == nil:
		return "", ""
	}
	if _, strict := e.proofPolicy(t); strict {
		return "proof_missing", "the task requires a signed proof and the worker sent none (its pool has no signing key)"
	}
	return "", ""
}

// platforms remembers when a worker of each platform last asked for work.
type platforms struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// leaseLabels are the labels a lease request offers: the worker's, with
// task.PlatformLabel set from its platform (never from its labels), which
// is noted as seen.
func (e *Engine) leaseLabels(req *worker.LeaseRequest) map[string]string {
	p := req.Platform
	if p == "" {
		p = proof.PlatformSoftware
	}
	e.platforms.mu.Lock()
	if e.platforms.seen == nil {
		e.platforms.seen = make(map[string]time.Time)
	}
	e.platforms.seen[p] = time.Now()
	e.platforms.mu.Unlock()
	l := make(map[string]string, len(req.Labels)+1)
	for k, v := range req.Labels {
		l[k] = v
	}
	l[task.PlatformLabel] = p
	return l
}

// teeWait explains why a pending task that requires a TEE platform waits
// ("" when a worker of that platform asked for work recently).
func (e *Engine) teeWait(t *task.Task) string {
	e.platforms.mu.Lock()
	last, ok := e.platforms.seen[t.RequireTEE]
	e.platforms.mu.Unlock()
	if ok && time.Since(last) < MaxLeaseWait+e.cfg.LeaseTTL {
		return ""
	}
	return "waiting for a worker on TEE platform " + t.RequireTEE + " (require_tee): none has asked for work"
}

// SigningKeys lists the cluster's proof-signing keys, including those of
// nodes that have left.
func (e *Engine) SigningKeys() []proof.NodeKey { return e.store.SigningKeys() }

// keyRing is the cluster's keys as a verifier's key ring.
func (e *Engine) keyRing() (proof.KeyRing, map[string]string) {
	keys := e.store.SigningKeys()
	ring := make(proof.KeyRing, len(keys))
	owner := make(map[string]string, len(keys))
	for _, k := range keys {
		ring[k.KeyID] = ed25519.PublicKey(k.PublicKey)
		owner[k.KeyID] = k.NodeID
	}
	return ring, owner
}

// Proof returns the tenant's task's proof, checked by this server against
// the cluster's keys and the stored payload and result. A task without a
// proof is NotFound, with the reason.
func (e *Engine) Proof(ctx context.Context, tenant, id string) (*proof.Record, error) {
	t, envBytes, err := e.stored(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	if t.ProofID == "" {
		why := "task " + t.ID + " has no proof: "
		switch {
		case t.Status != task.Completed:
			why += "it is " + string(t.Status) + " (proofs are signed when a task completes)"
		default:
			if want, _ := e.proofPolicy(t); want {
				why += "the worker that completed it did not sign one"
			} else {
				why += "proofs were off for it (require_proof or the tenant's or cluster's setting)"
			}
		}
		return nil, greyerr.New(greyerr.NotFound, "%s", why)
	}
	env, err := proof.ParseEnvelope(envBytes)
	if err != nil {
		e.proofChecked("", "error")
		return nil, greyerr.New(greyerr.Internal, "task %s: stored proof %s: %v", t.ID, t.ProofID, err)
	}
	rec := &proof.Record{TaskID: t.ID, ProofID: t.ProofID, Envelope: env}
	if rec.Short, err = proof.ShortForm(env, t.ID); err != nil {
		rec.Problem = err.Error()
		e.proofChecked("", "rejected")
		return rec, nil
	}
	ring, owner := e.keyRing()
	for _, s := range env.Signatures {
		if n, ok := owner[s.KeyID]; ok {
			rec.NodeID = n
		}
	}
	if _, err := proof.Verify(env, ring, proof.Expect{
		TaskID: t.ID, TenantID: t.TenantID,
		OutputDigest: outputDigest(t), InputDigest: inputDigest(t),
	}); err != nil {
		rec.Problem = err.Error()
		e.proofChecked(rec.Short.Platform, "rejected")
		return rec, nil
	}
	if st, err := proof.DecodeStatement(env); err == nil && len(st.Predicate.TEEQuote) > 0 {
		if err := tee.CheckBinding(st, env.Signatures[0].KeyID); err != nil {
			rec.Problem = "the TEE quote does not bind this statement: " + err.Error()
			e.proofChecked(rec.Short.Platform, "rejected")
			return rec, nil
		}
	}
	rec.Verified = true
	e.proofChecked(rec.Short.Platform, "verified")
	return rec, nil
}

func (e *Engine) proofChecked(platform, result string) {
	if e.cfg.ProofChecked != nil {
		e.cfg.ProofChecked(platform, result)
	}
}

// Replay re-runs the tenant's completed task on this server with the same
// kind and payload and compares the output digest with the stored result's
// (and the proof's, if any). Only kinds whose handler is
// worker.Deterministic for this job can be replayed.
func (e *Engine) Replay(ctx context.Context, tenant, id string) (*proof.Replay, error) {
	t, envBytes, err := e.stored(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	if t.Status != task.Completed {
		return nil, greyerr.New(greyerr.FailedPrecondition, "task %s is %s: only completed tasks can be replayed", t.ID, t.Status)
	}
	h := e.cfg.Replay[t.Kind]
	job := &worker.Job{Assignment: worker.Assignment{
		TaskID: t.ID, TenantID: t.TenantID, Kind: t.Kind, Payload: t.Payload,
		Attempt: t.Attempt, Timeout: task.Duration(e.timeoutOf(t)), Headers: t.Headers,
	}}
	d, ok := worker.Unwrapped[worker.Deterministic](h)
	if h == nil || !ok || !d.Deterministic(job) {
		return nil, greyerr.New(greyerr.FailedPrecondition, "task %s (kind %s) cannot be replayed: only deterministic kinds can (wasm without clock or randomness, and the built-in kinds)", t.ID, t.Kind)
	}
	if job.Payload, job.PayloadBinary, err = e.leasePayload(ctx, t); err != nil {
		return nil, err
	}
	select {
	case e.replays <- struct{}{}:
		defer func() { <-e.replays }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	out := &proof.Replay{TaskID: t.ID, Kind: t.Kind, StoredDigest: outputDigest(t), Node: e.node.ID()}
	if t.ProofID != "" {
		if env, err := proof.ParseEnvelope(envBytes); err == nil {
			if st, err := proof.DecodeStatement(env); err == nil {
				if ex, d, ok := st.Find(t.ID); ok {
					out.ProofDigest = d
					job.Replayed = ex
				}
			}
		}
	}
	rctx, cancel := context.WithTimeout(ctx, e.timeoutOf(t))
	defer cancel()
	start := time.Now()
	res, err := h.Work(rctx, job)
	out.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	if err == nil {
		var b []byte
		inlineMax := 0
		if t.ResultRef != nil {
			inlineMax = e.resultInlineMax() // a stored result may be binary
		}
		if b, _, err = worker.EncodeResultFor(res, inlineMax); err == nil {
			// Digested as the stored result is: the object's bytes when
			// it is stored by reference, else the JSON value.
			if t.ResultRef != nil {
				out.ReplayDigest = proof.Digest(b)
			} else {
				out.ReplayDigest = proof.JSONDigest(b)
			}
		}
	}
	if err != nil {
		out.Error = err.Error()
		return out, nil
	}
	out.Match = out.ReplayDigest == out.StoredDigest && (out.ProofDigest == "" || out.ProofDigest == out.ReplayDigest)
	return out, nil
}

// stored returns the tenant's task as stored, and its proof envelope (nil
// when it has none): from the state, else from the archive.
func (e *Engine) stored(ctx context.Context, tenant, id string) (*task.Task, []byte, error) {
	if !task.ValidID(id) {
		return nil, nil, greyerr.New(greyerr.NotFound, "task %s not found", id)
	}
	t, err := e.store.Get(tenant, id)
	if greyerr.Is(err, greyerr.NotFound) {
		rec, aerr := e.archived(ctx, tenant, id)
		if aerr != nil {
			return nil, nil, aerr
		}
		return rec.Task, rec.Proof, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var env []byte
	if t.ProofID != "" {
		env = e.store.Proof(t.ProofID)
	}
	return t, env, nil
}

// outputDigest and inputDigest are what a proof of t must carry
// (proof.OutputDigest, proof.InputDigest).
func outputDigest(t *task.Task) string { return proof.OutputDigest(t) }

func inputDigest(t *task.Task) string { return proof.InputDigest(t) }

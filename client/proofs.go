package client

import (
	"context"
	"net/http"

	"github.com/grey-distributed/grey/proof"
	"github.com/grey-distributed/grey/task"
)

// ProofRecord is a task's proof as the server serves it: the envelope, the
// short form and the server's own check.
type ProofRecord = proof.Record

// ReplayResult is the outcome of a replay.
type ReplayResult = proof.Replay

// NodeKey is a node's registered proof-signing public key.
type NodeKey = proof.NodeKey

// Proof returns the signed proof of the tenant's completed task. A task
// without one is a NotFound error whose message says why. To check it
// yourself, verify the envelope with the keys of NodeKeys and
// proof.Expect{InputDigest: proof.InputDigest(t), OutputDigest:
// proof.OutputDigest(t)} of the task from Get: the digests are over the
// RFC 8785 form of the payload and result (docs/PROOFS.md), as greyctl
// proof verify and the docs' Python verifier compute them.
func (c *Client) Proof(ctx context.Context, id task.ID) (*ProofRecord, error) {
	path, err := taskPath(id, "/proof")
	if err != nil {
		return nil, err
	}
	var rec ProofRecord
	if err := c.do(ctx, http.MethodGet, path, nil, nil, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// Replay re-runs the tenant's completed deterministic task on the cluster
// and reports whether the output digest matches the stored result's. A kind
// that cannot be replayed is a FailedPrecondition error.
func (c *Client) Replay(ctx context.Context, id task.ID) (*ReplayResult, error) {
	path, err := taskPath(id, "/replay")
	if err != nil {
		return nil, err
	}
	var r ReplayResult
	if err := c.do(ctx, http.MethodPost, path, nil, nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// NodeKeys returns every proof-signing key the cluster has registered,
// including those of nodes that have left.
func (c *Client) NodeKeys(ctx context.Context) ([]NodeKey, error) {
	var resp struct {
		Keys []NodeKey `json:"keys"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/cluster/keys", nil, nil, &resp); err != nil {
		return nil, err
	}
	return resp.Keys, nil
}

// KeyRing returns the cluster's keys as a verifier's key ring.
func (c *Client) KeyRing(ctx context.Context) (proof.KeyRing, error) {
	keys, err := c.NodeKeys(ctx)
	if err != nil {
		return nil, err
	}
	ring := proof.NewKeyRing()
	for _, k := range keys {
		ring.Add(k.PublicKey)
	}
	return ring, nil
}

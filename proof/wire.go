package proof

import "time"

// NodeKey is a node's registered proof-signing public key, as the cluster
// keeps it (GET /api/v1/cluster/keys). Keys outlive their node's
// registration, so proofs signed by a node that has left still verify.
type NodeKey struct {
	// KeyID is KeyIDOf(PublicKey).
	KeyID string `json:"key_id"`
	// NodeID is the node that registered it.
	NodeID string `json:"node_id"`
	// PublicKey is the raw ed25519 public key (base64 in JSON).
	PublicKey []byte `json:"public_key"`
	// AddedAt is when the key was first registered.
	AddedAt time.Time `json:"added_at"`
}

// Record is a task's proof as the API serves it (GET
// /api/v1/tasks/{id}/proof): the envelope, the seed's short form, and the
// server's own check of it against the cluster's keys and the stored task.
type Record struct {
	// TaskID is the task.
	TaskID string `json:"task_id"`
	// ProofID is the envelope's id (its SHA-256); tasks proven in one
	// batch share it.
	ProofID string `json:"proof_id"`
	// Envelope is the DSSE envelope signed by the worker's node; it may
	// cover other tasks of the same tenant.
	Envelope *Envelope `json:"envelope"`
	// Short is the seed's short form (task_id, platform, measurement,
	// signature, timestamp).
	Short Short `json:"short"`
	// NodeID is the node whose key signed it ("" when the key is unknown).
	NodeID string `json:"node_id,omitempty"`
	// Verified says the server checked the signature with the cluster's
	// keys, the digests against the stored payload and result, and, when
	// there is a TEE quote, that the quote binds the statement and key (its
	// chain to the vendor's roots is not checked).
	Verified bool `json:"verified"`
	// Problem is why verification failed (empty when Verified).
	Problem string `json:"problem,omitempty"`
}

// Replay is the outcome of re-running a deterministic task (POST
// /api/v1/tasks/{id}/replay).
type Replay struct {
	// TaskID is the replayed task.
	TaskID string `json:"task_id"`
	// Kind is its kind.
	Kind string `json:"kind"`
	// StoredDigest is the SHA-256 of the stored result.
	StoredDigest string `json:"stored_digest"`
	// ProofDigest is the output digest the task's proof signs ("" without
	// a proof).
	ProofDigest string `json:"proof_digest,omitempty"`
	// ReplayDigest is the SHA-256 of the replay's output ("" when the
	// replay failed).
	ReplayDigest string `json:"replay_digest,omitempty"`
	// Match is true when the replay's output digest equals the stored
	// result's (and the proof's, when there is one).
	Match bool `json:"match"`
	// Error is why the replay failed to produce an output.
	Error string `json:"error,omitempty"`
	// Node is the server that ran the replay.
	Node string `json:"node"`
	// DurationMS is how long the replay ran.
	DurationMS float64 `json:"duration_ms"`
}

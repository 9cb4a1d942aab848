package state

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// proofBlob is a stored proof envelope and the number of tasks that refer
// to it (one envelope covers a batch of one tenant's tasks).
type proofBlob struct {
	env  json.RawMessage
	refs int
}

// addProof stores env (if new) and returns its id, the hex SHA-256 of its
// bytes. The caller takes a reference.
func (x *txn) addProof(env []byte) string {
	sum := sha256.Sum256(env)
	id := hex.EncodeToString(sum[:])
	if x.s.proofs[id] == nil {
		x.s.proofs[id] = &proofBlob{env: env}
	}
	return id
}

// releaseProof drops one reference to a proof, and the proof with the
// last one.
func (s *Store) releaseProof(id string) {
	if id == "" {
		return
	}
	if b := s.proofs[id]; b != nil {
		if b.refs--; b.refs <= 0 {
			delete(s.proofs, id)
		}
	}
}

// Proof returns the envelope stored under id (nil when there is none).
func (s *Store) Proof(id string) json.RawMessage {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if b := s.proofs[id]; b != nil {
		return b.env
	}
	return nil
}

// ProofCount is the number of stored proof envelopes.
func (s *Store) ProofCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.proofs)
}

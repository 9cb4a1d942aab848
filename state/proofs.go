package state

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/klauspost/compress/s2"
)

// ProofBlob is a proof envelope as a Complete carries it: either its
// bytes (Env), or, packed, its id and its bytes compressed as one S2
// block (Packed). The leader packs an envelope once, so the other
// servers neither hash nor decompress it to store it; readers decompress
// it when they ask for it.
type ProofBlob struct {
	// ID is the hex SHA-256 of the envelope's bytes; set with Packed.
	ID string
	// Env is the envelope's bytes, when not packed.
	Env []byte
	// Packed is the envelope as one S2 block (s2.Encode).
	Packed []byte
}

// PackProof returns env packed: its id and an S2 block of it.
func PackProof(env []byte) ProofBlob {
	b, _ := PackProofBuf(env, nil)
	return b
}

// PackProofBuf is PackProof that compresses into scratch and copies the
// block out at its size: s2 needs room for the block's worst case, about
// 1.2 times the envelope, where the block is typically a sixth of it. It
// returns scratch, grown if it was too small, for the next call.
func PackProofBuf(env, scratch []byte) (ProofBlob, []byte) {
	sum := sha256.Sum256(env)
	if n := s2.MaxEncodedLen(len(env)); cap(scratch) < n {
		scratch = make([]byte, n)
	}
	block := s2.Encode(scratch[:cap(scratch)], env)
	return ProofBlob{ID: hex.EncodeToString(sum[:]), Packed: append([]byte(nil), block...)}, scratch
}

// proofBlob is a stored proof envelope (as its bytes or as an S2 block)
// and the number of tasks that refer to it (one envelope covers a batch
// of one tenant's tasks).
type proofBlob struct {
	env    json.RawMessage
	packed []byte
	refs   int
}

// bytes returns the envelope's bytes (nil if a packed one is corrupt,
// which a Raft log's checksums rule out short of a bug).
func (b *proofBlob) bytes() json.RawMessage {
	if b.packed == nil {
		return b.env
	}
	env, err := s2.Decode(nil, b.packed)
	if err != nil {
		return nil
	}
	return env
}

// addProof stores p (if new) and returns its id. The caller takes a
// reference.
func (x *txn) addProof(p ProofBlob) string {
	id := p.ID
	if p.Packed == nil {
		sum := sha256.Sum256(p.Env)
		id = hex.EncodeToString(sum[:])
	}
	if x.s.proofs[id] == nil {
		x.s.proofs[id] = &proofBlob{env: p.Env, packed: p.Packed}
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
	b := s.proofs[id]
	s.mu.RUnlock()
	if b == nil {
		return nil
	}
	return b.bytes() // a stored blob never changes: decoded outside the lock
}

// ProofCount is the number of stored proof envelopes.
func (s *Store) ProofCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.proofs)
}

package state_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"

	"github.com/grey-distributed/grey/state"
)

// Proof envelopes are stored once by their SHA-256, counted per task that
// names one, and dropped with the last such task; refused or unnamed items
// store nothing.
func TestProofsAreSharedAndCollected(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	env := []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}`)
	sum := sha256.Sum256(env)
	id := hex.EncodeToString(sum[:])
	f.submit(mk(1, "acme"), mk(2, "acme"), mk(3, "acme"), mk(4, "acme"))
	f.lease(t0, "w1", ref(1, 1), ref(2, 1), ref(3, 1), ref(4, 1))
	// A refused item (wrong worker) and an out-of-range index take nothing.
	out := f.s.Complete(f.next(), &state.CompleteRequest{Now: t0, WorkerID: "w2", Proofs: [][]byte{env},
		Items: []state.CompleteItem{{Ref: ref(1, 1), Proof: 1, At: t0}}})
	if out[0].Accepted || f.s.ProofCount() != 0 {
		t.Fatalf("a refused completion stored its proof (%d stored)", f.s.ProofCount())
	}
	f.s.Complete(f.next(), &state.CompleteRequest{Now: t0, WorkerID: "w1", Proofs: [][]byte{env},
		Items: []state.CompleteItem{{Ref: ref(4, 1), Proof: 2, At: t0}}})
	if f.get(4).ProofID != "" || f.s.ProofCount() != 0 {
		t.Fatal("an out-of-range proof index named a proof")
	}
	// Tasks 1 and 2 share one envelope; task 3 brings the same bytes in a
	// later entry an hour on.
	f.s.Complete(f.next(), &state.CompleteRequest{Now: t0, WorkerID: "w1", Proofs: [][]byte{env},
		Items: []state.CompleteItem{{Ref: ref(1, 1), Proof: 1, At: t0}, {Ref: ref(2, 1), Proof: 1, At: t0}}})
	later := t0.Add(time.Hour)
	f.s.Complete(f.next(), &state.CompleteRequest{Now: later, WorkerID: "w1", Proofs: [][]byte{append([]byte(nil), env...)},
		Items: []state.CompleteItem{{Ref: ref(3, 1), Proof: 1, At: later}}})
	for _, n := range []int{1, 2, 3} {
		if f.get(n).ProofID != id {
			t.Fatalf("task %d proof id %q, want the envelope's sha256 %s", n, f.get(n).ProofID, id)
		}
	}
	if f.s.ProofCount() != 1 || string(f.s.Proof(id)) != string(env) || f.s.Proof("nope") != nil {
		t.Fatalf("%d proofs stored; want the one envelope", f.s.ProofCount())
	}
	// Collecting 1, 2 and 4 (finished at t0) leaves 3's reference.
	if n := f.s.GC(f.next(), &state.GCRequest{Now: later, Before: t0.Add(time.Minute)}); n != 3 {
		t.Fatalf("GC collected %d", n)
	}
	if f.s.Proof(id) == nil {
		t.Fatal("the proof went while task 3 still names it")
	}
	f.s.GC(f.next(), &state.GCRequest{Now: later.Add(time.Hour), Before: later.Add(time.Minute)})
	if f.s.Proof(id) != nil || f.s.ProofCount() != 0 {
		t.Fatal("the proof outlived the last task naming it")
	}
}

// Blobs packed through one scratch buffer stay intact when the buffer is
// reused, and each unpacks to its own envelope with its own id.
func TestPackProofBufReusesScratch(t *testing.T) {
	big := bytes.Repeat([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"eyJfdHlwZSI6Imh0dHBz"}`), 200)
	small := []byte(`{"payload":"c21hbGw=","signatures":[]}`)
	var scratch []byte
	first, scratch := state.PackProofBuf(big, scratch)
	grown := cap(scratch)
	second, scratch := state.PackProofBuf(small, scratch)
	if cap(scratch) != grown {
		t.Fatalf("scratch was reallocated for a smaller envelope: cap %d, then %d", grown, cap(scratch))
	}
	for _, c := range []struct {
		blob state.ProofBlob
		env  []byte
	}{{first, big}, {second, small}} {
		got, err := s2.Decode(nil, c.blob.Packed)
		if err != nil || !bytes.Equal(got, c.env) {
			t.Fatalf("packed block does not unpack to its envelope (err %v)", err)
		}
		sum := sha256.Sum256(c.env)
		if c.blob.ID != hex.EncodeToString(sum[:]) {
			t.Fatalf("id %s is not the envelope's SHA-256", c.blob.ID)
		}
		if cap(c.blob.Packed) >= len(c.env) && len(c.env) > 1000 {
			t.Fatalf("packed block keeps %d bytes of room for a %d-byte block", cap(c.blob.Packed), len(c.blob.Packed))
		}
	}
	if want := state.PackProof(big); !bytes.Equal(want.Packed, first.Packed) || want.ID != first.ID {
		t.Fatal("PackProofBuf and PackProof disagree")
	}
}

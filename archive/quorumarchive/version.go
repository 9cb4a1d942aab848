package quorumarchive

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"

	"github.com/grey-distributed/grey/archive"
)

// compare orders two versions of one record: the higher Task.Index is
// newer; at equal indexes the later finish; then, when the contents
// differ, the greater fingerprint, so that every node picks the same
// winner. 0 means the same version.
func compare(a, b archive.Record) int {
	switch {
	case a.Task.Index != b.Task.Index:
		return cmpU(a.Task.Index, b.Task.Index)
	case !a.Task.FinishedAt.Equal(*b.Task.FinishedAt):
		return a.Task.FinishedAt.Compare(*b.Task.FinishedAt)
	case sameContent(a, b):
		return 0 // the usual case: no hashing
	}
	fa, fb := fingerprint(a), fingerprint(b)
	return bytes.Compare(fa[:], fb[:])
}

func cmpU(a, b uint64) int {
	if a < b {
		return -1
	}
	return 1
}

// fingerprint hashes what tells two copies of one task's record apart,
// independent of how a driver spells times (zones) or JSON whitespace:
// status, kind, attempts, finish, error, and payload, result and proof
// compacted.
func fingerprint(r archive.Record) [32]byte {
	h := sha256.New()
	t := r.Task
	var n [8]byte
	put := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	put([]byte(t.Status))
	put([]byte(t.Kind))
	binary.BigEndian.PutUint64(n[:], uint64(t.Attempt))
	h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(len(t.Attempts)))
	h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(t.FinishedAt.UnixMicro()))
	h.Write(n[:])
	if t.Error != nil {
		e, _ := json.Marshal(t.Error)
		put(e)
	} else {
		put(nil)
	}
	for _, b := range [][]byte{t.Payload, t.Result, r.Proof} {
		put(compact(b))
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func compact(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b
	}
	return buf.Bytes()
}

// newest returns the index in recs of the newest version (-1 when empty).
func newest(recs []archive.Record) int {
	best := -1
	for i, r := range recs {
		if best < 0 || compare(r, recs[best]) > 0 {
			best = i
		}
	}
	return best
}

// sameContent is the fast check of compare: every field fingerprint
// covers, equal byte for byte (then the fingerprints are equal too).
func sameContent(a, b archive.Record) bool {
	ta, tb := a.Task, b.Task
	if ta.Status != tb.Status || ta.Kind != tb.Kind || ta.Attempt != tb.Attempt || len(ta.Attempts) != len(tb.Attempts) {
		return false
	}
	if (ta.Error == nil) != (tb.Error == nil) || (ta.Error != nil && *ta.Error != *tb.Error) {
		return false
	}
	return bytes.Equal(ta.Payload, tb.Payload) && bytes.Equal(ta.Result, tb.Result) && bytes.Equal(a.Proof, b.Proof)
}

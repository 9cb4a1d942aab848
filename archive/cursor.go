package archive

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// Cursor is the decoded position of a list page: the tenant it was issued
// to, the filter it was issued for, and the task id the next page starts
// after. On the wire it is opaque (EncodeCursor): base64url of a version
// byte, a digest of (tenant, filter), the id, and a checksum. The checksum
// catches damaged or edited cursors; it is not a secret MAC, because a
// cursor grants nothing: the tenant of every read comes from the caller's
// principal, and a cursor only says where to resume.
type Cursor struct {
	// Before is the task id the next page starts after.
	Before string
}

const cursorVersion = 1

// scope digests what a cursor is bound to: the tenant and the filter.
func scope(tenant string, f Filter) [8]byte {
	h := sha256.New()
	w := func(s string) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	w("grey-archive-cursor")
	w(tenant)
	st := make([]string, len(f.Statuses))
	for i, s := range f.Statuses {
		st[i] = string(s)
	}
	slices.Sort(st)
	for _, s := range st {
		w(s)
	}
	w("|")
	w(f.Kind)
	w(timeKey(f.FinishedFrom))
	w(timeKey(f.FinishedTo))
	for _, k := range slices.Sorted(maps.Keys(f.Labels)) {
		w(k)
		w(f.Labels[k])
	}
	var out [8]byte
	copy(out[:], h.Sum(nil))
	return out
}

func timeKey(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	b, _ := json.Marshal(t.UTC())
	return string(b)
}

func checksum(b []byte) [4]byte {
	s := sha256.Sum256(append([]byte("grey-archive-cursor-check"), b...))
	var out [4]byte
	copy(out[:], s[:4])
	return out
}

// EncodeCursor returns the opaque cursor of a page that ended at task id
// before, for tenant and filter f.
func EncodeCursor(tenant string, f Filter, before string) string {
	sc := scope(tenant, f)
	b := make([]byte, 0, 1+8+len(before)+4)
	b = append(b, cursorVersion)
	b = append(b, sc[:]...)
	b = append(b, before...)
	sum := checksum(b)
	b = append(b, sum[:]...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor decodes a cursor from EncodeCursor for tenant and filter f.
// A cursor that is damaged or edited, of another version, issued to
// another tenant or for another filter is InvalidArgument on field
// "cursor"; the message does not say which, so a cursor reveals nothing of
// the tenant it was issued to.
func DecodeCursor(s, tenant string, f Filter) (Cursor, error) {
	bad := func(why string) (Cursor, error) {
		return Cursor{}, greyerr.Invalid("cursor", "is not a cursor this API returned for this tenant and these filters (%s)", why)
	}
	if len(s) > 256 {
		return bad("too long")
	}
	// The decoder skips \r and \n: two spellings of one cursor must not
	// both pass, so every byte must be of the base64url alphabet.
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return bad("not base64url")
		}
	}
	// Strict: the unused low bits of the last character must be zero, so
	// a cursor has one spelling and an edited last character is refused.
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return bad("not base64url")
	}
	if len(b) < 1+8+4 {
		return bad("too short")
	}
	body, sum := b[:len(b)-4], b[len(b)-4:]
	if want := checksum(body); string(want[:]) != string(sum) {
		return bad("damaged")
	}
	if body[0] != cursorVersion {
		return bad("unknown version")
	}
	if sc := scope(tenant, f); string(sc[:]) != string(body[1:9]) {
		return bad("issued for another scope")
	}
	id := string(body[9:])
	if !task.ValidID(id) {
		return bad("damaged")
	}
	return Cursor{Before: id}, nil
}

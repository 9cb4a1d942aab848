package archive_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/archivetest"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

func cursorFilters() []archive.Filter {
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
	return []archive.Filter{
		{},
		{Statuses: []task.Status{task.Completed}},
		{Statuses: []task.Status{task.Failed, task.Cancelled}},
		{Kind: "echo"},
		{Kind: "計算·🚀"},
		{FinishedFrom: at},
		{FinishedTo: at},
		{FinishedFrom: at, FinishedTo: at.Add(time.Hour)},
		{Labels: map[string]string{"gpu": "true"}},
		{Labels: map[string]string{"gpu": "true", "zone": "eu"}},
		{Statuses: []task.Status{task.Completed}, Kind: "echo", FinishedFrom: at, Labels: map[string]string{"zone": "eu"}},
	}
}

func TestCursorRoundTrip(t *testing.T) {
	id := archivetest.IDAt(time.Now())
	for _, ten := range []string{"acme", "a", "tenant-with-a-long-name_0123456789"} {
		for i, f := range cursorFilters() {
			c := archive.EncodeCursor(ten, f, id)
			got, err := archive.DecodeCursor(c, ten, f)
			if err != nil || got.Before != id {
				t.Errorf("tenant %s filter %d: decode = %+v, %v", ten, i, got, err)
			}
			// The same filter written another way is the same scope.
			if len(f.Statuses) == 2 {
				g := f
				g.Statuses = []task.Status{f.Statuses[1], f.Statuses[0]}
				if _, err := archive.DecodeCursor(c, ten, g); err != nil {
					t.Errorf("statuses in another order: %v", err)
				}
			}
			if !f.FinishedFrom.IsZero() {
				g := f
				g.FinishedFrom = f.FinishedFrom.In(time.FixedZone("X", 3600))
				if _, err := archive.DecodeCursor(c, ten, g); err != nil {
					t.Errorf("the same instant in another zone: %v", err)
				}
			}
		}
	}
}

func TestCursorScope(t *testing.T) {
	id := archivetest.IDAt(time.Now())
	fs := cursorFilters()
	for i, f := range fs {
		c := archive.EncodeCursor("acme", f, id)
		wantCursorErr(t, "another tenant", c, "acme2", f)
		for j, g := range fs {
			if i != j {
				wantCursorErr(t, "another filter", c, "acme", g)
			}
		}
	}
	// The message does not name the tenant the cursor was issued to.
	_, err := archive.DecodeCursor(archive.EncodeCursor("secret-tenant", archive.Filter{}, id), "acme", archive.Filter{})
	if err == nil || strings.Contains(err.Error(), "secret-tenant") {
		t.Errorf("error %v", err)
	}
	// Label keys and values are bound apart: {a: bc} is not {ab: c}.
	c := archive.EncodeCursor("acme", archive.Filter{Labels: map[string]string{"a": "bc"}}, id)
	wantCursorErr(t, "labels split elsewhere", c, "acme", archive.Filter{Labels: map[string]string{"ab": "c"}})
}

func TestCursorTamper(t *testing.T) {
	id := archivetest.IDAt(time.Now())
	f := archive.Filter{Kind: "echo", Statuses: []task.Status{task.Completed}}
	c := archive.EncodeCursor("acme", f, id)
	// Every change of one character of the cursor, to any byte, is refused.
	for i := range len(c) {
		for b := range 256 {
			if byte(b) == c[i] {
				continue
			}
			s := []byte(c)
			s[i] = byte(b)
			if _, err := archive.DecodeCursor(string(s), "acme", f); err == nil {
				t.Fatalf("cursor with byte %d changed to %q accepted", i, byte(b))
			}
		}
	}
	// Every bit flip of the decoded bytes is refused too.
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		t.Fatal(err)
	}
	for i := range raw {
		for bit := range 8 {
			r := append([]byte(nil), raw...)
			r[i] ^= 1 << bit
			wantCursorErr(t, "a bit flip", base64.RawURLEncoding.EncodeToString(r), "acme", f)
		}
	}
	// Dropping or adding bytes, padding, or another encoding.
	for _, s := range []string{"", c[:len(c)-1], c[1:], c + "A", c + "==", base64.StdEncoding.EncodeToString(raw),
		base64.RawURLEncoding.EncodeToString(raw[:len(raw)-4])} {
		wantCursorErr(t, "a reshaped cursor", s, "acme", f)
	}
	// A well-formed cursor around something that is not a task id.
	for _, before := range []string{"", "x", "../../etc", id[:35], id + "0"} {
		wantCursorErr(t, "a cursor of a non-id", archive.EncodeCursor("acme", f, before), "acme", f)
	}
}

func wantCursorErr(t *testing.T, what, c, tenant string, f archive.Filter) {
	t.Helper()
	_, err := archive.DecodeCursor(c, tenant, f)
	var ge *greyerr.Error
	if !errors.As(err, &ge) || ge.Code != greyerr.InvalidArgument || ge.Field != "cursor" {
		t.Errorf("%s: decode %q: %v, want InvalidArgument on cursor", what, c, err)
	}
}

func FuzzDecodeCursor(f *testing.F) {
	id := "0190b1c2-3d4e-7f00-8abc-def012345678"
	f.Add(archive.EncodeCursor("acme", archive.Filter{}, id), "acme", "")
	f.Add(archive.EncodeCursor("acme", archive.Filter{Kind: "echo"}, id), "acme", "echo")
	f.Add(archive.EncodeCursor("b", archive.Filter{Kind: "計算"}, id), "b", "計算")
	f.Add("", "acme", "")
	f.Add("AQ", "acme", "")
	f.Add("%%%", "acme", "")
	f.Fuzz(func(t *testing.T, s, tenant, kind string) {
		fl := archive.Filter{Kind: kind}
		c, err := archive.DecodeCursor(s, tenant, fl)
		if err != nil {
			var ge *greyerr.Error
			if !errors.As(err, &ge) || ge.Code != greyerr.InvalidArgument || ge.Field != "cursor" {
				t.Fatalf("decode %q: %v, want InvalidArgument on cursor", s, err)
			}
			return
		}
		if !task.ValidID(c.Before) {
			t.Fatalf("decode %q: Before %q is not a task id", s, c.Before)
		}
		// A cursor that decodes is the one encoding of its position.
		if again := archive.EncodeCursor(tenant, fl, c.Before); again != s {
			t.Fatalf("decode %q then encode gives %q", s, again)
		}
	})
}

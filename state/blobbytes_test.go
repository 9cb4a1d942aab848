package state_test

import (
	"testing"
	"time"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/state"
)

// Blob bytes count in the tenant's stored bytes and its byte-seconds,
// a reservation past Max is refused and changes nothing, a release never
// goes below zero, other tenants are untouched, and a snapshot restore
// keeps the counters and the open storage interval.
func TestBlobBytes(t *testing.T) {
	f := newFixture(t)
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	add := func(now time.Time, tenant string, delta, max int64) (int64, error) {
		return f.s.AddBlobBytes(f.next(), &state.BlobBytesRequest{Now: now, Tenant: tenant, Delta: delta, Max: max})
	}
	if n, err := add(t0, "acme", 1000, 1500); err != nil || n != 1000 {
		t.Fatalf("reserve: %d, %v", n, err)
	}
	if _, err := add(t0, "acme", 600, 1500); greyerr.CodeOf(err) != greyerr.TooLarge {
		t.Fatalf("reservation over max: %v, want TooLarge", err)
	}
	if got := f.s.Load("acme"); got.StoredBytes != 1000 || got.BlobBytes != 1000 {
		t.Fatalf("after a refused reservation: %+v", got)
	}
	if _, err := add(t0, "bad tenant!", 1, 0); greyerr.CodeOf(err) != greyerr.InvalidArgument {
		t.Fatalf("bad tenant id: %v", err)
	}
	t1 := t0.Add(time.Hour)
	if u := f.s.UsageReport("acme", time.Time{}, time.Time{}, t1); u.ByteSeconds != 1000*3600 {
		t.Fatalf("byte-seconds after an hour: %v, want %v", u.ByteSeconds, 1000*3600)
	}
	if got := f.s.Load("globex"); got.StoredBytes != 0 || got.BlobBytes != 0 {
		t.Fatalf("another tenant: %+v", got)
	}

	r := restored(t, snap(t, f.s))
	if got := r.Load("acme"); got.StoredBytes != 1000 || got.BlobBytes != 1000 {
		t.Fatalf("after restore: %+v", got)
	}
	if u := r.UsageReport("acme", time.Time{}, time.Time{}, t1); u.ByteSeconds != 1000*3600 {
		t.Fatalf("byte-seconds after restore: %v", u.ByteSeconds)
	}

	// A release of more than is held stops at zero; storage stops
	// accruing.
	if n, err := add(t1, "acme", -5000, 0); err != nil || n != 0 {
		t.Fatalf("release: %d, %v", n, err)
	}
	if u := f.s.UsageReport("acme", time.Time{}, time.Time{}, t1.Add(time.Hour)); u.ByteSeconds != 1000*3600 {
		t.Fatalf("byte-seconds after release: %v", u.ByteSeconds)
	}
}

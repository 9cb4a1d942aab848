package archivetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/greyerr"
)

// openOptional returns a Store over a fresh driver of h when the driver
// implements the optional interface I, and skips the test otherwise.
func openOptional[I any](t *testing.T, h Harness, name string) *archive.Store {
	t.Helper()
	d := h.Open(t)
	if _, ok := d.(I); !ok {
		_ = d.Close()
		t.Skipf("the driver is no archive.%s", name)
	}
	return store(t, d)
}

func tenants(t testing.TB, s *archive.Store) []string {
	t.Helper()
	got, err := s.Tenants(ctx(t))
	if err != nil {
		t.Fatalf("tenants: %v", err)
	}
	return got
}

func testTenants(t *testing.T, h Harness) {
	s := openOptional[archive.TenantLister](t, h, "TenantLister")
	// Tenants named in one order and written in another: the listing
	// must sort them, whatever order they arrived in.
	z, a, m, none := Tenant("z"), Tenant("a"), Tenant("m"), Tenant("none")
	clk := newClock(time.Now())
	var recsM []archive.Record
	for range 3 {
		recsM = append(recsM, Make(Spec{Tenant: m, Finished: clk.tick()}))
	}
	upsert(t, s, recsM)
	upsert(t, s, []archive.Record{Make(Spec{Tenant: a, Finished: clk.tick()}), Make(Spec{Tenant: a, Finished: clk.tick()})})
	upsert(t, s, []archive.Record{Make(Spec{Tenant: z, Finished: clk.tick()})})

	check := func(when string, present, absent []string) {
		t.Helper()
		got := tenants(t, s)
		if !slices.IsSorted(got) {
			t.Errorf("%s: tenants are not sorted: %v", when, mine(got))
		}
		if len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Errorf("%s: a tenant is listed twice: %v", when, mine(got))
		}
		for _, p := range present {
			if !slices.Contains(got, p) {
				t.Errorf("%s: tenant %s has records but is not listed (got %v)", when, p, mine(got))
			}
		}
		for _, p := range absent {
			if slices.Contains(got, p) {
				t.Errorf("%s: tenant %s has no records but is listed", when, p)
			}
		}
	}
	check("after writes", []string{z, a, m}, []string{none})

	// A tenant whose records are all deleted is no longer listed.
	n, err := s.Delete(ctx(t), m, ids(recsM))
	switch {
	case greyerr.Is(err, greyerr.Unimplemented):
		return
	case err != nil:
		t.Fatalf("delete every record of %s: %v", m, err)
	case n != 3:
		t.Errorf("delete every record of %s: %d deleted, want 3", m, n)
	}
	check("after deleting one tenant's every record", []string{z, a}, []string{m, none})
}

// mine keeps the suite's own tenants of a listing (a shared store lists
// others too), for error messages.
func mine(all []string) []string {
	var out []string
	for _, t := range all {
		if strings.HasPrefix(t, "at-"+runID+"-") {
			out = append(out, t)
		}
	}
	return out
}

func testDelete(t *testing.T, h Harness) {
	s := openOptional[archive.Deleter](t, h, "Deleter")
	a, b := Tenant("a"), Tenant("b")
	clk := newClock(time.Now())
	recsA := mustRecords(t, 10, func(int) Spec { return Spec{Tenant: a, Finished: clk.tick()} })
	// b holds a record under one of a's ids, and one of its own.
	sameB := Make(Spec{Tenant: b, ID: recsA[0].Task.ID, Finished: clk.tick()})
	ownB := Make(Spec{Tenant: b, Finished: clk.tick()})
	upsert(t, s, append(slices.Clone(recsA), sameB, ownB))

	missing := IDAt(time.Now())
	del := []string{recsA[0].Task.ID, recsA[1].Task.ID, recsA[2].Task.ID, missing, ownB.Task.ID, recsA[2].Task.ID}
	n, err := s.Delete(ctx(t), a, del)
	if err != nil {
		t.Fatalf("delete of 3 records, a missing id, another tenant's id and a repeated id: %v", err)
	}
	if n != 3 {
		t.Errorf("delete of 3 of the tenant's records (with a missing id, another tenant's id and one id twice): %d deleted, want 3", n)
	}
	for _, r := range recsA[:3] {
		_, err := s.Get(ctx(t), a, r.Task.ID)
		wantCode(t, "get of a deleted record", err, greyerr.NotFound)
	}
	if c := count(t, s, a, archive.Filter{}); c != 7 {
		t.Errorf("count after deleting 3 of 10: %d, want 7", c)
	}
	wantIDs(t, "list after deleting 3 of 10", listAll(t, s, a, archive.Query{Limit: 4}), descending(recsA[3:]))
	for _, r := range recsA[3:] {
		if d := sameRecord(r, get(t, s, a, r.Task.ID), !h.JSONAsValues); d != "" {
			t.Errorf("a record not deleted changed: %s", d)
		}
	}
	// The other tenant's records, one under a deleted id, are untouched.
	for _, r := range []archive.Record{sameB, ownB} {
		if d := sameRecord(r, get(t, s, b, r.Task.ID), !h.JSONAsValues); d != "" {
			t.Errorf("another tenant's record after a delete: %s", d)
		}
	}
	if c := count(t, s, b, archive.Filter{}); c != 2 {
		t.Errorf("the other tenant's count after a delete: %d, want 2", c)
	}
	// Again: nothing left to delete, no error.
	n, err = s.Delete(ctx(t), a, del)
	if err != nil || n != 0 {
		t.Errorf("the same delete again: %d deleted, %v; want 0 and no error", n, err)
	}
	n, err = s.Delete(ctx(t), a, nil)
	if err != nil || n != 0 {
		t.Errorf("delete of no ids: %d deleted, %v; want 0 and no error", n, err)
	}
	n, err = s.Delete(ctx(t), Tenant("nobody"), []string{recsA[4].Task.ID})
	if err != nil || n != 0 {
		t.Errorf("delete under a tenant with no records: %d deleted, %v; want 0 and no error", n, err)
	}
	if c := count(t, s, a, archive.Filter{}); c != 7 {
		t.Errorf("count after deleting under another tenant: %d, want 7", c)
	}
}

// Package archivetest is the conformance suite of the archive port: the
// behaviours every archive driver must have, checked through the portable
// archive.Store (and, where the contract is the driver's own, through the
// driver directly). memarchive runs it on every go test; pgarchive runs it
// against a real PostgreSQL (GREY_TEST_POSTGRES_URL).
//
// The suite makes its tenant ids unique per run (Tenant), so a persistent
// store can run it repeatedly and concurrently without cleaning up. The one
// operation that spans tenants, DeleteBefore, is only called with times 90
// days in the past, where no other test of the suite puts records. All
// times are whole microseconds in UTC (PostgreSQL's precision).
package archivetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/greyerr"
)

// Harness is what a driver's test hands the suite.
type Harness struct {
	// Open returns a driver over a fresh, empty store, or over a shared
	// store (the suite's tenants are unique per run, so it sees only its
	// own records). The suite closes the driver when the test ends; Open
	// must not.
	Open func(t testing.TB) archive.Driver
	// Unreachable returns a driver pointed at a store that does not answer
	// (a closed port, a stopped server); opening it must not fail. Nil
	// skips the test; it may also call t.Skip with its reason.
	Unreachable func(t testing.TB) archive.Driver
	// JSONAsValues says the driver stores the task's payload and result
	// and the proof envelope as parsed JSON (PostgreSQL jsonb), which may
	// reorder object keys, drop insignificant whitespace and rewrite
	// escapes. The suite then compares them as JSON values; otherwise it
	// wants them back byte for byte.
	JSONAsValues bool
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	if h.Open == nil {
		t.Fatal("archivetest: Harness.Open is nil")
	}
	t.Run("PingAndCapabilities", func(t *testing.T) { testPing(t, h) })
	t.Run("GetByTenantAndID", func(t *testing.T) { testGet(t, h) })
	t.Run("IdempotentUpsert", func(t *testing.T) { testIdempotent(t, h) })
	t.Run("LargeBatch", func(t *testing.T) { testLargeBatch(t, h) })
	t.Run("OrderAndPagination", func(t *testing.T) { testOrder(t, h) })
	t.Run("CursorStableUnderConcurrentInserts", func(t *testing.T) { testCursorStability(t, h) })
	t.Run("TenantIsolation", func(t *testing.T) { testIsolation(t, h) })
	t.Run("SameIDInTwoTenants", func(t *testing.T) { testSameID(t, h) })
	t.Run("Filters", func(t *testing.T) { testFilters(t, h) })
	t.Run("Retention", func(t *testing.T) { testRetention(t, h) })
	t.Run("LargeResultAndProof", func(t *testing.T) { testLarge(t, h) })
	t.Run("JSONBytes", func(t *testing.T) { testJSONBytes(t, h) })
	t.Run("Unicode", func(t *testing.T) { testUnicode(t, h) })
	t.Run("ContextCancelled", func(t *testing.T) { testCancel(t, h) })
	t.Run("Unreachable", func(t *testing.T) { testUnreachable(t, h) })
	t.Run("BadCursor", func(t *testing.T) { testBadCursor(t, h) })
	// Optional interfaces: skipped when the driver lacks them.
	t.Run("Tenants", func(t *testing.T) { testTenants(t, h) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, h) })
}

// FastRetry are the retry options the suite's stores use: a transient
// failure is tried 3 times within about a second.
var FastRetry = archive.RetryOptions{MaxTries: 3, InitialInterval: 20 * time.Millisecond, MaxInterval: 200 * time.Millisecond, MaxElapsed: 2 * time.Second}

// open returns a Store over a fresh driver of h, closed when t ends.
func open(t testing.TB, h Harness) *archive.Store {
	t.Helper()
	return store(t, h.Open(t))
}

func store(t testing.TB, d archive.Driver) *archive.Store {
	t.Helper()
	if d == nil {
		t.Fatal("archivetest: the harness returned a nil driver")
	}
	s, err := archive.New(d, archive.Options{Name: "conformance", Retry: FastRetry})
	if err != nil {
		_ = d.Close()
		t.Fatalf("archive.New: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func wantCode(t testing.TB, what string, err error, code greyerr.Code) {
	t.Helper()
	if !greyerr.Is(err, code) {
		t.Errorf("%s: got %v (code %q), want code %q", what, err, greyerr.CodeOf(err), code)
	}
}

func wantField(t testing.TB, what string, err error, field string) {
	t.Helper()
	var ge *greyerr.Error
	if !errors.As(err, &ge) || ge.Code != greyerr.InvalidArgument || ge.Field != field {
		t.Errorf("%s: got %v, want InvalidArgument on field %q", what, err, field)
	}
}

func upsert(t testing.TB, s *archive.Store, recs []archive.Record) {
	t.Helper()
	if err := s.Upsert(ctx(t), recs); err != nil {
		t.Fatalf("upsert of %d records: %v", len(recs), err)
	}
}

// listAll pages through the tenant's records matching q (q.Cursor must be
// "") and returns them in the order listed, checking every page's size.
func listAll(t testing.TB, s *archive.Store, tenant string, q archive.Query) []archive.Record {
	t.Helper()
	limit := q.Limit
	if limit == 0 {
		limit = archive.DefaultLimit
	}
	var out []archive.Record
	cursors := map[string]bool{}
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatal("list does not end")
		}
		p, err := s.List(ctx(t), tenant, q)
		if err != nil {
			t.Fatalf("list page %d of %+v: %v", pages, q.Filter, err)
		}
		if len(p.Records) > limit {
			t.Fatalf("page of %d records, limit %d", len(p.Records), limit)
		}
		if p.Next != "" && len(p.Records) != limit {
			t.Fatalf("page %d has %d records and a next cursor; want full pages of %d before the last", pages, len(p.Records), limit)
		}
		out = append(out, p.Records...)
		if p.Next == "" {
			return out
		}
		if cursors[p.Next] {
			t.Fatalf("page %d ends where an earlier page ended: the list does not advance", pages)
		}
		cursors[p.Next] = true
		q.Cursor = p.Next
	}
}

func count(t testing.TB, s *archive.Store, tenant string, f archive.Filter) int64 {
	t.Helper()
	n, err := s.Count(ctx(t), tenant, f)
	if err != nil {
		t.Fatalf("count %+v: %v", f, err)
	}
	return n
}

func get(t testing.TB, s *archive.Store, tenant, id string) archive.Record {
	t.Helper()
	r, err := s.Get(ctx(t), tenant, id)
	if err != nil {
		t.Fatalf("get %s/%s: %v", tenant, id, err)
	}
	return r
}

// wantIDs checks that got lists exactly want, in that order.
func wantIDs(t testing.TB, what string, got []archive.Record, want []string) {
	t.Helper()
	g := ids(got)
	if len(g) != len(want) {
		t.Errorf("%s: listed %d records, want %d", what, len(g), len(want))
	}
	for i := range min(len(g), len(want)) {
		if g[i] != want[i] {
			t.Errorf("%s: record %d is %s, want %s", what, i, g[i], want[i])
			return
		}
	}
}

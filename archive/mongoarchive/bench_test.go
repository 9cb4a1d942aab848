package mongoarchive_test

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/archivetest"
	"github.com/grey-distributed/grey/archive/mongoarchive"
	"github.com/jackc/pgx/v5"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// BenchmarkArchive runs the port's benchmarks (archivetest.Bench) against
// GREY_TEST_MONGODB_URL.
func BenchmarkArchive(b *testing.B) { archivetest.Bench(b, harness(b)) }

// BenchmarkIngest measures Upsert in batches of several sizes (records/s)
// into a collection of its own.
func BenchmarkIngest(b *testing.B) {
	u := scratchURL(b)
	for _, n := range []int{100, 500, 1000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			d := open(b, u, archive.OpenOptions{})
			s, _ := archive.New(d, archive.Options{})
			ten := archivetest.Tenant("ingest")
			fin := time.Now()
			for b.Loop() {
				b.StopTimer()
				batch := make([]archive.Record, n)
				for i := range batch {
					fin = fin.Add(-time.Millisecond)
					batch[i] = archivetest.Make(archivetest.Spec{Tenant: ten, Finished: fin})
				}
				b.StartTimer()
				if err := s.Upsert(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// TestReadLatency measures Get and List (first page and a next page of
// 100) p50/p99 over GREY_MONGO_BENCH_RECORDS records (spread over 100
// tenants) loaded into a collection of its own; skipped unless the
// variable is set.
func TestReadLatency(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("GREY_MONGO_BENCH_RECORDS"))
	if n <= 0 {
		t.Skip("GREY_MONGO_BENCH_RECORDS is not set")
	}
	u := scratchURL(t)
	d := open(t, u, archive.OpenOptions{PoolSize: 8})
	s, _ := archive.New(d, archive.Options{})
	const tenants = 100
	ten := make([]string, tenants)
	for i := range ten {
		ten[i] = archivetest.Tenant(fmt.Sprintf("lat%d", i))
	}
	var ids []string // tenant 0's
	fin := time.Now()
	start := time.Now()
	for done := 0; done < n; {
		batch := make([]archive.Record, 0, 1000)
		for i := 0; i < 1000 && done < n; i++ {
			fin = fin.Add(-time.Millisecond)
			r := archivetest.Make(archivetest.Spec{Tenant: ten[done%tenants], Finished: fin})
			if done%tenants == 0 {
				ids = append(ids, r.Task.ID)
			}
			batch = append(batch, r)
			done++
		}
		if err := s.Upsert(t.Context(), batch); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("loaded %d records in %s (%.0f records/s)", n, time.Since(start), float64(n)/time.Since(start).Seconds())
	measure := func(what string, k int, f func(i int) error) {
		lat := make([]time.Duration, k)
		for i := range k {
			t0 := time.Now()
			if err := f(i); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			lat[i] = time.Since(t0)
		}
		slices.Sort(lat)
		t.Logf("%s over %d records: p50 %s p99 %s (%d calls)", what, n, lat[k/2], lat[k*99/100], k)
	}
	calls := 200
	if n > 20000 {
		calls = 40 // each get scans the collection on FerretDB 1.x
	}
	reads := func(how string) {
		measure("get"+how, calls, func(i int) error { _, err := s.Get(t.Context(), ten[0], ids[(i*7919)%len(ids)]); return err })
		measure("list first page of 100"+how, calls/4, func(int) error { _, err := s.List(t.Context(), ten[0], archive.Query{Limit: 100}); return err })
		p, err := s.List(t.Context(), ten[0], archive.Query{Limit: 100})
		if err != nil || p.Next == "" {
			t.Fatalf("first page: %v", err)
		}
		measure("list next page of 100"+how, calls/4, func(int) error {
			_, err := s.List(t.Context(), ten[0], archive.Query{Limit: 100, Cursor: p.Next})
			return err
		})
	}
	pg := os.Getenv("GREY_FERRETDB_POSTGRES_URL")
	if pg == "" || n <= 100000 {
		reads("")
	} else {
		// Every read scans the collection on FerretDB 1.x without the
		// indexes: tens of seconds each at this size.
		t.Logf("reads without the GIN indexes skipped above 100,000 records")
	}
	// On FerretDB 1.x (PostgreSQL backend), the documented GIN indexes on
	// the collection's table, then the same reads again.
	if pg != "" {
		var c *mongo.Collection
		d.As(&c)
		ferretGIN(t, pg, c.Database().Name(), c.Name())
		reads(" (GIN indexes)")
	}
	_ = mongoarchive.MaxBatch
}

// ferretGIN runs ferretdb_indexes.sql (the script docs/ARCHIVE.md gives for
// FerretDB 1.x) for collection coll of database db, with psql's variables
// filled in.
func ferretGIN(t *testing.T, pgURL, db, coll string) {
	t.Helper()
	src, err := os.ReadFile("ferretdb_indexes.sql")
	if err != nil {
		t.Fatal(err)
	}
	lit := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	script := strings.NewReplacer(":'db'", lit(db), ":'coll'", lit(coll)).Replace(string(src))
	conn, err := pgx.Connect(t.Context(), pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	t0 := time.Now()
	if _, err := conn.Exec(t.Context(), script); err != nil {
		t.Fatalf("ferretdb_indexes.sql: %v", err)
	}
	t.Logf("ferretdb_indexes.sql over %s.%s: %s", db, coll, time.Since(t0))
}

package mongoarchive_test

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/archivetest"
	"github.com/grey-distributed/grey/archive/mongoarchive"
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
	measure("get", calls, func(i int) error { _, err := s.Get(t.Context(), ten[0], ids[(i*7919)%len(ids)]); return err })
	measure("list first page of 100", calls/4, func(int) error { _, err := s.List(t.Context(), ten[0], archive.Query{Limit: 100}); return err })
	p, err := s.List(t.Context(), ten[0], archive.Query{Limit: 100})
	if err != nil || p.Next == "" {
		t.Fatalf("first page: %v", err)
	}
	measure("list next page of 100", calls/4, func(int) error {
		_, err := s.List(t.Context(), ten[0], archive.Query{Limit: 100, Cursor: p.Next})
		return err
	})
	_ = mongoarchive.MaxBatch
}

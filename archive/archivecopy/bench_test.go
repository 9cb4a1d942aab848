package archivecopy_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/archivecopy"
	"github.com/grey-distributed/grey/archive/archivetest"
)

// benchRecords is the size of the archive the copy benchmarks move
// (GREY_BENCH_COPY_RECORDS, default 20000).
func benchRecords(b *testing.B) int {
	if v := os.Getenv("GREY_BENCH_COPY_RECORDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("GREY_BENCH_COPY_RECORDS=%q", v)
		}
		return n
	}
	return 20000
}

// BenchmarkCopy copies an archive of benchRecords records over 20 tenants
// from memory to memory and from memory to PostgreSQL, and reports
// records/s of the copy and of Verify.
func BenchmarkCopy(b *testing.B) {
	n := benchRecords(b)
	src := mem(b)
	var tenants []string
	for i := range 20 {
		tenants = append(tenants, archivetest.Tenant(fmt.Sprint("bench", i)))
	}
	at := time.Now().Add(-time.Hour)
	batch := make([]archive.Record, 0, 1000)
	for i := range n {
		batch = append(batch, archivetest.Make(archivetest.Spec{Tenant: tenants[i%20], Finished: at.Add(time.Duration(i) * time.Microsecond)}))
		if len(batch) == cap(batch) || i == n-1 {
			if err := src.Upsert(b.Context(), batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	for _, c := range []struct {
		name string
		to   func(b *testing.B) *archive.Store
	}{{"MemToMem", func(b *testing.B) *archive.Store { return mem(b) }}, {"MemToPostgres", func(b *testing.B) *archive.Store { return pgStore(b, "postgres") }}} {
		b.Run(c.name, func(b *testing.B) {
			var copied, verified time.Duration
			for b.Loop() {
				b.StopTimer()
				dst := c.to(b)
				b.StartTimer()
				start := time.Now()
				for _, ten := range tenants {
					if _, err := archivecopy.Copy(b.Context(), src, dst, archivecopy.Options{Tenant: ten, Batch: 1000}); err != nil {
						b.Fatal(err)
					}
				}
				copied += time.Since(start)
				start = time.Now()
				for _, ten := range tenants {
					rep, err := archivecopy.Verify(b.Context(), src, dst, archivecopy.VerifyOptions{Tenant: ten})
					if err != nil || !rep.Equal() {
						b.Fatal(err, rep.Differences())
					}
				}
				verified += time.Since(start)
			}
			b.ReportMetric(float64(b.N*n)/copied.Seconds(), "copied-records/s")
			b.ReportMetric(float64(b.N*n)/verified.Seconds(), "verified-records/s")
		})
	}
}

package archivetest

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/grey-distributed/grey/archive"
)

// BenchRecords is how many records the read benchmarks of Bench hold in
// their tenant.
const BenchRecords = 10_000

// Bench runs the archive benchmarks through the portable Store over
// drivers of h: Upsert (batches of 1000 records; records/s), Get (by id,
// at random), ListFirstPage and ListNextPage (pages of 100 of a tenant of
// BenchRecords records; a next page starts at a random depth, by cursor).
// Harness.Unreachable is not used.
func Bench(b *testing.B, h Harness) {
	b.Run("Upsert1000", func(b *testing.B) {
		s := store(b, h.Open(b))
		ten := Tenant("bench-upsert")
		clk := newClock(time.Now())
		for b.Loop() {
			b.StopTimer()
			batch := mustRecords(b, 1000, func(int) Spec { return Spec{Tenant: ten, Finished: clk.tick()} })
			b.StartTimer()
			if err := s.Upsert(b.Context(), batch); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "records/s")
	})

	s := store(b, h.Open(b))
	ten := Tenant("bench-read")
	clk := newClock(time.Now())
	var all []string
	for len(all) < BenchRecords {
		batch := mustRecords(b, 1000, func(int) Spec { return Spec{Tenant: ten, Finished: clk.tick()} })
		if err := s.Upsert(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
		all = append(all, ids(batch)...)
	}
	b.Run("Get", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Get(b.Context(), ten, all[rand.IntN(len(all))]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ListFirstPage", func(b *testing.B) {
		for b.Loop() {
			p, err := s.List(b.Context(), ten, archive.Query{Limit: 100})
			if err != nil || len(p.Records) != 100 {
				b.Fatalf("%d records, %v", len(p.Records), err)
			}
		}
	})
	var cursors []string
	q := archive.Query{Limit: 100}
	for {
		p, err := s.List(b.Context(), ten, q)
		if err != nil {
			b.Fatal(err)
		}
		if p.Next == "" {
			break
		}
		cursors = append(cursors, p.Next)
		q.Cursor = p.Next
	}
	b.Run("ListNextPage", func(b *testing.B) {
		for b.Loop() {
			c := cursors[rand.IntN(len(cursors))]
			p, err := s.List(b.Context(), ten, archive.Query{Limit: 100, Cursor: c})
			if err != nil || len(p.Records) != 100 {
				b.Fatalf("%d records, %v", len(p.Records), err)
			}
		}
	})
}

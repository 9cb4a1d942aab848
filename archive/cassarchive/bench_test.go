package cassarchive_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/archivetest"
	"github.com/grey-distributed/grey/archive/cassarchive"
	"github.com/grey-distributed/grey/task"
)

// benchEnv turns TestScale on and says how many records it loads
// (bench/archive_cass.sh sets it).
const benchEnv = "GREY_BENCH_ARCHIVE_CASS_ROWS"

// TestScale measures the Cassandra archive through the portable Store, in
// a keyspace of its own (dropped afterwards unless GREY_BENCH_KEEP=1):
//
//  1. ingest by batch size: one caller upserting batches of 1, 10, 100
//     and 1000 records of 4 tenants (as the archive pipeline does), for
//     a few seconds each: records/s;
//  2. a load of GREY_BENCH_ARCHIVE_CASS_ROWS records across 100 tenants
//     and 30 days (ids and finish times spread over them, a proof
//     envelope shared by each 100 tasks as Grey's report batches do), 4
//     callers of 1000-record batches: records/s and the time it took;
//  3. get by id (random among the loaded), a tenant's first page of 100,
//     and a next page by cursor at a random depth: p50, p99.
//
// It asserts nothing about speed (bench/README.md holds the numbers).
func TestScale(t *testing.T) {
	rowsWanted, _ := strconv.Atoi(os.Getenv(benchEnv))
	if rowsWanted <= 0 {
		t.Skipf("%s is not set (bench/archive_cass.sh runs this)", benchEnv)
	}
	ks := fmt.Sprintf("grey_bench_%d", time.Now().Unix())
	if os.Getenv("GREY_BENCH_KEEP") != "1" {
		ks = uniqueKeyspace(t, "bench")
	}
	raw := serviceURL(t, ks, "")
	ctx := context.Background()
	d, err := cassarchive.Open(ctx, raw, archive.OpenOptions{Migrate: true, PoolSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	s, err := archive.New(d, archive.Options{Retry: archive.RetryOptions{MaxTries: 6, MaxElapsed: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	env := json.RawMessage(`{"payloadType":"application/vnd.in-toto+json","payload":"` + string(make64(2048)) + `","signatures":[{"keyid":"node:1","sig":"` + string(make64(88)) + `"}]}`)
	rng := rand.New(rand.NewPCG(1, 2))

	// 1. ingest by batch size
	for _, size := range []int{1, 10, 100, 1000} {
		tenants := []string{archivetest.Tenant("ingest"), archivetest.Tenant("ingest"), archivetest.Tenant("ingest"), archivetest.Tenant("ingest")}
		n, start := 0, time.Now()
		for time.Since(start) < 8*time.Second {
			batch := make([]archive.Record, size)
			now := time.Now()
			for i := range batch {
				batch[i] = benchRecord(tenants[i%4], now.Add(-time.Duration(rng.IntN(600_000))*time.Millisecond), now, env, rng)
			}
			if err := s.Upsert(ctx, batch); err != nil {
				t.Fatal(err)
			}
			n += size
		}
		el := time.Since(start)
		t.Logf("ingest: batches of %4d: %6d records in %5.1fs = %7.0f records/s", size, n, el.Seconds(), float64(n)/el.Seconds())
	}

	// 2. the load
	const tenantCount, days = 100, 30
	tenants := make([]string, tenantCount)
	for i := range tenants {
		tenants[i] = archivetest.Tenant("t" + strconv.Itoa(i))
	}
	end := time.Now().UTC()
	start := end.Add(-days * 24 * time.Hour)
	step := end.Sub(start) / time.Duration(rowsWanted)
	type ref struct{ tenant, id string }
	var sampleMu sync.Mutex
	var sample []ref
	var done atomic.Int64
	loadStart := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	const batch = 1000
	for b := 0; b < rowsWanted; b += batch {
		g.Go(func() error {
			r := rand.New(rand.NewPCG(uint64(b), 7))
			recs := make([]archive.Record, 0, batch)
			for i := b; i < min(b+batch, rowsWanted); i++ {
				fin := start.Add(time.Duration(i) * step)
				created := fin.Add(-time.Duration(r.IntN(600_000)) * time.Millisecond)
				// an envelope per 100 consecutive tasks of a tenant, as a
				// report batch signs them
				ti := r.IntN(tenantCount)
				rec := benchRecord(tenants[ti], created, fin, envelopeOf(env, ti*1_000_000+i/(100*tenantCount)), r)
				recs = append(recs, rec)
				if i%500 == 0 {
					sampleMu.Lock()
					sample = append(sample, ref{rec.Task.TenantID, rec.Task.ID})
					sampleMu.Unlock()
				}
			}
			if err := s.Upsert(gctx, recs); err != nil {
				return err
			}
			if n := done.Add(int64(len(recs))); n%100_000 < batch {
				t.Logf("load: %d records, %.0f records/s", n, float64(n)/time.Since(loadStart).Seconds())
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	loadEl := time.Since(loadStart)
	t.Logf("load: %d records across %d tenants and %d days in %s = %.0f records/s (4 callers, batches of %d)",
		rowsWanted, tenantCount, days, loadEl.Round(time.Second), float64(rowsWanted)/loadEl.Seconds(), batch)

	// 3. reads
	measure := func(what string, n int, f func() error) {
		lat := make([]time.Duration, 0, n)
		for range n {
			t0 := time.Now()
			if err := f(); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			lat = append(lat, time.Since(t0))
		}
		slices.Sort(lat)
		t.Logf("%-22s n=%d p50=%6.2fms p99=%6.2fms max=%6.2fms", what, n,
			ms(lat[n/2]), ms(lat[n*99/100]), ms(lat[n-1]))
	}
	measure("get by id", 2000, func() error {
		x := sample[rng.IntN(len(sample))]
		_, err := s.Get(ctx, x.tenant, x.id)
		return err
	})
	measure("first page of 100", 500, func() error {
		p, err := s.List(ctx, tenants[rng.IntN(tenantCount)], archive.Query{Limit: 100})
		if err == nil && len(p.Records) != 100 {
			err = fmt.Errorf("%d records", len(p.Records))
		}
		return err
	})
	// Cursors at every depth of a few tenants.
	var cursors []struct{ tenant, cursor string }
	for _, ten := range tenants[:5] {
		q := archive.Query{Limit: 100}
		for {
			p, err := s.List(ctx, ten, q)
			if err != nil {
				t.Fatal(err)
			}
			if p.Next == "" {
				break
			}
			cursors = append(cursors, struct{ tenant, cursor string }{ten, p.Next})
			q.Cursor = p.Next
		}
	}
	measure("next page by cursor", 500, func() error {
		c := cursors[rng.IntN(len(cursors))]
		_, err := s.List(ctx, c.tenant, archive.Query{Limit: 100, Cursor: c.cursor})
		return err
	})
	measure("filtered page (failed)", 100, func() error {
		_, err := s.List(ctx, tenants[rng.IntN(tenantCount)], archive.Query{Limit: 100,
			Filter: archive.Filter{Statuses: []task.Status{task.Failed}}})
		return err
	})
}

func envelopeOf(base json.RawMessage, group int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"group":%d,%s`, group, base[1:]))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func make64(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[i%64]
	}
	return b
}

// benchRecord is a compact finished task: most complete with a small
// result and the shared envelope, one in 20 fails.
func benchRecord(tenant string, created, fin time.Time, env json.RawMessage, r *rand.Rand) archive.Record {
	spec := archivetest.Spec{Tenant: tenant, ID: archivetest.IDAt(created), Finished: fin, Kind: "noop", NoProof: true}
	if r.IntN(20) == 0 {
		spec.Status = task.Failed
		spec.ErrorMessage = "exit status 1"
	}
	rec := archivetest.Make(spec)
	if rec.Task.Status == task.Completed {
		rec.Proof = env
	}
	return rec
}

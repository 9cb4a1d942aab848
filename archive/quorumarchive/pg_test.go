package quorumarchive_test

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/archivetest"
	"github.com/grey-distributed/grey/archive/memarchive"
	"github.com/grey-distributed/grey/archive/pgarchive"
	"github.com/grey-distributed/grey/archive/pgarchive/pgtest"
	"github.com/grey-distributed/grey/archive/quorumarchive"
	"github.com/grey-distributed/grey/internal/testenv"
)

// migratedDB is a scratch database on the named service, migrated, and
// the URL of its runtime role.
func migratedDB(t testing.TB, service string) string {
	t.Helper()
	db := pgtest.Scratch(t, testenv.ServiceURL(t, service))
	if _, _, err := pgarchive.Migrate(ctxT(t), db.OwnerURL, db.AppURL); err != nil {
		t.Fatalf("migrate %s: %v", service, err)
	}
	return db.AppURL
}

// quorumURL is the quorum:// URL over replicas.
func quorumURL(replicas []string, extra string) string {
	q := url.Values{}
	for _, r := range replicas {
		q.Add("replica", r)
	}
	return "quorum://?" + q.Encode() + extra
}

func registry(t testing.TB) *archive.Registry {
	t.Helper()
	reg := archive.NewRegistry()
	for _, r := range []func(*archive.Registry) error{memarchive.Register, pgarchive.Register, quorumarchive.Register} {
		if err := r(reg); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

func openQuorum(t testing.TB, reg *archive.Registry, raw string) *quorumarchive.Driver {
	t.Helper()
	d, err := reg.OpenDriver(ctxT(t), raw, archive.OpenOptions{PoolSize: 4})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return d.(*quorumarchive.Driver)
}

// threePostgres are migrated scratch databases on the three PostgreSQL
// services.
func threePostgres(t testing.TB) []string {
	t.Helper()
	return []string{migratedDB(t, "postgres"), migratedDB(t, "postgres2"), migratedDB(t, "postgres3")}
}

func TestConformancePostgres(t *testing.T) {
	reps := threePostgres(t)
	reg := registry(t)
	raw := quorumURL(reps, "&write=majority&read=majority")
	archivetest.Run(t, archivetest.Harness{
		JSONAsValues: false,
		Open:         func(t testing.TB) archive.Driver { return openQuorum(t, reg, raw) },
		Unreachable: func(t testing.TB) archive.Driver {
			return openQuorum(t, reg, quorumURL([]string{deadURL(t), deadURL(t), deadURL(t)}, ""))
		},
	})
}

// deadURL is a PostgreSQL URL on a loopback port nothing listens on.
func deadURL(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return fmt.Sprintf("postgres://grey:secret@127.0.0.1:%d/grey?sslmode=disable&connect_timeout=2", port)
}

// A private PostgreSQL replica is killed in the middle of a stream of
// majority writes and reads, which go on; restarted, one anti-entropy
// pass converges the three replicas and the next finds nothing.
func TestPostgresReplicaKilledMidRun(t *testing.T) {
	in := pgtest.Start(t)
	if _, _, err := pgarchive.Migrate(ctxT(t), in.OwnerURL(), in.AppURL()); err != nil {
		t.Fatal(err)
	}
	reps := []string{migratedDB(t, "postgres"), migratedDB(t, "postgres2"), in.AppURL() + "&connect_timeout=2"}
	if u, _ := url.Parse(in.AppURL()); u.RawQuery == "" {
		reps[2] = in.AppURL() + "?connect_timeout=2"
	}
	reg := registry(t)
	d := openQuorum(t, reg, quorumURL(reps, ""))
	defer d.Close()
	s, err := archive.New(d, archive.Options{Retry: archivetest.FastRetry})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	ten := archivetest.Tenant("kill")
	var (
		written []archive.Record
		wmu     sync.Mutex
		writes  atomic.Int64
		stop    = make(chan struct{})
		errs    = make(chan error, 100)
		wg      sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		at := time.Now().Add(-time.Hour)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			batch := records(t, ten, 20, at.Add(time.Duration(i)*time.Second))
			if err := s.Upsert(ctx, batch); err != nil {
				errs <- fmt.Errorf("write %d: %w", i, err)
				return
			}
			wmu.Lock()
			written = append(written, batch...)
			last := batch[len(batch)-1]
			wmu.Unlock()
			if _, err := s.Get(ctx, ten, last.Task.ID); err != nil {
				errs <- fmt.Errorf("read %d: %w", i, err)
				return
			}
			writes.Add(1)
		}
	}()
	waitFor(t, "writes before the kill", func() bool { return writes.Load() >= 10 })
	in.Kill()
	killedAt := writes.Load()
	waitFor(t, "writes with a replica killed", func() bool { return writes.Load() >= killedAt+20 })
	in.Restart()
	restartedAt := writes.Load()
	waitFor(t, "writes after the restart", func() bool { return writes.Load() >= restartedAt+5 })
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("majority over 3 with one replica killed: %v", err)
	default:
	}
	n := len(written)
	res, err := d.AntiEntropy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d records written; first pass after the restart: %+v", n, res)
	if res.Divergent == 0 || res.Repaired < res.Divergent {
		t.Errorf("first pass: %+v; want the records written while replica 3 was down found and repaired", res)
	}
	res, err = d.AntiEntropy(ctx)
	if err != nil || res.Divergent != 0 {
		t.Errorf("second pass: %+v, %v; want nothing divergent", res, err)
	}
	// Each replica on its own holds every record, the same versions.
	var drvs []archive.Driver
	for _, r := range reps {
		pd, err := pgarchive.Open(ctx, r, archive.OpenOptions{PoolSize: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer pd.Close()
		drvs = append(drvs, pd)
	}
	sameEverywhere(t, drvs, ten, n)
	want := make([]string, n)
	for i, r := range written {
		want[i] = r.Task.ID
	}
	slices.Sort(want)
	slices.Reverse(want)
	got := all(t, drvs[2], ten)
	for i := range min(len(got), len(want)) {
		if got[i].Task.ID != want[i] {
			t.Fatalf("replica 3 record %d is %s, want %s", i, got[i].Task.ID, want[i])
		}
	}
}

// BenchmarkWriteLatency compares a majority quorum over the three
// PostgreSQL services with one PostgreSQL, in the same run: batches of 100
// records through the Store, latency per batch (p50, p99) and records/s.
func BenchmarkWriteLatency(b *testing.B) {
	reps := threePostgres(b)
	reg := registry(b)
	for _, c := range []struct{ name, url string }{
		{"one-postgres", reps[0]},
		{"quorum-majority-3-postgres", quorumURL(reps, "&write=majority&read=majority")},
	} {
		b.Run(c.name, func(b *testing.B) {
			s, err := reg.Open(ctxT(b), c.url, archive.OpenOptions{PoolSize: 8}, archive.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ten := archivetest.Tenant("bench")
			at := time.Now().Add(-time.Hour)
			var lat []time.Duration
			i := 0
			for b.Loop() {
				b.StopTimer()
				batch := records(b, ten, 100, at.Add(time.Duration(i)*time.Second))
				i++
				b.StartTimer()
				start := time.Now()
				if err := s.Upsert(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
			b.ReportMetric(p(0.5), "p50-ms")
			b.ReportMetric(p(0.99), "p99-ms")
			b.ReportMetric(float64(len(lat)*100)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkArchive is the archive benchmark suite over a majority quorum
// of the three PostgreSQL services.
func BenchmarkArchive(b *testing.B) {
	reps := threePostgres(b)
	reg := registry(b)
	raw := quorumURL(reps, "")
	archivetest.Bench(b, archivetest.Harness{Open: func(t testing.TB) archive.Driver { return openQuorum(t, reg, raw) }})
}

package shardarchive_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/archivetest"
	"github.com/grey-distributed/grey/archive/pgarchive"
	"github.com/grey-distributed/grey/archive/pgarchive/pgtest"
	"github.com/grey-distributed/grey/archive/shardarchive"
	"github.com/grey-distributed/grey/internal/testenv"
)

// pgServices are the three PostgreSQL servers of scripts/services.sh.
var pgServices = []string{"postgres", "postgres2", "postgres3"}

// pgShards returns migrated scratch databases, one per server, and whether
// pgarchive lists tenants in this build.
func pgShards(t testing.TB) ([]pgtest.DB, bool) {
	t.Helper()
	var dbs []pgtest.DB
	for _, svc := range pgServices {
		db := pgtest.Scratch(t, testenv.ServiceURL(t, svc))
		if _, _, err := pgarchive.Migrate(ctxT(t), db.OwnerURL, db.AppURL); err != nil {
			t.Fatalf("migrate %s: %v", svc, err)
		}
		dbs = append(dbs, db)
	}
	d, err := pgarchive.Open(ctxT(t), dbs[0].AppURL, archive.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, ok := any(d).(archive.TenantLister)
	return dbs, ok
}

// scratchLister stands in for the TenantLister of a pgarchive that has
// none yet: the scratch databases are empty when the sharded archive opens
// over them, so no tenant is misplaced.
type scratchLister struct{ archive.Driver }

func (scratchLister) Tenants(context.Context) ([]string, error) { return nil, nil }

func pgSharded(t testing.TB, dbs []pgtest.DB, lists bool) archive.Driver {
	t.Helper()
	if !lists {
		var ds []archive.Driver
		var ids []string
		for _, db := range dbs {
			d, err := pgarchive.Open(ctxT(t), db.AppURL, archive.OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			s, _ := shardarchive.Identity(db.AppURL)
			ds, ids = append(ds, scratchLister{d}), append(ids, s.ID)
		}
		d, err := shardarchive.New(ctxT(t), shardarchive.Config{IDs: ids, Drivers: ds})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	r := archive.NewRegistry()
	if err := pgarchive.Register(r); err != nil {
		t.Fatal(err)
	}
	if err := shardarchive.Register(r); err != nil {
		t.Fatal(err)
	}
	var children []string
	for _, db := range dbs {
		children = append(children, db.AppURL)
	}
	d, err := shardarchive.OpenURL(ctxT(t), r, shardedURL(children...), archive.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestConformanceOverThreePostgres(t *testing.T) {
	dbs, lists := pgShards(t)
	if !lists {
		t.Log("pgarchive lists no tenants in this build: the shards' tenant lists are taken as empty (scratch databases)")
	}
	archivetest.Run(t, archivetest.Harness{
		Open:         func(t testing.TB) archive.Driver { return pgSharded(t, dbs, lists) },
		JSONAsValues: true,
	})
}

// BenchmarkIngest compares the ingest of one PostgreSQL with a sharded
// archive over three (batches of 1000 records over 30 tenants, so that
// the tenants spread over the shards).
func BenchmarkIngest(b *testing.B) {
	dbs, lists := pgShards(b)
	one := func(b testing.TB) archive.Driver {
		d, err := pgarchive.Open(ctxT(b), dbs[0].AppURL, archive.OpenOptions{})
		if err != nil {
			b.Fatal(err)
		}
		return d
	}
	for _, c := range []struct {
		name string
		open func(testing.TB) archive.Driver
	}{{"OnePostgres", one}, {"ShardedThreePostgres", func(b testing.TB) archive.Driver { return pgSharded(b, dbs, lists) }}} {
		b.Run(c.name, func(b *testing.B) {
			s, err := archive.New(c.open(b), archive.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			tenants := tenantIDs(30)
			at := time.Now().Add(-time.Hour)
			i := 0
			for b.Loop() {
				b.StopTimer()
				batch := make([]archive.Record, 1000)
				for j := range batch {
					i++
					batch[j] = archivetest.Make(archivetest.Spec{Tenant: tenants[i%len(tenants)], Finished: at.Add(time.Duration(i) * time.Microsecond)})
				}
				b.StartTimer()
				if err := s.Upsert(b.Context(), batch); err != nil {
					b.Fatal(fmt.Errorf("upsert: %w", err))
				}
			}
			b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

func BenchmarkShardedMem(b *testing.B) {
	r, _ := newRegistry(b)
	n := 0
	archivetest.Bench(b, archivetest.Harness{Open: func(t testing.TB) archive.Driver {
		n++
		d, err := shardarchive.OpenURL(ctxT(t), r, shardedURL(mems(fmt.Sprintf("x%d", n), fmt.Sprintf("y%d", n), fmt.Sprintf("z%d", n))...), archive.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}})
}

// TestRebalanceOverPostgres grows a sharded archive from two PostgreSQL
// servers to three and rebalances it. It needs pgarchive's TenantLister
// and Deleter.
func TestRebalanceOverPostgres(t *testing.T) {
	dbs, lists := pgShards(t)
	if !lists {
		t.Skip("pgarchive is no archive.TenantLister in this build: rebalance finds misplaced tenants with it")
	}
	ctx := ctxT(t)
	stores := make([]*archive.Store, 3)
	ids := make([]string, 3)
	for i, db := range dbs {
		d, err := pgarchive.Open(ctx, db.AppURL, archive.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s, _ := archive.New(d, archive.Options{})
		t.Cleanup(func() { _ = s.Close() })
		stores[i] = s
		sid, _ := shardarchive.Identity(db.AppURL)
		ids[i] = sid.ID
	}
	two := pgSharded(t, dbs[:2], true)
	twoStore, _ := archive.New(two, archive.Options{})
	defer twoStore.Close()
	tenants := tenantIDs(60)
	fill(t, twoStore, tenants, 4)
	if _, err := shardarchive.New(ctx, shardarchive.Config{IDs: ids, Drivers: []archive.Driver{storeLister{stores[0]}, storeLister{stores[1]}, storeLister{stores[2]}}}); err == nil {
		t.Fatal("a sharded archive over a changed shard list opened")
	}
	res, err := shardarchive.Rebalance(ctx, ids, stores, shardarchive.RebalanceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Moves) == 0 || res.Records != int64(4*len(res.Moves)) {
		t.Errorf("moved %d tenants, %d records", len(res.Moves), res.Records)
	}
	three := pgSharded(t, dbs, true) // opens: the start check passes
	s3, _ := archive.New(three, archive.Options{})
	defer s3.Close()
	for _, ten := range tenants {
		if n, err := s3.Count(ctx, ten, archive.Filter{}); err != nil || n != 4 {
			t.Errorf("tenant %s after the rebalance: %d records, %v", ten, n, err)
		}
	}
}

// storeLister is a Store seen as a Driver that lists tenants (enough for
// the start check of shardarchive.New).
type storeLister struct{ s *archive.Store }

func (l storeLister) Tenants(ctx context.Context) ([]string, error) { return l.s.Tenants(ctx) }
func (l storeLister) Upsert(ctx context.Context, _ string, recs []archive.Record) error {
	return l.s.Upsert(ctx, recs)
}
func (l storeLister) Get(ctx context.Context, tenant, id string) (archive.Record, error) {
	return l.s.Get(ctx, tenant, id)
}
func (l storeLister) List(ctx context.Context, tenant string, q archive.DriverQuery) ([]archive.Record, error) {
	return l.s.ListBefore(ctx, tenant, q.Filter, q.Before, q.Limit)
}
func (l storeLister) Count(ctx context.Context, tenant string, f archive.Filter) (int64, error) {
	return l.s.Count(ctx, tenant, f)
}
func (l storeLister) DeleteBefore(ctx context.Context, before time.Time) (int64, error) {
	return l.s.DeleteBefore(ctx, before)
}
func (l storeLister) Ping(ctx context.Context) error     { return l.s.Ping(ctx) }
func (l storeLister) Capabilities() archive.Capabilities { return l.s.Capabilities() }
func (l storeLister) As(i any) bool                      { return l.s.As(i) }
func (l storeLister) Close() error                       { return nil }

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

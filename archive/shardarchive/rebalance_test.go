package shardarchive_test

import (
	"errors"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/archivetest"
	"github.com/grey-distributed/grey/archive/shardarchive"
	"github.com/grey-distributed/grey/greyerr"
)

// TestRebalanceTwoToThree adds a third shard to an archive of 300 tenants
// and rebalances while readers of the new shard list read every tenant:
// about a third of the tenants move, no read misses a record, and the
// archive then opens without allow_misplaced.
func TestRebalanceTwoToThree(t *testing.T) {
	ctx := ctxT(t)
	r, p := newRegistry(t)
	two := open(t, r, shardedURL(mems("a", "b")...))
	tenants := tenantIDs(300)
	const per = 5
	fill(t, two, tenants, per)
	before := copyOfAll(t, two, tenants)

	urls := mems("a", "b", "c")
	reader := open(t, r, shardedURL(urls...)+"&allow_misplaced=true&refresh=-1s")
	stores := make([]*archive.Store, 3)
	for i, u := range urls {
		stores[i] = open(t, r, u)
	}
	ids := []string{"tmem://a", "tmem://b", "tmem://c"}

	dry, err := shardarchive.Rebalance(ctx, ids, stores, shardarchive.RebalanceOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if frac := float64(len(dry.Moves)) / 300; frac < 0.25 || frac > 0.42 {
		t.Errorf("%d of 300 tenants to move (%.2f), want about 1/3", len(dry.Moves), frac)
	}
	for _, m := range dry.Moves {
		if m.To != 2 {
			t.Errorf("tenant %s moves from %s to %s: only moves to the new shard are expected", m.Tenant, m.FromID, m.ToID)
		}
	}
	if p.get("c").Len() != 0 {
		t.Fatal("a dry run wrote")
	}

	// Readers go on throughout.
	stop := make(chan struct{})
	var reads, misses atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ; i = (i + 7) % len(tenants) {
				select {
				case <-stop:
					return
				default:
				}
				ten := tenants[i]
				n, err := reader.Count(ctx, ten, archive.Filter{})
				pg, lerr := reader.List(ctx, ten, archive.Query{Limit: 100})
				_, gerr := reader.Get(ctx, ten, before[ten][0])
				reads.Add(1)
				if err != nil || n != per || lerr != nil || len(pg.Records) != per || gerr != nil {
					misses.Add(1)
					t.Errorf("read of %s mid-rebalance: count %d (%v), list %d (%v), get %v", ten, n, err, len(pg.Records), lerr, gerr)
				}
			}
		}()
	}
	res, err := shardarchive.Rebalance(ctx, ids, stores, shardarchive.RebalanceOptions{Batch: 2})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("moved %d tenants, %d records, with %d reads going on (%d misses)", len(res.Moves), res.Records, reads.Load(), misses.Load())
	if len(res.Moves) != len(dry.Moves) || res.Records != int64(len(dry.Moves)*per) {
		t.Errorf("moved %d tenants and %d records; want %d and %d", len(res.Moves), res.Records, len(dry.Moves), len(dry.Moves)*per)
	}
	for _, m := range res.Moves {
		if m.Deleted != per {
			t.Errorf("tenant %s: %d records deleted from the old shard, want %d", m.Tenant, m.Deleted, per)
		}
	}
	if p.get("a").Len()+p.get("b").Len()+p.get("c").Len() != 300*per {
		t.Errorf("records after the rebalance: %d, want %d", p.get("a").Len()+p.get("b").Len()+p.get("c").Len(), 300*per)
	}
	three := open(t, r, shardedURL(urls...))
	after := copyOfAll(t, three, tenants)
	for ten, want := range before {
		if len(after[ten]) != len(want) {
			t.Errorf("tenant %s: %d records after, %d before", ten, len(after[ten]), len(want))
		}
	}
	again, err := shardarchive.Rebalance(ctx, ids, stores, shardarchive.RebalanceOptions{})
	if err != nil || len(again.Moves) != 0 {
		t.Errorf("second rebalance: %d moves, %v; want none", len(again.Moves), err)
	}
}

// TestRebalanceShardDown: a shard that does not answer stops the
// rebalance with Unavailable naming it, nothing is deleted that the owner
// does not hold, and a rerun once it is back completes.
func TestRebalanceShardDown(t *testing.T) {
	ctx := ctxT(t)
	r, p := newRegistry(t)
	two := open(t, r, shardedURL(mems("a", "b")...))
	tenants := tenantIDs(60)
	fill(t, two, tenants, 3)
	urls := mems("a", "b", "c")
	stores := make([]*archive.Store, 3)
	for i, u := range urls {
		s, err := r.Open(ctx, u, archive.OpenOptions{}, archive.Options{Retry: archive.RetryOptions{MaxTries: 1}})
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
	}
	ids := []string{"tmem://a", "tmem://b", "tmem://c"}
	var once sync.Once
	_, err := shardarchive.Rebalance(ctx, ids, stores, shardarchive.RebalanceOptions{Batch: 1, Progress: func(pr shardarchive.RebalanceProgress) {
		if pr.Records >= 4 {
			once.Do(func() { p.get("c").SetUnavailable(errors.New("killed")) })
		}
	}})
	if !greyerr.Is(err, greyerr.Unavailable) {
		t.Fatalf("rebalance with the new shard killed: %v, want Unavailable", err)
	}
	if p.get("a").Len()+p.get("b").Len() < 60*3-4 {
		t.Errorf("records were deleted from the old shards that the new one may not hold")
	}
	p.get("c").SetUnavailable(nil)
	if _, err := shardarchive.Rebalance(ctx, ids, stores, shardarchive.RebalanceOptions{}); err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if n := p.get("a").Len() + p.get("b").Len() + p.get("c").Len(); n != 180 {
		t.Errorf("%d records after the rerun, want 180", n)
	}
	three := open(t, r, shardedURL(urls...))
	for _, ten := range tenants {
		if n, err := three.Count(ctx, ten, archive.Filter{}); err != nil || n != 3 {
			t.Errorf("tenant %s: %d records, %v", ten, n, err)
		}
	}
}

func copyOfAll(t testing.TB, s *archive.Store, tenants []string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, ten := range tenants {
		p, err := s.List(ctxT(t), ten, archive.Query{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Records {
			out[ten] = append(out[ten], r.Task.ID)
		}
	}
	return out
}

// TestRetireShard removes a shard from three: opened with the shard as
// retire=, the archive refuses to start without allow_misplaced (every
// tenant on it is misplaced), with it writes go to the two owners only and
// reads find the retiring shard's records; a rebalance empties the
// retiring shard into the other two, moving nothing between them, and the
// two-shard archive then opens and holds every record.
func TestRetireShard(t *testing.T) {
	ctx := ctxT(t)
	r, p := newRegistry(t)
	three := open(t, r, shardedURL(mems("a", "b", "c")...))
	tenants := tenantIDs(120)
	const per = 3
	fill(t, three, tenants, per)
	before := copyOfAll(t, three, tenants)
	onC := p.get("c").Len() / per
	if onC == 0 {
		t.Fatal("no tenant on shard c to move")
	}

	retiring := shardedURL(mems("a", "b")...) + "&" + url.Values{"retire": {"tmem://c"}}.Encode()
	if _, err := r.Open(ctx, retiring, archive.OpenOptions{}, archive.Options{Retry: archivetest.FastRetry}); !greyerr.Is(err, greyerr.FailedPrecondition) {
		t.Fatalf("open with a retiring shard that holds tenants: %v, want FailedPrecondition", err)
	}
	reader := open(t, r, retiring+"&allow_misplaced=true&refresh=-1s")
	for _, ten := range tenants {
		if n, err := reader.Count(ctx, ten, archive.Filter{}); err != nil || n != per {
			t.Fatalf("tenant %s through the retiring archive: %d records (%v), want %d", ten, n, err, per)
		}
	}
	// A write while the shard retires goes to an owner, never to it.
	cBefore := p.get("c").Len()
	fresh := archivetest.Make(archivetest.Spec{Tenant: tenants[0]})
	if err := reader.Upsert(ctx, []archive.Record{fresh}); err != nil {
		t.Fatal(err)
	}
	if p.get("c").Len() != cBefore {
		t.Error("a write went to the retiring shard")
	}
	if _, err := reader.Delete(ctx, tenants[0], []string{fresh.Task.ID}); err != nil {
		t.Fatal(err)
	}

	shards, err := shardarchive.ParseURL(retiring)
	if err != nil {
		t.Fatal(err)
	}
	if shardarchive.Owners(shards) != 2 || !shards[2].Retiring {
		t.Fatalf("ParseURL(%s) = %+v: want two owners, then c retiring", retiring, shards)
	}
	stores := make([]*archive.Store, len(shards))
	for i, s := range shards {
		stores[i] = open(t, r, s.URL)
	}
	res, err := shardarchive.Rebalance(ctx, shardarchive.IDs(shards), stores, shardarchive.RebalanceOptions{Owners: shardarchive.Owners(shards)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Moves) != onC {
		t.Errorf("%d tenants moved, want the %d on c", len(res.Moves), onC)
	}
	for _, m := range res.Moves {
		if m.FromID != "tmem://c" || m.To == 2 {
			t.Errorf("tenant %s moved from %s to %s: only moves off the retiring shard are expected", m.Tenant, m.FromID, m.ToID)
		}
	}
	if n := p.get("c").Len(); n != 0 {
		t.Errorf("the retiring shard holds %d records after the rebalance", n)
	}
	two := open(t, r, shardedURL(mems("a", "b")...))
	after := copyOfAll(t, two, tenants)
	for ten, want := range before {
		if len(after[ten]) != len(want) {
			t.Errorf("tenant %s: %d records on the two shards, %d before", ten, len(after[ten]), len(want))
		}
	}
}

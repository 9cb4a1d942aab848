package shardarchive_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/archivetest"
	"github.com/grey-distributed/grey/archive/memarchive"
	"github.com/grey-distributed/grey/archive/shardarchive"
	"github.com/grey-distributed/grey/greyerr"
)

func ctxT(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// pool is a set of named in-memory archives that outlive the drivers
// opened over them (tmem://NAME), so a test can reopen a sharded archive
// over the same shards with another shard list.
type pool struct {
	mu  sync.Mutex
	mem map[string]*memarchive.Driver
}

func (p *pool) get(name string) *memarchive.Driver {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mem[name] == nil {
		p.mem[name] = memarchive.NewDriver()
	}
	return p.mem[name]
}

// keep is a memarchive whose Close keeps the records.
type keep struct{ *memarchive.Driver }

func (keep) Close() error { return nil }

func newRegistry(t testing.TB) (*archive.Registry, *pool) {
	p := &pool{mem: map[string]*memarchive.Driver{}}
	r := archive.NewRegistry()
	if err := r.Register("tmem", archive.OpenerFunc(func(_ context.Context, u *url.URL, _ archive.OpenOptions) (archive.Driver, error) {
		if u.Query().Has("name") {
			return nil, errors.New("the name= parameter reached the child")
		}
		return keep{p.get(u.Host)}, nil
	})); err != nil {
		t.Fatal(err)
	}
	if err := shardarchive.Register(r); err != nil {
		t.Fatal(err)
	}
	if err := memarchive.Register(r); err != nil {
		t.Fatal(err)
	}
	return r, p
}

func shardedURL(children ...string) string {
	q := url.Values{"shard": children}
	return "sharded://?" + q.Encode()
}

func mems(names ...string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "tmem://" + n
	}
	return out
}

func open(t testing.TB, r *archive.Registry, raw string) *archive.Store {
	t.Helper()
	s, err := r.Open(ctxT(t), raw, archive.OpenOptions{}, archive.Options{Retry: archivetest.FastRetry})
	if err != nil {
		t.Fatalf("open %s: %v", raw, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformanceOverThreeMem(t *testing.T) {
	archivetest.Run(t, archivetest.Harness{
		Open: func(t testing.TB) archive.Driver {
			d, err := shardarchive.New(ctxT(t), shardarchive.Config{
				IDs:     []string{"a", "b", "c"},
				Drivers: []archive.Driver{memarchive.NewDriver(), memarchive.NewDriver(), memarchive.NewDriver()},
			})
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
		Unreachable: func(t testing.TB) archive.Driver {
			ds := []archive.Driver{memarchive.NewDriver(), memarchive.NewDriver(), memarchive.NewDriver()}
			d, err := shardarchive.New(ctxT(t), shardarchive.Config{IDs: []string{"a", "b", "c"}, Drivers: ds})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ds {
				m.(*memarchive.Driver).SetUnavailable(errors.New("connection refused"))
			}
			return d
		},
	})
}

func TestConformanceThroughRegistry(t *testing.T) {
	r, _ := newRegistry(t)
	n := 0
	archivetest.Run(t, archivetest.Harness{
		Open: func(t testing.TB) archive.Driver {
			n++
			raw := shardedURL(mems(fmt.Sprintf("a%d", n), fmt.Sprintf("b%d", n), fmt.Sprintf("c%d?name=c", n))...)
			d, err := shardarchive.OpenURL(ctxT(t), r, raw, archive.OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
	})
}

func TestOwnerIsStableAndMovesAboutOneNth(t *testing.T) {
	three := []string{"pg-a", "pg-b", "pg-c"}
	reversed := []string{"pg-c", "pg-b", "pg-a"}
	four := append([]string{"pg-d"}, three...)
	const n = 20000
	moved, per := 0, map[string]int{}
	for i := range n {
		ten := fmt.Sprintf("tenant-%d", i)
		o := three[shardarchive.Owner(three, ten)]
		if r := reversed[shardarchive.Owner(reversed, ten)]; r != o {
			t.Fatalf("%s: owner %s with one order, %s with another", ten, o, r)
		}
		per[o]++
		o4 := four[shardarchive.Owner(four, ten)]
		if o4 != o {
			if o4 != "pg-d" {
				t.Fatalf("%s moved from %s to %s when pg-d was added: only moves to the new shard are allowed", ten, o, o4)
			}
			moved++
		}
	}
	if frac := float64(moved) / n; frac < 0.22 || frac > 0.28 {
		t.Errorf("adding a 4th shard moved %.3f of the tenants, want about 1/4", frac)
	}
	for id, c := range per {
		if f := float64(c) / n; f < 0.30 || f > 0.37 {
			t.Errorf("shard %s owns %.3f of the tenants, want about 1/3", id, f)
		}
	}
}

func TestIdentity(t *testing.T) {
	for _, c := range []struct{ in, id, open string }{
		{"postgres://u:secret@db1:5432/grey?sslmode=disable", "postgres://db1:5432/grey", "postgres://u:secret@db1:5432/grey?sslmode=disable"},
		{"postgres://other:pw@DB1:5432/grey?pool=3", "postgres://db1:5432/grey", "postgres://other:pw@DB1:5432/grey?pool=3"},
		{"cassandra://h1/ks?name=east&consistency=one", "east", "cassandra://h1/ks?consistency=one"},
	} {
		s, err := shardarchive.Identity(c.in)
		if err != nil || s.ID != c.id || s.URL != c.open {
			t.Errorf("Identity(%s) = %+v, %v; want id %s, url %s", c.in, s, err, c.id, c.open)
		}
	}
}

func TestBadURLs(t *testing.T) {
	r, _ := newRegistry(t)
	for what, raw := range map[string]string{
		"no shards":          "sharded://",
		"duplicate identity": shardedURL("tmem://a?x=1", "tmem://a?x=2"),
		"empty name":         shardedURL("tmem://a?name=", "tmem://b"),
		"unknown knob":       shardedURL("tmem://a") + "&quorum=all",
		"nested":             shardedURL("tmem://a", shardedURL("tmem://b")),
		"not a URL":          shardedURL("::nope"),
		"bad refresh":        shardedURL("tmem://a") + "&refresh=soon",
		"bad allow":          shardedURL("tmem://a") + "&allow_misplaced=maybe",
		"unknown child":      shardedURL("tmem://a", "nosuch://b"),
		"only retiring":      "sharded://?retire=tmem%3A%2F%2Fa",
		"retiring and owner": shardedURL("tmem://a", "tmem://b") + "&retire=tmem%3A%2F%2Fb",
		"bad retiring":       shardedURL("tmem://a") + "&retire=%3A%3Anope",
	} {
		_, err := r.Open(ctxT(t), raw, archive.OpenOptions{}, archive.Options{})
		if !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Errorf("%s (%s): got %v, want InvalidArgument", what, raw, err)
		}
	}
	// Two shards with the same identity name the fix.
	_, err := r.Open(ctxT(t), shardedURL("tmem://a?x=1", "tmem://a?x=2"), archive.OpenOptions{}, archive.Options{})
	if err == nil || !strings.Contains(err.Error(), "name=") {
		t.Errorf("duplicate identity: %v does not say to add name=", err)
	}
}

// fill writes n records to each of tenants through s.
func fill(t testing.TB, s *archive.Store, tenants []string, n int) {
	t.Helper()
	var recs []archive.Record
	at := time.Now().Add(-time.Hour)
	for _, ten := range tenants {
		for i := range n {
			recs = append(recs, archivetest.Make(archivetest.Spec{Tenant: ten, Finished: at.Add(time.Duration(i) * time.Millisecond)}))
		}
	}
	if err := s.Upsert(ctxT(t), recs); err != nil {
		t.Fatal(err)
	}
}

func tenantIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = archivetest.Tenant(fmt.Sprint(i))
	}
	return out
}

func TestStartCheckRefusesChangedShardList(t *testing.T) {
	r, p := newRegistry(t)
	two := open(t, r, shardedURL(mems("a", "b")...))
	tenants := tenantIDs(60)
	fill(t, two, tenants, 2)

	// The same shards in another order, with other credentials and knobs:
	// no tenant moves.
	open(t, r, shardedURL("tmem://b?pool=3", "tmem://user:pw@a"))

	_, err := r.Open(ctxT(t), shardedURL(mems("a", "b", "c")...), archive.OpenOptions{}, archive.Options{})
	if !greyerr.Is(err, greyerr.FailedPrecondition) {
		t.Fatalf("open with a shard added: %v, want FailedPrecondition", err)
	}
	ids := []string{"tmem://a", "tmem://b", "tmem://c"}
	want := 0
	for _, ten := range tenants {
		if shardarchive.Owner(ids, ten) == 2 {
			want++
		}
	}
	msg := fmt.Sprintf("shard list changed: %d tenants are on the wrong shard; run greyctl archive rebalance", want)
	if want == 0 || !strings.Contains(err.Error(), msg) {
		t.Errorf("open with a shard added: %q, want it to contain %q", err, msg)
	}
	if p.get("c").Len() != 0 {
		t.Errorf("the refused open wrote to the new shard")
	}
	// allow_misplaced opens it, and reads cover every tenant.
	three := open(t, r, shardedURL(mems("a", "b", "c")...)+"&allow_misplaced=true")
	for _, ten := range tenants {
		n, err := three.Count(ctxT(t), ten, archive.Filter{})
		if err != nil || n != 2 {
			t.Fatalf("count of %s with misplaced tenants: %d, %v; want 2", ten, n, err)
		}
	}
}

func TestMisplacedTenantReadsMerge(t *testing.T) {
	ctx := ctxT(t)
	ms := []*memarchive.Driver{memarchive.NewDriver(), memarchive.NewDriver(), memarchive.NewDriver()}
	ids := []string{"a", "b", "c"}
	ten := archivetest.Tenant("split")
	owner := shardarchive.Owner(ids, ten)
	other := (owner + 1) % 3
	at := time.Now().Add(-time.Hour)
	var recs []archive.Record
	for i := range 30 {
		recs = append(recs, archivetest.Make(archivetest.Spec{Tenant: ten, Finished: at.Add(time.Duration(i) * time.Second)}))
	}
	// Half on the owner, half on another shard, 5 on both (mid-move).
	if err := ms[owner].Upsert(ctx, ten, recs[:20]); err != nil {
		t.Fatal(err)
	}
	if err := ms[other].Upsert(ctx, ten, recs[15:]); err != nil {
		t.Fatal(err)
	}
	cfg := shardarchive.Config{IDs: ids, Drivers: []archive.Driver{keep{ms[0]}, keep{ms[1]}, keep{ms[2]}}, Refresh: -1}
	if _, err := shardarchive.New(ctx, cfg); !greyerr.Is(err, greyerr.FailedPrecondition) {
		t.Fatalf("open: %v, want FailedPrecondition", err)
	}
	cfg.AllowMisplaced = true
	d, err := shardarchive.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := archive.New(d, archive.Options{})
	if n, err := s.Count(ctx, ten, archive.Filter{}); err != nil || n != 30 {
		t.Errorf("count: %d, %v; want 30 (5 records on two shards count once)", n, err)
	}
	var got []string
	q := archive.Query{Limit: 7}
	for {
		p, err := s.List(ctx, ten, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Records {
			got = append(got, r.Task.ID)
		}
		if p.Next == "" {
			break
		}
		q.Cursor = p.Next
	}
	if len(got) != 30 {
		t.Fatalf("listed %d records, want 30", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i] >= got[i-1] {
			t.Fatalf("list not in descending id order without duplicates at %d", i)
		}
	}
	for _, r := range recs {
		if _, err := s.Get(ctx, ten, r.Task.ID); err != nil {
			t.Errorf("get %s: %v", r.Task.ID, err)
		}
	}
	if _, ok := d.Misplaced()[ten]; !ok {
		t.Errorf("Misplaced() does not name %s", ten)
	}
	// New writes go to the owner.
	nw := archivetest.Make(archivetest.Spec{Tenant: ten})
	if err := s.Upsert(ctx, []archive.Record{nw}); err != nil {
		t.Fatal(err)
	}
	if _, err := ms[owner].Get(ctx, ten, nw.Task.ID); err != nil {
		t.Errorf("a new record did not go to the owner: %v", err)
	}
	// Delete reaches both copies.
	if n, err := s.Delete(ctx, ten, []string{recs[17].Task.ID}); err != nil || n != 1 {
		t.Errorf("delete of a record on two shards: %d, %v; want 1", n, err)
	}
	if _, err := s.Get(ctx, ten, recs[17].Task.ID); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("get after delete: %v, want NotFound", err)
	}
	_ = s.Close()
}

func TestUnavailableShardFailsOnlyItsTenants(t *testing.T) {
	ctx := ctxT(t)
	ms := []*memarchive.Driver{memarchive.NewDriver(), memarchive.NewDriver(), memarchive.NewDriver()}
	ids := []string{"a", "b", "c"}
	d, err := shardarchive.New(ctx, shardarchive.Config{IDs: ids, Drivers: []archive.Driver{ms[0], ms[1], ms[2]}})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := archive.New(d, archive.Options{Retry: archive.RetryOptions{MaxTries: 1}})
	defer s.Close()
	tenants := tenantIDs(30)
	fill(t, s, tenants, 3)
	ms[1].SetUnavailable(errors.New("killed"))
	for _, ten := range tenants {
		_, err := s.Count(ctx, ten, archive.Filter{})
		rec := archivetest.Make(archivetest.Spec{Tenant: ten})
		uerr := s.Upsert(ctx, []archive.Record{rec})
		if shardarchive.Owner(ids, ten) == 1 {
			if !greyerr.Is(err, greyerr.Unavailable) || !greyerr.Is(uerr, greyerr.Unavailable) {
				t.Errorf("tenant on the dead shard: count %v, upsert %v; want Unavailable", err, uerr)
			}
			if err != nil && !strings.Contains(err.Error(), "shard b") {
				t.Errorf("error %q does not name the shard", err)
			}
		} else if err != nil || uerr != nil {
			t.Errorf("tenant on a live shard: count %v, upsert %v", err, uerr)
		}
	}
	if err := s.Ping(ctx); !greyerr.Is(err, greyerr.Unavailable) || !strings.Contains(err.Error(), "shard b") {
		t.Errorf("ping with a shard down: %v, want Unavailable naming shard b", err)
	}
	if _, err := s.Tenants(ctx); !greyerr.Is(err, greyerr.Unavailable) {
		t.Errorf("tenants with a shard down: %v, want Unavailable", err)
	}
	ms[1].SetUnavailable(nil)
	if err := s.Ping(ctx); err != nil {
		t.Errorf("ping after the shard came back: %v", err)
	}
}

func TestTenantsAndDeleteBeforeFanOut(t *testing.T) {
	ctx := ctxT(t)
	d, err := shardarchive.New(ctx, shardarchive.Config{IDs: []string{"a", "b", "c"},
		Drivers: []archive.Driver{memarchive.NewDriver(), memarchive.NewDriver(), memarchive.NewDriver()}})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := archive.New(d, archive.Options{})
	defer s.Close()
	tenants := tenantIDs(20)
	old := time.Now().Add(-100 * 24 * time.Hour)
	var recs []archive.Record
	for _, ten := range tenants {
		recs = append(recs, archivetest.Make(archivetest.Spec{Tenant: ten, Finished: old}), archivetest.Make(archivetest.Spec{Tenant: ten}))
	}
	if err := s.Upsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	got, err := s.Tenants(ctx)
	if err != nil || len(got) != len(tenants) {
		t.Fatalf("tenants: %d, %v; want %d", len(got), err, len(tenants))
	}
	n, err := s.DeleteBefore(ctx, time.Now().Add(-90*24*time.Hour))
	if err != nil || n != int64(len(tenants)) {
		t.Errorf("delete before: %d, %v; want %d", n, err, len(tenants))
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{shardedURL(mems("a", "b")...), "sharded://?shard=postgres%3A%2F%2Fh%2Fdb%3Fname%3Dx", "sharded://?shard=&shard=%zz", "sharded://?refresh=1m", shardedURL("tmem://a") + "&retire=tmem%3A%2F%2Fb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		shards, err := shardarchive.ParseURL(raw)
		if err != nil {
			if !greyerr.Is(err, greyerr.InvalidArgument) {
				t.Fatalf("ParseURL(%q): uncoded error %v", raw, err)
			}
			return
		}
		seen := map[string]bool{}
		for _, s := range shards {
			if s.ID == "" || seen[s.ID] {
				t.Fatalf("ParseURL(%q): empty or duplicate identity %q", raw, s.ID)
			}
			seen[s.ID] = true
			if again, err := shardarchive.Identity(s.URL); err != nil || (!strings.Contains(raw, "name") && again.ID != s.ID) {
				t.Fatalf("ParseURL(%q): the child URL %q does not parse to the same identity: %+v, %v", raw, s.URL, again, err)
			}
		}
		if len(shards) > 0 {
			ids := shardarchive.IDs(shards)
			owners := shardarchive.Owners(shards)
			if owners < 1 {
				t.Fatalf("ParseURL(%q): no owning shard in %+v", raw, shards)
			}
			for i, s := range shards {
				if s.Retiring != (i >= owners) {
					t.Fatalf("ParseURL(%q): retiring shards are not all after the owners: %+v", raw, shards)
				}
			}
			if o := shardarchive.Owner(ids[:owners], "t"); o < 0 || o >= owners {
				t.Fatalf("Owner out of range: %d", o)
			}
		}
	})
}

func TestShardDownAtOpen(t *testing.T) {
	r, p := newRegistry(t)
	two := open(t, r, shardedURL(mems("a", "b")...))
	tenants := tenantIDs(40)
	fill(t, two, tenants, 2)

	// One shard does not answer: the open succeeds, writes and Ping wait
	// for the placement check and name the shard.
	p.get("b").SetUnavailable(errors.New("connection refused (simulated)"))
	s, err := r.Open(ctxT(t), shardedURL(mems("a", "b")...), archive.OpenOptions{}, archive.Options{Retry: archivetest.FastRetry})
	if err != nil {
		t.Fatalf("open with shard b down: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	err = s.Ping(ctxT(t))
	if !greyerr.Is(err, greyerr.Unavailable) || !strings.Contains(err.Error(), "tmem://b") || !strings.Contains(err.Error(), "placement not checked") {
		t.Fatalf("ping with shard b down: %v, want Unavailable naming tmem://b and the check", err)
	}
	recs := []archive.Record{archivetest.Make(archivetest.Spec{Tenant: tenants[0]})}
	if err := s.Upsert(ctxT(t), recs); !greyerr.Is(err, greyerr.Unavailable) {
		t.Fatalf("upsert before the check: %v, want Unavailable", err)
	}
	// Reads of a tenant on the shard that answers go on.
	ids := []string{"tmem://a", "tmem://b"}
	var onA string
	for _, ten := range tenants {
		if shardarchive.Owner(ids, ten) == 0 {
			onA = ten
			break
		}
	}
	if n, err := s.Count(ctxT(t), onA, archive.Filter{}); err != nil || n != 2 {
		t.Fatalf("count of %s (on the shard that answers): %d, %v; want 2", onA, n, err)
	}

	// The shard answers again: the next call checks placement and writes.
	p.get("b").SetUnavailable(nil)
	if err := s.Ping(ctxT(t)); err != nil {
		t.Fatalf("ping once every shard answers: %v", err)
	}
	if err := s.Upsert(ctxT(t), recs); err != nil {
		t.Fatalf("upsert after the check: %v", err)
	}

	// A changed shard list found by a late check refuses writes with the
	// rebalance error.
	p.get("c2").SetUnavailable(errors.New("connection refused (simulated)"))
	three, err := r.Open(ctxT(t), shardedURL(mems("a", "b", "c2")...), archive.OpenOptions{}, archive.Options{Retry: archivetest.FastRetry})
	if err != nil {
		t.Fatalf("open of three shards with c2 down: %v", err)
	}
	t.Cleanup(func() { _ = three.Close() })
	p.get("c2").SetUnavailable(nil)
	err = three.Upsert(ctxT(t), []archive.Record{archivetest.Make(archivetest.Spec{Tenant: tenants[1]})})
	if !greyerr.Is(err, greyerr.FailedPrecondition) || !strings.Contains(err.Error(), "run greyctl archive rebalance") {
		t.Fatalf("upsert after a late check over a changed shard list: %v, want FailedPrecondition naming rebalance", err)
	}
	if p.get("c2").Len() != 0 {
		t.Errorf("a refused write reached the new shard")
	}
}

package quorumarchive_test

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/archivetest"
	"github.com/grey-distributed/grey/archive/memarchive"
	"github.com/grey-distributed/grey/archive/quorumarchive"
	"github.com/grey-distributed/grey/greyerr"
)

func ctxT(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// memQuorum returns a quorum over n fresh in-memory replicas, and them.
func memQuorum(t testing.TB, n int, cfg quorumarchive.Config) (*quorumarchive.Driver, []*memarchive.Driver) {
	t.Helper()
	mems := make([]*memarchive.Driver, n)
	reps := make([]quorumarchive.Replica, n)
	for i := range mems {
		mems[i] = memarchive.NewDriver()
		reps[i] = quorumarchive.Replica{Name: "mem" + string(rune('1'+i)), Driver: mems[i]}
	}
	d, err := quorumarchive.New(reps, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d, mems
}

func TestConformanceMemory(t *testing.T) {
	for _, c := range []struct{ write, read quorumarchive.Level }{
		{quorumarchive.Majority, quorumarchive.Majority},
		{quorumarchive.All, quorumarchive.One},
		{quorumarchive.One, quorumarchive.All},
	} {
		t.Run(c.write.String()+"-"+c.read.String(), func(t *testing.T) {
			archivetest.Run(t, archivetest.Harness{
				Open: func(t testing.TB) archive.Driver {
					d, _ := memQuorum(t, 3, quorumarchive.Config{Write: c.write, Read: c.read})
					return d
				},
				Unreachable: func(t testing.TB) archive.Driver {
					d, mems := memQuorum(t, 3, quorumarchive.Config{Write: c.write, Read: c.read})
					for _, m := range mems {
						m.SetUnavailable(errors.New("connection refused"))
					}
					return d
				},
			})
		})
	}
}

// Conformance with one of three replicas down the whole time: majority
// writes and reads go on.
func TestConformanceMemoryOneDown(t *testing.T) {
	archivetest.Run(t, archivetest.Harness{
		Open: func(t testing.TB) archive.Driver {
			d, mems := memQuorum(t, 3, quorumarchive.Config{})
			mems[1].SetUnavailable(errors.New("replica 2 is down"))
			return d
		},
	})
}

func records(t testing.TB, tenant string, n int, at time.Time) []archive.Record {
	t.Helper()
	out := make([]archive.Record, n)
	for i := range out {
		out[i] = archivetest.Make(archivetest.Spec{Tenant: tenant, Finished: at.Add(time.Duration(i) * time.Millisecond)})
	}
	return out
}

// all lists every record of tenant on one replica.
func all(t testing.TB, d archive.Driver, tenant string) []archive.Record {
	t.Helper()
	var out []archive.Record
	q := archive.DriverQuery{Limit: 1000}
	for {
		page, err := d.List(ctxT(t), tenant, q)
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		out = append(out, page...)
		if len(page) < q.Limit {
			return out
		}
		q.Before = page[len(page)-1].Task.ID
	}
}

// sameEverywhere checks that every replica holds the same versions of the
// tenant's n records.
func sameEverywhere(t testing.TB, reps []archive.Driver, tenant string, n int) {
	t.Helper()
	first := all(t, reps[0], tenant)
	if len(first) != n {
		t.Errorf("replica 1 holds %d records of %s, want %d", len(first), tenant, n)
	}
	for i, r := range reps[1:] {
		got := all(t, r, tenant)
		if len(got) != len(first) {
			t.Errorf("replica %d holds %d records, replica 1 %d", i+2, len(got), len(first))
			continue
		}
		for j := range got {
			if got[j].Task.ID != first[j].Task.ID || got[j].Task.Index != first[j].Task.Index {
				t.Errorf("replica %d record %d: %s@%d, replica 1 %s@%d", i+2, j, got[j].Task.ID, got[j].Task.Index, first[j].Task.ID, first[j].Task.Index)
				break
			}
		}
	}
}

func drivers[D archive.Driver](ds []D) []archive.Driver {
	out := make([]archive.Driver, len(ds))
	for i, d := range ds {
		out[i] = d
	}
	return out
}

// With majority/majority and one replica down, writes and reads go on;
// with it back, one anti-entropy pass converges the replicas and the next
// finds nothing divergent.
func TestMajorityOneDownThenConverges(t *testing.T) {
	d, mems := memQuorum(t, 3, quorumarchive.Config{})
	defer d.Close()
	reg := prometheus.NewRegistry()
	if err := d.RegisterMetrics(reg, "archive"); err != nil {
		t.Fatal(err)
	}
	s, err := archive.New(d, archive.Options{Retry: archivetest.FastRetry})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	ten := archivetest.Tenant("down")
	before := records(t, ten, 50, time.Now().Add(-time.Hour))
	if err := s.Upsert(ctx, before); err != nil {
		t.Fatal(err)
	}
	// The write returned at the quorum; the third replica's call goes on.
	waitFor(t, "the third replica's write", func() bool { return mems[2].Len() == 50 })
	mems[2].SetUnavailable(errors.New("killed"))
	during := records(t, ten, 70, time.Now().Add(-30*time.Minute))
	for i := 0; i < len(during); i += 10 {
		if err := s.Upsert(ctx, during[i:i+10]); err != nil {
			t.Fatalf("majority write with one replica down: %v", err)
		}
	}
	if _, err := s.Delete(ctx, ten, []string{before[0].Task.ID}); err != nil {
		t.Fatalf("majority delete with one replica down: %v", err)
	}
	for _, r := range during[:5] {
		if _, err := s.Get(ctx, ten, r.Task.ID); err != nil {
			t.Errorf("majority read with one replica down: %v", err)
		}
	}
	if n, err := s.Count(ctx, ten, archive.Filter{}); err != nil || n != 119 {
		t.Errorf("count with one replica down: %d, %v; want 119", n, err)
	}
	if mems[2].Len() != 50 {
		t.Fatalf("the down replica holds %d records, want the 50 written before", mems[2].Len())
	}
	// Back: the pass copies the 70 records it missed, deletes the one
	// deleted meanwhile, and the next pass finds nothing.
	mems[2].SetUnavailable(nil)
	res, err := d.AntiEntropy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Divergent != 71 || res.Repaired != 71 || res.Replicas != 3 {
		t.Errorf("first pass: %+v; want 71 divergent and repaired over 3 replicas", res)
	}
	if g := testutil.ToFloat64(gauge(t, reg)); g != 71 {
		t.Errorf("divergent gauge after the first pass = %v, want 71", g)
	}
	res, err = d.AntiEntropy(ctx)
	if err != nil || res.Divergent != 0 || res.Repaired != 0 {
		t.Errorf("second pass: %+v, %v; want nothing divergent", res, err)
	}
	if g := testutil.ToFloat64(gauge(t, reg)); g != 0 {
		t.Errorf("divergent gauge after converging = %v, want 0", g)
	}
	sameEverywhere(t, drivers(mems), ten, 119)
	if got := testutil.CollectAndCount(reg, "grey_archive_quorum_replica_errors_total"); got == 0 {
		t.Error("no replica error was counted while replica 3 was down")
	}
	if got := testutil.ToFloat64(repairs(t, reg, "mem3", "anti_entropy")); got != 71 {
		t.Errorf("repairs of mem3 by anti-entropy = %v, want 71", got)
	}
}

func gauge(t testing.TB, reg *prometheus.Registry) prometheus.Collector {
	t.Helper()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "grey_archive_quorum_divergent_records", Help: "Records the last anti-entropy pass found missing or older on at least one replica (before it repaired them)."}, []string{"archive"})
	got, err := registered(reg, g)
	if err != nil {
		t.Fatal(err)
	}
	return got.WithLabelValues("archive")
}

func repairs(t testing.TB, reg *prometheus.Registry, replica, source string) prometheus.Collector {
	t.Helper()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grey_archive_quorum_repairs_total", Help: "Records written to (or deleted from) a replica to repair it, by replica and by what found the difference (read or anti_entropy)."}, []string{"archive", "replica", "source"})
	got, err := registered(reg, c)
	if err != nil {
		t.Fatal(err)
	}
	return got.WithLabelValues("archive", replica, source)
}

// registered returns the collector reg already holds that equals c.
func registered[C prometheus.Collector](reg *prometheus.Registry, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		return are.ExistingCollector.(C), nil
	}
	if err == nil {
		return c, errors.New("the family was not registered by the driver")
	}
	return c, err
}

// With write=all and a replica down, a write is refused and the error
// names the replica and says where the records went; once the replica is
// known down, the next write is refused before anything is written.
func TestAllRefusesWithOneDown(t *testing.T) {
	d, mems := memQuorum(t, 3, quorumarchive.Config{Write: quorumarchive.All})
	defer d.Close()
	ctx := ctxT(t)
	ten := archivetest.Tenant("all")
	mems[1].SetUnavailable(errors.New("connection refused"))
	recs := records(t, ten, 3, time.Now())
	err := d.Upsert(ctx, ten, recs)
	if !greyerr.Is(err, greyerr.Unavailable) {
		t.Fatalf("write=all with a replica down: %v, want Unavailable", err)
	}
	for _, want := range []string{"replica 2 (mem2) failed", "2 of 3 replicas answered, 3 needed (all)", "written to replica 1 (mem1), replica 3 (mem3)"} {
		if !strings.Contains(err.Error(), want) && !strings.Contains(err.Error(), "written to replica 3 (mem3), replica 1 (mem1)") {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	more := records(t, ten, 2, time.Now().Add(time.Second))
	err = d.Upsert(ctx, ten, more)
	if !greyerr.Is(err, greyerr.Unavailable) || !strings.Contains(err.Error(), "replica 2 (mem2)") || !strings.Contains(err.Error(), "nothing written") {
		t.Fatalf("write=all with a replica known down: %v, want Unavailable naming replica 2 and nothing written", err)
	}
	for i, m := range mems {
		if m == mems[1] {
			continue
		}
		if m.Len() != 3 {
			t.Errorf("replica %d holds %d records after a refused write, want 3 (the first write's)", i+1, m.Len())
		}
	}
	if _, err := d.Delete(ctx, ten, []string{recs[0].Task.ID}); !greyerr.Is(err, greyerr.Unavailable) {
		t.Errorf("delete with write=all and a replica down: %v, want Unavailable", err)
	}
	// Back: writes are accepted again.
	mems[1].SetUnavailable(nil)
	if err := d.Upsert(ctx, ten, more); err != nil {
		t.Fatalf("write=all with every replica back: %v", err)
	}
}

// A write that no replica takes says so; a majority read with two of
// three replicas down fails naming them.
func TestQuorumNotReached(t *testing.T) {
	d, mems := memQuorum(t, 3, quorumarchive.Config{})
	defer d.Close()
	ctx := ctxT(t)
	ten := archivetest.Tenant("lost")
	for _, m := range mems {
		m.SetUnavailable(errors.New("refused"))
	}
	err := d.Upsert(ctx, ten, records(t, ten, 1, time.Now()))
	if !greyerr.Is(err, greyerr.Unavailable) || !strings.Contains(err.Error(), "written to no replica") {
		t.Errorf("write with every replica down: %v", err)
	}
	mems[0].SetUnavailable(nil)
	_, err = d.Get(ctx, ten, archivetest.IDAt(time.Now()))
	if !greyerr.Is(err, greyerr.Unavailable) || !strings.Contains(err.Error(), "of 3 replicas answered, 2 needed (majority)") ||
		!strings.Contains(err.Error(), "replica 2 (mem2)") || !strings.Contains(err.Error(), "replica 3 (mem3)") {
		t.Errorf("majority read with two replicas down: %v", err)
	}
}

// A replica holding an older version, or none, is repaired by a read.
func TestReadRepair(t *testing.T) {
	d, mems := memQuorum(t, 3, quorumarchive.Config{})
	defer d.Close()
	ctx := ctxT(t)
	ten := archivetest.Tenant("repair")
	old := archivetest.Make(archivetest.Spec{Tenant: ten, Finished: time.Now()})
	if err := d.Upsert(ctx, ten, []archive.Record{old}); err != nil {
		t.Fatal(err)
	}
	// A newer version reaches replicas 1 and 2 only.
	newer := memarchive.CopyRecord(old)
	newer.Task.Index = old.Task.Index + 10
	newer.Task.Result = []byte(`{"version":2}`)
	for _, m := range mems[:2] {
		if err := m.Upsert(ctx, ten, []archive.Record{newer}); err != nil {
			t.Fatal(err)
		}
	}
	// Whatever two replicas answer first, the newest wins.
	for range 5 {
		got, err := d.Get(ctx, ten, old.Task.ID)
		if err != nil || got.Task.Index != newer.Task.Index {
			t.Fatalf("get of a record stale on one replica: index %d, %v; want %d", got.Task.Index, err, newer.Task.Index)
		}
	}
	waitFor(t, "replica 3 repaired to the newer version", func() bool {
		r, err := mems[2].Get(ctx, ten, old.Task.ID)
		return err == nil && r.Task.Index == newer.Task.Index && string(r.Task.Result) == `{"version":2}`
	})
	// A record on one replica only reaches the others after a read, even
	// one whose quorum answered "not found".
	lone := archivetest.Make(archivetest.Spec{Tenant: ten, Finished: time.Now()})
	if err := mems[0].Upsert(ctx, ten, []archive.Record{lone}); err != nil {
		t.Fatal(err)
	}
	_, _ = d.Get(ctx, ten, lone.Task.ID)
	waitFor(t, "a record of one replica copied to the others", func() bool {
		_, e2 := mems[1].Get(ctx, ten, lone.Task.ID)
		_, e3 := mems[2].Get(ctx, ten, lone.Task.ID)
		return e2 == nil && e3 == nil
	})
	// A list repairs what it shows: a record missing on replica 2.
	gap := archivetest.Make(archivetest.Spec{Tenant: ten, Finished: time.Now()})
	for _, i := range []int{0, 2} {
		if err := mems[i].Upsert(ctx, ten, []archive.Record{gap}); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := d.List(ctx, ten, archive.DriverQuery{Limit: 10})
	if err != nil || len(recs) != 3 {
		t.Fatalf("list: %d records, %v; want 3", len(recs), err)
	}
	waitFor(t, "a record missing on one replica repaired by a list", func() bool {
		_, err := mems[1].Get(ctx, ten, gap.Task.ID)
		return err == nil
	})
}

func waitFor(t testing.TB, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Ties (same index and finish, other contents) resolve the same way
// whatever the replicas' order.
func TestTieBreakIsDeterministic(t *testing.T) {
	ten := archivetest.Tenant("tie")
	a := archivetest.Make(archivetest.Spec{Tenant: ten, Finished: time.Now()})
	b := memarchive.CopyRecord(a)
	b.Task.Result = []byte(`{"other":true}`)
	var winners []string
	for _, order := range [][]archive.Record{{a, b}, {b, a}} {
		d, mems := memQuorum(t, 2, quorumarchive.Config{Read: quorumarchive.All})
		for i, m := range mems {
			if err := m.Upsert(ctxT(t), ten, order[i:i+1]); err != nil {
				t.Fatal(err)
			}
		}
		got, err := d.Get(ctxT(t), ten, a.Task.ID)
		if err != nil {
			t.Fatal(err)
		}
		winners = append(winners, string(got.Task.Result))
		d.Close()
	}
	if winners[0] != winners[1] {
		t.Errorf("tie broken differently by replica order: %q vs %q", winners[0], winners[1])
	}
}

func TestParseURL(t *testing.T) {
	rep := func(s string) string { return url.QueryEscape(s) }
	good := "quorum://?replica=" + rep("postgres://u:p@h1/db?sslmode=disable") + "&replica=" + rep("mem://") + "&replica=" + rep("mem://") + "&write=all&read=one&anti_entropy=5m&anti_entropy_full=6h"
	u, _ := url.Parse(good)
	s, err := quorumarchive.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Replicas) != 3 || s.Replicas[0] != "postgres://u:p@h1/db?sslmode=disable" || s.Config.Write != quorumarchive.All ||
		s.Config.Read != quorumarchive.One || s.Config.AntiEntropy != 5*time.Minute || s.Config.FullEvery != 6*time.Hour {
		t.Errorf("parsed %+v", s)
	}
	u, _ = url.Parse("quorum://?replica=mem%3A%2F%2F")
	if s, err := quorumarchive.ParseURL(u); err != nil || s.Config.Write != quorumarchive.Majority || s.Config.Read != quorumarchive.Majority || s.Config.AntiEntropy != 0 {
		t.Errorf("defaults: %+v, %v", s, err)
	}
	for _, bad := range []struct{ url, field string }{
		{"quorum://", "replica"},
		{"quorum://?write=all", "replica"},
		{"quorum://?replica=nourl", "replica"},
		{"quorum://?replica=mem%3A%2F%2F&write=most", "write"},
		{"quorum://?replica=mem%3A%2F%2F&read=two", "read"},
		{"quorum://?replica=mem%3A%2F%2F&anti_entropy=soon", "anti_entropy"},
		{"quorum://?replica=mem%3A%2F%2F&anti_entropy=-1m", "anti_entropy"},
		{"quorum://?replica=mem%3A%2F%2F&anti_entropy=1ms", "anti_entropy"},
		{"quorum://?replica=mem%3A%2F%2F&anti_entropy_full=daily", "anti_entropy_full"},
		{"quorum://?replica=mem%3A%2F%2F&anti_entropy_full=0", "anti_entropy_full"},
		{"quorum://?replica=mem%3A%2F%2F&write=one&write=all", "write"},
		{"quorum://?replica=mem%3A%2F%2F&replicas=mem%3A%2F%2F", "replicas"},
		{"quorum://host?replica=mem%3A%2F%2F", "url"},
		{"quorum:///path?replica=mem%3A%2F%2F", "url"},
		{"quorum://?replica=mem%3A%2F%2F&%zz", "url"},
		{"quorum://?" + strings.Repeat("replica=mem%3A%2F%2F&", 16), "replica"},
	} {
		u, err := url.Parse(bad.url)
		if err != nil {
			t.Fatalf("%s: %v", bad.url, err)
		}
		_, err = quorumarchive.ParseURL(u)
		var ge *greyerr.Error
		if !errors.As(err, &ge) || ge.Code != greyerr.InvalidArgument || ge.Field != bad.field {
			t.Errorf("%s: %v, want InvalidArgument on %q", bad.url, err, bad.field)
		}
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"quorum://?replica=mem%3A%2F%2F&replica=mem%3A%2F%2F&write=all&read=one&anti_entropy=5m",
		"quorum://?replica=postgres%3A%2F%2Fu%3Ap%40h%2Fdb&write=majority",
		"quorum://h?write=x", "quorum://?anti_entropy=1h&replica=%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		s, err := quorumarchive.ParseURL(u)
		if err != nil {
			if greyerr.CodeOf(err) != greyerr.InvalidArgument {
				t.Fatalf("%q: error without InvalidArgument: %v", raw, err)
			}
			return
		}
		if len(s.Replicas) == 0 || len(s.Replicas) > quorumarchive.MaxReplicas || s.Config.AntiEntropy < 0 ||
			s.Config.Write < quorumarchive.One || s.Config.Write > quorumarchive.All || s.Config.Read < quorumarchive.One || s.Config.Read > quorumarchive.All {
			t.Fatalf("%q: accepted %+v", raw, s)
		}
	})
}

// The registry opens quorum:// over any registered scheme, a quorum too;
// a replica of an unknown scheme fails the open naming it.
func TestRegistry(t *testing.T) {
	reg := archive.NewRegistry()
	for _, r := range []func(*archive.Registry) error{memarchive.Register, quorumarchive.Register} {
		if err := r(reg); err != nil {
			t.Fatal(err)
		}
	}
	inner := "quorum://?replica=mem%3A%2F%2F&replica=mem%3A%2F%2F"
	raw := "quorum://?replica=mem%3A%2F%2F&replica=" + url.QueryEscape(inner) + "&replica=mem%3A%2F%2F&write=all&read=one"
	s, err := reg.Open(ctxT(t), raw, archive.OpenOptions{}, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var q *quorumarchive.Driver
	if !s.As(&q) || !slices.Equal(q.Replicas(), []string{"mem:", "quorum:", "mem:"}) {
		t.Errorf("As: %v, replicas %v", q != nil, q.Replicas())
	}
	if c := s.Capabilities(); c.Scheme != "quorum" || !c.LabelFilter || c.ReadReplicas != 3 {
		t.Errorf("capabilities %+v", c)
	}
	ten := archivetest.Tenant("reg")
	if err := s.Upsert(ctxT(t), records(t, ten, 4, time.Now())); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Count(ctxT(t), ten, archive.Filter{}); err != nil || n != 4 {
		t.Errorf("count %d, %v", n, err)
	}
	_, err = reg.Open(ctxT(t), "quorum://?replica=mem%3A%2F%2F&replica=nosuch%3A%2F%2Fhost", archive.OpenOptions{}, archive.Options{})
	if !greyerr.Is(err, greyerr.InvalidArgument) || !strings.Contains(err.Error(), "replica 2 (nosuch://host)") {
		t.Errorf("open with a replica of an unknown scheme: %v", err)
	}
}

// The background pass (anti_entropy) converges a replica that was down
// without anyone asking.
func TestBackgroundAntiEntropy(t *testing.T) {
	d, mems := memQuorum(t, 3, quorumarchive.Config{AntiEntropy: 50 * time.Millisecond})
	defer d.Close()
	ctx := ctxT(t)
	ten := archivetest.Tenant("bg")
	mems[0].SetUnavailable(errors.New("down"))
	if err := d.Upsert(ctx, ten, records(t, ten, 30, time.Now())); err != nil {
		t.Fatal(err)
	}
	if mems[0].Len() != 0 {
		t.Fatal("the down replica took writes")
	}
	mems[0].SetUnavailable(nil)
	waitFor(t, "the background pass to copy 30 records", func() bool { return mems[0].Len() == 30 })
	sameEverywhere(t, drivers(mems), ten, 30)
}

// Repair never copies back a record older than the retention: retention
// may have removed it from the other replicas already.
func TestRepairRespectsRetention(t *testing.T) {
	d, mems := memQuorum(t, 2, quorumarchive.Config{Retention: time.Hour})
	defer d.Close()
	ctx := ctxT(t)
	ten := archivetest.Tenant("ret")
	old := archivetest.Make(archivetest.Spec{Tenant: ten, Finished: time.Now().Add(-2 * time.Hour)})
	fresh := archivetest.Make(archivetest.Spec{Tenant: ten, Finished: time.Now()})
	if err := mems[0].Upsert(ctx, ten, []archive.Record{old, fresh}); err != nil {
		t.Fatal(err)
	}
	res, err := d.AntiEntropy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Divergent != 2 || res.Repaired != 1 {
		t.Errorf("pass: %+v; want 2 divergent, 1 repaired (the record past retention stays where it is)", res)
	}
	if _, err := mems[1].Get(ctx, ten, old.Task.ID); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("a record past retention was copied: %v", err)
	}
	if _, err := mems[1].Get(ctx, ten, fresh.Task.ID); err != nil {
		t.Errorf("a fresh record was not copied: %v", err)
	}
}

// A pass needs two replicas that answer, and replicas that list tenants.
func TestAntiEntropyNeedsReplicas(t *testing.T) {
	d, mems := memQuorum(t, 3, quorumarchive.Config{})
	defer d.Close()
	mems[0].SetUnavailable(errors.New("down"))
	mems[1].SetUnavailable(errors.New("down"))
	if _, err := d.AntiEntropy(ctxT(t)); !greyerr.Is(err, greyerr.Unavailable) || !strings.Contains(err.Error(), "1 of 3 replicas answer") {
		t.Errorf("pass with one replica answering: %v", err)
	}
	noList, err := quorumarchive.New([]quorumarchive.Replica{{Name: "a", Driver: memarchive.NewDriver()}, {Name: "plain", Driver: plain{memarchive.NewDriver()}}}, quorumarchive.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer noList.Close()
	if _, err := noList.AntiEntropy(ctxT(t)); !greyerr.Is(err, greyerr.Unimplemented) || !strings.Contains(err.Error(), "replica 2 (plain)") {
		t.Errorf("pass over a replica without TenantLister: %v", err)
	}
}

// plain hides memarchive's optional interfaces.
type plain struct{ archive.Driver }

// TestIncrementalAntiEntropy: after a full pass, a pass checks only what
// a replica is known to have missed — the writes and the delete made while
// it was down — and repairs them; a divergence the driver could not know
// of (a record written to one replica behind its back) waits for the next
// full pass, which FullEvery brings.
func TestIncrementalAntiEntropy(t *testing.T) {
	ctx := ctxT(t)
	d, mems := memQuorum(t, 3, quorumarchive.Config{})
	defer d.Close()
	ten := archivetest.Tenant("inc")
	before := records(t, ten, 50, time.Now().Add(-time.Hour))
	if err := d.Upsert(ctx, ten, before); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the third replica's write", func() bool { return mems[2].Len() == 50 })
	first, err := d.AntiEntropy(ctx)
	if err != nil || !first.Full || first.Divergent != 0 || first.Records != 50 {
		t.Fatalf("first pass: %+v, %v; want a full pass over 50 records, none divergent", first, err)
	}

	mems[2].SetUnavailable(errors.New("killed"))
	during := records(t, ten, 20, time.Now().Add(-30*time.Minute))
	if err := d.Upsert(ctx, ten, during); err != nil {
		t.Fatalf("majority write with a replica down: %v", err)
	}
	if _, err := d.Delete(ctx, ten, []string{before[0].Task.ID}); err != nil {
		t.Fatalf("majority delete with a replica down: %v", err)
	}
	// Behind the driver's back: a record on the first replica alone.
	stray := records(t, ten, 1, time.Now().Add(-10*time.Minute))
	if err := mems[0].Upsert(ctx, ten, stray); err != nil {
		t.Fatal(err)
	}
	mems[2].SetUnavailable(nil)

	inc, err := d.AntiEntropy(ctx)
	if err != nil || inc.Full || inc.Records != 21 || inc.Divergent != 21 || inc.Repaired != 21 || len(inc.Errors) != 0 {
		t.Fatalf("pass after the outage: %+v, %v; want 21 records checked and repaired (20 writes, 1 delete), not a full pass", inc, err)
	}
	if got := mems[2].Len(); got != 69 {
		t.Errorf("the returned replica holds %d records, want 69 (50 - 1 deleted + 20)", got)
	}
	if _, err := mems[1].Get(ctx, ten, stray[0].Task.ID); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("an incremental pass copied a record no write told it of: %v", err)
	}
	again, err := d.AntiEntropy(ctx)
	if err != nil || again.Full || again.Records != 0 {
		t.Errorf("the pass after the repair: %+v, %v; want nothing left to check", again, err)
	}

	// A full pass on every one finds the stray record.
	d2, err := quorumarchive.New([]quorumarchive.Replica{{Name: "a", Driver: keep{mems[0]}}, {Name: "b", Driver: keep{mems[1]}}, {Name: "c", Driver: keep{mems[2]}}},
		quorumarchive.Config{FullEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	for range 2 {
		full, err := d2.AntiEntropy(ctx)
		if err != nil || !full.Full {
			t.Fatalf("FullEvery < 0: %+v, %v; want full passes", full, err)
		}
	}
	if _, err := mems[1].Get(ctx, ten, stray[0].Task.ID); err != nil {
		t.Errorf("a full pass did not copy the stray record: %v", err)
	}
}

// keep is a replica whose Close leaves it open, for a second driver over
// the same replicas.
type keep struct{ *memarchive.Driver }

func (keep) Close() error { return nil }

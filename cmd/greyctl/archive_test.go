package main

import (
	"bytes"
	"context"
	"encoding/json"
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
)

// memPool holds named in-memory archives (tmem://NAME) that outlive the
// stores greyctl opens and closes over them.
type memPool struct {
	mu  sync.Mutex
	mem map[string]*memarchive.Driver
}

func (p *memPool) get(name string) *memarchive.Driver {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mem[name] == nil {
		p.mem[name] = memarchive.NewDriver()
	}
	return p.mem[name]
}

type keptMem struct{ *memarchive.Driver }

func (keptMem) Close() error { return nil }

func (p *memPool) registry() (*archive.Registry, error) {
	r := archive.NewRegistry()
	if err := r.Register("tmem", archive.OpenerFunc(func(_ context.Context, u *url.URL, _ archive.OpenOptions) (archive.Driver, error) {
		return keptMem{p.get(u.Host)}, nil
	})); err != nil {
		return nil, err
	}
	return r, shardarchive.Register(r)
}

func (p *memPool) store(t *testing.T, name string) *archive.Store {
	s, err := archive.New(keptMem{p.get(name)}, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// archiveCtl runs greyctl with the archive commands over the pool's
// drivers.
func archiveCtl(t *testing.T, p *memPool, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	root := newRootCmd(a)
	for _, c := range root.Commands() {
		if c.Name() == "archive" {
			root.RemoveCommand(c)
		}
	}
	root.AddCommand(newArchiveCmd(a, p.registry))
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	err := root.ExecuteContext(t.Context())
	code := exitOK
	if err != nil {
		code = exitFailure
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		fmt.Fprintln(&errb, "greyctl:", errText(err))
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

func seedArchive(t *testing.T, s *archive.Store, tenants, per int) []string {
	t.Helper()
	var ids []string
	var recs []archive.Record
	for i := range tenants {
		ten := archivetest.Tenant(fmt.Sprint(i))
		ids = append(ids, ten)
		for j := range per {
			recs = append(recs, archivetest.Make(archivetest.Spec{Tenant: ten, Finished: time.Now().Add(-time.Duration(j) * time.Second)}))
		}
	}
	if err := s.Upsert(t.Context(), recs); err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestArchiveMigrate(t *testing.T) {
	p := &memPool{mem: map[string]*memarchive.Driver{}}
	tenants := seedArchive(t, p.store(t, "src"), 5, 40)

	r := archiveCtl(t, p, "archive", "migrate", "--from", "tmem://src", "--to", "tmem://dst", "--verify", "--batch", "7")
	if r.code != 0 || !strings.Contains(r.stdout, "copied 200 records of 5 tenants") || !strings.Contains(r.stdout, "verified: 5 tenants, 200 records") {
		t.Fatalf("migrate: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r.stderr != "" {
		t.Errorf("progress written when stderr is no terminal: %q", r.stderr)
	}

	// One tenant, as JSON.
	r = archiveCtl(t, p, "-o", "json", "archive", "migrate", "--from", "tmem://src", "--to", "tmem://one", "--tenant", tenants[2], "--verify")
	var out struct {
		Records int64 `json:"records"`
		Verify  struct {
			FromDigest string `json:"from_digest"`
			ToDigest   string `json:"to_digest"`
		} `json:"verify"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil || out.Records != 40 || out.Verify.FromDigest != out.Verify.ToDigest || out.Verify.FromDigest == "" {
		t.Fatalf("migrate one tenant as JSON: code %d %+v\n%s%s", r.code, out, r.stdout, r.stderr)
	}
	if p.get("one").Len() != 40 {
		t.Errorf("--tenant copied %d records, want 40", p.get("one").Len())
	}
}

// TestArchiveMigrateVerifyNamesDifferences: a target holding different
// data for the same ids makes --verify exit 1 naming them.
func TestArchiveMigrateVerifyNamesDifferences(t *testing.T) {
	p := &memPool{mem: map[string]*memarchive.Driver{}}
	src := p.store(t, "src")
	tenants := seedArchive(t, src, 1, 10)
	// The target already holds a record the source lacks.
	extra := archivetest.Make(archivetest.Spec{Tenant: tenants[0]})
	if err := p.store(t, "dst").Upsert(t.Context(), []archive.Record{extra}); err != nil {
		t.Fatal(err)
	}
	r := archiveCtl(t, p, "archive", "migrate", "--from", "tmem://src", "--to", "tmem://dst", "--verify")
	if r.code != 1 || !strings.Contains(r.stderr, extra.Task.ID) || !strings.Contains(r.stderr, "only in the target") {
		t.Fatalf("verify with an extra record: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}

}

func TestArchiveMigrateBadInput(t *testing.T) {
	p := &memPool{mem: map[string]*memarchive.Driver{}}
	for what, c := range map[string]struct {
		code int
		args []string
	}{
		"no --to":        {2, []string{"archive", "migrate", "--from", "tmem://a"}},
		"bad --since":    {2, []string{"archive", "migrate", "--from", "tmem://a", "--to", "tmem://b", "--since", "yesterday"}},
		"unknown":        {1, []string{"archive", "migrate", "--from", "nosuch://a", "--to", "tmem://b"}},
		"bad batch":      {1, []string{"archive", "migrate", "--from", "tmem://a", "--to", "tmem://b", "--batch", "5000"}},
		"both":           {2, []string{"archive", "rebalance", "--shards", "tmem://a", "--archive", "sharded://?shard=tmem%3A%2F%2Fa"}},
		"neither":        {2, []string{"archive", "rebalance"}},
		"dup identity":   {2, []string{"archive", "rebalance", "--shards", "tmem://a?x=1,tmem://a?x=2"}},
		"bad sharded":    {2, []string{"archive", "rebalance", "--archive", "postgres://x"}},
		"retire alone":   {2, []string{"archive", "rebalance", "--retire", "tmem://a"}},
		"retire+archive": {2, []string{"archive", "rebalance", "--retire", "tmem://c", "--archive", "sharded://?shard=tmem%3A%2F%2Fa"}},
		"retire owner":   {2, []string{"archive", "rebalance", "--shards", "tmem://a,tmem://b", "--retire", "tmem://b"}},
		"positional":     {2, []string{"archive", "migrate", "extra", "--from", "tmem://a", "--to", "tmem://b"}},
		"negative rate":  {1, []string{"archive", "migrate", "--from", "tmem://a", "--to", "tmem://b", "--rate", "-1"}},
	} {
		if r := archiveCtl(t, p, c.args...); r.code != c.code {
			t.Errorf("%s: exit %d, want %d\n%s", what, r.code, c.code, r.stderr)
		}
	}
	if got, err := parseSince("24h", time.Unix(100000, 0)); err != nil || !got.Equal(time.Unix(100000-86400, 0)) {
		t.Errorf("--since 24h: %v, %v", got, err)
	}
	if got, err := parseSince("2026-01-02", time.Now()); err != nil || got.Year() != 2026 {
		t.Errorf("--since 2026-01-02: %v, %v", got, err)
	}
}

func TestArchiveRebalance(t *testing.T) {
	p := &memPool{mem: map[string]*memarchive.Driver{}}
	reg, _ := p.registry()
	two, err := reg.Open(t.Context(), "sharded://?shard=tmem%3A%2F%2Fa&shard=tmem%3A%2F%2Fb", archive.OpenOptions{}, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	seedArchive(t, two, 90, 2)
	three := "sharded://?shard=tmem%3A%2F%2Fa&shard=tmem%3A%2F%2Fb&shard=tmem%3A%2F%2Fc"
	if _, err := reg.Open(t.Context(), three, archive.OpenOptions{}, archive.Options{}); err == nil || !strings.Contains(err.Error(), "greyctl archive rebalance") {
		t.Fatalf("open over a changed shard list: %v", err)
	}
	r := archiveCtl(t, p, "archive", "rebalance", "--archive", three, "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "would move") || p.get("c").Len() != 0 {
		t.Fatalf("dry run: code %d, %d records on c\n%s%s", r.code, p.get("c").Len(), r.stdout, r.stderr)
	}
	r = archiveCtl(t, p, "-o", "json", "archive", "rebalance", "--shards", "tmem://a,tmem://b,tmem://c")
	var res shardarchive.RebalanceResult
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &res) != nil || len(res.Moves) == 0 || res.Records != int64(2*len(res.Moves)) {
		t.Fatalf("rebalance: code %d %+v\n%s%s", r.code, res, r.stdout, r.stderr)
	}
	if p.get("c").Len() != 2*len(res.Moves) || p.get("a").Len()+p.get("b").Len()+p.get("c").Len() != 180 {
		t.Errorf("after the rebalance: a %d, b %d, c %d records", p.get("a").Len(), p.get("b").Len(), p.get("c").Len())
	}
	if _, err := reg.Open(t.Context(), three, archive.OpenOptions{}, archive.Options{}); err != nil {
		t.Errorf("open after the rebalance: %v", err)
	}
	r = archiveCtl(t, p, "archive", "rebalance", "--shards", "tmem://a,tmem://b,tmem://c")
	if r.code != 0 || !strings.Contains(r.stdout, "moved 0 of") {
		t.Errorf("second rebalance: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestArchiveRebalanceRetire removes a shard: --retire names it, every
// tenant it holds moves to the remaining shards, and the archive over
// those alone then opens and holds every record.
func TestArchiveRebalanceRetire(t *testing.T) {
	p := &memPool{mem: map[string]*memarchive.Driver{}}
	reg, _ := p.registry()
	three, err := reg.Open(t.Context(), "sharded://?shard=tmem%3A%2F%2Fa&shard=tmem%3A%2F%2Fb&shard=tmem%3A%2F%2Fc", archive.OpenOptions{}, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	seedArchive(t, three, 90, 2)
	onC := p.get("c").Len()
	if onC == 0 {
		t.Fatal("nothing on shard c")
	}
	r := archiveCtl(t, p, "archive", "rebalance", "--archive", "sharded://?shard=tmem%3A%2F%2Fa&shard=tmem%3A%2F%2Fb&retire=tmem%3A%2F%2Fc", "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("would move %d of", onC/2)) {
		t.Fatalf("dry run: code %d, want %d moves\n%s%s", r.code, onC/2, r.stdout, r.stderr)
	}
	r = archiveCtl(t, p, "archive", "rebalance", "--shards", "tmem://a,tmem://b", "--retire", "tmem://c")
	if r.code != 0 || p.get("c").Len() != 0 || p.get("a").Len()+p.get("b").Len() != 180 {
		t.Fatalf("retire: code %d; a %d, b %d, c %d records\n%s%s", r.code, p.get("a").Len(), p.get("b").Len(), p.get("c").Len(), r.stdout, r.stderr)
	}
	if _, err := reg.Open(t.Context(), "sharded://?shard=tmem%3A%2F%2Fa&shard=tmem%3A%2F%2Fb", archive.OpenOptions{}, archive.Options{}); err != nil {
		t.Errorf("open the two remaining shards: %v", err)
	}
}

package archivecopy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/archivecopy"
	"github.com/grey-distributed/grey/archive/archivetest"
	"github.com/grey-distributed/grey/archive/memarchive"
	"github.com/grey-distributed/grey/archive/pgarchive"
	"github.com/grey-distributed/grey/archive/pgarchive/pgtest"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/testenv"
)

func ctxT(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return c
}

func mem(t testing.TB) *archive.Store {
	s, err := memarchive.Open(archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// seed writes per records to each of n new tenants and returns the
// tenants, sorted.
func seed(t testing.TB, s *archive.Store, n, per int) []string {
	t.Helper()
	var tenants []string
	var recs []archive.Record
	at := time.Now().Add(-time.Hour)
	for i := range n {
		ten := archivetest.Tenant(fmt.Sprint(i))
		tenants = append(tenants, ten)
		for j := range per {
			st := archivetest.Spec{Tenant: ten, Finished: at.Add(time.Duration(i*per+j) * time.Millisecond),
				Payload: json.RawMessage(fmt.Sprintf(`{"z": %d, "a": [1.0, "\u00e9"], "m": {"y": true, "b": null}}`, j))}
			recs = append(recs, archivetest.Make(st))
		}
		if len(recs) >= 2000 {
			if err := s.Upsert(ctxT(t), recs); err != nil {
				t.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	if err := s.Upsert(ctxT(t), recs); err != nil {
		t.Fatal(err)
	}
	slices.Sort(tenants)
	return tenants
}

func verifyEqual(t testing.TB, a, b *archive.Store, opts archivecopy.VerifyOptions) archivecopy.Report {
	t.Helper()
	rep, err := archivecopy.Verify(ctxT(t), a, b, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Equal() || rep.FromDigest != rep.ToDigest || rep.FromCount != rep.ToCount {
		t.Fatalf("copies differ: %s", strings.Join(rep.Differences(), "\n"))
	}
	return rep
}

func TestCopyAllTenantsAndVerify(t *testing.T) {
	ctx := ctxT(t)
	from, to := mem(t), mem(t)
	tenants := seed(t, from, 12, 37)
	var calls int
	res, err := archivecopy.Copy(ctx, from, to, archivecopy.Options{Batch: 10, Progress: func(p archivecopy.Progress) {
		calls++
		if p.Tenants != 12 || p.Records > 12*37 {
			t.Errorf("progress %+v", p)
		}
	}})
	if err != nil || res.Records != 12*37 || res.Tenants != 12 {
		t.Fatalf("copy: %+v, %v", res, err)
	}
	if calls < 12*4 {
		t.Errorf("%d progress calls, want one per batch", calls)
	}
	rep := verifyEqual(t, from, to, archivecopy.VerifyOptions{})
	if len(rep.Tenants) != len(tenants) || rep.FromCount != 12*37 {
		t.Errorf("verify covered %d tenants, %d records", len(rep.Tenants), rep.FromCount)
	}
}

func TestCopyOneTenantSince(t *testing.T) {
	ctx := ctxT(t)
	from, to := mem(t), mem(t)
	tenants := seed(t, from, 3, 20)
	p, err := from.List(ctx, tenants[1], archive.Query{Limit: 20})
	if err != nil {
		t.Fatal(err)
	}
	since := *p.Records[9].Task.FinishedAt // the 10 newest
	res, err := archivecopy.Copy(ctx, from, to, archivecopy.Options{Tenant: tenants[1], Since: since})
	if err != nil || res.Records != 10 {
		t.Fatalf("copy: %+v, %v; want 10 records", res, err)
	}
	if ts, _ := to.Tenants(ctx); !slices.Equal(ts, tenants[1:2]) {
		t.Errorf("target tenants %v, want %v", ts, tenants[1:2])
	}
	verifyEqual(t, from, to, archivecopy.VerifyOptions{Tenant: tenants[1], Since: since})
	rep, err := archivecopy.Verify(ctx, from, to, archivecopy.VerifyOptions{Tenant: tenants[1]})
	if err != nil || rep.Equal() || rep.Tenants[0].MissingCount != 10 {
		t.Errorf("verify of the whole tenant: %+v, %v; want 10 missing", rep, err)
	}
}

// TestCrashResume cancels a copy mid-way, as a crash would stop it, and
// reruns it with the checkpoint: the rerun starts where the first stopped,
// and the target ends with exactly the source's records.
func TestCrashResume(t *testing.T) {
	from, to := mem(t), mem(t)
	seed(t, from, 8, 50)
	cp := filepath.Join(t.TempDir(), "migrate.checkpoint")
	ctx, cancel := context.WithCancel(ctxT(t))
	first, err := archivecopy.Copy(ctx, from, to, archivecopy.Options{Batch: 7, Checkpoint: cp, Progress: func(p archivecopy.Progress) {
		if p.Records >= 150 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted copy: %v, want context.Canceled", err)
	}
	if _, err := os.Stat(cp); err != nil {
		t.Fatalf("no checkpoint after the interruption: %v", err)
	}
	second, err := archivecopy.Copy(ctxT(t), from, to, archivecopy.Options{Batch: 7, Checkpoint: cp})
	if err != nil {
		t.Fatal(err)
	}
	if !second.Resumed || second.Records >= 400 || first.Records+second.Records > 400+7 {
		t.Errorf("first run %d records, resumed run %d (resumed %v): want the rerun to pick up after the first", first.Records, second.Records, second.Resumed)
	}
	if _, err := os.Stat(cp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("checkpoint left after a complete copy: %v", err)
	}
	rep := verifyEqual(t, from, to, archivecopy.VerifyOptions{})
	if rep.ToCount != 400 {
		t.Errorf("target holds %d records, want 400 (no duplicates, none missing)", rep.ToCount)
	}
}

func TestBadOptions(t *testing.T) {
	ctx := ctxT(t)
	from, to := mem(t), mem(t)
	seed(t, from, 1, 1)
	for what, o := range map[string]archivecopy.Options{
		"batch too big":  {Batch: archive.MaxLimit + 1},
		"negative batch": {Batch: -1},
		"negative rate":  {Rate: -5},
	} {
		if _, err := archivecopy.Copy(ctx, from, to, o); !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Errorf("%s: %v, want InvalidArgument", what, err)
		}
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := archivecopy.Copy(ctx, from, to, archivecopy.Options{Checkpoint: bad}); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Errorf("corrupt checkpoint: %v, want InvalidArgument", err)
	}
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, []byte(`{"version":1,"tenant_filter":"someone-else","at":"x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := archivecopy.Copy(ctx, from, to, archivecopy.Options{Checkpoint: other})
	if !greyerr.Is(err, greyerr.InvalidArgument) || !strings.Contains(err.Error(), "another copy") {
		t.Errorf("checkpoint of another copy: %v, want InvalidArgument", err)
	}
}

func TestRateLimit(t *testing.T) {
	from, to := mem(t), mem(t)
	seed(t, from, 1, 100)
	start := time.Now()
	res, err := archivecopy.Copy(ctxT(t), from, to, archivecopy.Options{Batch: 20, Rate: 200})
	if err != nil || res.Records != 100 {
		t.Fatal(res, err)
	}
	// A burst of one batch, then 80 records at 200/s: 0.4 s.
	if el := time.Since(start); el < 350*time.Millisecond {
		t.Errorf("100 records at 200/s took %v", el)
	}
}

// TestVerifyNamesDifferingIDs: a target holding different data for the
// same ids, a missing record and an extra one are each named.
func TestVerifyNamesDifferingIDs(t *testing.T) {
	ctx := ctxT(t)
	from, to := mem(t), mem(t)
	tenants := seed(t, from, 2, 10)
	if _, err := archivecopy.Copy(ctx, from, to, archivecopy.Options{}); err != nil {
		t.Fatal(err)
	}
	p, _ := from.List(ctx, tenants[0], archive.Query{Limit: 10})
	changed := memarchive.CopyRecord(p.Records[3])
	changed.Task.Result = json.RawMessage(`{"tampered":true}`)
	extra := archivetest.Make(archivetest.Spec{Tenant: tenants[0]})
	if err := to.Upsert(ctx, []archive.Record{changed, extra}); err != nil {
		t.Fatal(err)
	}
	missing := p.Records[7].Task.ID
	if _, err := to.Delete(ctx, tenants[0], []string{missing}); err != nil {
		t.Fatal(err)
	}
	rep, err := archivecopy.Verify(ctx, from, to, archivecopy.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Equal() || rep.FromDigest == rep.ToDigest {
		t.Fatal("verify found the copies equal")
	}
	tr := rep.Tenants[0]
	if !slices.Equal(tr.Differ, []string{changed.Task.ID}) || !slices.Equal(tr.Missing, []string{missing}) || !slices.Equal(tr.Extra, []string{extra.Task.ID}) {
		t.Errorf("differ %v missing %v extra %v; want %s, %s, %s", tr.Differ, tr.Missing, tr.Extra, changed.Task.ID, missing, extra.Task.ID)
	}
	if !rep.Tenants[1].Equal() {
		t.Errorf("the untouched tenant differs: %+v", rep.Tenants[1])
	}
	lines := strings.Join(rep.Differences(), "\n")
	for _, id := range []string{changed.Task.ID, missing, extra.Task.ID} {
		if !strings.Contains(lines, id) {
			t.Errorf("Differences() does not name %s:\n%s", id, lines)
		}
	}
}

func TestRecordHashIsCanonical(t *testing.T) {
	r := archivetest.Make(archivetest.Spec{Tenant: archivetest.Tenant("h"), Payload: json.RawMessage(`{"b": 1.0, "a": "\u00e9"}`)})
	h1, err := archivecopy.RecordHash(r)
	if err != nil {
		t.Fatal(err)
	}
	r2 := memarchive.CopyRecord(r)
	r2.Task.Payload = json.RawMessage(`{"a":"é","b":1}`)
	loc := time.FixedZone("X", 3600)
	fin := r2.Task.FinishedAt.In(loc)
	r2.Task.FinishedAt = &fin
	h2, err := archivecopy.RecordHash(r2)
	if err != nil || h1 != h2 {
		t.Errorf("the same record as jsonb would return it hashes differently (%v)", err)
	}
	r2.Task.Payload = json.RawMessage(`{"a":"é","b":2}`)
	if h3, _ := archivecopy.RecordHash(r2); h3 == h1 {
		t.Error("a changed payload hashes the same")
	}
	// The digest does not depend on the order records are added.
	var d1, d2 archivecopy.Digest
	d1.Add(h1)
	d1.Add(h2)
	d2.Add(h2)
	d2.Add(h1)
	if d1 != d2 {
		t.Error("digest depends on order")
	}
	var ff archivecopy.Digest
	for i := range ff {
		ff[i] = 0xff
	}
	ff.Add([32]byte{31: 1}) // wraps to zero
	if ff != (archivecopy.Digest{}) {
		t.Errorf("digest addition is not modulo 2^256: %s", ff)
	}
}

// pgStore opens a fresh, migrated PostgreSQL archive on the service.
func pgStore(t testing.TB, service string) *archive.Store {
	t.Helper()
	db := pgtest.Scratch(t, testenv.ServiceURL(t, service))
	if _, _, err := pgarchive.Migrate(ctxT(t), db.OwnerURL, db.AppURL); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	d, err := pgarchive.Open(ctxT(t), db.AppURL, archive.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := archive.New(d, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestMemToPostgresToMem copies through PostgreSQL (jsonb reorders keys and
// rewrites numbers) and back: the digests of all three are equal.
func TestMemToPostgresToMem(t *testing.T) {
	ctx := ctxT(t)
	pg := pgStore(t, "postgres")
	a, b := mem(t), mem(t)
	tenants := seed(t, a, 10, 30)
	for _, ten := range tenants {
		// Per tenant: PostgreSQL lists its tenants only with the
		// TenantLister of a later schema.
		if _, err := archivecopy.Copy(ctx, a, pg, archivecopy.Options{Tenant: ten, Batch: 13}); err != nil {
			t.Fatal(err)
		}
		if _, err := archivecopy.Copy(ctx, pg, b, archivecopy.Options{Tenant: ten, Batch: 13}); err != nil {
			t.Fatal(err)
		}
	}
	var da, dp, db archivecopy.Digest
	for _, ten := range tenants {
		r1 := verifyEqual(t, a, pg, archivecopy.VerifyOptions{Tenant: ten})
		r2 := verifyEqual(t, pg, b, archivecopy.VerifyOptions{Tenant: ten})
		da.Add(r1.FromDigest)
		dp.Add(r1.ToDigest)
		db.Add(r2.ToDigest)
	}
	if da != dp || dp != db {
		t.Errorf("digests mem %s, postgres %s, mem %s", da, dp, db)
	}
	t.Logf("digest of %d records over mem -> postgres -> mem: %s", 300, da)
}

// FuzzCheckpoint: whatever a checkpoint file holds, a copy resumed from it
// either refuses it (InvalidArgument) or ends with the target holding
// every record of the source.
func FuzzCheckpoint(f *testing.F) {
	f.Add([]byte(`{"version":1,"at":"a","before":"0190"}`))
	f.Add([]byte(`{"version":1,"at":""}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":1,"since":"2026-01-01T00:00:00Z","at":"z"}`))
	f.Add([]byte("\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		from, to := mem(t), mem(t)
		seed(t, from, 2, 3)
		cp := filepath.Join(t.TempDir(), "cp")
		if err := os.WriteFile(cp, b, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := archivecopy.Copy(ctxT(t), from, to, archivecopy.Options{Checkpoint: cp})
		if err != nil {
			if !greyerr.Is(err, greyerr.InvalidArgument) {
				t.Fatalf("checkpoint %q: %v, want InvalidArgument or success", b, err)
			}
			return
		}
		// A checkpoint may legitimately say that part was done; a fresh
		// copy then completes it.
		if _, err := archivecopy.Copy(ctxT(t), from, to, archivecopy.Options{}); err != nil {
			t.Fatal(err)
		}
		verifyEqual(t, from, to, archivecopy.VerifyOptions{})
	})
}

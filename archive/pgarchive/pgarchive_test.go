package pgarchive_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/archivetest"
	"github.com/grey-distributed/grey/archive/pgarchive"
	"github.com/grey-distributed/grey/archive/pgarchive/pgtest"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/testenv"
	"github.com/grey-distributed/grey/task"
)

func ctxT(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// migrated returns a scratch database on GREY_TEST_POSTGRES_URL (or the
// named service), migrated, with its app role granted the writer role.
func migrated(t testing.TB, service string) pgtest.DB {
	t.Helper()
	db := pgtest.Scratch(t, testenv.ServiceURL(t, service))
	if _, _, err := pgarchive.Migrate(ctxT(t), db.OwnerURL, db.AppURL); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}

func open(t testing.TB, rawURL string, oo archive.OpenOptions) *pgarchive.Driver {
	t.Helper()
	d, err := pgarchive.Open(ctxT(t), rawURL, oo)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func wantCode(t testing.TB, what string, err error, code greyerr.Code) {
	t.Helper()
	if greyerr.CodeOf(err) != code {
		t.Fatalf("%s: got %v (code %q), want code %q", what, err, greyerr.CodeOf(err), code)
	}
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

func TestConformance(t *testing.T) {
	db := migrated(t, "postgres")
	archivetest.Run(t, archivetest.Harness{
		Open: func(t testing.TB) archive.Driver {
			d, err := pgarchive.Open(ctxT(t), db.AppURL, archive.OpenOptions{PoolSize: 8})
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			return d
		},
		Unreachable: func(t testing.TB) archive.Driver {
			d, err := pgarchive.Open(ctxT(t), deadURL(t), archive.OpenOptions{})
			if err != nil {
				t.Fatalf("open of an unreachable URL must succeed: %v", err)
			}
			return d
		},
	})
}

func rec(tenant string, fin time.Time) archive.Record {
	return archivetest.Make(archivetest.Spec{Tenant: tenant, Finished: fin})
}

func store(t testing.TB, d archive.Driver) *archive.Store {
	s, err := archive.New(d, archive.Options{Retry: archivetest.FastRetry})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRowLevelSecurity checks the tenant wall in PostgreSQL itself, with
// raw connections of the app role (not through the driver's queries).
func TestRowLevelSecurity(t *testing.T) {
	db := migrated(t, "postgres")
	s := store(t, open(t, db.AppURL, archive.OpenOptions{}))
	ctx := ctxT(t)
	now := time.Now()
	if err := s.Upsert(ctx, []archive.Record{rec("tenant-a", now), rec("tenant-a", now), rec("tenant-b", now)}); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgxpool.ParseConfig(db.AppURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1 // one connection: every transaction reuses it
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	countAs := func(setting *string, where string) int {
		t.Helper()
		tx, err := p.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if setting != nil {
			if _, err := tx.Exec(ctx, `SELECT set_config('grey.tenant_id', $1, true)`, *setting); err != nil {
				t.Fatal(err)
			}
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM grey_archive.tasks `+where).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		return n
	}
	a, b, empty := "tenant-a", "tenant-b", ""
	if n := countAs(&a, ""); n != 2 {
		t.Errorf("tenant A's setting sees %d rows, want its 2", n)
	}
	if n := countAs(&a, `WHERE tenant_id = 'tenant-b'`); n != 0 {
		t.Errorf("tenant A's setting sees %d of tenant B's rows", n)
	}
	if n := countAs(&b, ""); n != 1 {
		t.Errorf("tenant B's setting sees %d rows, want its 1", n)
	}
	// The pool has one connection, which ran tenant B's transaction just
	// now: the next transaction without a setting must see nothing.
	if n := countAs(nil, ""); n != 0 {
		t.Errorf("a transaction without a tenant on the pooled connection sees %d rows, want 0", n)
	}
	if n := countAs(&empty, ""); n != 0 {
		t.Errorf("an empty tenant setting sees %d rows, want 0", n)
	}
	var leftover string
	if err := p.QueryRow(ctx, `SELECT coalesce(current_setting('grey.tenant_id', true), '')`).Scan(&leftover); err != nil {
		t.Fatal(err)
	}
	if leftover != "" {
		t.Errorf("the pooled connection carries tenant %q out of its transaction", leftover)
	}

	// Writing tenant B's row under tenant A's setting fails.
	tx, err := p.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT set_config('grey.tenant_id', 'tenant-a', true)`); err != nil {
		t.Fatal(err)
	}
	r := rec("tenant-b", now)
	tj, _ := json.Marshal(r.Task)
	_, err = tx.Exec(ctx, `INSERT INTO grey_archive.tasks (tenant_id, id, finished_at, status, kind, task) VALUES ('tenant-b', $1, $2, 'completed', 'k', $3)`,
		r.Task.ID, now, string(tj))
	_ = tx.Rollback(ctx)
	if err == nil || !strings.Contains(err.Error(), "row-level security") {
		t.Errorf("inserting tenant B's row under tenant A's setting: %v, want a row-level security violation", err)
	}
	// Nor can A move its rows to B, nor delete B's.
	tx, _ = p.Begin(ctx)
	_, _ = tx.Exec(ctx, `SELECT set_config('grey.tenant_id', 'tenant-a', true)`)
	_, err = tx.Exec(ctx, `UPDATE grey_archive.tasks SET tenant_id = 'tenant-b'`)
	_ = tx.Rollback(ctx)
	if err == nil {
		t.Error("tenant A moved its rows to tenant B")
	}
	tx, _ = p.Begin(ctx)
	_, _ = tx.Exec(ctx, `SELECT set_config('grey.tenant_id', 'tenant-a', true)`)
	tag, err := tx.Exec(ctx, `DELETE FROM grey_archive.tasks WHERE tenant_id = 'tenant-b'`)
	_ = tx.Rollback(ctx)
	if err != nil || tag.RowsAffected() != 0 {
		t.Errorf("tenant A deleting B's rows: %d rows, %v", tag.RowsAffected(), err)
	}
	// The partitions themselves are out of the app role's reach.
	var part string
	if err := p.QueryRow(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'grey_archive.tasks'::regclass LIMIT 1`).Scan(&part); err != nil {
		t.Fatal(err)
	}
	_, err = p.Exec(ctx, `SELECT count(*) FROM grey_archive.`+part)
	wantPermission(t, "reading a partition directly", err)
}

func wantPermission(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("%s: %v, want permission denied", what, err)
	}
}

func TestWrongPasswordAndUnreachable(t *testing.T) {
	in := pgtest.Start(t)
	if _, _, err := pgarchive.Migrate(ctxT(t), in.OwnerURL(), in.AppURL()); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(in.AppURL())
	u.User = url.UserPassword(pgtest.AppUser, "not-the-password")
	d := open(t, u.String(), archive.OpenOptions{}) // greyd starts
	wantCode(t, "ping with a wrong password", d.Ping(ctxT(t)), greyerr.PermissionDenied)
	_, err := d.Get(ctxT(t), "t", archivetest.IDAt(time.Now()))
	wantCode(t, "get with a wrong password", err, greyerr.PermissionDenied)
	if strings.Contains(fmt.Sprint(err), "not-the-password") {
		t.Errorf("the error shows the password: %v", err)
	}

	d2 := open(t, deadURL(t), archive.OpenOptions{})
	wantCode(t, "ping of an unreachable port", d2.Ping(ctxT(t)), greyerr.Unavailable)

	// The right password works, and keeps working across a crash.
	good := open(t, in.AppURL(), archive.OpenOptions{})
	s := store(t, good)
	r := rec("crash", time.Now())
	if err := s.Upsert(ctxT(t), []archive.Record{r}); err != nil {
		t.Fatal(err)
	}
	in.Kill()
	_, err = good.Get(ctxT(t), "crash", r.Task.ID)
	wantCode(t, "get while PostgreSQL is down", err, greyerr.Unavailable)
	in.Restart()
	if _, err := s.Get(ctxT(t), "crash", r.Task.ID); err != nil {
		t.Fatalf("get after the restart: %v", err)
	}
}

func TestSchemaVersions(t *testing.T) {
	db := pgtest.Scratch(t, testenv.ServiceURL(t, "postgres"))
	ctx := ctxT(t)
	latest := pgarchive.LatestVersion()
	if latest < 1 {
		t.Fatalf("LatestVersion %d", latest)
	}

	// Missing schema, no migrate: refused, naming the command.
	_, err := pgarchive.Open(ctx, db.AppURL, archive.OpenOptions{})
	wantCode(t, "open of an unmigrated database", err, greyerr.FailedPrecondition)
	if !strings.Contains(err.Error(), "greyd archive migrate") {
		t.Errorf("the error does not name `greyd archive migrate`: %v", err)
	}

	// Migrate at open, as the owner.
	d := open(t, db.AppURL, archive.OpenOptions{Migrate: true, MigrateURL: db.OwnerURL})
	if err := d.Ping(ctx); err != nil {
		t.Fatalf("ping after migrating at open: %v", err)
	}
	if v, err := d.SchemaVersion(ctx); err != nil || v != latest {
		t.Fatalf("schema version %d, %v; want %d", v, err, latest)
	}
	from, to, err := pgarchive.Migrate(ctx, db.OwnerURL, db.AppURL)
	if err != nil || from != latest || to != latest {
		t.Fatalf("second migrate: %d -> %d, %v", from, to, err)
	}

	// A schema newer than the binary.
	c, err := pgx.Connect(ctx, db.OwnerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	newer := latest + 41
	if _, err := c.Exec(ctx, `INSERT INTO grey_archive.goose_db_version (version_id, is_applied) VALUES ($1, true)`, newer); err != nil {
		t.Fatal(err)
	}
	for what, err := range map[string]error{
		"open":    func() error { _, err := pgarchive.Open(ctx, db.AppURL, archive.OpenOptions{}); return err }(),
		"ping":    d.Ping(ctx),
		"migrate": func() error { _, _, err := pgarchive.Migrate(ctx, db.OwnerURL, db.AppURL); return err }(),
	} {
		wantCode(t, what+" with a newer schema", err, greyerr.FailedPrecondition)
		if !strings.Contains(err.Error(), fmt.Sprint(newer)) || !strings.Contains(err.Error(), fmt.Sprint(latest)) {
			t.Errorf("%s: the error does not name both versions %d and %d: %v", what, newer, latest, err)
		}
	}
}

func TestConcurrentMigrate(t *testing.T) {
	db := pgtest.Scratch(t, testenv.ServiceURL(t, "postgres"))
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = pgarchive.Migrate(ctx, db.OwnerURL, db.AppURL)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migrate %d: %v", i, err)
		}
	}
	c, err := pgx.Connect(ctx, db.OwnerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM grey_archive.goose_db_version WHERE version_id = 1`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("migration 1 is recorded %d times, want once", n)
	}
}

// TestRefusesPrivilegedRoles: a superuser, a BYPASSRLS role and the
// owner are refused; a non-superuser owner can migrate and run the
// retention functions it owns.
func TestRefusesPrivilegedRoles(t *testing.T) {
	server := testenv.ServiceURL(t, "postgres")
	db := pgtest.Scratch(t, server)
	ctx := ctxT(t)
	c, err := pgx.Connect(ctx, db.OwnerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	owner, bypass := db.AppUser+"_own", db.AppUser+"_byp"
	for _, q := range []string{
		`CREATE ROLE ` + owner + ` LOGIN NOSUPERUSER CREATEROLE PASSWORD 'pw'`,
		`GRANT CREATE ON DATABASE ` + db.Name + ` TO ` + owner,
		`CREATE ROLE ` + bypass + ` LOGIN NOSUPERUSER BYPASSRLS PASSWORD 'pw'`,
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		cc, err := pgx.Connect(context.Background(), server)
		if err == nil {
			_, _ = cc.Exec(context.Background(), `DROP DATABASE IF EXISTS `+db.Name+` WITH (FORCE)`)
			_, _ = cc.Exec(context.Background(), `DROP ROLE IF EXISTS `+owner)
			_, _ = cc.Exec(context.Background(), `DROP ROLE IF EXISTS `+bypass)
			cc.Close(context.Background())
		}
	})
	as := func(user string) string {
		u, _ := url.Parse(db.OwnerURL)
		u.User = url.UserPassword(user, "pw")
		return u.String()
	}
	if _, _, err := pgarchive.Migrate(ctx, as(owner), db.AppURL); err != nil {
		t.Fatalf("migrate as a non-superuser owner: %v", err)
	}
	if _, err := c.Exec(ctx, `GRANT `+pgarchive.WriterRole+` TO `+bypass); err != nil {
		t.Fatal(err)
	}
	for who, u := range map[string]string{"superuser": db.OwnerURL, "owns": as(owner), "BYPASSRLS": as(bypass)} {
		_, err := pgarchive.Open(ctx, u, archive.OpenOptions{})
		wantCode(t, "open as "+who, err, greyerr.FailedPrecondition)
		if !strings.Contains(err.Error(), who) {
			t.Errorf("open as %s: the error does not say why: %v", who, err)
		}
	}
	// The app role works, and its retention drops partitions through the
	// owner's functions.
	s := store(t, open(t, db.AppURL, archive.OpenOptions{}))
	old := time.Now().Add(-10 * 24 * time.Hour)
	recs := []archive.Record{rec("ret", old), rec("ret", old.Add(24*time.Hour)), rec("ret", time.Now())}
	if err := s.Upsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteBefore(ctx, old.Add(36*time.Hour))
	if err != nil || n != -1 {
		t.Fatalf("delete before: %d, %v (want -1: partitions dropped)", n, err)
	}
	if got, err := s.Count(ctx, "ret", archive.Filter{}); err != nil || got != 1 {
		t.Fatalf("after retention: %d records, %v; want 1", got, err)
	}
	// A partition dropped under a running driver is made again.
	if err := s.Upsert(ctx, recs[:1]); err != nil {
		t.Fatalf("upsert into a dropped day: %v", err)
	}
}

// TestReadReplicas: reads go to the replica (the second PostgreSQL
// stands in for one, loaded with the same data: this is not streaming
// replication), and fall back to the primary when the replica is down.
func TestReadReplicas(t *testing.T) {
	primary := migrated(t, "postgres")
	replica := migrated(t, "postgres2")
	ctx := ctxT(t)
	now := time.Now()
	both := []archive.Record{rec("rr", now), rec("rr", now.Add(-time.Hour))}
	onlyReplica := rec("rr", now.Add(-2*time.Hour))
	if err := store(t, open(t, primary.AppURL, archive.OpenOptions{})).Upsert(ctx, both); err != nil {
		t.Fatal(err)
	}
	if err := store(t, open(t, replica.AppURL, archive.OpenOptions{})).Upsert(ctx, append(both, onlyReplica)); err != nil {
		t.Fatal(err)
	}
	d := open(t, primary.AppURL, archive.OpenOptions{ReadURLs: []string{replica.AppURL}})
	if d.Capabilities().ReadReplicas != 1 {
		t.Errorf("capabilities: %+v", d.Capabilities())
	}
	s := store(t, d)
	if _, err := s.Get(ctx, "rr", onlyReplica.Task.ID); err != nil {
		t.Errorf("get did not read the replica: %v", err)
	}
	if n, err := s.Count(ctx, "rr", archive.Filter{}); err != nil || n != 3 {
		t.Errorf("count read %d, %v; want the replica's 3", n, err)
	}
	// A NotFound on the replica asks the primary (the replica may lag).
	fresh := rec("rr", now)
	if err := s.Upsert(ctx, []archive.Record{fresh}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "rr", fresh.Task.ID); err != nil {
		t.Errorf("get of a record only the primary has: %v", err)
	}

	dead := open(t, primary.AppURL, archive.OpenOptions{ReadURLs: []string{deadURL(t)}})
	sd := store(t, dead)
	if p, err := sd.List(ctx, "rr", archive.Query{}); err != nil || len(p.Records) != 3 {
		t.Errorf("list with a dead replica: %d records, %v; want the primary's 3", len(p.Records), err)
	}
	if _, err := sd.Get(ctx, "rr", both[0].Task.ID); err != nil {
		t.Errorf("get with a dead replica: %v", err)
	}
}

func TestAsPool(t *testing.T) {
	d, err := pgarchive.Open(ctxT(t), deadURL(t), archive.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var p *pgxpool.Pool
	if !d.As(&p) || p == nil {
		t.Error("As(**pgxpool.Pool) did not set the pool")
	}
	var s string
	if d.As(&s) {
		t.Error("As(*string) reported true")
	}
	c := d.Capabilities()
	if c.Scheme != "postgres" || !c.LabelFilter || !c.PartitionedRetention || c.MaxBatch != pgarchive.MaxBatch {
		t.Errorf("capabilities %+v", c)
	}
}

func TestRegister(t *testing.T) {
	r := archive.NewRegistry()
	if err := pgarchive.Register(r); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.Schemes(), ","); got != "postgres,postgresql" {
		t.Errorf("schemes %s", got)
	}
	u := strings.Replace(deadURL(t), "postgres://", "postgresql://", 1)
	s, err := r.Open(ctxT(t), u, archive.OpenOptions{}, archive.Options{Retry: archivetest.FastRetry})
	if err != nil {
		t.Fatalf("open of an unreachable postgresql:// URL: %v", err)
	}
	defer s.Close()
	if s.Capabilities().Scheme != "postgresql" {
		t.Errorf("scheme %q", s.Capabilities().Scheme)
	}
	err = s.Ping(ctxT(t))
	wantCode(t, "ping", err, greyerr.Unavailable)
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("the error shows the password: %v", err)
	}
	// A URL that is not one.
	_, err = pgarchive.Open(ctxT(t), "postgres://u:secret@127.0.0.1:notaport/db", archive.OpenOptions{})
	wantCode(t, "open of a bad URL", err, greyerr.InvalidArgument)
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("the error shows the password: %v", err)
	}
}

// TestUpsertMovesFinishTime: a task written again with another finish
// time (another partition) keeps one copy, and a batch naming a task twice
// keeps the last.
func TestUpsertMovesFinishTime(t *testing.T) {
	db := migrated(t, "postgres")
	s := store(t, open(t, db.AppURL, archive.OpenOptions{}))
	ctx := ctxT(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	r := rec("move", now.Add(-3*24*time.Hour))
	if err := s.Upsert(ctx, []archive.Record{r}); err != nil {
		t.Fatal(err)
	}
	moved := *r.Task
	fin := now
	moved.FinishedAt = &fin
	moved.Status = task.Failed
	again := moved
	again.Kind = "last"
	if err := s.Upsert(ctx, []archive.Record{{Task: &moved}, {Task: &again}}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Count(ctx, "move", archive.Filter{}); err != nil || n != 1 {
		t.Fatalf("%d copies, %v; want 1", n, err)
	}
	got, err := s.Get(ctx, "move", r.Task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Task.FinishedAt.Equal(fin) || got.Task.Kind != "last" || got.Task.Status != task.Failed {
		t.Errorf("got finished %s kind %q status %s; want the batch's last copy", got.Task.FinishedAt, got.Task.Kind, got.Task.Status)
	}
}

// TestCrashDuringUpserts kills PostgreSQL (SIGKILL, backends included)
// while batches are being written and restarts it: a batch that failed is
// written again, as the archive relay does, and afterwards every record is
// in the archive exactly once.
func TestCrashDuringUpserts(t *testing.T) {
	in := pgtest.Start(t)
	ctx := ctxT(t)
	if _, _, err := pgarchive.Migrate(ctx, in.OwnerURL(), in.AppURL()); err != nil {
		t.Fatal(err)
	}
	s := store(t, open(t, in.AppURL(), archive.OpenOptions{PoolSize: 4}))
	const batches, size = 40, 50
	var all []archive.Record
	done := make(chan struct{})
	halfway := make(chan struct{})
	var failures int
	go func() {
		defer close(done)
		for b := 0; b < batches; b++ {
			if b == batches/2 {
				close(halfway)
			}
			batch := make([]archive.Record, size)
			for i := range batch {
				batch[i] = rec(fmt.Sprintf("crash-%d", i%3), time.Now())
			}
			all = append(all, batch...)
			for {
				err := s.Upsert(ctx, batch)
				if err == nil {
					break
				}
				if c := greyerr.CodeOf(err); c != greyerr.Unavailable {
					t.Errorf("upsert during the crash: %v (code %s), want unavailable", err, c)
					return
				}
				failures++
				time.Sleep(100 * time.Millisecond)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	<-halfway
	in.Kill()
	time.Sleep(time.Second)
	in.Restart()
	<-done
	if failures == 0 {
		t.Error("no upsert failed while PostgreSQL was down")
	}
	t.Logf("%d upserts failed while PostgreSQL was down and were written again", failures)
	perTenant := map[string]int64{}
	for _, r := range all {
		perTenant[r.Task.TenantID]++
		if _, err := s.Get(ctx, r.Task.TenantID, r.Task.ID); err != nil {
			t.Fatalf("record %s after the crash: %v", r.Task.ID, err)
		}
	}
	for ten, want := range perTenant {
		if n, err := s.Count(ctx, ten, archive.Filter{}); err != nil || n != want {
			t.Errorf("tenant %s: %d records, %v; want %d (each once)", ten, n, err, want)
		}
	}
}

// TestListSparseAndMixedAges: List's first look at recent partitions
// must not change a page: a tenant with one task every few days (the
// look falls short), and tasks created long before they finished (old
// ids in new partitions) mixed with fresh ones.
func TestListSparseAndMixedAges(t *testing.T) {
	db := migrated(t, "postgres")
	s := store(t, open(t, db.AppURL, archive.OpenOptions{}))
	ctx := ctxT(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	var recs []archive.Record
	for i := 0; i < 40; i++ { // one every 3 days, 120 days back
		fin := now.Add(-time.Duration(i) * 72 * time.Hour)
		recs = append(recs, archivetest.Make(archivetest.Spec{Tenant: "sparse", Finished: fin}))
	}
	for i := 0; i < 30; i++ { // created 20 days before they finished, today
		fin := now.Add(-time.Duration(i) * time.Minute)
		recs = append(recs, archivetest.Make(archivetest.Spec{Tenant: "sparse", ID: archivetest.IDAt(fin.Add(-20 * 24 * time.Hour)), Finished: fin}))
	}
	if err := s.Upsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	want := make([]string, len(recs))
	for i, r := range recs {
		want[i] = r.Task.ID
	}
	slices.Sort(want)
	slices.Reverse(want)
	for _, limit := range []int{1, 7, 30, 100} {
		var got []string
		cursor := ""
		for {
			p, err := s.List(ctx, "sparse", archive.Query{Limit: limit, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range p.Records {
				got = append(got, r.Task.ID)
			}
			if p.Next == "" {
				break
			}
			cursor = p.Next
		}
		if !slices.Equal(got, want) {
			t.Errorf("limit %d: pages list %d ids, not the %d in id order", limit, len(got), len(want))
		}
	}
}

// TestUpsertRefusesIDsWithoutTime: the archive finds and orders tasks by
// the time in their UUIDv7 ids; other ids, and tasks that finished more
// than a day before their id's time, are refused (nothing is written).
func TestUpsertRefusesIDsWithoutTime(t *testing.T) {
	db := migrated(t, "postgres")
	s := store(t, open(t, db.AppURL, archive.OpenOptions{}))
	ctx := ctxT(t)
	now := time.Now()
	v4 := archivetest.Make(archivetest.Spec{Tenant: "ids", ID: "6ba7b810-9dad-41d1-80b4-00c04fd430c8", Finished: now})
	future := archivetest.Make(archivetest.Spec{Tenant: "ids", ID: archivetest.IDAt(now.Add(49 * time.Hour)), Finished: now})
	for name, r := range map[string]archive.Record{"a UUIDv4 id": v4, "an id two days after the finish": future} {
		err := s.Upsert(ctx, []archive.Record{rec("ids", now), r})
		wantCode(t, "upsert of "+name, err, greyerr.InvalidArgument)
	}
	if n, err := s.Count(ctx, "ids", archive.Filter{}); err != nil || n != 0 {
		t.Errorf("%d records written, %v", n, err)
	}
}

// One envelope covers a report batch of a tenant's tasks: the archive
// stores it once, every task still reads it back, and retention removes it
// with the last task naming it.
func TestProofsStoredOnce(t *testing.T) {
	db := migrated(t, "postgres")
	d := open(t, db.AppURL, archive.OpenOptions{})
	s := store(t, d)
	ctx := ctxT(t)
	ten := archivetest.Tenant("proofs")
	env := json.RawMessage(`{"payloadType":"application/vnd.in-toto+json","payload":"` + strings.Repeat("QUJD", 4000) + `","signatures":[{"keyid":"k","sig":"c2ln"}]}`)
	old := time.Now().Add(-72 * time.Hour).Truncate(time.Microsecond)
	var recs []archive.Record
	for i := range 50 {
		fin := old
		if i == 49 {
			fin = time.Now().Truncate(time.Microsecond) // the envelope's last task
		}
		recs = append(recs, archivetest.Make(archivetest.Spec{Tenant: ten, Finished: fin, Proof: env}))
	}
	if err := s.Upsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	owner, err := pgx.Connect(ctx, db.OwnerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close(ctx)
	count := func() (n int) {
		t.Helper()
		// The owner sees every envelope (the retention policy).
		if err := owner.QueryRow(ctx, `SELECT count(*) FROM grey_archive.proofs WHERE tenant_id = $1`, ten).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 1 {
		t.Fatalf("50 tasks of one envelope stored %d envelopes", n)
	}
	for _, i := range []int{0, 49} {
		got, err := s.Get(ctx, ten, recs[i].Task.ID)
		if err != nil || string(got.Proof) != string(env) {
			t.Fatalf("task %d's proof: %d bytes, %v", i, len(got.Proof), err)
		}
	}
	// Retention before the last task's finish keeps the envelope; after
	// it, the envelope goes with its tasks.
	if _, err := s.DeleteBefore(ctx, old.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Fatalf("envelope of a remaining task: %d rows", n)
	}
	if got, err := s.Get(ctx, ten, recs[49].Task.ID); err != nil || string(got.Proof) != string(env) {
		t.Fatalf("remaining task's proof: %v", err)
	}
	if _, err := s.DeleteBefore(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 0 {
		t.Fatalf("envelope outlived its tasks: %d rows", n)
	}
}

// TestUpsertStoredAndConcurrent covers the paths beside the plain insert
// of new tasks: a batch that mixes new tasks with stored ones (changed),
// and writers delivering the same batch at once (a new leader re-sending
// what the old one is still writing): one row per task, the last content.
func TestUpsertStoredAndConcurrent(t *testing.T) {
	db := migrated(t, "postgres")
	s := store(t, open(t, db.AppURL, archive.OpenOptions{PoolSize: 8}))
	ctx := ctxT(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	var first []archive.Record
	for i := range 10 {
		first = append(first, rec("mix", now.Add(-time.Duration(i)*time.Second)))
	}
	if err := s.Upsert(ctx, first); err != nil {
		t.Fatal(err)
	}
	batch := make([]archive.Record, 0, 20)
	for _, r := range first {
		c := *r.Task
		c.Kind = "changed"
		batch = append(batch, archive.Record{Task: &c, Proof: r.Proof})
	}
	for i := range 10 {
		batch = append(batch, rec("mix", now.Add(-time.Duration(i)*time.Millisecond)))
	}
	if err := s.Upsert(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Count(ctx, "mix", archive.Filter{}); err != nil || n != 20 {
		t.Fatalf("count %d, %v; want 20", n, err)
	}
	if n, err := s.Count(ctx, "mix", archive.Filter{Kind: "changed"}); err != nil || n != 10 {
		t.Fatalf("changed %d, %v; want 10", n, err)
	}

	for round := range 5 {
		var same []archive.Record
		for i := range 200 {
			same = append(same, rec("race", now.Add(-time.Duration(round*1000+i)*time.Millisecond)))
		}
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for w := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[w] = s.Upsert(ctx, same)
			}()
		}
		wg.Wait()
		for w, err := range errs {
			if err != nil {
				t.Fatalf("round %d writer %d: %v", round, w, err)
			}
		}
		if n, err := s.Count(ctx, "race", archive.Filter{}); err != nil || n != int64(200*(round+1)) {
			t.Fatalf("round %d: count %d, %v; want %d", round, n, err, 200*(round+1))
		}
	}
}

// TestUpsertThroughStaging covers the COPY path's staging table: one
// connection (a pool of one) writes two tenants' batches in turn and each
// tenant reads exactly its own tasks back (the session's staging table
// carries nothing from one transaction into the next), and a role that
// may not create temporary tables still archives (the driver falls back
// to sending arrays).
func TestUpsertThroughStaging(t *testing.T) {
	for _, noTemp := range []bool{false, true} {
		t.Run(fmt.Sprintf("no_temp=%v", noTemp), func(t *testing.T) {
			db := migrated(t, "postgres")
			ctx := ctxT(t)
			if noTemp {
				owner, err := pgx.Connect(ctx, db.OwnerURL)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := owner.Exec(ctx, `REVOKE TEMPORARY ON DATABASE `+db.Name+` FROM PUBLIC`); err != nil {
					t.Fatal(err)
				}
				owner.Close(ctx)
			}
			var logs strings.Builder
			var logMu sync.Mutex
			d := open(t, db.AppURL, archive.OpenOptions{PoolSize: 1, Logger: slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))})
			s := store(t, d)
			defer func() {
				logMu.Lock()
				defer logMu.Unlock()
				// the fallback says so once, and only when it happens
				if fell := strings.Count(logs.String(), "instead of COPY"); fell != map[bool]int{false: 0, true: 1}[noTemp] {
					t.Fatalf("%d fallback warnings; log: %s", fell, logs.String())
				}
			}()
			tenants := []string{archivetest.Tenant("stage-a"), archivetest.Tenant("stage-b")}
			byTenant := map[string][]archive.Record{}
			for round := range 3 {
				for k, ten := range tenants {
					var recs []archive.Record
					for i := range 20 + k {
						recs = append(recs, archivetest.Make(archivetest.Spec{Tenant: ten, Finished: time.Now().Add(time.Duration(round*100+i) * time.Millisecond).Truncate(time.Microsecond)}))
					}
					if err := s.Upsert(ctx, recs); err != nil {
						t.Fatalf("round %d, tenant %s: %v", round, ten, err)
					}
					byTenant[ten] = append(byTenant[ten], recs...)
				}
			}
			// A batch of stored tasks with a changed one takes the upsert path.
			again := slices.Clone(byTenant[tenants[0]][:5])
			changed := *again[2].Task
			changed.Kind = "changed"
			again[2].Task = &changed
			if err := s.Upsert(ctx, again); err != nil {
				t.Fatalf("stored batch: %v", err)
			}
			for k, ten := range tenants {
				other := tenants[1-k]
				for i, r := range byTenant[ten] {
					got, err := s.Get(ctx, ten, r.Task.ID)
					if err != nil {
						t.Fatalf("%s task %d: %v", ten, i, err)
					}
					if want := r.Task.Kind; k == 0 && i == 2 {
						want = "changed"
						if got.Task.Kind != want {
							t.Fatalf("changed task reads kind %q", got.Task.Kind)
						}
					} else if got.Task.Kind != want || got.Task.TenantID != ten {
						t.Fatalf("%s task %d reads %q of %q", ten, i, got.Task.Kind, got.Task.TenantID)
					}
					_, err = s.Get(ctx, other, r.Task.ID)
					wantCode(t, "another tenant's task", err, greyerr.NotFound)
				}
			}
		})
	}
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

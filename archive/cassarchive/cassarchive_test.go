package cassarchive_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/archivetest"
	"github.com/grey-distributed/grey/archive/cassarchive"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/testenv"
)

// testKeyspace is the keyspace the conformance suite shares between runs
// (its tenants are unique per run).
const testKeyspace = "grey_archive_test"

// serviceURL returns the test Cassandra's URL for keyspace ks, with the
// single node's replication and the extra query knobs.
func serviceURL(t testing.TB, ks string, knobs string) string {
	t.Helper()
	base := testenv.ServiceURL(t, "cassandra") // GREY_TEST_CASSANDRA_URL: skips when unset, fails in CI
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("GREY_TEST_CASSANDRA_URL: %v", err)
	}
	u.Path = "/" + ks
	q := "replication=SimpleStrategy:1&timeout=30s"
	if knobs != "" {
		q += "&" + knobs
	}
	u.RawQuery = q
	return u.String()
}

func harness(t testing.TB) archivetest.Harness {
	raw := serviceURL(t, testKeyspace, "")
	return archivetest.Harness{
		Open: func(t testing.TB) archive.Driver {
			d, err := cassarchive.Open(context.Background(), raw, archive.OpenOptions{Migrate: true})
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
		Unreachable: func(t testing.TB) archive.Driver {
			d, err := cassarchive.Open(context.Background(), "cassandra://127.0.0.1:1/"+testKeyspace+"?connect_timeout=1s", archive.OpenOptions{})
			if err != nil {
				t.Fatal(err) // opening must not need the cluster
			}
			return d
		},
	}
}

func TestConformance(t *testing.T) { archivetest.Run(t, harness(t)) }

// TestConformanceMinuteBuckets runs the suite over a keyspace of one-minute
// buckets, so pages, cursors, filters and the retention cross many
// partitions (the suite spreads its records over minutes to hours).
func TestConformanceMinuteBuckets(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	ks := uniqueKeyspace(t, "minute")
	raw := serviceURL(t, ks, "bucket=1m")
	h := harness(t)
	h.Open = func(t testing.TB) archive.Driver {
		d, err := cassarchive.Open(context.Background(), raw, archive.OpenOptions{Migrate: true})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	archivetest.Run(t, h)
	// The width stays the keyspace's whatever a later URL says.
	d, err := cassarchive.Open(ctxT(t), serviceURL(t, ks, "bucket=48h"), archive.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var sess *gocql.Session
	if err := d.Ping(ctxT(t)); err != nil || !d.As(&sess) {
		t.Fatal(err)
	}
	var v string
	if err := sess.Query(`SELECT value FROM ` + ks + `.settings WHERE name = 'bucket_ms'`).Scan(&v); err != nil || v != "60000" {
		t.Errorf("bucket_ms = %q, %v", v, err)
	}
}

func BenchmarkArchive(b *testing.B) { archivetest.Bench(b, harness(b)) }

// uniqueKeyspace returns a keyspace name no other test uses, dropped when
// t ends.
func uniqueKeyspace(t *testing.T, what string) string {
	t.Helper()
	ks := fmt.Sprintf("grey_t_%s_%d", what, time.Now().UnixNano()%1e9)
	t.Cleanup(func() {
		s := rawSession(t)
		defer s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		_ = s.Query(`DROP KEYSPACE IF EXISTS ` + ks).ExecContext(ctx)
	})
	return ks
}

func rawSession(t testing.TB) *gocql.Session {
	t.Helper()
	u, err := url.Parse(testenv.ServiceURL(t, "cassandra"))
	if err != nil {
		t.Fatal(err)
	}
	c := gocql.NewCluster(u.Host)
	c.Timeout = 30 * time.Second
	c.Consistency = gocql.One
	if pw, ok := u.User.Password(); ok { // the test Cassandra's superuser
		c.Authenticator = gocql.PasswordAuthenticator{Username: u.User.Username(), Password: pw}
	}
	s, err := c.CreateSession()
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	return s
}

func ctxT(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return c
}

// A replication the one-node cluster cannot hold is refused before
// anything is made, naming what it needs and what there is.
func TestReplicationTheClusterCannotSatisfy(t *testing.T) {
	for _, tc := range []struct {
		replication string
		want        []string
	}{
		{"SimpleStrategy:3", []string{"needs 3 replicas", "has 1 node"}},
		{"NetworkTopologyStrategy:dc1=3,dc2=3", []string{"needs 3 replicas in data center dc1", "0 node"}},
		{"NetworkTopologyStrategy:datacenter1=2", []string{"needs 2 replicas in data center datacenter1", "has 1 node"}},
	} {
		ks := uniqueKeyspace(t, "repl")
		raw := serviceURL(t, ks, "") + "&replication=" + url.QueryEscape(tc.replication)
		raw = strings.Replace(raw, "replication=SimpleStrategy%3A1&", "", 1)
		raw = strings.Replace(raw, "replication=SimpleStrategy:1&", "", 1)
		_, _, err := cassarchive.Migrate(ctxT(t), raw, archive.OpenOptions{})
		if !greyerr.Is(err, greyerr.FailedPrecondition) {
			t.Fatalf("%s: got %v, want failed_precondition", tc.replication, err)
		}
		t.Logf("%s: %v", tc.replication, err)
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", tc.replication, err, w)
			}
		}
		// Nothing was made.
		s := rawSession(t)
		var n int
		_ = s.Query(`SELECT COUNT(*) FROM system_schema.keyspaces WHERE keyspace_name = ?`, ks).Scan(&n)
		s.Close()
		if n != 0 {
			t.Errorf("%s: the keyspace was made", tc.replication)
		}
	}
}

// A keyspace migrated by a newer binary is refused by Open, Ping and
// Migrate, with both versions named.
func TestKeyspaceNewerThanBinary(t *testing.T) {
	ks := uniqueKeyspace(t, "newer")
	raw := serviceURL(t, ks, "")
	from, to, err := cassarchive.Migrate(ctxT(t), raw, archive.OpenOptions{})
	if err != nil || from != 0 || to != cassarchive.LatestVersion() {
		t.Fatalf("migrate: %d -> %d, %v", from, to, err)
	}
	// Again: nothing to do.
	if from, to, err = cassarchive.Migrate(ctxT(t), raw, archive.OpenOptions{}); err != nil || from != to {
		t.Fatalf("second migrate: %d -> %d, %v", from, to, err)
	}
	d, err := cassarchive.Open(ctxT(t), raw, archive.OpenOptions{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer d.Close()
	if err := d.Ping(ctxT(t)); err != nil {
		t.Fatalf("ping: %v", err)
	}
	s := rawSession(t)
	defer s.Close()
	newer := cassarchive.LatestVersion() + 41
	if err := s.Query(`INSERT INTO `+ks+`.schema_migrations (version, description) VALUES (?, 'from the future')`, newer).Exec(); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("schema version %d, newer than this binary's version %d", newer, cassarchive.LatestVersion())
	for what, err := range map[string]error{
		"ping": d.Ping(ctxT(t)),
		"open": func() error {
			d2, err := cassarchive.Open(ctxT(t), raw, archive.OpenOptions{})
			if err == nil {
				d2.Close()
			}
			return err
		}(),
		"migrate": func() error { _, _, err := cassarchive.Migrate(ctxT(t), raw, archive.OpenOptions{}); return err }(),
	} {
		if !greyerr.Is(err, greyerr.FailedPrecondition) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s of a newer keyspace: got %v, want failed_precondition saying %q", what, err, want)
		}
	}
}

// A keyspace that was never migrated is refused at Open (without
// migrate), naming the command.
func TestKeyspaceMissing(t *testing.T) {
	ks := uniqueKeyspace(t, "missing")
	_, err := cassarchive.Open(ctxT(t), serviceURL(t, ks, ""), archive.OpenOptions{})
	if !greyerr.Is(err, greyerr.FailedPrecondition) || !strings.Contains(err.Error(), "greyd archive migrate") {
		t.Fatalf("open of a missing keyspace: %v", err)
	}
}

// A hosts list with an entry that does not parse is refused naming the
// entry; one with an unreachable entry works through the others.
func TestHostsList(t *testing.T) {
	good := serviceURL(t, testKeyspace, "")
	u, _ := url.Parse(good)
	for _, bad := range []string{"127.0.0.1:notaport", "127.0.0.1:70000", "bad host", ",", "[::1]:x", "host:"} {
		raw := good + "&hosts=" + url.QueryEscape(bad)
		_, err := cassarchive.Open(ctxT(t), raw, archive.OpenOptions{})
		var ge *greyerr.Error
		if !greyerr.Is(err, greyerr.InvalidArgument) || !asGrey(err, &ge) || ge.Field != "hosts" {
			t.Errorf("hosts=%q: got %v, want invalid_argument on hosts", bad, err)
		}
		t.Logf("hosts=%q: %v", bad, err)
	}
	// A dead contact point first, the live one second.
	raw := fmt.Sprintf("cassandra://%s127.0.0.1:1/%s?hosts=%s&replication=SimpleStrategy:1&connect_timeout=2s", userinfo(u), testKeyspace, u.Host)
	d, err := cassarchive.Open(ctxT(t), raw, archive.OpenOptions{Migrate: true})
	if err != nil {
		t.Fatalf("open with a dead contact point first: %v", err)
	}
	defer d.Close()
	if err := d.Ping(ctxT(t)); err != nil {
		t.Errorf("ping with a dead contact point first: %v", err)
	}
}

// userinfo is u's "user:password@", or "" when it has none.
func userinfo(u *url.URL) string {
	if u.User == nil {
		return ""
	}
	return u.User.String() + "@"
}

// The test Cassandra requires a password (PasswordAuthenticator) and
// checks permissions (CassandraAuthorizer). A wrong password and no
// credentials are refused as permission_denied, without the password in
// the error; a role granted only its keyspace reads and writes; a role
// that may only read gets permission_denied on a write, and its reads
// still work.
func TestCredentials(t *testing.T) {
	base := serviceURL(t, testKeyspace, "")
	u, _ := url.Parse(base)
	if u.User == nil {
		t.Fatal("GREY_TEST_CASSANDRA_URL has no user: the test Cassandra requires a password")
	}
	// The keyspace exists and is migrated before the roles use it.
	admin, err := cassarchive.Open(ctxT(t), base, archive.OpenOptions{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.Ping(ctxT(t)); err != nil {
		t.Fatalf("ping as the superuser: %v", err)
	}
	withUser := func(user *url.Userinfo) string {
		c := *u
		c.User = user
		return c.String()
	}
	refused := func(name, raw, secret string) {
		t.Helper()
		d, err := cassarchive.Open(ctxT(t), raw, archive.OpenOptions{})
		if err == nil {
			defer d.Close()
			err = d.Ping(ctxT(t))
		}
		if !greyerr.Is(err, greyerr.PermissionDenied) {
			t.Errorf("%s: got %v, want permission_denied", name, err)
		} else if secret != "" && strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error shows the password: %v", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
	refused("wrong password", withUser(url.UserPassword(u.User.Username(), "Wr0ngPassw0rd")), "Wr0ngPassw0rd")
	refused("no credentials", withUser(nil), "")

	s := rawSession(t)
	defer s.Close()
	suffix := time.Now().UnixNano() % 1e9
	writer, reader := fmt.Sprintf("grey_w_%d", suffix), fmt.Sprintf("grey_r_%d", suffix)
	for _, q := range []string{
		`CREATE ROLE ` + writer + ` WITH PASSWORD = 'wr1ter-pw' AND LOGIN = true`,
		`GRANT SELECT ON KEYSPACE ` + testKeyspace + ` TO ` + writer,
		`GRANT MODIFY ON KEYSPACE ` + testKeyspace + ` TO ` + writer,
		`CREATE ROLE ` + reader + ` WITH PASSWORD = 'r3ader-pw' AND LOGIN = true`,
		`GRANT SELECT ON KEYSPACE ` + testKeyspace + ` TO ` + reader,
	} {
		if err := s.Query(q).ExecContext(ctxT(t)); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		for _, r := range []string{writer, reader} {
			_ = s.Query(`DROP ROLE IF EXISTS ` + r).Exec()
		}
	})

	ten := archivetest.Tenant("creds")
	rec := archivetest.Make(archivetest.Spec{Tenant: ten, Finished: time.Now().Add(-time.Minute)})
	open := func(user, pw string) *archive.Store {
		t.Helper()
		d, err := cassarchive.Open(ctxT(t), withUser(url.UserPassword(user, pw)), archive.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		st, err := archive.New(d, archive.Options{Retry: archivetest.FastRetry})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	w := open(writer, "wr1ter-pw")
	if err := w.Upsert(ctxT(t), []archive.Record{rec}); err != nil {
		t.Fatalf("upsert as %s (select and modify on the keyspace): %v", writer, err)
	}
	got, err := w.Get(ctxT(t), ten, rec.Task.ID)
	if err != nil || got.Task.ID != rec.Task.ID {
		t.Fatalf("get as %s: %+v, %v", writer, got.Task, err)
	}

	r := open(reader, "r3ader-pw")
	if got, err := r.Get(ctxT(t), ten, rec.Task.ID); err != nil || got.Task.ID != rec.Task.ID {
		t.Errorf("get as %s (select only): %+v, %v", reader, got.Task, err)
	}
	other := archivetest.Make(archivetest.Spec{Tenant: ten, Finished: time.Now().Add(-time.Minute)})
	err = r.Upsert(ctxT(t), []archive.Record{other})
	if !greyerr.Is(err, greyerr.PermissionDenied) || !strings.Contains(err.Error(), "MODIFY") {
		t.Errorf("upsert as %s (select only): got %v, want permission_denied naming MODIFY", reader, err)
	}
	t.Logf("upsert as %s: %v", reader, err)
	if _, err := w.Get(ctxT(t), ten, other.Task.ID); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("the refused record was written: %v", err)
	}
}

// local_dc makes the routing DC-aware; a data center the cluster does
// not have is refused, naming the ones it has.
func TestLocalDC(t *testing.T) {
	d, err := cassarchive.Open(ctxT(t), serviceURL(t, testKeyspace, "local_dc=datacenter1"), archive.OpenOptions{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Ping(ctxT(t)); err != nil {
		t.Errorf("ping with local_dc=datacenter1: %v", err)
	}
	_, err = cassarchive.Open(ctxT(t), serviceURL(t, testKeyspace, "local_dc=dc9"), archive.OpenOptions{Migrate: true})
	if !greyerr.Is(err, greyerr.FailedPrecondition) || !strings.Contains(err.Error(), "local_dc dc9 is not a data center of the cluster (datacenter1: 1)") {
		t.Errorf("local_dc=dc9: %v", err)
	}
}

func asGrey(err error, ge **greyerr.Error) bool {
	for e := err; e != nil; {
		if g, ok := e.(*greyerr.Error); ok {
			*ge = g
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

// Two migrations at once: one takes the lock, the other waits, and both
// end at the latest version.
func TestConcurrentMigrations(t *testing.T) {
	ks := uniqueKeyspace(t, "lock")
	raw := serviceURL(t, ks, "")
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, to, err := cassarchive.Migrate(ctxT(t), raw, archive.OpenOptions{})
			if err == nil && to != cassarchive.LatestVersion() {
				err = fmt.Errorf("ended at %d", to)
			}
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent migrate: %v", err)
		}
	}
	s := rawSession(t)
	defer s.Close()
	var n int
	if err := s.Query(`SELECT COUNT(*) FROM ` + ks + `.schema_migrations`).Scan(&n); err != nil || n != len(versions()) {
		t.Errorf("schema_migrations rows = %d (%v), want %d", n, err, len(versions()))
	}
	var owner string
	if err := s.Query(`SELECT owner FROM ` + ks + `.schema_lock WHERE name = 'migrate'`).Scan(&owner); err != gocql.ErrNotFound {
		t.Errorf("the lock is still held by %q (%v)", owner, err)
	}
}

func versions() []int64 {
	out := make([]int64, cassarchive.LatestVersion())
	for i := range out {
		out[i] = int64(i + 1)
	}
	return out
}

// Retention as a TTL: a record written with OpenOptions.Retention carries
// the time its task has left, and one already past it is not written.
func TestRetentionTTL(t *testing.T) {
	raw := serviceURL(t, testKeyspace, "")
	d, err := cassarchive.Open(ctxT(t), raw, archive.OpenOptions{Migrate: true, Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	s, err := archive.New(d, archive.Options{Retry: archivetest.FastRetry})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ten := archivetest.Tenant("ttl")
	fresh := archivetest.Make(archivetest.Spec{Tenant: ten, Finished: time.Now().Add(-10 * time.Minute)})
	old := archivetest.Make(archivetest.Spec{Tenant: ten, Finished: time.Now().Add(-2 * time.Hour)})
	if err := s.Upsert(ctxT(t), []archive.Record{fresh, old}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctxT(t), ten, old.Task.ID); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("a record past its retention was written: %v", err)
	}
	var sess *gocql.Session
	if !s.As(&sess) {
		t.Fatal("As(**gocql.Session) = false")
	}
	var ttl int
	if err := sess.Query(`SELECT TTL(task) FROM `+testKeyspace+`.tasks WHERE tenant_id = ? AND id = ? AND bucket = ?`,
		ten, fresh.Task.ID, fresh.Task.FinishedAt.Add(-time.Minute).UnixMilli()/86400000).Scan(&ttl); err != nil {
		t.Fatal(err)
	}
	if ttl < 45*60 || ttl > 50*60 {
		t.Errorf("TTL of a record finished 10 minutes ago with 1h retention = %ds, want about 3000", ttl)
	}
}

// A keyspace whose replication outgrew the cluster (altered by hand to 2
// replicas on one node): reads and writes are Unavailable naming the
// replicas needed and alive, and Migrate refuses it naming both.
func TestTooFewReplicas(t *testing.T) {
	ks := uniqueKeyspace(t, "few")
	raw := serviceURL(t, ks, "")
	d, err := cassarchive.Open(ctxT(t), raw, archive.OpenOptions{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Ping(ctxT(t)); err != nil { // migrated (Open gives up waiting after 5 s)
		t.Fatal(err)
	}
	s := rawSession(t)
	defer s.Close()
	if err := s.Query(`ALTER KEYSPACE ` + ks + ` WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 2}`).Exec(); err != nil {
		t.Fatal(err)
	}
	st, err := archive.New(d, archive.Options{Retry: archive.RetryOptions{MaxTries: 1}})
	if err != nil {
		t.Fatal(err)
	}
	ten := archivetest.Tenant("few")
	err = st.Upsert(ctxT(t), []archive.Record{archivetest.Make(archivetest.Spec{Tenant: ten})})
	if !greyerr.Is(err, greyerr.Unavailable) || !strings.Contains(err.Error(), "LOCAL_QUORUM needs 2 live replicas, 1 are alive") {
		t.Errorf("upsert at local_quorum over 2 replicas on 1 node: %v", err)
	}
	_, err = st.Count(ctxT(t), ten, archive.Filter{})
	if !greyerr.Is(err, greyerr.Unavailable) || !strings.Contains(err.Error(), "needs 2 live replicas") {
		t.Errorf("count: %v", err)
	}
	_, _, err = cassarchive.Migrate(ctxT(t), raw, archive.OpenOptions{})
	if !greyerr.Is(err, greyerr.FailedPrecondition) || !strings.Contains(err.Error(), "keyspace "+ks+" exists: replication SimpleStrategy:2 needs 2 replicas but the cluster has 1 node") {
		t.Errorf("migrate: %v", err)
	}
	// consistency=one still works over it, and the driver warns.
	var logs syncBuffer
	d1, err := cassarchive.Open(ctxT(t), raw+"&consistency=one", archive.OpenOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d1.Close()
	if err := d1.Upsert(ctxT(t), ten, []archive.Record{archivetest.Make(archivetest.Spec{Tenant: ten})}); err != nil {
		t.Errorf("upsert at one: %v", err)
	}
	if !strings.Contains(logs.String(), "replication SimpleStrategy:2 needs 2 replicas but the cluster has 1 node") {
		t.Errorf("no warning about the replication in the log:\n%s", logs.String())
	}
}

// Tenants lists the tenants holding records, sorted, each once; Delete
// removes a tenant's named records (skipping unknown ids and another
// tenant's), and a tenant left with none is no longer listed. The
// retention removes records, their proofs (when no newer task names
// them) and emptied buckets.
func TestTenantsDeleteAndRetention(t *testing.T) {
	ks := uniqueKeyspace(t, "tenants")
	d, err := cassarchive.Open(ctxT(t), serviceURL(t, ks, ""), archive.OpenOptions{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := archive.New(d, archive.Options{Retry: archivetest.FastRetry})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, b, c := "tenant-b", "tenant-a", "tenant-c"
	now := time.Now()
	shared := archivetest.Make(archivetest.Spec{Tenant: a, Finished: now.Add(-50 * time.Hour)}).Proof
	var recsA []archive.Record
	for i := range 5 {
		r := archivetest.Make(archivetest.Spec{Tenant: a, Finished: now.Add(-time.Duration(10*i) * time.Hour)})
		r.Proof = shared // one envelope for tasks both sides of the cut
		recsA = append(recsA, r)
	}
	recB := archivetest.Make(archivetest.Spec{Tenant: b, Finished: now.Add(-72 * time.Hour)})
	recC := archivetest.Make(archivetest.Spec{Tenant: c, Finished: now})
	if err := s.Upsert(ctxT(t), append(slices.Clone(recsA), recB, recC)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Tenants(ctxT(t))
	if err != nil || strings.Join(got, ",") != "tenant-a,tenant-b,tenant-c" {
		t.Fatalf("tenants = %v, %v", got, err)
	}
	n, err := s.Delete(ctxT(t), c, []string{recC.Task.ID, recC.Task.ID, recB.Task.ID, archivetest.IDAt(now), "not-an-id"})
	if err != nil || n != 1 {
		t.Fatalf("delete: %d, %v", n, err)
	}
	if _, err := s.Get(ctxT(t), b, recB.Task.ID); err != nil {
		t.Errorf("tenant c's delete touched tenant b's task: %v", err)
	}
	if n, err := s.Delete(ctxT(t), c, []string{recC.Task.ID}); err != nil || n != 0 {
		t.Errorf("second delete: %d, %v", n, err)
	}
	got, err = s.Tenants(ctxT(t))
	if err != nil || strings.Join(got, ",") != "tenant-a,tenant-b" {
		t.Fatalf("tenants after deleting tenant c's only task = %v, %v", got, err)
	}
	// Retention at now-25h: tenant b's task and tenant a's two oldest go;
	// the shared proof stays for tenant a's newer tasks.
	n, err = s.DeleteBefore(ctxT(t), now.Add(-25*time.Hour))
	if err != nil || n != 3 {
		t.Fatalf("delete before: %d, %v", n, err)
	}
	got, err = s.Tenants(ctxT(t))
	if err != nil || strings.Join(got, ",") != a {
		t.Fatalf("tenants after the retention = %v, %v", got, err)
	}
	for i, r := range recsA {
		g, err := s.Get(ctxT(t), a, r.Task.ID)
		if i >= 3 {
			if !greyerr.Is(err, greyerr.NotFound) {
				t.Errorf("task %d finished %dh ago: %v", i, 10*i, err)
			}
			continue
		}
		if err != nil || string(g.Proof) != string(shared) {
			t.Errorf("task %d: proof %q, %v", i, g.Proof, err)
		}
	}
	// Retention past all of tenant a's: the proof goes too.
	if n, err := s.DeleteBefore(ctxT(t), now.Add(time.Second)); err != nil || n != 3 {
		t.Fatalf("second delete before: %d, %v", n, err)
	}
	var sess *gocql.Session
	if !s.As(&sess) {
		t.Fatal("As")
	}
	// The shared proof went with its last task; tenant c's (named by one
	// task of its batch) was in that task's row.
	var left int
	if err := sess.Query(`SELECT COUNT(*) FROM ` + ks + `.proofs`).Scan(&left); err != nil || left != 0 {
		t.Errorf("proofs left: %d, %v", left, err)
	}
	if err := sess.Query(`SELECT COUNT(*) FROM ` + ks + `.tenant_buckets`).Scan(&left); err != nil || left != 0 {
		t.Errorf("bucket rows left: %d, %v", left, err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A migration lock held by another process is waited out (its condition
// failing is not an error and is not retried as one); a caller whose
// context ends first gets the context's error.
func TestMigrationWaitsForTheLock(t *testing.T) {
	ks := uniqueKeyspace(t, "held")
	raw := serviceURL(t, ks, "")
	if _, _, err := cassarchive.Migrate(ctxT(t), raw, archive.OpenOptions{}); err != nil {
		t.Fatal(err)
	}
	s := rawSession(t)
	defer s.Close()
	if err := s.Query(`INSERT INTO ` + ks + `.schema_lock (name, owner) VALUES ('migrate', 'other-host:1:abcd') USING TTL 4`).Exec(); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, _, err := cassarchive.Migrate(short, raw, archive.OpenOptions{})
	if !greyerr.Is(err, greyerr.DeadlineExceeded) && !errorsIsDeadline(err) {
		t.Errorf("migrate while the lock is held, 1 s deadline: %v (code %s)", err, greyerr.CodeOf(err))
	}
	start := time.Now()
	from, to, err := cassarchive.Migrate(ctxT(t), raw, archive.OpenOptions{})
	if err != nil || from != to {
		t.Fatalf("migrate after the lock expires: %d -> %d, %v", from, to, err)
	}
	if el := time.Since(start); el < time.Second {
		t.Errorf("migrate took %s: it did not wait for the held lock", el)
	}
}

func errorsIsDeadline(err error) bool { return errors.Is(err, context.DeadlineExceeded) }

// A proof envelope only one task of its batch names rides in the task's
// row; one shared is stored once. A task written again with its proof
// moving between the two, changing, or gone reads back as last written.
func TestProofInlineAndShared(t *testing.T) {
	d, err := cassarchive.Open(ctxT(t), serviceURL(t, testKeyspace, ""), archive.OpenOptions{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := archive.New(d, archive.Options{Retry: archivetest.FastRetry})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ten := archivetest.Tenant("proofs")
	rec := archivetest.Make(archivetest.Spec{Tenant: ten})
	other := archivetest.Make(archivetest.Spec{Tenant: ten, Finished: time.Now().Add(-time.Second)})
	p, q := rec.Proof, other.Proof
	check := func(step string, want json.RawMessage) {
		t.Helper()
		g, err := s.Get(ctxT(t), ten, rec.Task.ID)
		if err != nil || string(g.Proof) != string(want) {
			t.Errorf("%s: proof %.40q, want %.40q (%v)", step, g.Proof, want, err)
		}
		l, err := s.List(ctxT(t), ten, archive.Query{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range l.Records {
			if r.Task.ID == rec.Task.ID && string(r.Proof) != string(want) {
				t.Errorf("%s: listed proof %.40q, want %.40q", step, r.Proof, want)
			}
		}
	}
	up := func(recs ...archive.Record) {
		t.Helper()
		if err := s.Upsert(ctxT(t), recs); err != nil {
			t.Fatal(err)
		}
	}
	up(rec) // alone: inline
	check("inline", p)
	other.Proof = p
	up(rec, other) // shared: by id
	check("shared", p)
	rec.Proof = q
	up(rec) // alone again, another envelope: inline
	check("inline again", q)
	rec.Proof = nil
	up(rec) // none
	check("none", nil)
	rec.Proof, other.Proof = q, q
	up(rec, other)
	check("shared again", q)
}

// A record over what the server accepts in one message is refused as
// invalid_argument (not retried), saying so; the driver goes on.
func TestRecordTooLarge(t *testing.T) {
	d, err := cassarchive.Open(ctxT(t), serviceURL(t, testKeyspace, ""), archive.OpenOptions{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := archive.New(d, archive.Options{Retry: archivetest.FastRetry})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ten := archivetest.Tenant("big")
	huge := archivetest.Make(archivetest.Spec{Tenant: ten, Result: json.RawMessage(`"` + strings.Repeat("x", 17<<20) + `"`)})
	err = s.Upsert(ctxT(t), []archive.Record{huge})
	if !greyerr.Is(err, greyerr.InvalidArgument) || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("a 17 MiB record: %v", err)
	}
	small := archivetest.Make(archivetest.Spec{Tenant: ten})
	if err := s.Upsert(ctxT(t), []archive.Record{small}); err != nil {
		t.Errorf("a small record after it: %v", err)
	}
}

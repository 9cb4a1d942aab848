package mongoarchive_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/archivetest"
	"github.com/grey-distributed/grey/archive/mongoarchive"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/testenv"
)

func ctxT(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// serverURL returns GREY_TEST_MONGODB_URL (FerretDB in scripts/services.sh)
// with the database path replaced by db.
func serverURL(t testing.TB, db string) string {
	t.Helper()
	raw := testenv.ServiceURL(t, "mongodb")
	scheme, rest, _ := strings.Cut(raw, "://")
	hostPart, query, _ := strings.Cut(rest, "?")
	hosts, _, _ := strings.Cut(hostPart, "/")
	u := scheme + "://" + hosts + "/" + db
	if query != "" {
		u += "?" + query
	}
	return u
}

// deadURL is a MongoDB URL on a loopback port nothing listens on.
func deadURL(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return fmt.Sprintf("mongodb://grey:secret@127.0.0.1:%d/grey?serverSelectionTimeoutMS=1000&connectTimeoutMS=1000", port)
}

func open(t testing.TB, rawURL string, oo archive.OpenOptions) *mongoarchive.Driver {
	t.Helper()
	d, err := mongoarchive.Open(ctxT(t), rawURL, oo)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// scratchURL returns the server's URL with a collection of its own, dropped
// when t ends: FerretDB 1.x scans a whole collection for every query, so
// a collection that grows with every run slows every later run.
func scratchURL(t testing.TB) string {
	t.Helper()
	coll := fmt.Sprintf("conformance_%d", time.Now().UnixNano())
	u := serverURL(t, "grey_conformance")
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	u += sep + "collection=" + coll
	t.Cleanup(func() {
		d, err := mongoarchive.Open(context.Background(), u, archive.OpenOptions{})
		if err != nil {
			return
		}
		defer d.Close()
		var c *mongo.Collection
		d.As(&c)
		_ = c.Drop(context.Background())
		_ = c.Database().Collection(coll + "_meta").Drop(context.Background())
	})
	return u
}

func harness(t testing.TB) archivetest.Harness {
	u := scratchURL(t)
	return archivetest.Harness{
		Open: func(t testing.TB) archive.Driver {
			d, err := mongoarchive.Open(ctxT(t), u, archive.OpenOptions{PoolSize: 8})
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			return d
		},
		Unreachable: func(t testing.TB) archive.Driver {
			d, err := mongoarchive.Open(ctxT(t), deadURL(t), archive.OpenOptions{})
			if err != nil {
				t.Fatalf("open of an unreachable URL must succeed: %v", err)
			}
			return d
		},
	}
}

func TestConformance(t *testing.T) { archivetest.Run(t, harness(t)) }

func wantCode(t testing.TB, what string, err error, code greyerr.Code) {
	t.Helper()
	if greyerr.CodeOf(err) != code {
		t.Fatalf("%s: got %v (code %q), want code %q", what, err, greyerr.CodeOf(err), code)
	}
}

// TestUnreachable: opening a server that does not answer succeeds, and
// every call is Unavailable within the server selection timeout; the
// password never shows.
func TestUnreachable(t *testing.T) {
	d := open(t, deadURL(t), archive.OpenOptions{})
	start := time.Now()
	err := d.Ping(ctxT(t))
	wantCode(t, "ping of a dead server", err, greyerr.Unavailable)
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("ping of a dead server took %s", el)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("the error shows the password: %v", err)
	}
	_, err = d.Get(ctxT(t), "acme", archivetest.IDAt(time.Now()))
	wantCode(t, "get on a dead server", err, greyerr.Unavailable)
}

// TestBadURLs: what Open refuses, before any I/O.
func TestBadURLs(t *testing.T) {
	for _, raw := range []string{
		"postgres://127.0.0.1/grey",
		"mongo://127.0.0.1/grey",
		"mongodb://127.0.0.1/grey?w=0",
		"mongodb://127.0.0.1/grey?w=majorty",
		"mongodb://127.0.0.1/grey?readConcernLevel=snapshot",
	} {
		_, err := mongoarchive.Open(ctxT(t), raw, archive.OpenOptions{})
		wantCode(t, raw, err, greyerr.InvalidArgument)
	}
	_, err := mongoarchive.Open(ctxT(t), "mongodb://127.0.0.1/grey", archive.OpenOptions{ReadURLs: []string{"mongodb://127.0.0.2/grey"}})
	wantCode(t, "read urls", err, greyerr.InvalidArgument)
}

// TestRegistry opens through a Registry by scheme.
func TestRegistry(t *testing.T) {
	u := scratchURL(t)
	reg := archive.NewRegistry()
	if err := mongoarchive.Register(reg); err != nil {
		t.Fatal(err)
	}
	s, err := reg.Open(ctxT(t), u, archive.OpenOptions{}, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := s.Capabilities().Scheme; got != "mongodb" {
		t.Errorf("scheme %q", got)
	}
	var c *mongo.Client
	if !s.As(&c) || c == nil {
		t.Error("As(**mongo.Client) = false")
	}
	_, err = reg.Open(ctxT(t), "mongodb://127.0.0.1/grey?w=0", archive.OpenOptions{}, archive.Options{})
	wantCode(t, "registry open of w=0", err, greyerr.InvalidArgument)
}

// TestOptionalInterfaces: Tenants lists the tenants written (sorted, once
// each) and Delete removes one tenant's ids only.
func TestOptionalInterfaces(t *testing.T) {
	u := scratchURL(t)
	d := open(t, u, archive.OpenOptions{})
	s, err := archive.New(d, archive.Options{Retry: archivetest.FastRetry})
	if err != nil {
		t.Fatal(err)
	}
	a, b := archivetest.Tenant("a"), archivetest.Tenant("b")
	ra := archivetest.Make(archivetest.Spec{Tenant: a})
	ra2 := archivetest.Make(archivetest.Spec{Tenant: a})
	rb := archivetest.Make(archivetest.Spec{Tenant: b, ID: ra.Task.ID})
	if err := s.Upsert(ctxT(t), []archive.Record{ra, ra2, rb}); err != nil {
		t.Fatal(err)
	}
	ts, err := s.Tenants(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	ia, ib := -1, -1
	for i, x := range ts {
		if i > 0 && ts[i-1] >= x {
			t.Errorf("tenants not sorted or repeated at %d: %q, %q", i, ts[i-1], x)
		}
		switch x {
		case a:
			ia = i
		case b:
			ib = i
		}
	}
	if ia < 0 || ib < 0 {
		t.Errorf("tenants %v lack %s or %s", ts, a, b)
	}
	n, err := s.Delete(ctxT(t), a, []string{ra.Task.ID, archivetest.IDAt(time.Now())})
	if err != nil || n != 1 {
		t.Fatalf("delete: %d, %v; want 1", n, err)
	}
	if _, err := s.Get(ctxT(t), a, ra.Task.ID); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("deleted record: %v", err)
	}
	if _, err := s.Get(ctxT(t), b, ra.Task.ID); err != nil {
		t.Errorf("tenant b's record with the same id went: %v", err)
	}
	if n, err := s.Delete(ctxT(t), a, []string{ra.Task.ID}); err != nil || n != 0 {
		t.Errorf("second delete: %d, %v", n, err)
	}
}

// TestRetentionTTL: with a retention, each record carries its expiry;
// where the server has TTL indexes (not FerretDB 1.x) the index exists.
func TestRetentionTTL(t *testing.T) {
	u := scratchURL(t)
	d := open(t, u, archive.OpenOptions{Retention: 48 * time.Hour})
	s, _ := archive.New(d, archive.Options{Retry: archivetest.FastRetry})
	ten := archivetest.Tenant("ttl")
	r := archivetest.Make(archivetest.Spec{Tenant: ten})
	if err := s.Upsert(ctxT(t), []archive.Record{r}); err != nil {
		t.Fatal(err)
	}
	var coll *mongo.Collection
	if !d.As(&coll) {
		t.Fatal("As(**mongo.Collection) = false")
	}
	var got struct {
		Exp time.Time `bson:"exp"`
	}
	if err := coll.FindOne(ctxT(t), bson.D{{Key: "tenant", Value: ten}}).Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := r.Task.FinishedAt.Add(48 * time.Hour).Truncate(time.Millisecond)
	if !got.Exp.Equal(want) {
		t.Errorf("exp %s, want %s", got.Exp, want)
	}
	t.Logf("TTL index: %v", d.TTL())
}

// TestNewerSchemaRefused: a store marked by a newer binary is refused.
func TestNewerSchemaRefused(t *testing.T) {
	coll := fmt.Sprintf("schema_%d", time.Now().UnixNano())
	u := serverURL(t, "grey_conformance") + "?collection=" + coll
	if strings.Contains(serverURL(t, "x"), "?") {
		u = serverURL(t, "grey_conformance") + "&collection=" + coll
	}
	d := open(t, u, archive.OpenOptions{})
	var c *mongo.Client
	d.As(&c)
	meta := c.Database("grey_conformance").Collection(coll + "_meta")
	t.Cleanup(func() {
		_ = c.Database("grey_conformance").Collection(coll).Drop(context.Background())
		_ = meta.Drop(context.Background())
	})
	if _, err := meta.UpdateOne(ctxT(t), bson.D{{Key: "_id", Value: "schema"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "version", Value: 99}}}}); err != nil {
		t.Fatal(err)
	}
	err := d.Ping(ctxT(t))
	wantCode(t, "ping of a newer schema", err, greyerr.FailedPrecondition)
	if !strings.Contains(err.Error(), "99") {
		t.Errorf("the error does not name the version: %v", err)
	}
	_, err = mongoarchive.Open(ctxT(t), u, archive.OpenOptions{})
	wantCode(t, "open of a newer schema", err, greyerr.FailedPrecondition)
}

// TestTooLarge: a record over MongoDB's document limit is InvalidArgument
// before anything is sent.
func TestTooLarge(t *testing.T) {
	u := scratchURL(t)
	d := open(t, u, archive.OpenOptions{})
	ten := archivetest.Tenant("large")
	big := `"` + strings.Repeat("x", 17<<20) + `"`
	r := archivetest.Make(archivetest.Spec{Tenant: ten, Result: []byte(big)})
	err := d.Upsert(ctxT(t), ten, []archive.Record{r})
	wantCode(t, "upsert of a 17 MiB record", err, greyerr.InvalidArgument)
}

package archivedrivers_test

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/archivecopy"
	"github.com/grey-distributed/grey/archive/archivetest"
	"github.com/grey-distributed/grey/archive/memarchive"
	"github.com/grey-distributed/grey/archive/pgarchive"
	"github.com/grey-distributed/grey/archive/pgarchive/pgtest"
	"github.com/grey-distributed/grey/cmd/internal/archivedrivers"
	"github.com/grey-distributed/grey/internal/testenv"
)

// hop is one archive of the round trip: its scheme and how to get a URL
// of a ready archive of it on the test services.
type hop struct {
	scheme string
	url    func(t *testing.T) string
}

func postgresHop(service string) hop {
	return hop{"postgres", func(t *testing.T) string {
		db := pgtest.Scratch(t, testenv.ServiceURL(t, service))
		if _, _, err := pgarchive.Migrate(t.Context(), db.OwnerURL, db.AppURL); err != nil {
			t.Fatal(err)
		}
		return db.AppURL
	}}
}

// withPath returns the service's URL with its path set (a keyspace, a
// database) and the query added.
func withPath(t *testing.T, service, path, query string) string {
	u, err := url.Parse(testenv.ServiceURL(t, service))
	if err != nil {
		t.Fatal(err)
	}
	u.Path, u.RawQuery = "/"+path, query
	return u.String()
}

// roundTrip is the chain the issue asks for: PostgreSQL -> Cassandra ->
// MongoDB -> PostgreSQL. A hop whose scheme this build does not register
// skips the test; registering the driver in archivedrivers.Registry is all
// it takes to enable it. The keyspace and database are shared between
// runs: the tenants are unique per run.
var roundTrip = []hop{
	postgresHop("postgres"),
	{"cassandra", func(t *testing.T) string {
		return withPath(t, "cassandra", "grey_roundtrip", "replication=SimpleStrategy:1")
	}},
	{"mongodb", func(t *testing.T) string { return withPath(t, "mongodb", "grey_roundtrip", "") }},
	postgresHop("postgres2"),
}

func TestMigrationRoundTrip(t *testing.T) {
	reg, err := archivedrivers.Registry()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range roundTrip {
		if !slices.Contains(reg.Schemes(), h.scheme) {
			t.Skipf("the %s driver is not registered in this build (archivedrivers.Registry)", h.scheme)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	src, err := memarchive.Open(archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var tenants []string
	var recs []archive.Record
	for i := range 5 {
		ten := archivetest.Tenant(fmt.Sprint("rt", i))
		tenants = append(tenants, ten)
		for j := range 40 {
			recs = append(recs, archivetest.Make(archivetest.Spec{Tenant: ten, Finished: time.Now().Add(-time.Duration(j) * time.Second)}))
		}
	}
	if err := src.Upsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	digest := func(s *archive.Store) archivecopy.Digest {
		var d archivecopy.Digest
		for _, ten := range tenants {
			rep, err := archivecopy.Verify(ctx, s, s, archivecopy.VerifyOptions{Tenant: ten})
			if err != nil {
				t.Fatal(err)
			}
			d.Add(rep.FromDigest)
		}
		return d
	}
	want := digest(src)
	prev := src
	for i, h := range roundTrip {
		dst, err := reg.Open(ctx, h.url(t), archive.OpenOptions{Migrate: true}, archive.Options{})
		if err != nil {
			t.Fatalf("hop %d (%s): open: %v", i, h.scheme, err)
		}
		defer dst.Close()
		for _, ten := range tenants {
			if _, err := archivecopy.Copy(ctx, prev, dst, archivecopy.Options{Tenant: ten}); err != nil {
				t.Fatalf("hop %d (%s): copy: %v", i, h.scheme, err)
			}
			rep, err := archivecopy.Verify(ctx, prev, dst, archivecopy.VerifyOptions{Tenant: ten})
			if err != nil || !rep.Equal() {
				t.Fatalf("hop %d (%s): verify: %v %v", i, h.scheme, err, rep.Differences())
			}
		}
		if got := digest(dst); got != want {
			t.Fatalf("hop %d (%s): digest %s, want %s", i, h.scheme, got, want)
		}
		t.Logf("%s: %d records, digest %s", h.scheme, len(recs), want)
		prev = dst
	}
}

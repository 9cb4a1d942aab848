package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/grey-distributed/grey/archive/pgarchive"
	"github.com/grey-distributed/grey/archive/pgarchive/pgtest"
	"github.com/grey-distributed/grey/internal/testenv"
)

func TestArchiveDrivers(t *testing.T) {
	reg, err := archiveDrivers()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(reg.Schemes(), ","); got != "cassandra,mem,mongodb,mongodb+srv,postgres,postgresql,quorum,sharded" {
		t.Errorf("archive schemes %s", got)
	}
}

func TestArchiveCommandUsage(t *testing.T) {
	t.Setenv("GREY_PG_URL", "")
	t.Setenv("GREY_PG_MIGRATE_URL", "")
	var out, errb bytes.Buffer
	if code := run([]string{"archive"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "greyd archive migrate") {
		t.Errorf("greyd archive: %d %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"archive", "migrate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "GREY_PG_URL") {
		t.Errorf("greyd archive migrate without a database: %d %q", code, errb.String())
	}
}

func TestArchiveMigrateAndStatus(t *testing.T) {
	db := pgtest.Scratch(t, testenv.ServiceURL(t, "postgres"))
	t.Setenv("GREY_PG_URL", db.AppURL)
	t.Setenv("GREY_PG_MIGRATE_URL", db.OwnerURL)
	latest := pgarchive.LatestVersion()
	var out, errb bytes.Buffer
	if code := run([]string{"archive", "status"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "version 0") {
		t.Fatalf("status before migrating: %d %q %q", code, out.String(), errb.String())
	}
	out.Reset()
	if code := run([]string{"archive", "migrate"}, &out, &errb); code != 0 {
		t.Fatalf("migrate: %d %q", code, errb.String())
	}
	if want := fmt.Sprintf("archive schema: version 0 -> %d\n", latest); out.String() != want {
		t.Errorf("migrate printed %q, want %q", out.String(), want)
	}
	out.Reset()
	if code := run([]string{"archive", "migrate"}, &out, &errb); code != 0 || out.String() != fmt.Sprintf("archive schema: version %d -> %d\n", latest, latest) {
		t.Errorf("second migrate: %d %q %q", code, out.String(), errb.String())
	}
	out.Reset()
	if code := run([]string{"archive", "status"}, &out, &errb); code != 0 || !strings.Contains(out.String(), fmt.Sprintf("version %d (this binary: %d, up to date)", latest, latest)) {
		t.Errorf("status: %d %q %q", code, out.String(), errb.String())
	}
}

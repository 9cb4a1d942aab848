package pgarchive_test

import (
	"slices"
	"testing"
	"time"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/archivetest"
)

// The runtime role lists every tenant (past row-level security, through
// the owner's function) but deletes only under its transaction's tenant;
// strings that are not task ids delete nothing.
func TestTenantsAndDeleteUnderRLS(t *testing.T) {
	db := migrated(t, "postgres")
	d := open(t, db.AppURL, archive.OpenOptions{})
	ctx := ctxT(t)
	a, b := archivetest.Tenant("rls-a"), archivetest.Tenant("rls-b")
	ra := archivetest.Make(archivetest.Spec{Tenant: a, Finished: time.Now()})
	rb := archivetest.Make(archivetest.Spec{Tenant: b, Finished: time.Now()})
	if err := d.Upsert(ctx, a, []archive.Record{ra}); err != nil {
		t.Fatal(err)
	}
	if err := d.Upsert(ctx, b, []archive.Record{rb}); err != nil {
		t.Fatal(err)
	}
	got, err := d.Tenants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{a, b}) {
		t.Errorf("tenants of a fresh database = %v, want [%s %s]", got, a, b)
	}
	n, err := d.Delete(ctx, a, []string{"not-a-task-id", "'; DELETE FROM grey_archive.tasks; --", rb.Task.ID})
	if err != nil || n != 0 {
		t.Errorf("delete of strings that are no ids of the tenant: %d, %v; want 0, nil", n, err)
	}
	if _, err := d.Get(ctx, b, rb.Task.ID); err != nil {
		t.Errorf("the other tenant's record after a delete naming it: %v", err)
	}
	n, err = d.Delete(ctx, a, []string{ra.Task.ID})
	if err != nil || n != 1 {
		t.Errorf("delete of the tenant's record: %d, %v; want 1, nil", n, err)
	}
	got, err = d.Tenants(ctx)
	if err != nil || !slices.Equal(got, []string{b}) {
		t.Errorf("tenants after deleting a's only record = %v, %v; want [%s]", got, err, b)
	}
}

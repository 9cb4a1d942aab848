package pgarchive

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/task"
)

var (
	_ archive.TenantLister = (*Driver)(nil)
	_ archive.Deleter      = (*Driver)(nil)
)

// Tenants implements archive.TenantLister. The runtime role sees one
// tenant's rows at a time, so it asks the schema's tenants() function,
// which runs as the owner and returns tenant ids only. It reads the
// primary (a replica may lag behind a tenant's first record).
func (d *Driver) Tenants(ctx context.Context) ([]string, error) {
	if err := d.ensureReady(ctx, d.primary); err != nil {
		return nil, err
	}
	rows, err := d.primary.p.Query(ctx, `SELECT t FROM `+Schema+`.tenants() AS t`)
	if err != nil {
		err = classify(err, "archive primary: list tenants")
		d.primary.resetOnLoss(err)
		return nil, err
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		err = classify(err, "archive primary: list tenants")
		d.primary.resetOnLoss(err)
		return nil, err
	}
	// Byte order, as Go sorts, whatever the database's collation.
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Delete implements archive.Deleter: one statement in a transaction whose
// tenant setting is tenant, so row-level security holds it to the
// tenant's rows. Strings that are not task ids name no record and are
// skipped. Proof envelopes are kept until retention drops them with the
// last task that finished under them.
func (d *Driver) Delete(ctx context.Context, tenant string, ids []string) (int64, error) {
	valid := make([]string, 0, len(ids))
	for _, id := range ids {
		if task.ValidID(id) {
			valid = append(valid, id)
		}
	}
	if len(valid) == 0 {
		return 0, nil
	}
	var n int64
	err := d.inTenant(ctx, d.primary, tenant, false, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM `+Schema+`.tasks WHERE tenant_id = $1 AND id = ANY($2::uuid[])`, tenant, valid)
		if err != nil {
			return classify(err, "archive primary: delete")
		}
		n = tag.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

package archive

import (
	"context"
	"time"
)

// Driver is what an archive driver implements. The Store validates and
// scopes every call before it reaches a driver: tenant ids are valid, every
// record given to Upsert belongs to the tenant named and is finished,
// filters hold only terminal statuses, limits are in range.
//
// Errors: every method returns errors that greyerr.CodeOf classifies:
// NotFound for a missing record, InvalidArgument for a request the store
// rejects as malformed, FailedPrecondition for a store that is not ready
// for this binary (schema missing or newer than the binary), Unimplemented
// for an operation or filter the driver cannot do, PermissionDenied for
// refused credentials, and Unavailable for a failure worth retrying
// (network, connection refused, failover, serialization failure). Any
// other error counts as permanent. A method returns ctx's error, or one
// wrapping it, soon after ctx ends.
type Driver interface {
	// Upsert writes recs, all belonging to tenant. It is idempotent by
	// (tenant, task id): writing a record whose task is already stored
	// replaces it, so a batch delivered twice leaves one copy of each
	// record. When it fails, some records may have been written; calling
	// it again with the same batch is always safe.
	Upsert(ctx context.Context, tenant string, recs []Record) error

	// Get returns the tenant's record of task id, or NotFound (also when
	// the id belongs to another tenant).
	Get(ctx context.Context, tenant, id string) (Record, error)

	// List returns up to q.Limit of the tenant's records that match q, in
	// task id descending order, starting after q.Before. Records written
	// concurrently with a paging client appear on a later page or not at
	// all; no record appears twice and none that existed when the first
	// page was read is skipped.
	List(ctx context.Context, tenant string, q DriverQuery) ([]Record, error)

	// Count returns how many of the tenant's records match f.
	Count(ctx context.Context, tenant string, f Filter) (int64, error)

	// DeleteBefore removes every tenant's records that finished before
	// before, and returns how many went (-1 when the store cannot tell,
	// e.g. after dropping whole partitions). Records finished at or after
	// before stay.
	DeleteBefore(ctx context.Context, before time.Time) (int64, error)

	// Ping checks that the store answers and that its schema is one this
	// binary can use.
	Ping(ctx context.Context) error

	// Capabilities says what the driver supports; it does not change after
	// the driver is opened.
	Capabilities() Capabilities

	// As sets i to the driver's native client when i is a pointer to its
	// type (documented per driver) and reports whether it did.
	As(i any) bool

	// Close releases the driver's resources. No method is called after it.
	Close() error
}

// Capabilities are what a driver supports.
type Capabilities struct {
	// Scheme is the URL scheme the driver was opened with.
	Scheme string
	// LabelFilter: List and Count honour Filter.Labels (without it a
	// filter with labels is Unimplemented).
	LabelFilter bool
	// MaxBatch bounds the records of one Upsert (0: no limit); the Store
	// splits larger batches.
	MaxBatch int
	// PartitionedRetention: DeleteBefore drops whole time partitions rather
	// than deleting rows.
	PartitionedRetention bool
	// ReadReplicas is the number of read replicas the driver may read from.
	ReadReplicas int
}

// TenantLister is an optional Driver interface: a driver that can name the
// tenants it holds records of. Moving tenants between the shards of a
// sharded archive, anti-entropy between replicas and migrating a whole
// archive need it; Store.Tenants is Unimplemented over a driver without it.
type TenantLister interface {
	// Tenants returns the ids of the tenants that have at least one record,
	// sorted ascending, each once.
	Tenants(ctx context.Context) ([]string, error)
}

// Deleter is an optional Driver interface: a driver that can remove single
// records. Moving a tenant off a shard and undoing a partial copy need it;
// Store.Delete is Unimplemented over a driver without it.
type Deleter interface {
	// Delete removes the tenant's records with these task ids and returns
	// how many were removed. Ids the tenant has no record of (including
	// another tenant's ids) are skipped, not an error; calling it twice is
	// safe.
	Delete(ctx context.Context, tenant string, ids []string) (int64, error)
}

// Package pgarchive is the PostgreSQL driver of the archive port
// (archive.Driver), for postgres:// and postgresql:// URLs, over a pgx v5
// connection pool.
//
// The schema lives in its own PostgreSQL schema, grey_archive, and is
// versioned: the migrations are embedded in the binary and applied by
// goose under a PostgreSQL advisory lock (Migrate, `greyd archive
// migrate`, or at open with OpenOptions.Migrate), connected as the role
// that owns the schema. greyd itself connects as another role, granted
// grey_archive_writer: it owns no table, has neither SUPERUSER nor
// BYPASSRLS (the driver checks and refuses otherwise), and every statement
// runs in a transaction that first sets the tenant with
// set_config('grey.tenant_id', tenant, true) (SET LOCAL semantics), so the
// row-level security policies (forced, failing closed) keep tenants apart
// even if a query forgot its tenant condition.
//
// The tasks table is partitioned by finish day (UTC); the driver creates
// partitions ahead of each batch and the retention drops whole partitions,
// both through SECURITY DEFINER functions owned by the schema owner. Reads
// may go to read replicas (OpenOptions.ReadURLs) and fall back to the
// primary. As accepts a **pgxpool.Pool (the primary's pool).
//
// docs/ARCHIVE.md ("PostgreSQL") describes the roles, the configuration
// and a worked example.
package pgarchive

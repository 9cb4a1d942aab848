-- Tenant listing and single-record deletion for the archive's optional
-- interfaces (archive.TenantLister, archive.Deleter).
--
-- The runtime role sees one tenant's rows at a time (row-level security),
-- so it cannot name the tenants that hold records. tenants() runs as the
-- schema owner and returns only tenant ids, never rows. The owner is held
-- by the tasks policy too (FORCE ROW LEVEL SECURITY), so a read-only
-- policy for the owner lets the function see every row's tenant id; the
-- owner could switch the policies off anyway, and the runtime role is
-- never the owner (the driver refuses to connect as it).
--
-- Deletion needs no function: the runtime role has DELETE on tasks, held
-- to the tenant of its transaction by the tenant_isolation policy.

-- +goose Up

-- +goose StatementBegin
DO $$
BEGIN
	EXECUTE format('CREATE POLICY tenant_listing ON grey_archive.tasks FOR SELECT TO %I USING (true)', current_user);
END
$$;
-- +goose StatementEnd

-- tenants returns the ids of the tenants with at least one record, sorted,
-- each once. It walks the primary key's leading column (tenant_id) one
-- tenant at a time (a loose index scan), so it costs one index probe per
-- tenant rather than a scan of every record.
-- +goose StatementBegin
CREATE FUNCTION grey_archive.tenants() RETURNS SETOF text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	WITH RECURSIVE t(id) AS (
		SELECT min(tenant_id) FROM grey_archive.tasks
		UNION ALL
		SELECT (SELECT min(tenant_id) FROM grey_archive.tasks WHERE tenant_id > t.id)
		FROM t WHERE t.id IS NOT NULL
	)
	SELECT id FROM t WHERE id IS NOT NULL ORDER BY id COLLATE "C"
$$;
-- +goose StatementEnd

REVOKE ALL ON FUNCTION grey_archive.tenants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION grey_archive.tenants() TO grey_archive_writer;

-- +goose Down
DROP FUNCTION grey_archive.tenants();
DROP POLICY tenant_listing ON grey_archive.tasks;

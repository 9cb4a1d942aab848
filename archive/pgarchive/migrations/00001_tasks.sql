-- The archive's first schema: the tasks table partitioned by finish day,
-- row-level security by tenant, the runtime role and the two functions
-- through which that role manages partitions without owning anything.
--
-- goose runs this file as the schema owner (migrate_url), in one
-- transaction, under its PostgreSQL advisory lock. The schema grey_archive
-- and goose's version table in it exist already (pgarchive.Migrate creates
-- the schema first, goose its table).

-- +goose Up

-- The runtime role. Roles are shared by every database of a cluster, so an
-- earlier migration of another database may have made it already, or be
-- making it right now (advisory locks are per database).
-- +goose StatementBegin
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'grey_archive_writer') THEN
		CREATE ROLE grey_archive_writer NOLOGIN NOSUPERUSER NOBYPASSRLS;
	END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
	NULL;
END
$$;
-- +goose StatementEnd

CREATE TABLE grey_archive.tasks (
	tenant_id   text        NOT NULL,
	id          uuid        NOT NULL,
	finished_at timestamptz NOT NULL,
	status      text        NOT NULL,
	kind        text        NOT NULL,
	-- the worker labels the task required (task.Spec.Labels), for the
	-- label filter (labels @> '{"k":"v"}')
	labels      jsonb       NOT NULL DEFAULT '{}',
	-- the task without its payload and result, and those two byte for
	-- byte as Grey holds them (json, not jsonb, which would rewrite them)
	task        json        NOT NULL,
	payload     json,
	result      json,
	-- the task's proof envelope, in proofs (one envelope covers the tasks
	-- of one signed report batch: stored once, not once per task)
	proof_id    text,
	archived_at timestamptz NOT NULL DEFAULT now(),
	-- a partitioned table's keys must hold the partition key; (tenant_id,
	-- id) leads, so this index also serves get by id and the newest-first
	-- pages (scanned backward: ORDER BY id DESC)
	PRIMARY KEY (tenant_id, id, finished_at)
) PARTITION BY RANGE (finished_at);

CREATE INDEX tasks_tenant_finished ON grey_archive.tasks (tenant_id, finished_at);

-- Proof envelopes (DSSE JSON, byte for byte: a signature covers exact
-- bytes), one row per envelope, by the SHA-256 that tasks name.
-- last_finished_at is the latest finish of a task naming it: retention
-- drops an envelope with the partitions of its last task.
CREATE TABLE grey_archive.proofs (
	tenant_id        text        NOT NULL,
	id               text        NOT NULL,
	last_finished_at timestamptz NOT NULL,
	envelope         json        NOT NULL,
	PRIMARY KEY (tenant_id, id)
);
CREATE INDEX proofs_last_finished ON grey_archive.proofs (last_finished_at);

ALTER TABLE grey_archive.proofs ENABLE ROW LEVEL SECURITY;
ALTER TABLE grey_archive.proofs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON grey_archive.proofs
	USING (tenant_id = NULLIF(current_setting('grey.tenant_id', true), ''))
	WITH CHECK (tenant_id = NULLIF(current_setting('grey.tenant_id', true), ''));
-- The schema owner (who runs this migration, and drop_before as its
-- definer) may see every envelope, for retention: it could switch the
-- policies off anyway. The runtime role is not the owner.
-- +goose StatementBegin
DO $$
BEGIN
	EXECUTE format('CREATE POLICY retention ON grey_archive.proofs TO %I USING (true)', current_user);
END
$$;
-- +goose StatementEnd

ALTER TABLE grey_archive.tasks ENABLE ROW LEVEL SECURITY;
-- FORCE: the owner is subject to the policy too
ALTER TABLE grey_archive.tasks FORCE ROW LEVEL SECURITY;

-- Fail closed: no setting, or an empty one, matches no row.
CREATE POLICY tenant_isolation ON grey_archive.tasks
	USING (tenant_id = NULLIF(current_setting('grey.tenant_id', true), ''))
	WITH CHECK (tenant_id = NULLIF(current_setting('grey.tenant_id', true), ''));

-- ensure_partitions creates the daily partitions (UTC days) of the given
-- days that do not exist yet and returns how many it made. SECURITY
-- DEFINER: it runs as the owner, so the runtime role creates partitions
-- without owning the table; search_path is fixed so a caller cannot
-- substitute objects.
-- +goose StatementBegin
CREATE FUNCTION grey_archive.ensure_partitions(days date[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
	d    date;
	part text;
	made integer := 0;
BEGIN
	IF cardinality(days) > 1000 THEN
		RAISE EXCEPTION 'ensure_partitions: % days at once (at most 1000)', cardinality(days)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- one creator at a time: concurrent CREATE TABLE of one partition fails
	PERFORM pg_advisory_xact_lock(hashtext('grey_archive.tasks partitions'));
	FOREACH d IN ARRAY days LOOP
		CONTINUE WHEN d IS NULL;
		part := 'tasks_p' || to_char(d, 'YYYYMMDD');
		IF to_regclass('grey_archive.' || quote_ident(part)) IS NULL THEN
			EXECUTE format('CREATE TABLE grey_archive.%I PARTITION OF grey_archive.tasks FOR VALUES FROM (%L) TO (%L)',
				part, d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC');
			made := made + 1;
		END IF;
	END LOOP;
	RETURN made;
END
$$;
-- +goose StatementEnd

-- drop_before is the retention: it drops every daily partition that ends
-- at or before ts, deletes the rows finished before ts from the partition
-- holding ts, and returns (partitions dropped, rows deleted). It runs as
-- the owner; the partitions themselves have no row-level security (only
-- the parent table has; the runtime role has no privilege on them).
-- +goose StatementBegin
CREATE FUNCTION grey_archive.drop_before(ts timestamptz)
RETURNS TABLE (dropped integer, deleted bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
	r   record;
	day date;
	n   bigint;
BEGIN
	dropped := 0;
	deleted := 0;
	PERFORM pg_advisory_xact_lock(hashtext('grey_archive.tasks partitions'));
	FOR r IN
		SELECT c.relname
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'grey_archive.tasks'::regclass AND c.relname ~ '^tasks_p[0-9]{8}$'
		ORDER BY c.relname
	LOOP
		day := to_date(substr(r.relname, 8), 'YYYYMMDD');
		IF ((day + 1)::timestamp AT TIME ZONE 'UTC') <= ts THEN
			EXECUTE format('DROP TABLE grey_archive.%I', r.relname);
			dropped := dropped + 1;
		ELSIF (day::timestamp AT TIME ZONE 'UTC') < ts THEN
			EXECUTE format('DELETE FROM grey_archive.%I WHERE finished_at < $1', r.relname) USING ts;
			GET DIAGNOSTICS n = ROW_COUNT;
			deleted := deleted + n;
		END IF;
	END LOOP;
	-- envelopes whose last task is gone (policy retention: the owner, as
	-- whom this function runs, sees every tenant's envelopes)
	DELETE FROM grey_archive.proofs WHERE last_finished_at < ts;
	RETURN NEXT;
END
$$;
-- +goose StatementEnd

REVOKE ALL ON FUNCTION grey_archive.ensure_partitions(date[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION grey_archive.drop_before(timestamptz) FROM PUBLIC;

GRANT USAGE ON SCHEMA grey_archive TO grey_archive_writer;
-- DELETE: an upsert removes the copy of a task stored under another
-- finish time (the policy limits it to the tenant's rows)
GRANT SELECT, INSERT, UPDATE, DELETE ON grey_archive.tasks TO grey_archive_writer;
GRANT SELECT, INSERT, UPDATE ON grey_archive.proofs TO grey_archive_writer;
GRANT SELECT ON grey_archive.goose_db_version TO grey_archive_writer;
GRANT EXECUTE ON FUNCTION grey_archive.ensure_partitions(date[]) TO grey_archive_writer;
GRANT EXECUTE ON FUNCTION grey_archive.drop_before(timestamptz) TO grey_archive_writer;

-- +goose Down
DROP FUNCTION grey_archive.drop_before(timestamptz);
DROP FUNCTION grey_archive.ensure_partitions(date[]);
DROP TABLE grey_archive.proofs;
DROP TABLE grey_archive.tasks;

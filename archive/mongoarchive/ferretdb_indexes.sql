-- Indexes that let FerretDB 1.x (PostgreSQL backend) serve the Grey
-- archive's reads from PostgreSQL indexes instead of scanning the
-- collection (docs/ARCHIVE.md, "FerretDB indexes").
--
-- FerretDB pushes an equality filter down as `_jsonb->$1 @> $2`, which a
-- btree cannot serve: GIN indexes on the two fields every Get and List
-- names (_id, tenant) can. Because the field name is a bind parameter,
-- only a plan made with the values can match an expression index, hence
-- plan_cache_mode. Run it in FerretDB's PostgreSQL database, as a role that
-- owns it, once greyd has created the collection:
--
--   psql "postgres://postgres@db:5432/ferretdb" -v db=grey -v coll=archive_tasks \
--     -f archive/mongoarchive/ferretdb_indexes.sql
--
-- then restart FerretDB (its open connections keep the old setting). It is
-- idempotent. db and coll are the archive URL's database and collection
-- (defaults grey and archive_tasks).
SELECT set_config('grey.ferret_db', :'db', false), set_config('grey.ferret_coll', :'coll', false);
DO $$
DECLARE
	db text := current_setting('grey.ferret_db');
	coll text := current_setting('grey.ferret_coll');
	tbl text;
BEGIN
	EXECUTE format('ALTER DATABASE %I SET plan_cache_mode = force_custom_plan', current_database());
	EXECUTE format('SELECT _jsonb->>''table'' FROM %I._ferretdb_database_metadata WHERE _jsonb->>''_id'' = $1', db)
		INTO tbl USING coll;
	IF tbl IS NULL THEN
		RAISE EXCEPTION 'FerretDB database % has no collection %: start greyd with this archive first', db, coll;
	END IF;
	EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I.%I USING gin ((_jsonb->''_id'') jsonb_path_ops)', tbl || '_grey_id', db, tbl);
	EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I.%I USING gin ((_jsonb->''tenant'') jsonb_path_ops)', tbl || '_grey_tenant', db, tbl);
	EXECUTE format('ANALYZE %I.%I', db, tbl);
END $$;

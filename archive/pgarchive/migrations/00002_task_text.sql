-- Ingest cost: the archive's writes compete with the core for the same
-- CPUs, so the rows cost less to write.
--
-- The task document, payload and result become text. Nothing queries
-- inside them (only labels, which stays jsonb), and PostgreSQL's json type
-- parses every value it stores to check it: for a task of ~1.3 KB that
-- was about a fifth of the server's work per archived task. Grey checks
-- the payload and the result are JSON before it writes them, and encodes
-- the task itself, so the columns hold the same bytes as before. There is
-- no binary cast from json to text: PostgreSQL rewrites the table once,
-- under an exclusive lock (docs/ARCHIVE.md: upgrading).
--
-- The (tenant_id, finished_at) index goes: every row paid for it, and
-- only a finished-time filter inside one tenant used it. Partitions by
-- finish day bound such a filter to its days, and the primary key's
-- (tenant_id, id) order serves it within them (ids carry their creation
-- time, so the tenant's rows of a time range are close together in it).

-- +goose Up
ALTER TABLE grey_archive.tasks
	ALTER COLUMN task TYPE text,
	ALTER COLUMN payload TYPE text,
	ALTER COLUMN result TYPE text;
DROP INDEX grey_archive.tasks_tenant_finished;

-- +goose Down
CREATE INDEX tasks_tenant_finished ON grey_archive.tasks (tenant_id, finished_at);
ALTER TABLE grey_archive.tasks
	ALTER COLUMN task TYPE json USING task::json,
	ALTER COLUMN payload TYPE json USING payload::json,
	ALTER COLUMN result TYPE json USING result::json;

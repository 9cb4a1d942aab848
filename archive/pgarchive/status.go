package pgarchive

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Partition is one daily partition of the tasks table.
type Partition struct {
	// Name is the partition's table name (tasks_pYYYYMMDD).
	Name string
	// Day is the UTC day it holds.
	Day time.Time
	// EstimatedRows is PostgreSQL's estimate of its rows (pg_class.reltuples,
	// as of its last VACUUM or ANALYZE; -1 when never analysed).
	EstimatedRows int64
}

// Status is what `greyd archive status` reports.
type Status struct {
	// Version is the database's schema version (0: none).
	Version int64
	// Latest is this binary's schema version.
	Latest int64
	// Partitions are the tasks table's daily partitions, oldest first.
	Partitions []Partition
}

// ReadStatus reads the schema version and the partitions of the archive
// at rawURL (any role that can connect: it reads the catalog, not the
// rows, so it is cheap and needs no tenant).
func ReadStatus(ctx context.Context, rawURL string) (Status, error) {
	st := Status{Latest: LatestVersion()}
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return st, classify(err, "parse the URL")
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return st, classify(err, "connect")
	}
	defer c.Close(context.WithoutCancel(ctx))
	if st.Version, err = schemaVersion(ctx, connRows{c}); err != nil {
		return st, classify(err, "read the schema version")
	}
	if st.Version == 0 {
		return st, nil
	}
	rows, err := c.Query(ctx, `SELECT c.relname, to_date(substr(c.relname, 8), 'YYYYMMDD'), c.reltuples::bigint
		FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = to_regclass('`+Schema+`.tasks') AND c.relname ~ '^tasks_p[0-9]{8}$'
		ORDER BY c.relname`)
	if err != nil {
		return st, classify(err, "list the partitions")
	}
	defer rows.Close()
	for rows.Next() {
		var p Partition
		if err := rows.Scan(&p.Name, &p.Day, &p.EstimatedRows); err != nil {
			return st, classify(err, "list the partitions")
		}
		st.Partitions = append(st.Partitions, p)
	}
	return st, classify(rows.Err(), "list the partitions")
}

// connRows adapts a pgx connection to schemaVersion's querier.
type connRows struct{ c *pgx.Conn }

func (q connRows) QueryRowContext(ctx context.Context, sql string, args ...any) rowScanner {
	return q.c.QueryRow(ctx, sql, args...)
}

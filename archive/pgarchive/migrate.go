package pgarchive

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/grey-distributed/grey/greyerr"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Schema is the PostgreSQL schema that holds the archive.
const Schema = "grey_archive"

// WriterRole is the NOLOGIN role the migrations create with the runtime
// privileges (read and write the tasks table, run the partition
// functions). Migrate grants it to the app URL's user.
const WriterRole = "grey_archive_writer"

// versionTable is goose's table of applied migrations.
const versionTable = Schema + ".goose_db_version"

// migrateLockID is the advisory lock of migrations (goose's session
// locker): a constant of this schema, so concurrent greyd nodes and
// `greyd archive migrate` runs apply each migration once.
const migrateLockID int64 = 0x67726579_61726368 // "greyarch"

// LatestVersion is the schema version this binary's migrations reach.
func LatestVersion() int64 {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return 0
	}
	var top int64
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		if !ok {
			continue
		}
		if v, err := strconv.ParseInt(num, 10, 64); err == nil && v > top {
			top = v
		}
	}
	return top
}

// Migrate applies the pending schema migrations to the database at
// ownerURL, connected as the role that will own the schema, under an
// advisory lock (concurrent calls wait; each migration is applied once).
// When appURL names another user, it is granted WriterRole. It returns the
// schema versions before and after. A database whose schema is newer than
// this binary is FailedPrecondition naming both versions; an unreachable
// database is Unavailable, refused credentials PermissionDenied.
func Migrate(ctx context.Context, ownerURL, appURL string) (from, to int64, err error) {
	return migrate(ctx, ownerURL, appURL, nil)
}

func migrate(ctx context.Context, ownerURL, appURL string, logger *slog.Logger) (from, to int64, err error) {
	cfg, err := pgx.ParseConfig(ownerURL)
	if err != nil {
		return 0, 0, greyerr.Invalid("migrate_url", "is not a PostgreSQL URL: %s", redactErr(err))
	}
	appUser := ""
	if appURL != "" {
		ac, err := pgx.ParseConfig(appURL)
		if err != nil {
			return 0, 0, greyerr.Invalid("url", "is not a PostgreSQL URL: %s", redactErr(err))
		}
		appUser = ac.User
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	db.SetMaxOpenConns(4)

	if from, err = schemaVersion(ctx, sqlRows{db}); err != nil {
		return 0, 0, classify(err, "read the archive schema version")
	}
	latest := LatestVersion()
	if from > latest {
		return from, from, newerSchema(from, latest)
	}
	if err := createSchema(ctx, db); err != nil {
		return from, from, classify(err, "create schema "+Schema)
	}
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrateLockID), lock.WithLockTimeout(1, 300))
	if err != nil {
		return from, from, err
	}
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return from, from, err
	}
	opts := []goose.ProviderOption{
		goose.WithTableName(versionTable),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
	}
	if logger != nil {
		opts = append(opts, goose.WithSlog(logger), goose.WithVerbose(true))
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub, opts...)
	if err != nil {
		return from, from, fmt.Errorf("archive migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return from, from, classify(err, "migrate the archive schema")
	}
	if to, err = schemaVersion(ctx, sqlRows{db}); err != nil {
		return from, from, classify(err, "read the archive schema version")
	}
	if appUser != "" && appUser != cfg.User {
		if err := grantWriter(ctx, db, appUser); err != nil {
			return from, to, err
		}
	}
	return from, to, nil
}

// createSchema makes the schema that holds goose's version table before
// goose runs. Concurrent CREATE SCHEMA IF NOT EXISTS can still collide, so
// it runs under a transaction-scoped advisory lock.
func createSchema(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLockID+1); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+Schema); err != nil {
		return err
	}
	return tx.Commit()
}

// grantWriter grants WriterRole to user unless it holds it already.
func grantWriter(ctx context.Context, db *sql.DB, user string) error {
	var member bool
	err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m
		JOIN pg_catalog.pg_roles g ON g.oid = m.roleid JOIN pg_catalog.pg_roles u ON u.oid = m.member
		WHERE g.rolname = $1 AND u.rolname = $2)`, WriterRole, user).Scan(&member)
	if err != nil {
		return classify(err, "check the app role's grants")
	}
	if member {
		return nil
	}
	if _, err := db.ExecContext(ctx, `GRANT `+WriterRole+` TO `+pgx.Identifier{user}.Sanitize()); err != nil {
		return classify(err, fmt.Sprintf("grant %s to %s (run it as a role with CREATEROLE, or have an administrator run GRANT %s TO %s)", WriterRole, user, WriterRole, user))
	}
	return nil
}

// rowScanner is a *sql.Row or a pgx.Row.
type rowScanner interface {
	Scan(dest ...any) error
}

// querier is what schemaVersion needs of a *sql.DB or a pgx pool.
type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) rowScanner
}

// sqlRows adapts a *sql.DB to querier.
type sqlRows struct{ db *sql.DB }

func (q sqlRows) QueryRowContext(ctx context.Context, s string, args ...any) rowScanner {
	return q.db.QueryRowContext(ctx, s, args...)
}

// schemaVersion returns the highest applied migration, 0 when the schema
// or goose's table does not exist yet.
func schemaVersion(ctx context.Context, db querier) (int64, error) {
	var v sql.NullInt64
	err := db.QueryRowContext(ctx, `SELECT max(version_id) FROM `+versionTable+` WHERE is_applied`).Scan(&v)
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && (pe.Code == "42P01" || pe.Code == "3F000") { // undefined_table, invalid_schema_name
			return 0, nil
		}
		return 0, err
	}
	return v.Int64, nil
}

func newerSchema(db, latest int64) error {
	return greyerr.New(greyerr.FailedPrecondition,
		"the archive schema is at version %d, newer than this binary's version %d: run a greyd at least as new as the one that migrated it", db, latest)
}

func olderSchema(db, latest int64) error {
	if db == 0 {
		return greyerr.New(greyerr.FailedPrecondition,
			"the archive schema is missing (this binary needs version %d): run `greyd archive migrate`, or set database.postgres.migrate: true", latest)
	}
	return greyerr.New(greyerr.FailedPrecondition,
		"the archive schema is at version %d, older than this binary's version %d: run `greyd archive migrate`, or set database.postgres.migrate: true", db, latest)
}

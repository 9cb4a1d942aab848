package pgarchive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/greyerr"
)

// Schemes are the URL schemes the driver registers.
var Schemes = []string{"postgres", "postgresql"}

// DefaultPoolSize bounds a pool when OpenOptions.PoolSize is 0.
const DefaultPoolSize = 10

// MaxBatch is the most records of one Upsert (one statement of unnest
// arrays; the Store splits larger batches).
const MaxBatch = 5000

// openProbeTimeout bounds the check Open makes of the database; a store
// that does not answer by then is opened anyway (it is checked again at
// first use).
const openProbeTimeout = 5 * time.Second

// replicaPause is how long a replica that failed is skipped.
const replicaPause = 5 * time.Second

// Register registers the driver for postgres:// and postgresql:// URLs.
func Register(r *archive.Registry) error {
	for _, s := range Schemes {
		if err := r.Register(s, archive.OpenerFunc(func(ctx context.Context, u *url.URL, opts archive.OpenOptions) (archive.Driver, error) {
			return Open(ctx, u.String(), opts)
		})); err != nil {
			return err
		}
	}
	return nil
}

// Driver is the PostgreSQL archive driver. Create it with Open; it is safe
// for concurrent use.
type Driver struct {
	primary  *pool
	replicas []*pool
	scheme   string
	mainURL  string
	migrate  bool
	migURL   string
	log      *slog.Logger
	next     atomic.Uint64 // round robin over replicas

	partsMu sync.Mutex
	parts   map[int64]bool // UTC days (Unix days) whose partition exists

	// noIDPruning turns off the finish-time bound a UUIDv7 id gives Get
	// (the benchmark measures what the bound is worth).
	noIDPruning bool
	// getCustomPlan plans every get afresh (the benchmark compares).
	getCustomPlan bool
	// noListWindow turns off List's first look at recent partitions only.
	noListWindow bool
	// noCopy sends Upsert's rows as arrays instead of COPY (set when the
	// role may not create the temporary staging table, and by the
	// benchmark to compare).
	noCopy atomic.Bool
}

// pool is one server's connection pool and what is known of it.
type pool struct {
	name    string
	p       *pgxpool.Pool
	primary bool

	mu        sync.Mutex
	ready     atomic.Bool
	downUntil atomic.Int64 // replicas: skipped until (unix nanos)

	// staged holds the connections (*pgx.Conn) whose session has the
	// staging table Upsert copies into; a connection leaves it when the
	// pool closes it.
	staged sync.Map
}

// Open opens the archive at rawURL (postgres://user:password@host/db).
// It does not need the database to answer: when PostgreSQL is unreachable
// or refuses the credentials, Open succeeds and every method (Ping first)
// returns Unavailable or PermissionDenied until it answers. When the
// database answers, Open checks the schema (migrating it first when
// opts.Migrate, as opts.MigrateURL or else rawURL) and the connected role,
// and returns FailedPrecondition when either is unusable: a schema newer
// than the binary or missing, a role that is superuser, has BYPASSRLS or
// owns the archive's table.
func Open(ctx context.Context, rawURL string, opts archive.OpenOptions) (*Driver, error) {
	scheme := "postgres"
	if u, err := url.Parse(rawURL); err == nil && u.Scheme != "" {
		scheme = strings.ToLower(u.Scheme)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d := &Driver{
		scheme:  scheme,
		mainURL: rawURL,
		migrate: opts.Migrate,
		migURL:  opts.MigrateURL,
		log:     log,
		parts:   map[int64]bool{},
	}
	if d.migURL == "" {
		d.migURL = rawURL
	}
	p, err := newPool(ctx, "primary", rawURL, opts.PoolSize)
	if err != nil {
		return nil, err
	}
	p.primary = true
	d.primary = p
	for i, ru := range opts.ReadURLs {
		rp, err := newPool(ctx, fmt.Sprintf("replica %d", i+1), ru, opts.PoolSize)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("read_urls[%d]: %w", i, err)
		}
		d.replicas = append(d.replicas, rp)
	}
	pctx, cancel := context.WithTimeout(ctx, openProbeTimeout)
	defer cancel()
	if err := d.ensureReady(pctx, d.primary); err != nil {
		if greyerr.CodeOf(err) == greyerr.FailedPrecondition {
			d.Close()
			return nil, err
		}
		if ctx.Err() != nil {
			d.Close()
			return nil, ctx.Err()
		}
		d.log.Warn("archive: PostgreSQL is not usable yet; retrying at first use", "url", archive.Redact(rawURL), "err", err)
	}
	return d, nil
}

func newPool(ctx context.Context, name, rawURL string, size int) (*pool, error) {
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, greyerr.Invalid("url", "%s: not a PostgreSQL URL: %s", archive.Redact(rawURL), redactErr(err))
	}
	if size <= 0 {
		size = DefaultPoolSize
	}
	cfg.MaxConns = int32(size)
	cfg.MinConns = 0
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	pl := &pool{name: name}
	cfg.BeforeClose = func(c *pgx.Conn) { pl.staged.Delete(c) }
	p, err := pgxpool.NewWithConfig(ctx, cfg) // connects lazily (MinConns 0)
	if err != nil {
		return nil, classify(err, "open the PostgreSQL pool")
	}
	pl.p = p
	return pl, nil
}

// Capabilities implements archive.Driver.
func (d *Driver) Capabilities() archive.Capabilities {
	return archive.Capabilities{
		Scheme:               d.scheme,
		LabelFilter:          true,
		MaxBatch:             MaxBatch,
		PartitionedRetention: true,
		ReadReplicas:         len(d.replicas),
	}
}

// As sets *i to the primary's pool when i is a **pgxpool.Pool.
func (d *Driver) As(i any) bool {
	if p, ok := i.(**pgxpool.Pool); ok {
		*p = d.primary.p
		return true
	}
	return false
}

// Close closes the pools.
func (d *Driver) Close() error {
	if d.primary != nil {
		d.primary.p.Close()
	}
	for _, r := range d.replicas {
		r.p.Close()
	}
	return nil
}

// Ping checks that the primary answers, that its schema is the one this
// binary needs and that the connected role is fit (see Open).
func (d *Driver) Ping(ctx context.Context) error {
	if err := d.ensureReady(ctx, d.primary); err != nil {
		return err
	}
	v, err := d.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if err := checkVersion(v, d.migrate); err != nil {
		d.primary.ready.Store(false)
		return err
	}
	return nil
}

// SchemaVersion returns the schema version of the primary (0: none).
func (d *Driver) SchemaVersion(ctx context.Context) (int64, error) {
	v, err := schemaVersion(ctx, pgxRows{d.primary.p})
	if err != nil {
		return 0, classify(err, "read the archive schema version")
	}
	return v, nil
}

func checkVersion(v int64, migrate bool) error {
	latest := LatestVersion()
	switch {
	case v > latest:
		return newerSchema(v, latest)
	case v < latest && !migrate:
		return olderSchema(v, latest)
	}
	return nil
}

// ensureReady checks pl once: schema version (migrating the primary first
// when configured) and the connected role. It is checked again after a
// failure.
func (d *Driver) ensureReady(ctx context.Context, pl *pool) error {
	if pl.ready.Load() {
		return nil
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.ready.Load() {
		return nil
	}
	v, err := schemaVersion(ctx, pgxRows{pl.p})
	if err != nil {
		return classify(err, fmt.Sprintf("archive %s: read the schema version", pl.name))
	}
	if v < LatestVersion() && d.migrate && pl.primary {
		from, to, err := migrate(ctx, d.migURL, d.mainURL, d.log)
		if err != nil {
			return wrapf(err, "archive %s: migrate", pl.name)
		}
		d.log.Info("archive: schema migrated", "from", from, "to", to)
		v = to
	}
	if err := checkVersion(v, false); err != nil {
		return wrapf(err, "archive %s", pl.name)
	}
	if err := checkRole(ctx, pl.p); err != nil {
		return wrapf(err, "archive %s", pl.name)
	}
	pl.ready.Store(true)
	return nil
}

// checkRole refuses a connection whose role would not be held by the
// row-level security: a superuser, a role with BYPASSRLS, or the table's
// owner (or a member of the owning role, who may ALTER it).
func checkRole(ctx context.Context, p *pgxpool.Pool) error {
	var (
		user                 string
		super, bypass, owner bool
	)
	err := p.QueryRow(ctx, `SELECT current_user::text, r.rolsuper, r.rolbypassrls,
		COALESCE((SELECT pg_catalog.pg_has_role(current_user, c.relowner, 'MEMBER')
			FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass('`+Schema+`.tasks')), false)
		FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`).Scan(&user, &super, &bypass, &owner)
	if err != nil {
		return classify(err, "check the connected role")
	}
	fix := fmt.Sprintf("connect database.postgres.url as a role without SUPERUSER or BYPASSRLS that does not own %s.tasks, granted %s (`greyd archive migrate` grants it to the url's user; the owner goes in migrate_url)", Schema, WriterRole)
	switch {
	case super:
		return greyerr.New(greyerr.FailedPrecondition, "the archive connects as %q, a superuser, which row-level security does not hold: %s", user, fix)
	case bypass:
		return greyerr.New(greyerr.FailedPrecondition, "the archive connects as %q, which has BYPASSRLS: %s", user, fix)
	case owner:
		return greyerr.New(greyerr.FailedPrecondition, "the archive connects as %q, which owns (or is a member of the owner of) %s.tasks and could turn row-level security off: %s", user, Schema, fix)
	}
	return nil
}

// pgxRows adapts a pgx pool to schemaVersion's querier.
type pgxRows struct{ p *pgxpool.Pool }

func (q pgxRows) QueryRowContext(ctx context.Context, sql string, args ...any) rowScanner {
	return q.p.QueryRow(ctx, sql, args...)
}

// inTenant runs f in a transaction on pl whose tenant setting is tenant
// (transaction-local: the connection carries nothing into its next
// transaction).
func (d *Driver) inTenant(ctx context.Context, pl *pool, tenant string, readOnly bool, f func(pgx.Tx) error) error {
	if err := d.ensureReady(ctx, pl); err != nil {
		return err
	}
	opts := pgx.TxOptions{}
	if readOnly {
		opts.AccessMode = pgx.ReadOnly
	}
	tx, err := pl.p.BeginTx(ctx, opts)
	if err != nil {
		err = classify(err, fmt.Sprintf("archive %s: begin", pl.name))
		pl.resetOnLoss(err)
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `SELECT pg_catalog.set_config('grey.tenant_id', $1, true)`, tenant); err != nil {
		err = classify(err, fmt.Sprintf("archive %s: set the tenant", pl.name))
		pl.resetOnLoss(err)
		return err
	}
	if err := f(tx); err != nil {
		pl.resetOnLoss(err)
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		err = classify(err, fmt.Sprintf("archive %s: commit", pl.name))
		pl.resetOnLoss(err)
		return err
	}
	return nil
}

// readQuery runs one read-only statement for tenant on pl in one round
// trip: BEGIN READ ONLY, set the tenant (transaction-local), the
// statement, COMMIT, pipelined. each is called for every row. A
// connection left inside a transaction by an error is not reused (the
// pool closes it).
//
// generic asks PostgreSQL to reuse the statement's generic plan (pruning
// partitions when it runs) instead of planning it again for every call:
// planning a query over ~30 partitions costs about as much as running it.
// It suits statements whose best plan does not depend on the values (get
// by id, a tenant's pages without filters).
func (d *Driver) readQuery(ctx context.Context, pl *pool, tenant string, generic bool, sql string, args []any, each func(pgx.Rows) error) error {
	if err := d.ensureReady(ctx, pl); err != nil {
		return err
	}
	b := &pgx.Batch{}
	b.Queue(`BEGIN READ ONLY`)
	mode := "auto"
	if generic {
		mode = "force_generic_plan"
	}
	b.Queue(`SELECT pg_catalog.set_config('grey.tenant_id', $1, true), pg_catalog.set_config('plan_cache_mode', $2, true)`, tenant, mode)
	b.Queue(sql, args...)
	b.Queue(`COMMIT`)
	br := pl.p.SendBatch(ctx, b)
	err := func() error {
		for range 2 {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		for rows.Next() {
			if err := each(rows); err != nil {
				rows.Close()
				return err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		_, err = br.Exec()
		return err
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	err = classify(err, fmt.Sprintf("archive %s: read", pl.name))
	pl.resetOnLoss(err)
	return err
}

// resetOnLoss closes the pool's idle connections after an error that
// says the server went away (a restart, a failover): they are all dead,
// and a retry must not meet them one by one.
func (pl *pool) resetOnLoss(err error) {
	if greyerr.CodeOf(err) == greyerr.Unavailable {
		pl.p.Reset()
	}
}

// read runs f on a replica when there is one that answers, else on the
// primary. With notFoundToPrimary a NotFound from a replica is asked of
// the primary too (the replica may lag behind a fresh write).
func (d *Driver) read(ctx context.Context, notFoundToPrimary bool, f func(pl *pool) error) error {
	n := len(d.replicas)
	if n > 0 {
		start := int(d.next.Add(1) % uint64(n))
		for i := 0; i < n; i++ {
			rp := d.replicas[(start+i)%n]
			if time.Now().UnixNano() < rp.downUntil.Load() {
				continue
			}
			err := f(rp)
			if err == nil {
				return nil
			}
			if ctx.Err() != nil {
				return err
			}
			code := greyerr.CodeOf(err)
			if code == greyerr.NotFound {
				if notFoundToPrimary {
					break
				}
				return err
			}
			if code == greyerr.InvalidArgument {
				return err
			}
			rp.downUntil.Store(time.Now().Add(replicaPause).UnixNano())
			d.log.Warn("archive: read replica failed; reading from the primary", "replica", rp.name, "err", err)
		}
	}
	return f(d.primary)
}

var errNoPartition = errors.New("no partition for a row")

// errStored is insertSQL meeting a row that a concurrent writer stored
// first (Upsert then runs upsertSQL).
var errStored = errors.New("a row is stored already")

// errNoTemp is the staging table refused (the role may not create
// temporary tables in the database): Upsert sends arrays instead.
var errNoTemp = errors.New("no temporary table")

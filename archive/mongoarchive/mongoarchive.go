package mongoarchive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/telemetry/tracing"
)

// Schemes are the URL schemes the driver registers.
var Schemes = []string{"mongodb", "mongodb+srv"}

// Scheme is the driver's main URL scheme.
const Scheme = "mongodb"

// MaxBatch is the most records of one Upsert (one unordered bulk write;
// the Store splits larger batches, the MongoDB driver splits a bulk write
// at the server's message size).
const MaxBatch = 1000

// SchemaVersion is the layout of the archive's collections this binary
// writes (the version document in the meta collection); a store marked
// with a newer one is refused.
const SchemaVersion = 1

// maxDocument bounds a record's document: MongoDB's 16 MiB less room for
// the fields around the JSON.
const maxDocument = 16<<20 - 16<<10

// openProbeTimeout bounds the check Open makes of the server; a server
// that does not answer by then is opened anyway (checked at first use).
const openProbeTimeout = 5 * time.Second

// Index names the driver creates (and expects to own).
const (
	indexTenantID  = "tenant_id"
	indexTenantFin = "tenant_fin_id"
	indexFin       = "fin"
	indexTTL       = "exp_ttl"
)

// Register registers the driver for mongodb:// and mongodb+srv:// URLs.
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

// Driver is the MongoDB archive driver. Create it with Open; it is safe
// for concurrent use.
type Driver struct {
	cfg       Config
	client    *mongo.Client
	tasks     *mongo.Collection
	meta      *mongo.Collection
	retention time.Duration
	log       *slog.Logger

	mu    sync.Mutex // serialises ensureReady
	ready atomic.Bool
	ttl   atomic.Bool // the TTL index exists
}

var (
	_ archive.Driver       = (*Driver)(nil)
	_ archive.TenantLister = (*Driver)(nil)
	_ archive.Deleter      = (*Driver)(nil)
)

// Open opens the archive at rawURL (see ParseURL). It does not need the
// server to answer: when it does not, or refuses the credentials, Open
// succeeds and every method (Ping first) returns Unavailable or
// PermissionDenied until it does. When the server answers,
// Open creates the archive's indexes (once; an existing index is kept)
// and checks the schema version, returning FailedPrecondition for a store
// of a newer binary or with other indexes under the archive's names.
// OpenOptions.ReadURLs is InvalidArgument (MongoDB reads from secondaries
// by readPreference in the URL); PoolSize sets maxPoolSize unless the URL
// does; Retention sets each record's expiry (a TTL index; see doc.go).
func Open(ctx context.Context, rawURL string, opts archive.OpenOptions) (*Driver, error) {
	cfg, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if len(opts.ReadURLs) > 0 {
		return nil, greyerr.Invalid("read_urls", "the MongoDB archive reads from secondaries through readPreference in its URL, not through read URLs")
	}
	if opts.Retention < 0 {
		return nil, greyerr.Invalid("retention", "must not be negative")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	co := options.Client().ApplyURI(cfg.URI)
	if opts.PoolSize > 0 && !cfg.MaxPoolSizeSet {
		co.SetMaxPoolSize(uint64(opts.PoolSize))
	}
	if err := co.Validate(); err != nil {
		// mongodb+srv: the SRV name resolves only now.
		return nil, classify(ctx, err, fmt.Sprintf("open the MongoDB archive %s", archive.Redact(rawURL)))
	}
	client, err := mongo.Connect(co) // connects in the background
	if err != nil {
		return nil, classify(ctx, err, fmt.Sprintf("open the MongoDB archive %s", archive.Redact(rawURL)))
	}
	db := client.Database(cfg.Database)
	d := &Driver{
		cfg:       cfg,
		client:    client,
		tasks:     db.Collection(cfg.Collection),
		meta:      db.Collection(cfg.Collection + "_meta"),
		retention: opts.Retention,
		log:       log,
	}
	pctx, cancel := context.WithTimeout(ctx, openProbeTimeout)
	defer cancel()
	if err := d.ensureReady(pctx); err != nil {
		code := greyerr.CodeOf(err)
		if code == greyerr.FailedPrecondition || code == greyerr.InvalidArgument {
			_ = d.Close()
			return nil, err
		}
		if ctx.Err() != nil {
			_ = d.Close()
			return nil, ctx.Err()
		}
		d.log.Warn("archive: MongoDB is not usable yet; retrying at first use", "url", archive.Redact(rawURL), "err", err)
	}
	return d, nil
}

// Config returns the driver's reading of its URL.
func (d *Driver) Config() Config { return d.cfg }

// TTL reports whether the TTL index that expires records after the
// retention exists (FerretDB 1.x cannot create one; the Store's
// DeleteBefore then is the only retention).
func (d *Driver) TTL() bool { return d.ttl.Load() }

// ensureReady checks the server once: the schema version, then the
// indexes (created when missing), then marks the schema. It is checked
// again after a failure.
func (d *Driver) ensureReady(ctx context.Context) error {
	if d.ready.Load() {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ready.Load() {
		return nil
	}
	ctx, end := d.span(ctx, "createIndexes", d.tasks)
	err := d.prepare(ctx)
	end(err)
	if err != nil {
		return err
	}
	d.ready.Store(true)
	return nil
}

func (d *Driver) prepare(ctx context.Context) error {
	if err := d.checkVersion(ctx); err != nil {
		return err
	}
	// One index at a time: FerretDB 1.24 panics on a createIndexes of
	// several indexes that already exist.
	for _, m := range []mongo.IndexModel{
		// One index is both the tenant+id uniqueness and List's order
		// (id descending within a tenant).
		{Keys: bson.D{{Key: "tenant", Value: 1}, {Key: "id", Value: -1}}, Options: options.Index().SetName(indexTenantID).SetUnique(true)},
		// Finish-time ranges of one tenant, newest first.
		{Keys: bson.D{{Key: "tenant", Value: 1}, {Key: "fin", Value: -1}, {Key: "id", Value: -1}}, Options: options.Index().SetName(indexTenantFin)},
		// Retention across tenants (DeleteBefore).
		{Keys: bson.D{{Key: "fin", Value: 1}}, Options: options.Index().SetName(indexFin)},
	} {
		if _, err := d.tasks.Indexes().CreateOne(ctx, m); err != nil {
			return wrapf(classify(ctx, err, "create the archive's indexes"), "MongoDB archive %s.%s", d.cfg.Database, d.cfg.Collection)
		}
	}
	_, err := d.tasks.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "exp", Value: 1}},
		Options: options.Index().SetName(indexTTL).SetExpireAfterSeconds(0),
	})
	switch err = classify(ctx, err, "create the archive's TTL index"); greyerr.CodeOf(err) {
	case "":
		d.ttl.Store(true)
	case greyerr.Unimplemented:
		d.ttl.Store(false)
		if d.retention > 0 {
			d.log.Warn("archive: this MongoDB server cannot create TTL indexes (FerretDB 1.x); records expire only through the archive's retention pass", "err", err)
		}
	default:
		return err
	}
	_, err = d.meta.UpdateOne(ctx, bson.D{{Key: "_id", Value: "schema"}},
		bson.D{{Key: "$setOnInsert", Value: bson.D{{Key: "version", Value: SchemaVersion}}}}, options.UpdateOne().SetUpsert(true))
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return classify(ctx, err, "mark the archive's schema version")
	}
	return nil
}

// checkVersion refuses a store whose schema marker is newer than this
// binary's.
func (d *Driver) checkVersion(ctx context.Context) error {
	var m struct {
		Version int64 `bson:"version"`
	}
	err := d.meta.FindOne(ctx, bson.D{{Key: "_id", Value: "schema"}}).Decode(&m)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil
	}
	if err != nil {
		return classify(ctx, err, "read the archive's schema version")
	}
	if m.Version > SchemaVersion {
		return greyerr.New(greyerr.FailedPrecondition, "the MongoDB archive %s.%s has schema version %d, newer than this binary's %d: upgrade greyd", d.cfg.Database, d.cfg.Collection, m.Version, SchemaVersion)
	}
	return nil
}

// Ping implements archive.Driver: the server answers, the indexes exist
// (created at the first successful check) and the schema version is one
// this binary can use.
func (d *Driver) Ping(ctx context.Context) error {
	if err := d.ensureReady(ctx); err != nil {
		return err
	}
	ctx, end := d.span(ctx, "find", d.meta)
	err := d.checkVersion(ctx)
	end(err)
	return err
}

// Capabilities implements archive.Driver.
func (d *Driver) Capabilities() archive.Capabilities {
	return archive.Capabilities{Scheme: d.cfg.Scheme, LabelFilter: true, MaxBatch: MaxBatch}
}

// As sets *i to the client when i is a **mongo.Client, or to the records'
// collection when i is a **mongo.Collection.
func (d *Driver) As(i any) bool {
	switch p := i.(type) {
	case **mongo.Client:
		*p = d.client
	case **mongo.Collection:
		*p = d.tasks
	default:
		return false
	}
	return true
}

// Close disconnects the client.
func (d *Driver) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.client.Disconnect(ctx); err != nil && !errors.Is(err, mongo.ErrClientDisconnected) {
		return classify(ctx, err, "close the MongoDB archive")
	}
	return nil
}

// span starts a client span named by the database semantic conventions
// ("find grey.archive_tasks") and returns the function that ends it.
func (d *Driver) span(ctx context.Context, op string, c *mongo.Collection) (context.Context, func(error)) {
	ctx, sp := tracing.Start(ctx, op+" "+d.cfg.Database+"."+c.Name(), trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("db.system.name", "mongodb"),
			attribute.String("db.operation.name", op),
			attribute.String("db.collection.name", c.Name()),
			attribute.String("db.namespace", d.cfg.Database)))
	return ctx, func(err error) {
		if err != nil {
			sp.SetAttributes(attribute.String("error.type", string(greyerr.CodeOf(err))))
		}
		tracing.End(sp, err)
	}
}

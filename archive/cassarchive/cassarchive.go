package cassarchive

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/telemetry/tracing"
)

// openProbeTimeout bounds the check Open makes of the cluster; a cluster
// that does not answer by then is opened anyway (checked at first use).
const openProbeTimeout = 5 * time.Second

// Register registers the driver for cassandra:// URLs in r.
func Register(r *archive.Registry) error {
	return r.Register(Scheme, archive.OpenerFunc(func(ctx context.Context, u *url.URL, opts archive.OpenOptions) (archive.Driver, error) {
		return Open(ctx, u.String(), opts)
	}))
}

// Driver is the Cassandra archive driver. Create it with Open; it is safe
// for concurrent use.
type Driver struct {
	cfg  Config
	opts archive.OpenOptions
	log  *slog.Logger
	st   statements

	mu         sync.Mutex
	sess       *gocql.Session
	connecting chan struct{} // closed when the connect in flight ends
	connErr    error         // the last connect's failure
	bucketMs   int64         // the keyspace's bucket width; 0 until checked
	closed     bool

	readySem chan struct{} // one schema check (or migration) at a time
}

var (
	_ archive.Driver       = (*Driver)(nil)
	_ archive.TenantLister = (*Driver)(nil)
	_ archive.Deleter      = (*Driver)(nil)
)

// Open opens the archive at rawURL (see ParseURL for the form). It does
// not need Cassandra to answer: when no contact point does, Open succeeds
// and every method (Ping first) returns Unavailable until one answers.
// When the cluster answers, Open checks the keyspace (migrating it first
// when opts.Migrate) and returns FailedPrecondition when it is unusable:
// missing or older than the binary without opts.Migrate, newer than the
// binary, or replicated beyond what the cluster's nodes can hold.
// opts.PoolSize is the connections per host; opts.Retention, when set,
// becomes each write's TTL. ReadURLs and MigrateURL do not apply (a
// Cassandra cluster has no read replicas of its own kind, and the same
// credentials migrate).
func Open(ctx context.Context, rawURL string, opts archive.OpenOptions) (*Driver, error) {
	cfg, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if len(opts.ReadURLs) > 0 {
		return nil, greyerr.Invalid("read_urls", "a Cassandra archive has no read replica URLs: reads go to the replicas of the keyspace (read_consistency)")
	}
	d := newDriver(cfg, opts)
	pctx, cancel := context.WithTimeout(ctx, openProbeTimeout)
	defer cancel()
	if _, err := d.ready(pctx); err != nil {
		if greyerr.CodeOf(err) == greyerr.FailedPrecondition {
			d.Close()
			return nil, err
		}
		if ctx.Err() != nil {
			d.Close()
			return nil, ctx.Err()
		}
		d.log.Warn("archive: Cassandra is not usable yet; retrying at first use", "hosts", strings.Join(cfg.Hosts, ","), "err", err)
	}
	return d, nil
}

func newDriver(cfg Config, opts archive.OpenOptions) *Driver {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Driver{cfg: cfg, opts: opts, log: log, st: newStatements(cfg.Keyspace), readySem: make(chan struct{}, 1)}
}

// cluster returns the gocql configuration of d's URL.
func (d *Driver) cluster() *gocql.ClusterConfig {
	c := gocql.NewCluster(d.cfg.Hosts...)
	c.Timeout = d.cfg.Timeout
	c.WriteTimeout = d.cfg.Timeout
	c.ConnectTimeout = d.cfg.ConnectTimeout
	c.Consistency = d.cfg.ReadConsistency
	c.SerialConsistency = d.cfg.SerialConsistency
	c.NumConns = DefaultNumConns
	if d.opts.PoolSize > 0 {
		c.NumConns = d.opts.PoolSize
	}
	c.PageSize = 1000
	// No driver-level retries: the Store retries Unavailable with backoff,
	// and a lightweight transaction must never be retried blindly.
	c.RetryPolicy = nil
	c.MaxWaitSchemaAgreement = 2 * time.Minute
	c.ReconnectInterval = 10 * time.Second
	// Token-aware: a request goes to a replica of its partition, chosen
	// among the local data center's hosts when local_dc is set.
	var fallback gocql.HostSelectionPolicy = gocql.RoundRobinHostPolicy()
	if d.cfg.LocalDC != "" {
		fallback = gocql.DCAwareRoundRobinPolicy(d.cfg.LocalDC)
	}
	c.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(fallback, gocql.ShuffleReplicas())
	c.Logger = slogger{d.log}
	if d.cfg.Username != "" {
		c.Authenticator = gocql.PasswordAuthenticator{Username: d.cfg.Username, Password: d.cfg.Password}
	}
	return c
}

// session returns the connected session, connecting at most once at a
// time; a caller whose ctx ends stops waiting (the connect goes on for the
// next caller).
func (d *Driver) session(ctx context.Context) (*gocql.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, greyerr.New(greyerr.FailedPrecondition, "cassarchive: the driver is closed")
	}
	if d.sess != nil {
		s := d.sess
		d.mu.Unlock()
		return s, nil
	}
	ch := d.connecting
	if ch == nil {
		ch = make(chan struct{})
		d.connecting = ch
		go d.connect(ch)
	}
	d.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sess != nil {
		return d.sess, nil
	}
	return nil, d.connErr
}

func (d *Driver) connect(done chan struct{}) {
	s, err := d.cluster().CreateSession()
	d.mu.Lock()
	defer d.mu.Unlock()
	defer close(done)
	d.connecting = nil
	if err != nil {
		d.connErr = classify(err, "connect to Cassandra at "+strings.Join(d.cfg.Hosts, ","))
		if greyerr.CodeOf(d.connErr) == greyerr.Internal {
			// A session that cannot be made is a cluster that cannot be
			// reached, as far as a caller can tell: worth retrying.
			d.connErr = &greyerr.Error{Code: greyerr.Unavailable, Message: "connect to Cassandra at " + strings.Join(d.cfg.Hosts, ","), Err: sanitized{err}}
		}
		return
	}
	if d.closed {
		s.Close()
		d.connErr = greyerr.New(greyerr.FailedPrecondition, "cassarchive: the driver is closed")
		return
	}
	d.sess = s
}

// ready returns the session once the keyspace's schema was found usable
// (migrating it first when OpenOptions.Migrate).
func (d *Driver) ready(ctx context.Context) (*gocql.Session, error) {
	s, err := d.session(ctx)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	ok := d.bucketMs > 0
	d.mu.Unlock()
	if ok {
		return s, nil
	}
	select {
	case d.readySem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-d.readySem }()
	d.mu.Lock()
	ok = d.bucketMs > 0
	d.mu.Unlock()
	if ok {
		return s, nil
	}
	if d.opts.Migrate {
		if _, _, err := d.migrate(ctx, s); err != nil {
			return nil, err
		}
	}
	if err := d.checkSchema(ctx, s); err != nil {
		return nil, err
	}
	bucket, err := d.readBucket(ctx, s)
	if err != nil {
		return nil, err
	}
	if err := d.checkTopology(ctx, s); err != nil {
		return nil, err
	}
	if time.Duration(bucket)*time.Millisecond != d.cfg.Bucket && d.cfg.Bucket != DefaultBucket {
		d.log.Warn("archive: the keyspace keeps the bucket width it was made with; the URL's bucket= is ignored",
			"keyspace", d.cfg.Keyspace, "keyspace_bucket", time.Duration(bucket)*time.Millisecond, "url_bucket", d.cfg.Bucket)
	}
	d.mu.Lock()
	d.bucketMs = bucket
	d.mu.Unlock()
	return s, nil
}

// checkTopology refuses a local_dc the cluster has no node in (requests
// would all go to remote data centers), and logs when the keyspace asks
// for more replicas than the cluster has nodes (made elsewhere, or nodes
// removed since): requests at a quorum then fail as Unavailable, naming
// the replicas needed and alive.
func (d *Driver) checkTopology(ctx context.Context, s *gocql.Session) error {
	dcs, err := topology(ctx, s)
	if err != nil {
		return err
	}
	if d.cfg.LocalDC != "" && dcs[d.cfg.LocalDC] == 0 {
		return greyerr.New(greyerr.FailedPrecondition, "local_dc %s is not a data center of the cluster (%s)", d.cfg.LocalDC, describeTopology(dcs))
	}
	r, found, err := keyspaceReplication(ctx, s, d.cfg.Keyspace)
	if err != nil || !found {
		return err
	}
	if err := satisfiable(r, dcs, "keyspace "+d.cfg.Keyspace+": "); err != nil {
		d.log.Warn("archive: "+err.Error(), "keyspace", d.cfg.Keyspace)
	}
	return nil
}

// bucketWidth returns the keyspace's bucket width in milliseconds (after
// ready).
func (d *Driver) bucketWidth() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.bucketMs
}

// Capabilities implements archive.Driver: labels are filtered (by the
// driver, while paging), batches are bounded to MaxBatch, retention
// deletes rows (and expires them by TTL), there are no read replicas.
func (d *Driver) Capabilities() archive.Capabilities {
	return archive.Capabilities{Scheme: Scheme, LabelFilter: true, MaxBatch: MaxBatch}
}

// As sets *i to the connected session when i is a **gocql.Session; it
// reports false before the driver first connected.
func (d *Driver) As(i any) bool {
	p, ok := i.(**gocql.Session)
	if !ok {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sess == nil {
		return false
	}
	*p = d.sess
	return true
}

// Close closes the session.
func (d *Driver) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.sess != nil {
		d.sess.Close()
		d.sess = nil
	}
	return nil
}

// Ping checks that a host answers and that the keyspace's schema is one
// this binary can use.
func (d *Driver) Ping(ctx context.Context) (err error) {
	ctx, end := d.span(ctx, "ping", "")
	defer func() { end(err) }()
	s, err := d.ready(ctx)
	if err != nil {
		return err
	}
	return d.checkSchema(ctx, s)
}

// span starts the driver's span of an operation, with the database
// semantic conventions; end records the error.
func (d *Driver) span(ctx context.Context, op, table string) (context.Context, func(error)) {
	attrs := []attribute.KeyValue{
		attribute.String("db.system.name", "cassandra"),
		attribute.String("db.operation.name", op),
		attribute.String("db.namespace", d.cfg.Keyspace),
	}
	if table != "" {
		attrs = append(attrs, attribute.String("db.collection.name", table))
	}
	ctx, span := tracing.Start(ctx, "cassandra "+op, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return ctx, func(err error) {
		if err != nil && !greyerr.Is(err, greyerr.NotFound) {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

// checkCtx returns ctx's error, if any, as the error of an operation.
func checkCtx(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return nil
}

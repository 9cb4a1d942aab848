package archive

import (
	"cmp"
	"context"
	"log/slog"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/schemes"
)

// Opener opens a Driver for an archive URL of its scheme.
type Opener interface {
	OpenDriver(ctx context.Context, u *url.URL, opts OpenOptions) (Driver, error)
}

// OpenerFunc adapts a function to Opener.
type OpenerFunc func(ctx context.Context, u *url.URL, opts OpenOptions) (Driver, error)

// OpenDriver calls f.
func (f OpenerFunc) OpenDriver(ctx context.Context, u *url.URL, opts OpenOptions) (Driver, error) {
	return f(ctx, u, opts)
}

// OpenOptions are the settings of the configuration's database block that
// every driver may honour; a driver's native knobs ride in its URL's query
// (documented per driver).
type OpenOptions struct {
	// PoolSize bounds the driver's connections (database.<driver>.pool_size;
	// 0: the driver's default).
	PoolSize int
	// ReadURLs are read replicas: reads may go there, falling back to the
	// primary when none answers.
	ReadURLs []string
	// MigrateURL connects as the role that owns the schema, for migrations
	// ("" : the main URL).
	MigrateURL string
	// Migrate applies pending schema migrations when the driver opens (else
	// a missing or older schema is FailedPrecondition, naming the command
	// that migrates).
	Migrate bool
	// Retention is how long the archive keeps a record after its task
	// finished (archive.retention; 0: forever). A driver with native expiry
	// (a TTL) applies it when it writes; the Store's DeleteBefore runs on
	// every driver all the same.
	Retention time.Duration
	// Logger receives the driver's log lines (nil: discarded).
	Logger *slog.Logger
	// Registerer receives the driver's own metrics, if it has any,
	// labelled with Name (nil: not registered). Registry.Open fills both
	// from the Store's Options when they are unset.
	Registerer prometheus.Registerer
	// Name labels the driver's own metrics (the Store's Options.Name).
	Name string
}

// Registry maps URL schemes to driver openers. The zero value is not
// usable; create one with NewRegistry. It is safe for concurrent use.
type Registry struct {
	table *schemes.Table[Opener]
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{table: schemes.New[Opener]("archive", "archive", Redact)}
}

// Register makes scheme open with o. Registering a scheme twice is an
// error (two drivers claiming one scheme is a build mistake).
func (r *Registry) Register(scheme string, o Opener) error { return r.table.Register(scheme, o) }

// Schemes lists the registered schemes, sorted.
func (r *Registry) Schemes() []string { return r.table.Schemes() }

// Check reports, as an InvalidArgument error naming the scheme, whether
// this registry can open rawURL (for start-up checks that should fail
// before anything is opened).
func (r *Registry) Check(rawURL string) error {
	_, _, err := r.table.Lookup(rawURL)
	return err
}

// Open opens the archive at rawURL with the driver registered for its
// scheme. An unknown scheme is InvalidArgument; a store that cannot be
// reached is Unavailable (the caller may keep running and retry: see
// Store.Ping); other failures keep the driver's code.
func (r *Registry) Open(ctx context.Context, rawURL string, oo OpenOptions, opts Options) (*Store, error) {
	u, o, err := r.table.Lookup(rawURL)
	if err != nil {
		return nil, err
	}
	if oo.Registerer == nil {
		oo.Registerer = opts.Registerer
	}
	if oo.Name == "" {
		oo.Name = cmp.Or(opts.Name, "default")
	}
	d, err := o.OpenDriver(ctx, u, oo)
	if err != nil {
		return nil, greyerr.Within(greyerr.InvalidArgument, err, "open archive %s", Redact(rawURL))
	}
	s, err := New(d, opts)
	if err != nil {
		_ = d.Close()
		return nil, err
	}
	return s, nil
}

// OpenDriver opens the driver registered for rawURL's scheme, without a
// Store around it: the composite drivers (sharded, quorum) open their
// children so, with their own OpenOptions. An unknown scheme is
// InvalidArgument; other failures are the driver's.
func (r *Registry) OpenDriver(ctx context.Context, rawURL string, oo OpenOptions) (Driver, error) {
	u, o, err := r.table.Lookup(rawURL)
	if err != nil {
		return nil, err
	}
	return o.OpenDriver(ctx, u, oo)
}

// Redact returns rawURL with any password replaced by "xxxxx", for logs
// and error messages; a string that does not parse as a URL is replaced
// whole.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

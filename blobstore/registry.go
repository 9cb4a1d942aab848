package blobstore

import (
	"context"
	"net/url"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/schemes"
)

// Opener opens a Driver for a bucket URL of its scheme. env holds what the
// configuration knows about the cloud (region, project...), for URLs that
// do not say.
type Opener interface {
	OpenDriver(ctx context.Context, u *url.URL, env Env) (Driver, error)
}

// OpenerFunc adapts a function to Opener.
type OpenerFunc func(ctx context.Context, u *url.URL, env Env) (Driver, error)

// OpenDriver calls f.
func (f OpenerFunc) OpenDriver(ctx context.Context, u *url.URL, env Env) (Driver, error) {
	return f(ctx, u, env)
}

// Env is the cloud context an Opener may use when the URL does not say:
// the cloud block of the configuration and the seed's variables.
type Env struct {
	// Region is cloud.region, else AWS_REGION (S3).
	Region string
	// Project is GOOGLE_PROJECT (GCS).
	Project string
	// Subscription is AZURE_SUBSCRIPTION_ID (Azure).
	Subscription string
}

// Registry maps URL schemes to driver openers. The zero value is not
// usable; create one with NewRegistry. It is safe for concurrent use.
type Registry struct {
	table *schemes.Table[Opener]
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{table: schemes.New[Opener]("blobstore", "bucket", redactString)}
}

// Register makes scheme open with o. Registering a scheme twice is an
// error (two drivers claiming one scheme is a build mistake).
func (r *Registry) Register(scheme string, o Opener) error { return r.table.Register(scheme, o) }

// Schemes lists the registered schemes, sorted.
func (r *Registry) Schemes() []string { return r.table.Schemes() }

// Check parses rawURL and reports, as an InvalidArgument error naming the
// scheme, whether this registry can open it (for start-up checks that
// should fail before anything is opened).
func (r *Registry) Check(rawURL string) error {
	_, _, err := r.lookup(rawURL)
	return err
}

func (r *Registry) lookup(rawURL string) (*url.URL, Opener, error) {
	u, o, err := r.table.Lookup(rawURL)
	if err != nil {
		return nil, nil, err
	}
	if u.Scheme != "file" && u.Scheme != "mem" && u.Host == "" {
		return nil, nil, greyerr.Invalid("url", "bucket URL %q names no bucket (want %s://<bucket>)", redact(u), u.Scheme)
	}
	return u, o, nil
}

// Open opens the bucket at rawURL with the driver registered for its
// scheme, and checks that the bucket exists when the driver can tell
// (a Check(ctx) error method). An unknown scheme or a URL without a bucket is InvalidArgument
// naming it; a bucket the driver cannot reach keeps the driver's code.
func (r *Registry) Open(ctx context.Context, rawURL string, opts Options) (*Bucket, error) {
	u, o, err := r.lookup(rawURL)
	if err != nil {
		return nil, err
	}
	d, err := o.OpenDriver(ctx, u, opts.Env)
	if err != nil {
		return nil, greyerr.Within(greyerr.InvalidArgument, err, "open bucket %s", redact(u))
	}
	if c, ok := d.(interface{ Check(context.Context) error }); ok {
		if err := c.Check(ctx); err != nil {
			_ = d.Close()
			return nil, greyerr.Within(greyerr.Unavailable, err, "bucket %s does not exist or cannot be reached", redact(u))
		}
	}
	b, err := New(d, opts)
	if err != nil {
		_ = d.Close()
		return nil, err
	}
	return b, nil
}

// redactString is redact for a URL string (one that does not parse is
// replaced whole).
func redactString(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return redact(u)
}

// redact drops a URL's user info and query (credentials may sit there).
func redact(u *url.URL) string {
	c := *u
	c.User, c.RawQuery = nil, ""
	return c.String()
}

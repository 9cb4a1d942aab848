package events

import (
	"context"
	"net/url"
	"strings"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/schemes"
)

// OpenerFuncs adapts two functions to Opener; a nil side answers
// Unimplemented (a driver with only a source, or only a sink).
type OpenerFuncs struct {
	// Source opens a source driver (nil: the scheme has no source side).
	Source func(ctx context.Context, u *url.URL, opts SourceOptions) (SourceDriver, error)
	// Sink opens a sink driver (nil: the scheme has no sink side).
	Sink func(ctx context.Context, u *url.URL, opts SinkOptions) (SinkDriver, error)
}

// OpenSource calls f.Source.
func (f OpenerFuncs) OpenSource(ctx context.Context, u *url.URL, opts SourceOptions) (SourceDriver, error) {
	if f.Source == nil {
		return nil, greyerr.New(greyerr.Unimplemented, "scheme %q has no source driver", u.Scheme)
	}
	return f.Source(ctx, u, opts)
}

// OpenSink calls f.Sink.
func (f OpenerFuncs) OpenSink(ctx context.Context, u *url.URL, opts SinkOptions) (SinkDriver, error) {
	if f.Sink == nil {
		return nil, greyerr.New(greyerr.Unimplemented, "scheme %q has no sink driver", u.Scheme)
	}
	return f.Sink(ctx, u, opts)
}

// Registry maps URL schemes (kafka, amqp, amqps, mem) to driver openers.
// The zero value is not usable; create one with NewRegistry. It is safe for
// concurrent use. cmd/greyd fills one with the drivers it links; the events
// package itself imports none.
type Registry struct {
	table *schemes.Table[Opener]
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{table: schemes.New[Opener]("events", "event broker", Redact)}
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

// OpenSource opens the source driver registered for rawURL's scheme. An
// unknown scheme is InvalidArgument; a broker that cannot be reached is
// Unavailable (the caller may keep running and retry); other failures keep
// the driver's code (InvalidArgument when it has none). Errors never show
// the URL's password.
func (r *Registry) OpenSource(ctx context.Context, rawURL string, opts SourceOptions) (SourceDriver, error) {
	u, o, err := r.table.Lookup(rawURL)
	if err != nil {
		return nil, err
	}
	d, err := o.OpenSource(ctx, u, opts)
	if err != nil {
		return nil, openErr(err, "open event source", rawURL)
	}
	if d == nil {
		return nil, greyerr.New(greyerr.Internal, "open event source %s: the driver returned nothing", Redact(rawURL))
	}
	return d, nil
}

// OpenSink opens the sink driver registered for rawURL's scheme, with the
// errors of OpenSource.
func (r *Registry) OpenSink(ctx context.Context, rawURL string, opts SinkOptions) (SinkDriver, error) {
	u, o, err := r.table.Lookup(rawURL)
	if err != nil {
		return nil, err
	}
	d, err := o.OpenSink(ctx, u, opts)
	if err != nil {
		return nil, openErr(err, "open event sink", rawURL)
	}
	if d == nil {
		return nil, greyerr.New(greyerr.Internal, "open event sink %s: the driver returned nothing", Redact(rawURL))
	}
	return d, nil
}

func openErr(err error, what, rawURL string) error {
	return greyerr.Within(greyerr.InvalidArgument, redactErr{err, rawURL}, "%s %s", what, Redact(rawURL))
}

// redactErr hides the URL's password should the driver's error quote it.
type redactErr struct {
	err    error
	rawURL string
}

func (e redactErr) Error() string {
	msg := e.err.Error()
	if u, perr := url.Parse(e.rawURL); perr == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
	}
	return msg
}

func (e redactErr) Unwrap() error { return e.err }

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

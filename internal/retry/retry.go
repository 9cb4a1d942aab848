// Package retry runs an operation again while it fails with Unavailable,
// with the exponential backoff of the seed's retry policy (doubling,
// jittered): what the ports' portable types (archive.Store,
// blobstore.Bucket) share around their drivers' calls.
package retry

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/grey-distributed/grey/greyerr"
)

// Options bound the retries of a transient failure (Unavailable).
type Options struct {
	// MaxTries counts the first try (1 = no retries).
	MaxTries uint
	// InitialInterval is the first wait.
	InitialInterval time.Duration
	// MaxInterval caps one wait.
	MaxInterval time.Duration
	// MaxElapsed caps the time spent retrying.
	MaxElapsed time.Duration
}

// WithDefaults fills the zero fields: 4 tries, 50 ms initial interval,
// 2 s max interval, maxElapsed in all.
func (o Options) WithDefaults(maxElapsed time.Duration) Options {
	if o.MaxTries == 0 {
		o.MaxTries = 4
	}
	if o.InitialInterval <= 0 {
		o.InitialInterval = 50 * time.Millisecond
	}
	if o.MaxInterval <= 0 {
		o.MaxInterval = 2 * time.Second
	}
	if o.MaxElapsed <= 0 {
		o.MaxElapsed = maxElapsed
	}
	return o
}

// Unavailable runs f until it succeeds, fails with another code than
// Unavailable, ctx ends, or o's bounds are reached, and returns f's last
// error. onRetry, if not nil, runs before each retry (so a last failure
// that gives up is not counted as retried).
func Unavailable(ctx context.Context, o Options, f func() error, onRetry func()) error {
	eb := backoff.NewExponentialBackOff()
	eb.InitialInterval, eb.MaxInterval = o.InitialInterval, o.MaxInterval
	opts := []backoff.RetryOption{backoff.WithBackOff(eb), backoff.WithMaxTries(o.MaxTries), backoff.WithMaxElapsedTime(o.MaxElapsed)}
	if onRetry != nil {
		opts = append(opts, backoff.WithNotify(func(error, time.Duration) { onRetry() }))
	}
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := f()
		if err != nil && (greyerr.CodeOf(err) != greyerr.Unavailable || ctx.Err() != nil) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, opts...)
	return err
}

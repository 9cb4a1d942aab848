package server

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/greyerr"
)

// WithArchiveRegistry gives the server the archive drivers of this binary
// (cmd/greyd links them): the database block's URL opens with the driver
// registered for its scheme.
func WithArchiveRegistry(reg *archive.Registry) Option {
	return func(o *options) { o.archives = reg }
}

// WithArchive gives the server an archive that is already open (tests, and
// embedders with their own driver); it takes precedence over the database
// block and is closed with the server.
func WithArchive(st *archive.Store) Option {
	return func(o *options) { o.archive = st }
}

// openArchive opens the configured archive (nil, nil when none). An
// archive that cannot be reached does not stop start-up: the relay retries
// with backoff and /readyz and the lag metrics say so. A URL this build
// cannot open, a schema newer than the binary or a role that could bypass
// row-level security does stop it.
func openArchive(ctx context.Context, cfg *config.Config, o *options, reg prometheus.Registerer, logger *slog.Logger) (*archive.Store, error) {
	if o.archive != nil {
		return o.archive, nil
	}
	rawURL, key := cfg.ArchiveURL()
	if rawURL == "" {
		return nil, nil
	}
	if o.archives == nil {
		return nil, fmt.Errorf("%s: this build links no archive drivers", key)
	}
	opts := archive.Options{Name: "archive"}
	if reg != nil {
		opts.Registerer = reg
	}
	st, err := o.archives.Open(ctx, rawURL, ArchiveOpenOptions(cfg, logger), opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if err := st.Ping(ctx); err != nil {
		switch greyerr.CodeOf(err) {
		case greyerr.FailedPrecondition, greyerr.InvalidArgument:
			_ = st.Close()
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		logger.Warn("archive unavailable at start; finished tasks wait in Raft until it answers", "url", archive.Redact(rawURL), "err", err)
	}
	return st, nil
}

// ArchiveOpenOptions are the driver options of the configured archive:
// the database block's pool, read replicas, migration role and switch, and
// archive.retention for drivers with native expiry.
func ArchiveOpenOptions(cfg *config.Config, logger *slog.Logger) archive.OpenOptions {
	pg := cfg.Database.Postgres
	reads := make([]string, len(pg.ReadURLs))
	for i, u := range pg.ReadURLs {
		reads[i] = string(u)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return archive.OpenOptions{
		PoolSize: pg.PoolSize, ReadURLs: reads, MigrateURL: string(pg.MigrateURL),
		Migrate:   pg.Migrate || cfg.Database.Cassandra.Migrate,
		Retention: cfg.Archive.Retention.Std(),
		Logger:    logger.With("component", "archive"),
	}
}

// archiveConfig is the engine's view of the archive block.
func archiveConfig(cfg *config.Config, st *archive.Store) engine.ArchiveConfig {
	return engine.ArchiveConfig{
		Store:      st,
		BatchSize:  cfg.Archive.BatchSize,
		MaxBacklog: cfg.Archive.MaxBacklog,
		Retention:  cfg.Archive.Retention.Std(),
	}
}

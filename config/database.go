package config

import (
	"fmt"
	"net/url"
	"strings"
)

// Quorum levels (database.<driver>.quorum).
const (
	QuorumOne      = "one"
	QuorumMajority = "majority"
	QuorumAll      = "all"
)

// DatabaseConfig is the seed's database block: the archive's driver, one
// block per driver (docs/ARCHIVE.md). At most one driver may be set.
type DatabaseConfig struct {
	// Postgres is the PostgreSQL archive driver.
	Postgres PostgresConfig `yaml:"postgres"`
}

// PostgresConfig configures the PostgreSQL archive driver.
type PostgresConfig struct {
	// URL is postgres://user:password@host:port/db?sslmode=... (env
	// GREY_PG_URL). The user must not own the archive's tables nor have
	// BYPASSRLS: row-level security is what keeps tenants apart.
	URL SecretURL `yaml:"url"`
	// PoolSize bounds the connection pool (0: 10).
	PoolSize int `yaml:"pool_size"`
	// Quorum is the write quorum over the configured databases: "one" over
	// a single PostgreSQL (majority and all need the quorum archive).
	Quorum string `yaml:"quorum"`
	// ReadURLs are read replicas; reads go there first and fall back to the
	// primary.
	ReadURLs []SecretURL `yaml:"read_urls"`
	// MigrateURL connects as the role that owns the schema, for migrations
	// ("": URL; env GREY_PG_MIGRATE_URL).
	MigrateURL SecretURL `yaml:"migrate_url"`
	// Migrate applies pending migrations at start (else run
	// `greyd archive migrate`).
	Migrate bool `yaml:"migrate"`
}

// ArchiveConfig tunes the pipeline that moves finished tasks from the Raft
// state to the archive (docs/ARCHIVE.md). It applies when a database driver
// is configured.
type ArchiveConfig struct {
	// BatchSize is the most tasks written to the archive at once (0: 1000).
	BatchSize int `yaml:"batch_size"`
	// MaxBacklog is the most finished tasks the Raft state holds that the
	// archive has not acknowledged; past it new submissions are refused
	// (resource_exhausted) until the archive catches up (0: 100000).
	MaxBacklog int `yaml:"max_backlog"`
	// Retention is how long the archive keeps a finished task (0: forever).
	Retention Duration `yaml:"retention"`
}

// Driver names the configured database driver ("" when none).
func (d *DatabaseConfig) Driver() string {
	if d.Postgres.URL != "" {
		return "postgres"
	}
	return ""
}

// SecretURL is a URL that may carry a password: printed and marshaled with
// the password replaced by "xxxxx". Convert it with string(u) where the
// real value is needed.
type SecretURL string

// String returns the URL with its password masked.
func (u SecretURL) String() string {
	if u == "" {
		return ""
	}
	p, err := url.Parse(string(u))
	if err != nil {
		return mask
	}
	return p.Redacted()
}

// GoString masks the password in %#v output too.
func (u SecretURL) GoString() string { return fmt.Sprintf("config.SecretURL(%q)", u.String()) }

// MarshalYAML writes the masked value.
func (u SecretURL) MarshalYAML() (any, error) { return u.String(), nil }

// database validates the database and archive blocks.
func (v *validator) database(d *DatabaseConfig, a *ArchiveConfig) {
	pg := &d.Postgres
	set := pg.URL != "" || pg.PoolSize != 0 || (pg.Quorum != "" && pg.Quorum != QuorumOne) || len(pg.ReadURLs) > 0 || pg.MigrateURL != "" || pg.Migrate
	if set {
		if pg.URL == "" {
			v.fail("database.postgres.url", "is required when database.postgres is set (postgres://user:password@host:5432/db, or GREY_PG_URL)")
		}
		v.pgURL("database.postgres.url", pg.URL)
		v.pgURL("database.postgres.migrate_url", pg.MigrateURL)
		for i, r := range pg.ReadURLs {
			v.pgURL(fmt.Sprintf("database.postgres.read_urls[%d]", i), r)
		}
		between(v, "database.postgres.pool_size", pg.PoolSize, 0, 10000)
		switch pg.Quorum {
		case "", QuorumOne:
		case QuorumMajority, QuorumAll:
			v.fail("database.postgres.quorum", "%q needs the quorum archive over several databases, which this version of greyd does not have; over a single PostgreSQL the quorum is one (set quorum: one)", pg.Quorum)
		default:
			v.fail("database.postgres.quorum", "must be one, majority or all, got %q", pg.Quorum)
		}
	}
	between(v, "archive.batch_size", a.BatchSize, 0, 100000)
	between(v, "archive.max_backlog", a.MaxBacklog, 0, 100000000)
	v.nonNegative("archive.retention", a.Retention)
}

func (v *validator) pgURL(key string, u SecretURL) {
	if u == "" {
		return
	}
	p, err := url.Parse(string(u))
	if err != nil {
		v.fail(key, "is not a URL (want postgres://user:password@host:5432/db)")
		return
	}
	if s := strings.ToLower(p.Scheme); s != "postgres" && s != "postgresql" {
		v.fail(key, "must be a postgres:// URL, got scheme %q", p.Scheme)
		return
	}
	if p.Host == "" {
		v.fail(key, "names no host (want postgres://user:password@host:5432/db)")
	}
}

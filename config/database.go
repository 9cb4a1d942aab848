package config

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Quorum levels (database.<driver>.quorum).
const (
	QuorumOne      = "one"
	QuorumMajority = "majority"
	QuorumAll      = "all"
)

// DatabaseConfig is the seed's database block: the archive's driver, one
// block per driver (docs/ARCHIVE.md). At most one driver may be set; a
// composite over stores of several kinds is written as archive.url.
type DatabaseConfig struct {
	// Postgres is the PostgreSQL archive driver: one database (url), a
	// quorum over replicas (replicas + quorum) or shards (shards).
	Postgres PostgresConfig `yaml:"postgres"`
	// Cassandra is the Cassandra archive driver.
	Cassandra CassandraConfig `yaml:"cassandra"`
	// MongoDB is the MongoDB archive driver.
	MongoDB MongoDBConfig `yaml:"mongodb"`
}

// PostgresConfig configures the PostgreSQL archive driver.
type PostgresConfig struct {
	// URL is postgres://user:password@host:port/db?sslmode=... (env
	// GREY_PG_URL). The user must not own the archive's tables nor have
	// BYPASSRLS: row-level security is what keeps tenants apart.
	URL SecretURL `yaml:"url"`
	// Replicas are several PostgreSQL databases that hold the same records:
	// the quorum archive writes to all and waits for Quorum of them, reads
	// ReadQuorum of them and repairs the stale ones. Set url or replicas.
	Replicas []SecretURL `yaml:"replicas,omitempty"`
	// Shards are several PostgreSQL databases that split the tenants
	// between them (each tenant on one shard, by rendezvous hashing).
	// Changing the list needs `greyctl archive rebalance`.
	Shards []SecretURL `yaml:"shards,omitempty"`
	// PoolSize bounds the connection pool (0: 10), per database.
	PoolSize int `yaml:"pool_size"`
	// Quorum is the write quorum over the replicas: one, majority (the
	// default) or all. Over one database every level is that database.
	Quorum string `yaml:"quorum"`
	// ReadQuorum is the read quorum over the replicas ("": Quorum).
	ReadQuorum string `yaml:"read_quorum"`
	// AntiEntropy is how often the quorum archive compares its replicas
	// and repairs what differs (0: never; reads still repair what they
	// see).
	AntiEntropy Duration `yaml:"anti_entropy"`
	// AntiEntropyFull is how often an anti-entropy pass compares every
	// record (0: every 24h); the passes in between check only what a
	// replica is known to have missed.
	AntiEntropyFull Duration `yaml:"anti_entropy_full"`
	// ReadURLs are read replicas of url (streaming replicas); reads go
	// there first and fall back to the primary.
	ReadURLs []SecretURL `yaml:"read_urls"`
	// MigrateURL connects as the role that owns the schema, for migrations
	// ("": URL; env GREY_PG_MIGRATE_URL).
	MigrateURL SecretURL `yaml:"migrate_url"`
	// Migrate applies pending migrations at start (else run
	// `greyd archive migrate`).
	Migrate bool `yaml:"migrate"`
}

// CassandraConfig configures the Cassandra archive driver.
type CassandraConfig struct {
	// Hosts are the contact points, host or host:port (9042 when absent);
	// env GREY_CASSANDRA_HOSTS=host1,host2,host3.
	Hosts []string `yaml:"hosts,omitempty"`
	// Keyspace holds the archive's tables ("": grey).
	Keyspace string `yaml:"keyspace"`
	// Consistency is the consistency level of reads and writes (""
	// local_quorum): one, two, three, quorum, all, local_quorum,
	// each_quorum, local_one.
	Consistency string `yaml:"consistency"`
	// ReadConsistency overrides Consistency for reads.
	ReadConsistency string `yaml:"read_consistency"`
	// WriteConsistency overrides Consistency for writes.
	WriteConsistency string `yaml:"write_consistency"`
	// LocalDC is the data centre whose nodes are tried first (DC-aware
	// routing; "": no preference).
	LocalDC string `yaml:"local_dc"`
	// Replication is the keyspace's replication when the migration creates
	// it: SimpleStrategy:N or NetworkTopologyStrategy:dc1=N,dc2=M.
	Replication string `yaml:"replication"`
	// Username and Password authenticate (PasswordAuthenticator).
	Username string `yaml:"username"`
	// Password goes with Username (env GREY_CASSANDRA_PASSWORD).
	Password Secret `yaml:"password"`
	// Migrate creates or upgrades the keyspace and tables at start.
	Migrate bool `yaml:"migrate"`
}

// MongoDBConfig configures the MongoDB archive driver.
type MongoDBConfig struct {
	// URL is mongodb://user:password@host:port/?options (env
	// GREY_MONGO_URL); its own options (w, readConcernLevel, ...) apply.
	URL SecretURL `yaml:"url"`
	// Database holds the archive's collection ("": the URL's path, else
	// grey).
	Database string `yaml:"database"`
	// WriteConcern is majority (the default), a number of members, or 1.
	WriteConcern string `yaml:"write_concern"`
	// ReadConcern is majority (the default), local or available.
	ReadConcern string `yaml:"read_concern"`
}

// ArchiveConfig tunes the pipeline that moves finished tasks from the Raft
// state to the archive (docs/ARCHIVE.md). It applies when a database driver
// is configured.
type ArchiveConfig struct {
	// URL names the archive directly by a URL of any driver this build
	// links (mem://, sharded://?shard=..., quorum://?replica=...), instead
	// of a database block (docs/ARCHIVE.md).
	URL SecretURL `yaml:"url"`
	// BatchSize is the most tasks written to the archive at once (0: 1000).
	BatchSize int `yaml:"batch_size"`
	// MaxBacklog is the most finished tasks the Raft state holds that the
	// archive has not acknowledged; past it new submissions are refused
	// (resource_exhausted) until the archive catches up (0: 100000).
	MaxBacklog int `yaml:"max_backlog"`
	// Retention is how long the archive keeps a finished task (0: forever).
	Retention Duration `yaml:"retention"`
}

// Driver names the configured database driver ("" when none): postgres,
// cassandra or mongodb, or "archive" when archive.url names the archive.
func (d *DatabaseConfig) Driver() string {
	switch {
	case d.Postgres.URL != "" || len(d.Postgres.Replicas) > 0 || len(d.Postgres.Shards) > 0:
		return "postgres"
	case len(d.Cassandra.Hosts) > 0:
		return "cassandra"
	case d.MongoDB.URL != "":
		return "mongodb"
	}
	return ""
}

// ArchiveURL returns the URL the archive opens, built from archive.url or
// the configured database block (quorum://... over replicas, sharded://...
// over shards), and the config key it came from; "" when no archive is
// configured. The URL may carry passwords: log it through archive.Redact.
func (c *Config) ArchiveURL() (rawURL, key string) {
	if c.Archive.URL != "" {
		return string(c.Archive.URL), "archive.url"
	}
	d := &c.Database
	switch d.Driver() {
	case "postgres":
		pg := &d.Postgres
		switch {
		case len(pg.Replicas) > 0:
			q := url.Values{}
			for _, r := range pg.Replicas {
				q.Add("replica", string(r))
			}
			w := pg.Quorum
			if w == "" {
				w = QuorumMajority
			}
			r := pg.ReadQuorum
			if r == "" {
				r = w
			}
			q.Set("write", w)
			q.Set("read", r)
			if pg.AntiEntropy > 0 {
				q.Set("anti_entropy", pg.AntiEntropy.Std().String())
			}
			if pg.AntiEntropyFull > 0 {
				q.Set("anti_entropy_full", pg.AntiEntropyFull.Std().String())
			}
			return "quorum://?" + q.Encode(), "database.postgres.replicas"
		case len(pg.Shards) > 0:
			q := url.Values{}
			for _, r := range pg.Shards {
				q.Add("shard", string(r))
			}
			return "sharded://?" + q.Encode(), "database.postgres.shards"
		}
		return string(pg.URL), "database.postgres.url"
	case "cassandra":
		return d.Cassandra.url(), "database.cassandra.hosts"
	case "mongodb":
		return d.MongoDB.url(), "database.mongodb.url"
	}
	return "", ""
}

// url is the cassandra:// URL of the block: the first host in the URL's
// host, the others in hosts=.
func (cc *CassandraConfig) url() string {
	u := url.URL{Scheme: "cassandra", Host: cc.Hosts[0], Path: "/" + cmp.Or(cc.Keyspace, "grey")}
	if cc.Username != "" {
		u.User = url.UserPassword(cc.Username, string(cc.Password))
	}
	q := url.Values{}
	if len(cc.Hosts) > 1 {
		q.Set("hosts", strings.Join(cc.Hosts[1:], ","))
	}
	for k, v := range map[string]string{"consistency": cc.Consistency, "read_consistency": cc.ReadConsistency,
		"write_consistency": cc.WriteConsistency, "local_dc": cc.LocalDC, "replication": cc.Replication} {
		if v != "" {
			q.Set(k, v)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// url is the mongodb:// URL of the block, with database, write_concern and
// read_concern folded into the URL (the URL's own options win).
func (mc *MongoDBConfig) url() string {
	u, err := url.Parse(string(mc.URL))
	if err != nil {
		return string(mc.URL) // validation has refused it already
	}
	if mc.Database != "" {
		u.Path = "/" + mc.Database
	}
	q := u.Query()
	if mc.WriteConcern != "" && !q.Has("w") {
		q.Set("w", mc.WriteConcern)
	}
	if mc.ReadConcern != "" && !q.Has("readConcernLevel") {
		q.Set("readConcernLevel", mc.ReadConcern)
	}
	u.RawQuery = q.Encode()
	return u.String()
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
	var set []string
	pg := &d.Postgres
	if pg.URL != "" || len(pg.Replicas) > 0 || len(pg.Shards) > 0 || pg.PoolSize != 0 || len(pg.ReadURLs) > 0 || pg.MigrateURL != "" || pg.Migrate || pg.ReadQuorum != "" {
		set = append(set, "database.postgres")
		v.postgres(pg)
	}
	if cc := &d.Cassandra; len(cc.Hosts) > 0 || cc.Keyspace != "" || cc.Consistency != "" || cc.ReadConsistency != "" || cc.WriteConsistency != "" ||
		cc.LocalDC != "" || cc.Replication != "" || cc.Username != "" || cc.Password != "" || cc.Migrate {
		set = append(set, "database.cassandra")
		v.cassandra(cc)
	}
	if mc := &d.MongoDB; mc.URL != "" || mc.Database != "" || mc.WriteConcern != "" || mc.ReadConcern != "" {
		set = append(set, "database.mongodb")
		v.mongodb(mc)
	}
	if len(set) > 1 {
		v.fail(set[1], "only one database driver can hold the archive, and %s is set too (a composite over several kinds of store is archive.url: sharded://... or quorum://..., see docs/ARCHIVE.md)", set[0])
	}
	if a.URL != "" {
		if len(set) > 0 {
			v.fail("archive.url", "names the archive, and %s does too: set one of them", set[0])
		}
		if p, err := url.Parse(string(a.URL)); err != nil || p.Scheme == "" {
			v.fail("archive.url", "is not a URL with a scheme (postgres://..., cassandra://..., mongodb://..., sharded://?shard=..., quorum://?replica=..., mem://)")
		}
	}
	between(v, "archive.batch_size", a.BatchSize, 0, 100000)
	between(v, "archive.max_backlog", a.MaxBacklog, 0, 100000000)
	v.nonNegative("archive.retention", a.Retention)
}

// quorumLevels are the values of database.postgres.quorum and read_quorum.
var quorumLevels = []string{QuorumOne, QuorumMajority, QuorumAll}

func (v *validator) postgres(pg *PostgresConfig) {
	n := 0
	for _, set := range []bool{pg.URL != "", len(pg.Replicas) > 0, len(pg.Shards) > 0} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		v.fail("database.postgres.url", "is required when database.postgres is set (postgres://user:password@host:5432/db, or GREY_PG_URL; or replicas: [...] for a quorum archive, shards: [...] for a sharded one)")
	case n > 1:
		v.fail("database.postgres", "set one of url, replicas and shards")
	}
	v.pgURL("database.postgres.url", pg.URL)
	v.pgURL("database.postgres.migrate_url", pg.MigrateURL)
	for i, r := range pg.ReadURLs {
		v.pgURL(fmt.Sprintf("database.postgres.read_urls[%d]", i), r)
	}
	for i, r := range pg.Replicas {
		v.pgURL(fmt.Sprintf("database.postgres.replicas[%d]", i), r)
	}
	for i, r := range pg.Shards {
		v.pgURL(fmt.Sprintf("database.postgres.shards[%d]", i), r)
	}
	if len(pg.Replicas) == 1 || len(pg.Shards) == 1 {
		v.fail("database.postgres", "one replica or shard is one database: use url")
	}
	if len(pg.ReadURLs) > 0 && pg.URL == "" {
		v.fail("database.postgres.read_urls", "are read replicas of url; with replicas or shards leave them out")
	}
	between(v, "database.postgres.pool_size", pg.PoolSize, 0, 10000)
	v.nonNegative("database.postgres.anti_entropy", pg.AntiEntropy)
	v.nonNegative("database.postgres.anti_entropy_full", pg.AntiEntropyFull)
	if pg.Quorum != "" {
		v.oneOf("database.postgres.quorum", pg.Quorum, quorumLevels...)
	}
	if pg.ReadQuorum != "" {
		v.oneOf("database.postgres.read_quorum", pg.ReadQuorum, quorumLevels...)
		if len(pg.Replicas) == 0 {
			v.fail("database.postgres.read_quorum", "applies to replicas; set database.postgres.replicas")
		}
	}
}

// cassandraLevels are the consistency levels the Cassandra driver accepts.
var cassandraLevels = []string{"any", "one", "two", "three", "quorum", "all", "local_quorum", "each_quorum", "local_one"}

func (v *validator) cassandra(cc *CassandraConfig) {
	if len(cc.Hosts) == 0 {
		v.fail("database.cassandra.hosts", "is required when database.cassandra is set (a list of host or host:port, or GREY_CASSANDRA_HOSTS=host1,host2)")
	}
	for i, h := range cc.Hosts {
		if err := checkHostPort(h); err != nil {
			v.fail("database.cassandra.hosts", "entry %d, %q: %v", i, h, err)
		}
	}
	if cc.Keyspace != "" && !cqlIdent.MatchString(cc.Keyspace) {
		v.fail("database.cassandra.keyspace", "must be a letter then letters, digits or _ (at most 48), got %q", cc.Keyspace)
	}
	for _, lv := range []struct{ key, val string }{{"consistency", cc.Consistency}, {"read_consistency", cc.ReadConsistency}, {"write_consistency", cc.WriteConsistency}} {
		if lv.val != "" {
			v.oneOf("database.cassandra."+lv.key, strings.ToLower(lv.val), cassandraLevels...)
		}
	}
	if cc.Password != "" && cc.Username == "" {
		v.fail("database.cassandra.username", "is required with a password")
	}
}

// checkHostPort accepts host or host:port.
func checkHostPort(h string) error {
	host, port := h, ""
	if strings.Contains(h, ":") {
		var err error
		if host, port, err = net.SplitHostPort(h); err != nil {
			return fmt.Errorf("not host or host:port: %w", err)
		}
	}
	if host == "" || strings.ContainsAny(host, "/?#@ ,") {
		return errors.New("not a host name or address")
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not 1 to 65535", port)
		}
	}
	return nil
}

// cqlIdent is an unquoted CQL keyspace name.
var cqlIdent = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,47}$`)

func (v *validator) mongodb(mc *MongoDBConfig) {
	if mc.URL == "" {
		v.fail("database.mongodb.url", "is required when database.mongodb is set (mongodb://user:password@host:27017/, or GREY_MONGO_URL)")
	} else if p, err := url.Parse(string(mc.URL)); err != nil {
		v.fail("database.mongodb.url", "is not a URL (want mongodb://user:password@host:27017/)")
	} else if s := strings.ToLower(p.Scheme); s != "mongodb" && s != "mongodb+srv" {
		v.fail("database.mongodb.url", "must be a mongodb:// or mongodb+srv:// URL, got scheme %q", p.Scheme)
	}
	if mc.Database != "" && (strings.ContainsAny(mc.Database, "/\\. \"$*<>:|?") || len(mc.Database) > 63) {
		v.fail("database.mongodb.database", "is not a MongoDB database name, got %q", mc.Database)
	}
	if w := mc.WriteConcern; w != "" && w != "majority" {
		if n, err := strconv.Atoi(w); err != nil || n < 0 {
			v.fail("database.mongodb.write_concern", "must be majority or a number of members, got %q", w)
		}
	}
	if mc.ReadConcern != "" {
		v.oneOf("database.mongodb.read_concern", mc.ReadConcern, "majority", "local", "available", "linearizable", "snapshot")
	}
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

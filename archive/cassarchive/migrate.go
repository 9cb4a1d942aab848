package cassarchive

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/greyerr"
)

// migration is one versioned step of the keyspace's schema. Its
// statements name the keyspace as %[1]s and are idempotent (IF NOT
// EXISTS), so a step cut short is applied again whole.
type migration struct {
	version     int64
	description string
	stmts       []string
}

// twcs is the compaction of the record tables: SSTables grouped by day of
// write, so data that expires together (TTL) leaves by dropping whole
// files.
const twcs = `compaction = {'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'DAYS', 'compaction_window_size': 1}`

var migrations = []migration{{
	version:     1,
	description: "tasks by tenant and id-time bucket, tenant buckets, proofs, settings",
	stmts: []string{
		`CREATE TABLE IF NOT EXISTS %[1]s.settings (name text PRIMARY KEY, value text)`,
		`CREATE TABLE IF NOT EXISTS %[1]s.tasks (
			tenant_id text, bucket bigint, id text,
			finished_us bigint, status text, kind text, labels frozen<map<text, text>>,
			task blob, payload blob, result blob, proof_id text,
			PRIMARY KEY ((tenant_id, bucket), id)
		) WITH CLUSTERING ORDER BY (id DESC) AND ` + twcs,
		`CREATE TABLE IF NOT EXISTS %[1]s.tenant_buckets (
			tenant_id text, bucket bigint,
			PRIMARY KEY ((tenant_id), bucket)
		) WITH CLUSTERING ORDER BY (bucket DESC)`,
		`CREATE TABLE IF NOT EXISTS %[1]s.proofs (
			tenant_id text, proof_id text, envelope blob,
			PRIMARY KEY ((tenant_id, proof_id))
		) WITH ` + twcs,
	},
}, {
	version:     2,
	description: "tasks carry a proof envelope that only they name",
	stmts: []string{
		`ALTER TABLE %[1]s.tasks ADD proof blob`,
	},
}}

// LatestVersion is the keyspace schema version this binary needs.
func LatestVersion() int64 { return migrations[len(migrations)-1].version }

// lockTTL bounds how long a migration lock outlives a process that died
// holding it.
const lockTTL = 300

// lockWait bounds how long a migration waits for another one's lock.
const lockWait = 5 * time.Minute

// Migrate makes the keyspace of rawURL and applies the pending
// migrations, under the keyspace's migration lock; it returns the schema
// versions before and after. A keyspace newer than the binary, or a
// replication the cluster cannot satisfy, is FailedPrecondition.
func Migrate(ctx context.Context, rawURL string, opts archive.OpenOptions) (from, to int64, err error) {
	cfg, err := ParseURL(rawURL)
	if err != nil {
		return 0, 0, err
	}
	d := newDriver(cfg, opts)
	defer d.Close()
	s, err := d.session(ctx)
	if err != nil {
		return 0, 0, err
	}
	return d.migrate(ctx, s)
}

func (d *Driver) migrate(ctx context.Context, s *gocql.Session) (from, to int64, err error) {
	ks := d.cfg.Keyspace
	if err := d.ensureKeyspace(ctx, s); err != nil {
		return 0, 0, err
	}
	for _, stmt := range []string{
		`CREATE TABLE IF NOT EXISTS %[1]s.schema_migrations (version int PRIMARY KEY, description text, applied_at timestamp, applied_by text)`,
		`CREATE TABLE IF NOT EXISTS %[1]s.schema_lock (name text PRIMARY KEY, owner text, acquired_at timestamp)`,
	} {
		if err := d.ddl(ctx, s, fmt.Sprintf(stmt, ks)); err != nil {
			return 0, 0, err
		}
	}
	owner := lockOwner()
	if err := d.lock(ctx, s, owner); err != nil {
		return 0, 0, err
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if uerr := d.unlock(uctx, s, owner); uerr != nil {
			d.log.Warn("archive: release the migration lock (it expires by itself)", "keyspace", ks, "err", uerr)
		}
	}()
	from, err = d.schemaVersion(ctx, s, true)
	if err != nil {
		return 0, 0, err
	}
	if from > LatestVersion() {
		return from, from, newerSchema(ks, from)
	}
	for _, m := range migrations {
		if m.version <= from {
			continue
		}
		for _, stmt := range m.stmts {
			if err := d.ddl(ctx, s, fmt.Sprintf(stmt, ks)); err != nil {
				// ALTER TABLE ... ADD has no IF NOT EXISTS: a column a cut
				// short run already added is what this step wants.
				if !strings.HasPrefix(stmt, "ALTER TABLE") || !strings.Contains(strings.ToLower(err.Error()), "already exist") {
					return from, 0, fmt.Errorf("migration %d: %w", m.version, err)
				}
				if err := s.AwaitSchemaAgreement(ctx); err != nil {
					return from, 0, classify(err, "wait for schema agreement")
				}
			}
		}
		if m.version == 1 {
			if err := d.initSettings(ctx, s); err != nil {
				return from, 0, err
			}
		}
		rec := fmt.Sprintf(`INSERT INTO %s.schema_migrations (version, description, applied_at, applied_by) VALUES (?, ?, ?, ?) IF NOT EXISTS`, ks)
		if _, err := d.cas(ctx, s, rec, []any{m.version, m.description, time.Now(), owner}, func(ctx context.Context) (bool, error) {
			v, err := d.schemaVersion(ctx, s, true)
			return v >= m.version, err
		}); err != nil {
			return from, 0, fmt.Errorf("record migration %d: %w", m.version, err)
		}
		d.log.Info("archive: applied migration", "keyspace", ks, "version", m.version, "description", m.description)
	}
	return from, LatestVersion(), nil
}

// initSettings records the keyspace's bucket width once (the first
// migration to get there wins; later URLs cannot change it).
func (d *Driver) initSettings(ctx context.Context, s *gocql.Session) error {
	stmt := fmt.Sprintf(`INSERT INTO %s.settings (name, value) VALUES ('bucket_ms', ?) IF NOT EXISTS`, d.cfg.Keyspace)
	_, err := d.cas(ctx, s, stmt, []any{strconv.FormatInt(d.cfg.Bucket.Milliseconds(), 10)}, func(ctx context.Context) (bool, error) {
		_, err := d.readBucket(ctx, s)
		return err == nil, err
	})
	return err
}

// readBucket reads the keyspace's bucket width (ms).
func (d *Driver) readBucket(ctx context.Context, s *gocql.Session) (int64, error) {
	var v string
	err := s.Query(fmt.Sprintf(`SELECT value FROM %s.settings WHERE name = 'bucket_ms'`, d.cfg.Keyspace)).
		Consistency(d.cfg.ReadConsistency).ScanContext(ctx, &v)
	if err == gocql.ErrNotFound {
		return 0, greyerr.New(greyerr.FailedPrecondition, "keyspace %s has no bucket setting: its first migration did not finish; run `greyd archive migrate`", d.cfg.Keyspace)
	}
	if err != nil {
		return 0, classify(err, "read the keyspace's settings")
	}
	n, perr := strconv.ParseInt(v, 10, 64)
	if perr != nil || n < 1 {
		return 0, greyerr.New(greyerr.FailedPrecondition, "keyspace %s: bucket_ms setting %q is not a positive number", d.cfg.Keyspace, v)
	}
	return n, nil
}

// ddl runs a schema change and waits until the cluster's nodes agree on
// the schema.
func (d *Driver) ddl(ctx context.Context, s *gocql.Session, stmt string) error {
	if err := s.Query(stmt).Consistency(gocql.All).ExecContext(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return classify(err, "schema change "+firstLine(stmt))
	}
	if err := s.AwaitSchemaAgreement(ctx); err != nil {
		return classify(err, "wait for schema agreement after "+firstLine(stmt))
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "(")
	return strings.TrimSpace(s)
}

// cas runs a lightweight transaction and reports whether it applied. A
// failed condition is a result (false), never an error and never
// retried. When the outcome is unknown (a timeout of the Paxos round, or
// CAS_WRITE_UNKNOWN), resolve reads the state back at serial consistency
// and says whether the intended effect holds; the statement is not run
// again.
func (d *Driver) cas(ctx context.Context, s *gocql.Session, stmt string, args []any, resolve func(context.Context) (bool, error)) (bool, error) {
	wc := d.cfg.WriteConsistency
	if wc == gocql.Any {
		wc = gocql.LocalQuorum // a Paxos commit cannot be ANY
	}
	applied, err := s.Query(stmt, args...).Consistency(wc).SerialConsistency(d.cfg.SerialConsistency).
		MapScanCASContext(ctx, map[string]any{})
	if err == nil {
		return applied, nil
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if unknownOutcome(err) && resolve != nil {
		d.log.Info("archive: a lightweight transaction's outcome is unknown; reading it back", "err", err)
		ok, rerr := resolve(ctx)
		if rerr != nil {
			return false, rerr
		}
		return ok, nil
	}
	return false, classify(err, "lightweight transaction "+firstLine(stmt))
}

// unknownOutcome reports whether a lightweight transaction failed without
// saying whether it applied.
func unknownOutcome(err error) bool {
	var wt *gocql.RequestErrWriteTimeout
	if ok := asErr(err, &wt); ok {
		return true // SIMPLE or CAS: the write may have been applied
	}
	var cu *gocql.RequestErrCASWriteUnknown
	if asErr(err, &cu) {
		return true
	}
	return err == gocql.ErrTimeoutNoResponse
}

// lock takes the keyspace's migration lock, waiting for another holder.
func (d *Driver) lock(ctx context.Context, s *gocql.Session, owner string) error {
	stmt := fmt.Sprintf(`INSERT INTO %s.schema_lock (name, owner, acquired_at) VALUES ('migrate', ?, ?) IF NOT EXISTS USING TTL %d`, d.cfg.Keyspace, lockTTL)
	holder := func(ctx context.Context) (string, error) {
		var o string
		err := s.Query(fmt.Sprintf(`SELECT owner FROM %s.schema_lock WHERE name = 'migrate'`, d.cfg.Keyspace)).
			Consistency(d.cfg.SerialConsistency).ScanContext(ctx, &o)
		if err == gocql.ErrNotFound {
			return "", nil
		}
		if err != nil {
			return "", classify(err, "read the migration lock")
		}
		return o, nil
	}
	deadline := time.Now().Add(lockWait)
	wait := 200 * time.Millisecond
	for {
		ok, err := d.cas(ctx, s, stmt, []any{owner, time.Now()}, func(ctx context.Context) (bool, error) {
			h, err := holder(ctx)
			return h == owner, err
		})
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		// The condition failed: another migration holds the lock. That is
		// waited out, not retried as a failure.
		h, _ := holder(ctx)
		if time.Now().After(deadline) {
			return greyerr.New(greyerr.Unavailable, "keyspace %s: another migration (%s) holds the lock for more than %s", d.cfg.Keyspace, h, lockWait)
		}
		d.log.Info("archive: waiting for another migration's lock", "keyspace", d.cfg.Keyspace, "holder", h)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

func (d *Driver) unlock(ctx context.Context, s *gocql.Session, owner string) error {
	stmt := fmt.Sprintf(`DELETE FROM %s.schema_lock WHERE name = 'migrate' IF owner = ?`, d.cfg.Keyspace)
	_, err := d.cas(ctx, s, stmt, []any{owner}, nil)
	return err
}

func lockOwner() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// schemaVersion returns the highest applied migration (0 when the
// keyspace or its bookkeeping is missing), read at serial consistency
// when serial.
func (d *Driver) schemaVersion(ctx context.Context, s *gocql.Session, serial bool) (int64, error) {
	cl := d.cfg.ReadConsistency
	if serial {
		cl = d.cfg.SerialConsistency
	}
	it := s.Query(fmt.Sprintf(`SELECT version FROM %s.schema_migrations`, d.cfg.Keyspace)).Consistency(cl).IterContext(ctx)
	var top, v int64
	for it.Scan(&v) {
		top = max(top, v)
	}
	if err := it.Close(); err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if c := classify(err, "read the schema version"); greyerr.CodeOf(c) == greyerr.FailedPrecondition {
			return 0, nil // no keyspace or no bookkeeping yet
		} else {
			return 0, c
		}
	}
	return top, nil
}

// checkSchema refuses a keyspace this binary cannot use.
func (d *Driver) checkSchema(ctx context.Context, s *gocql.Session) error {
	v, err := d.schemaVersion(ctx, s, false)
	if err != nil {
		return err
	}
	switch {
	case v > LatestVersion():
		return newerSchema(d.cfg.Keyspace, v)
	case v == 0:
		return greyerr.New(greyerr.FailedPrecondition,
			"the archive keyspace %s is missing or not migrated (this binary needs schema version %d): run `greyd archive migrate`, or set the archive to migrate at start", d.cfg.Keyspace, LatestVersion())
	case v < LatestVersion():
		return greyerr.New(greyerr.FailedPrecondition,
			"the archive keyspace %s is at schema version %d, older than this binary's version %d: run `greyd archive migrate`", d.cfg.Keyspace, v, LatestVersion())
	}
	return nil
}

func newerSchema(ks string, v int64) error {
	return greyerr.New(greyerr.FailedPrecondition,
		"the archive keyspace %s is at schema version %d, newer than this binary's version %d: run a greyd at least as new as the one that migrated it", ks, v, LatestVersion())
}

// topology returns the cluster's nodes per data center, as the
// coordinator sees them (itself and its peers). Peers come from
// system.peers_v2 (Cassandra 4.0+, one row per address and port), else
// from system.peers (one row per address: nodes sharing an address count
// once there).
func topology(ctx context.Context, s *gocql.Session) (map[string]int, error) {
	dcs := map[string]int{}
	count := func(table string) error {
		it := s.Query(`SELECT data_center FROM ` + table).Consistency(gocql.One).IterContext(ctx)
		var dc string
		for it.Scan(&dc) {
			dcs[dc]++
		}
		return it.Close()
	}
	if err := count("system.local"); err != nil {
		return nil, classify(err, "read the cluster's topology")
	}
	local := maps.Clone(dcs)
	err := count("system.peers_v2")
	var inv *gocql.RequestErrInvalid
	if errors.As(err, &inv) { // before Cassandra 4.0: no peers_v2
		dcs = local
		err = count("system.peers")
	}
	if err != nil {
		return nil, classify(err, "read the cluster's topology")
	}
	return dcs, nil
}

func describeTopology(dcs map[string]int) string {
	names := make([]string, 0, len(dcs))
	for dc := range dcs {
		names = append(names, dc)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, dc := range names {
		parts[i] = fmt.Sprintf("%s: %d", dc, dcs[dc])
	}
	return strings.Join(parts, ", ")
}

// satisfiable checks that the cluster has a node for every replica r asks
// for, naming what is needed and what is there.
func satisfiable(r Replication, dcs map[string]int, prefix string) error {
	total := 0
	for _, n := range dcs {
		total += n
	}
	switch r.Class {
	case simpleStrategy:
		if r.Factor > total {
			return greyerr.New(greyerr.FailedPrecondition,
				"%sreplication %s needs %d replicas but the cluster has %d node(s) (%s): lower the replication factor or add nodes",
				prefix, r, r.Factor, total, describeTopology(dcs))
		}
	case networkStrategy:
		var dcNames []string
		for dc := range r.DCs {
			dcNames = append(dcNames, dc)
		}
		sort.Strings(dcNames)
		for _, dc := range dcNames {
			if need, have := r.DCs[dc], dcs[dc]; need > have {
				return greyerr.New(greyerr.FailedPrecondition,
					"%sreplication %s needs %d replicas in data center %s but it has %d node(s) (the cluster: %s)",
					prefix, r, need, dc, have, describeTopology(dcs))
			}
		}
	}
	return nil
}

// ensureKeyspace makes the keyspace with the configured replication
// (after checking the cluster can hold it), or checks the existing one's.
func (d *Driver) ensureKeyspace(ctx context.Context, s *gocql.Session) error {
	dcs, err := topology(ctx, s)
	if err != nil {
		return err
	}
	existing, found, err := keyspaceReplication(ctx, s, d.cfg.Keyspace)
	if err != nil {
		return err
	}
	if found {
		if err := satisfiable(existing, dcs, "keyspace "+d.cfg.Keyspace+" exists: "); err != nil {
			return err
		}
		if d.cfg.Replication.Class != "" && existing.String() != d.cfg.Replication.String() {
			d.log.Warn("archive: the keyspace exists with another replication; it is left as it is (ALTER KEYSPACE to change it)",
				"keyspace", d.cfg.Keyspace, "keyspace_replication", existing.String(), "configured", d.cfg.Replication.String())
		}
		return nil
	}
	r := d.cfg.Replication
	if r.Class == "" {
		total := 0
		for _, n := range dcs {
			total += n
		}
		r = Replication{Class: simpleStrategy, Factor: max(1, min(3, total))}
	}
	if err := satisfiable(r, dcs, ""); err != nil {
		return err
	}
	d.log.Info("archive: creating keyspace", "keyspace", d.cfg.Keyspace, "replication", r.String())
	return d.ddl(ctx, s, fmt.Sprintf(`CREATE KEYSPACE IF NOT EXISTS %s WITH replication = %s`, d.cfg.Keyspace, r.cql()))
}

// keyspaceReplication reads an existing keyspace's replication.
func keyspaceReplication(ctx context.Context, s *gocql.Session, ks string) (Replication, bool, error) {
	var m map[string]string
	err := s.Query(`SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?`, ks).Consistency(gocql.One).ScanContext(ctx, &m)
	if err == gocql.ErrNotFound {
		return Replication{}, false, nil
	}
	if err != nil {
		return Replication{}, false, classify(err, "read keyspace "+ks)
	}
	class := m["class"]
	class = class[strings.LastIndex(class, ".")+1:]
	r := Replication{Class: class}
	switch class {
	case simpleStrategy:
		r.Factor, _ = strconv.Atoi(m["replication_factor"])
	case networkStrategy:
		r.DCs = map[string]int{}
		for k, v := range m {
			if k == "class" {
				continue
			}
			n, _ := strconv.Atoi(v)
			r.DCs[k] = n
		}
	}
	return r, true, nil
}

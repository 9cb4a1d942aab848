package pgarchive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	gojson "github.com/goccy/go-json"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// clockSlack is how much earlier than its id's UUIDv7 time a task may
// have finished (clocks of the node that made the id and of the leader
// that finished it may disagree; Upsert refuses more). Get and List bound
// their search by it.
const clockSlack = 24 * time.Hour

const day = 24 * time.Hour

// unixDay returns the UTC day of t as days since 1970-01-01.
func unixDay(t time.Time) int64 {
	return t.UTC().Truncate(day).Unix() / 86400
}

// idTime returns the creation time a UUIDv7 id carries.
func idTime(id string) (time.Time, bool) {
	u, err := uuid.Parse(id)
	if err != nil || u.Version() != 7 {
		return time.Time{}, false
	}
	sec, nsec := u.Time().UnixTime()
	return time.Unix(sec, nsec), true
}

// lowerBound is the earliest finish time a record of task id can have
// (clocks allowing), or -infinity when the id is not a UUIDv7.
func lowerBound(id string) pgtype.Timestamptz {
	if t, ok := idTime(id); ok {
		return pgtype.Timestamptz{Time: t.Add(-clockSlack).Truncate(day), Valid: true}
	}
	return pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}
}

// ensurePartitions makes sure the daily partitions of days exist.
func (d *Driver) ensurePartitions(ctx context.Context, days []int64) error {
	d.partsMu.Lock()
	var missing []time.Time
	for _, dd := range days {
		if !d.parts[dd] {
			missing = append(missing, time.Unix(dd*86400, 0).UTC())
		}
	}
	d.partsMu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	if err := d.ensureReady(ctx, d.primary); err != nil {
		return err
	}
	for chunk := range slices.Chunk(missing, 1000) {
		dates := make([]pgtype.Date, len(chunk))
		for i, t := range chunk {
			dates[i] = pgtype.Date{Time: t, Valid: true}
		}
		if _, err := d.primary.p.Exec(ctx, `SELECT `+Schema+`.ensure_partitions($1::date[])`, dates); err != nil {
			return classify(err, "archive primary: create partitions")
		}
	}
	d.partsMu.Lock()
	for _, dd := range days {
		d.parts[dd] = true
	}
	d.partsMu.Unlock()
	return nil
}

// forgetPartitions drops the cache of known partitions (before a retry,
// after a retention).
func (d *Driver) forgetPartitions() {
	d.partsMu.Lock()
	clear(d.parts)
	d.partsMu.Unlock()
}

// upsertSQL writes a batch of one tenant's records from arrays. The
// DELETE removes a copy of a task stored under another finish time (a
// partitioned table's key holds the finish time, so ON CONFLICT alone
// would keep both); $9 bounds it to the partitions such a copy can be in,
// and id = ANY($2) makes it a primary-key probe per id rather than a join
// over the tenant's rows (which grew with the table: 1.3 s per 1000 rows
// after 20,000).
const upsertSQL = `WITH src AS (
	SELECT * FROM unnest($2::uuid[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $10::text[], $11::text[])
		AS s(id, finished_at, status, kind, labels, task, proof_id, payload, result)
), moved AS (
	DELETE FROM ` + Schema + `.tasks t
	WHERE t.tenant_id = $1 AND t.id = ANY($2::uuid[]) AND t.finished_at >= $9
		AND NOT EXISTS (SELECT 1 FROM src WHERE src.id = t.id AND src.finished_at = t.finished_at)
), prf AS (
	INSERT INTO ` + Schema + `.proofs AS p (tenant_id, id, last_finished_at, envelope)
	SELECT $1, id, fin, env::json FROM unnest($12::text[], $13::timestamptz[], $14::text[]) AS x(id, fin, env)
	ON CONFLICT (tenant_id, id) DO UPDATE SET last_finished_at = GREATEST(p.last_finished_at, EXCLUDED.last_finished_at)
)
INSERT INTO ` + Schema + `.tasks AS t (tenant_id, id, finished_at, status, kind, labels, task, payload, result, proof_id)
SELECT $1, id, finished_at, status, kind, labels::jsonb, task, payload, result, proof_id FROM src
ON CONFLICT (tenant_id, id, finished_at) DO UPDATE SET
	status = EXCLUDED.status, kind = EXCLUDED.kind, labels = EXCLUDED.labels, task = EXCLUDED.task,
	payload = EXCLUDED.payload, result = EXCLUDED.result, proof_id = EXCLUDED.proof_id, archived_at = now()`

// insertSQL is Upsert's common case, a batch of tasks the archive does
// not hold yet (a delivery is repeated only after a failover or a
// failed acknowledgement): a plain INSERT, which costs PostgreSQL about a
// quarter less than upsertSQL's ON CONFLICT and DELETE. It inserts
// nothing when any of the ids is stored already ($9 bounds the probe to
// the partitions a copy can be in, as in upsertSQL); Upsert then runs
// upsertSQL. A concurrent writer of the same ids makes it fail with a
// unique violation or a deadlock, and Upsert runs upsertSQL instead.
const insertSQL = `WITH src AS (
	SELECT * FROM unnest($2::uuid[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $10::text[], $11::text[])
		AS s(id, finished_at, status, kind, labels, task, proof_id, payload, result)
), prf AS (
	INSERT INTO ` + Schema + `.proofs AS p (tenant_id, id, last_finished_at, envelope)
	SELECT $1, id, fin, env::json FROM unnest($12::text[], $13::timestamptz[], $14::text[]) AS x(id, fin, env)
	ON CONFLICT (tenant_id, id) DO UPDATE SET last_finished_at = GREATEST(p.last_finished_at, EXCLUDED.last_finished_at)
)
INSERT INTO ` + Schema + `.tasks (tenant_id, id, finished_at, status, kind, labels, task, payload, result, proof_id)
SELECT $1, id, finished_at, status, kind, labels::jsonb, task, payload, result, proof_id FROM src
WHERE NOT EXISTS (SELECT 1 FROM ` + Schema + `.tasks t WHERE t.tenant_id = $1 AND t.id = ANY($2::uuid[]) AND t.finished_at >= $9)`

// Upsert implements archive.Driver: one transaction, one statement of
// unnest arrays (insertSQL, else upsertSQL), after making sure the batch's daily partitions exist.
func (d *Driver) Upsert(ctx context.Context, tenant string, recs []archive.Record) error {
	if len(recs) == 0 {
		return nil
	}
	// The last copy of a task in the batch wins (one statement may not
	// touch a row twice).
	last := make(map[string]int, len(recs))
	for i, r := range recs {
		if r.Task == nil || r.Task.FinishedAt == nil {
			return greyerr.Invalid("task", "record %d is not a finished task", i)
		}
		last[r.Task.ID] = i
	}
	n := len(last)
	var (
		ids     = make([]string, 0, n)
		fins    = make([]time.Time, 0, n)
		status  = make([]string, 0, n)
		kinds   = make([]string, 0, n)
		labels  = make([]string, 0, n)
		tasks   = make([]string, 0, n)
		proofs  = make([]*string, 0, n) // each task's envelope id
		pays    = make([]*string, 0, n)
		results = make([]*string, 0, n)
		days    []int64
		seenDay = map[int64]bool{}
		bound   pgtype.Timestamptz
		// the batch's envelopes, once each: one covers a report batch of
		// the tenant's tasks (hundreds), and is kilobytes
		envIDs  []string
		envFins []time.Time
		envs    []string
		envAt   = map[string]int{}
	)
	for i, r := range recs {
		if last[r.Task.ID] != i {
			continue
		}
		t := r.Task
		if t.TenantID != tenant {
			return greyerr.Invalid("tenant_id", "record of task %s belongs to another tenant", t.ID)
		}
		// encoding/json compacts and HTML-escapes a RawMessage: the payload
		// and the result go in their own columns, byte for byte.
		bare := *t
		bare.Payload, bare.Result = nil, nil
		// goccy/go-json, like decode: encoding/json cost more CPU per
		// task than the rest of the archive's path in greyd.
		tj, err := gojson.Marshal(&bare)
		if err != nil {
			return greyerr.Invalid("task", "task %s does not encode as JSON: %v", t.ID, err)
		}
		lj := []byte("{}") // most tasks require no labels: no encoder call
		if l := t.Spec.Labels(); len(l) > 0 {
			var err error
			if lj, err = json.Marshal(l); err != nil {
				return greyerr.Invalid("labels", "task %s: %v", t.ID, err)
			}
		}
		var raw [3]*string
		// An envelope is validated, hashed and sent once per batch: it is
		// the same for the hundreds of tasks of one report batch.
		envID, seen := envelopeID(r, envAt, envs)
		for j, b := range [3]json.RawMessage{r.Proof, t.Payload, t.Result} {
			if len(b) == 0 || (j == 0 && seen) {
				continue
			}
			// goccy's validator: the same grammar as encoding/json's, at
			// a fraction of its CPU per task
			if !gojson.Valid(b) {
				return greyerr.Invalid([3]string{"proof", "payload", "result"}[j], "the %s of task %s is not JSON", [3]string{"proof", "payload", "result"}[j], t.ID)
			}
			// b belongs to the caller and is read only until Upsert
			// returns: sent without a copy
			s := unsafe.String(unsafe.SliceData(b), len(b))
			raw[j] = &s
		}
		fin := t.FinishedAt.UTC()
		// List and Get prune partitions by the time in the id (see
		// List): only ids that carry their creation time, and tasks that
		// finished after it (clocks allowing), are stored.
		it, ok := idTime(t.ID)
		if !ok {
			return greyerr.Invalid("id", "task id %s is not a UUIDv7: the archive orders and finds tasks by the time in their ids", t.ID)
		}
		if it.After(fin.Add(clockSlack)) {
			return greyerr.Invalid("finished_at", "task %s finished at %s, more than %s before its id's time %s", t.ID, fin.Format(time.RFC3339Nano), clockSlack, it.UTC().Format(time.RFC3339Nano))
		}
		ids = append(ids, t.ID)
		fins = append(fins, fin)
		status = append(status, string(t.Status))
		kinds = append(kinds, t.Kind)
		labels = append(labels, string(lj))
		// tj is this call's own buffer and never changes: sent as a
		// string without a copy (a copy per task was ~1.3 KB more garbage
		// for greyd's collector, which scans a large heap).
		tasks = append(tasks, unsafe.String(unsafe.SliceData(tj), len(tj)))
		var proofID *string
		if envID != "" {
			proofID = &envID
			if k, ok := envAt[envID]; !ok {
				envAt[envID] = len(envIDs)
				envIDs, envFins, envs = append(envIDs, envID), append(envFins, fin), append(envs, *raw[0])
			} else if fin.After(envFins[k]) {
				envFins[k] = fin
			}
		}
		proofs = append(proofs, proofID)
		pays = append(pays, raw[1])
		results = append(results, raw[2])
		if dd := unixDay(fin); !seenDay[dd] {
			seenDay[dd] = true
			days = append(days, dd)
		}
		// the earliest bound of the batch (-infinity wins)
		if b := lowerBound(t.ID); !bound.Valid || b.InfinityModifier == pgtype.NegativeInfinity ||
			(bound.InfinityModifier == pgtype.Finite && b.Time.Before(bound.Time)) {
			bound = b
		}
	}
	for attempt := 0; ; attempt++ {
		if err := d.ensurePartitions(ctx, days); err != nil {
			return err
		}
		args := []any{tenant, ids, fins, status, kinds, labels, tasks, proofs, bound, pays, results, envIDs, envFins, envs}
		lockTenant := func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('`+Schema+`.tasks ' || $1, 0))`, tenant)
			return classify(err, "archive primary: lock the tenant's writes")
		}
		exec := func(tx pgx.Tx, sql string) (int64, error) {
			tag, err := tx.Exec(ctx, sql, args...)
			if err != nil {
				var pe *pgconn.PgError
				if errors.As(err, &pe) && pe.Code == "23514" && strings.Contains(pe.Message, "no partition") {
					return 0, errNoPartition
				}
				// unique_violation, deadlock_detected: a concurrent writer
				// of the same ids (their row locks meet in any order)
				if errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "40P01") && sql == insertSQL {
					return 0, errStored
				}
				return 0, classify(err, "archive primary: upsert")
			}
			return tag.RowsAffected(), nil
		}
		var made *pgx.Conn // a connection whose staging table this transaction created
		err := d.inTenant(ctx, d.primary, tenant, false, func(tx pgx.Tx) error {
			// One writer of a tenant's tasks at a time: two leaders
			// delivering the same batch (a failover) would otherwise lock
			// the same rows in different orders and deadlock.
			if err := lockTenant(tx); err != nil {
				return err
			}
			var (
				n   int64
				err error
			)
			if d.noCopy.Load() {
				n, err = exec(tx, insertSQL)
			} else {
				n, err = d.copyInsert(ctx, tx, &made, tenant, ids, fins, status, kinds, labels, tasks, proofs, pays, results, bound, envIDs, envFins, envs)
			}
			if err == nil && n == 0 {
				_, err = exec(tx, upsertSQL) // some are stored already
			}
			return err
		})
		if made != nil && err == nil {
			// committed: the table lasts as long as the session
			d.primary.staged.Store(made, struct{}{})
		}
		if errors.Is(err, errStored) {
			// A concurrent writer stored some of the ids first.
			err = d.inTenant(ctx, d.primary, tenant, false, func(tx pgx.Tx) error {
				if err := lockTenant(tx); err != nil {
					return err
				}
				_, err := exec(tx, upsertSQL)
				return err
			})
		}
		if errors.Is(err, errNoTemp) && !d.noCopy.Load() {
			d.log.Warn("archive: the role may not create a temporary table; sending rows as arrays instead of COPY", "err", err)
			d.noCopy.Store(true)
			continue
		}
		if errors.Is(err, errNoPartition) && attempt == 0 {
			// A retention dropped a partition this process thought it had.
			d.forgetPartitions()
			continue
		}
		if errors.Is(err, errNoPartition) {
			return greyerr.New(greyerr.Internal, "archive primary: upsert: a partition is missing after it was created")
		}
		return err
	}
}

// stageTable is the per-session temporary table Upsert copies a batch
// into. PostgreSQL refuses COPY into a table with row-level security, so
// the rows go through it: COPY streams them from one reused buffer (pgx's
// Bind of the same rows as parameters grows and drops ~15 KB of buffers
// per task), then copyInsertSQL moves them into the tasks table under the
// tenant's policy. ON COMMIT DELETE ROWS empties it at the end of every
// transaction, and a rolled-back COPY leaves nothing: a batch never
// sees another's rows. It is a session's own: no other connection, and so
// no other tenant, can read it.
const stageTable = "grey_archive_stage"

// stageSQL creates stageTable in this session (once per connection).
const stageSQL = `CREATE TEMPORARY TABLE IF NOT EXISTS ` + stageTable + ` (
	id uuid NOT NULL, finished_at timestamptz NOT NULL, status text NOT NULL, kind text NOT NULL,
	labels text NOT NULL, task text NOT NULL, proof_id text, payload text, result text
) ON COMMIT DELETE ROWS`

// stageColumns are stageTable's columns, in CopyFrom's order.
var stageColumns = []string{"id", "finished_at", "status", "kind", "labels", "task", "proof_id", "payload", "result"}

// copyInsertSQL is insertSQL reading the batch from stageTable: the
// envelopes (a few per batch) still go as arrays; it inserts nothing when
// any of the staged ids is stored already ($2 bounds the probe to the
// partitions a copy can be in).
const copyInsertSQL = `WITH prf AS (
	INSERT INTO ` + Schema + `.proofs AS p (tenant_id, id, last_finished_at, envelope)
	SELECT $1, id, fin, env::json FROM unnest($3::text[], $4::timestamptz[], $5::text[]) AS x(id, fin, env)
	ON CONFLICT (tenant_id, id) DO UPDATE SET last_finished_at = GREATEST(p.last_finished_at, EXCLUDED.last_finished_at)
)
INSERT INTO ` + Schema + `.tasks (tenant_id, id, finished_at, status, kind, labels, task, payload, result, proof_id)
SELECT $1, id, finished_at, status, kind, labels::jsonb, task, payload, result, proof_id FROM pg_temp.` + stageTable + `
WHERE NOT EXISTS (SELECT 1 FROM ` + Schema + `.tasks t WHERE t.tenant_id = $1
	AND t.id = ANY(ARRAY(SELECT id FROM pg_temp.` + stageTable + `)) AND t.finished_at >= $2)`

// copyInsert writes a batch of new tasks through stageTable (see there) in
// tx and returns how many rows it inserted: 0 when some are stored
// already (the caller runs upsertSQL). errStored: a concurrent writer;
// errNoTemp: the role may not create the staging table. *made is set to
// tx's connection when this transaction creates its staging table.
func (d *Driver) copyInsert(ctx context.Context, tx pgx.Tx, made **pgx.Conn, tenant string, ids []string, fins []time.Time,
	status, kinds, labels, tasks []string, proofs, pays, results []*string, bound pgtype.Timestamptz,
	envIDs []string, envFins []time.Time, envs []string) (int64, error) {
	conn := tx.Conn()
	if _, ok := d.primary.staged.Load(conn); !ok {
		if _, err := tx.Exec(ctx, stageSQL); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && (pe.Code == "42501" || pe.Code == "25006") {
				return 0, fmt.Errorf("%w: %w", errNoTemp, err)
			}
			return 0, classify(err, "archive primary: create the staging table")
		}
		// The table outlives this transaction only if it commits: the
		// caller marks the connection then (until then IF NOT EXISTS makes
		// a second creation harmless).
		*made = conn
	}
	// One row of column values for the whole batch, refilled per row:
	// CopyFrom encodes a row before it asks for the next. Each column is
	// a pointer to a valuer pgx encodes directly; a string, a time or a
	// plain pointer in the row would cost an allocation per column and row.
	var (
		i    int
		id   uuidCol
		fin  timeCol
		text [7]textCol
	)
	row := []any{&id, &fin, &text[0], &text[1], &text[2], &text[3], &text[4], &text[5], &text[6]}
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i == len(ids) {
			return nil, nil
		}
		u, err := uuid.Parse(ids[i])
		if err != nil {
			return nil, greyerr.Invalid("id", "task id %s is not a UUID", ids[i])
		}
		id, fin = uuidCol(u), timeCol(fins[i])
		text[0], text[1], text[2], text[3] = textCol{&status[i]}, textCol{&kinds[i]}, textCol{&labels[i]}, textCol{&tasks[i]}
		text[4], text[5], text[6] = textCol{proofs[i]}, textCol{pays[i]}, textCol{results[i]}
		i++
		return row, nil
	})
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"pg_temp", stageTable}, stageColumns, src); err != nil {
		return 0, classify(err, "archive primary: copy the batch")
	}
	tag, err := tx.Exec(ctx, copyInsertSQL, tenant, bound, envIDs, envFins, envs)
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23514" && strings.Contains(pe.Message, "no partition") {
			return 0, errNoPartition
		}
		if errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "40P01") {
			return 0, errStored
		}
		return 0, classify(err, "archive primary: insert the staged batch")
	}
	return tag.RowsAffected(), nil
}

// uuidCol, timeCol and textCol are copyInsert's column values: pgx
// encodes a valuer without boxing or reflecting on it.
type (
	uuidCol [16]byte
	timeCol time.Time
	textCol struct{ s *string } // nil: NULL
)

// UUIDValue implements pgtype.UUIDValuer.
func (u *uuidCol) UUIDValue() (pgtype.UUID, error) { return pgtype.UUID{Bytes: *u, Valid: true}, nil }

// TimestamptzValue implements pgtype.TimestamptzValuer.
func (t *timeCol) TimestamptzValue() (pgtype.Timestamptz, error) {
	return pgtype.Timestamptz{Time: time.Time(*t), Valid: true}, nil
}

// TextValue implements pgtype.TextValuer.
func (t *textCol) TextValue() (pgtype.Text, error) {
	if t.s == nil {
		return pgtype.Text{}, nil
	}
	return pgtype.Text{String: *t.s, Valid: true}, nil
}

// envelopeID returns the id of r's proof envelope ("" when it has none)
// and whether the batch already holds it (envAt indexes envs by id). The
// id is the task's proof id, which Grey computes as the envelope's
// SHA-256, when the batch's envelope under that id has the same bytes;
// otherwise the SHA-256 of r's envelope.
func envelopeID(r archive.Record, envAt map[string]int, envs []string) (string, bool) {
	if len(r.Proof) == 0 {
		return "", false
	}
	if id := r.Task.ProofID; id != "" {
		if k, ok := envAt[id]; ok && envs[k] == string(r.Proof) {
			return id, true
		}
	}
	sum := sha256.Sum256(r.Proof)
	id := hex.EncodeToString(sum[:])
	k, ok := envAt[id]
	return id, ok && envs[k] == string(r.Proof)
}

// columns are what a read selects, in decode's order.
const columns = `task, payload, result,
	(SELECT p.envelope FROM ` + Schema + `.proofs p WHERE p.tenant_id = tasks.tenant_id AND p.id = tasks.proof_id)`

// decode turns a row's columns into a Record. The task's JSON is decoded
// with goccy/go-json, a drop-in for encoding/json that is 3 to 5 times
// faster here (BenchmarkDecode: a page of 100 tasks costs ~1 ms of CPU
// less); TestDecodeMatchesEncodingJSON keeps the two in agreement.
func decode(tj, payload, result, proof []byte) (archive.Record, error) {
	var t task.Task
	if err := gojson.Unmarshal(tj, &t); err != nil {
		return archive.Record{}, greyerr.New(greyerr.Internal, "archive: a stored task does not decode: %v", err)
	}
	if payload != nil {
		t.Payload = json.RawMessage(slices.Clone(payload))
	}
	if result != nil {
		t.Result = json.RawMessage(slices.Clone(result))
	}
	r := archive.Record{Task: &t}
	if proof != nil {
		r.Proof = json.RawMessage(slices.Clone(proof))
	}
	return r, nil
}

// getSQL finds a task by id in one statement, in the partitions its id
// says it can be in, likeliest first: from lowerBound to three days
// later (most tasks finish within minutes), then the newer ones. Append
// stops at the first row (a task is stored once), so the second branch
// runs only when the first finds nothing. Upsert refuses tasks that
// finished before lowerBound, so no older partition is read.
const getSQL = `(SELECT ` + columns + ` FROM ` + Schema + `.tasks
	WHERE tenant_id = $1 AND id = $2 AND finished_at >= $3 AND finished_at < $4)
UNION ALL
(SELECT ` + columns + ` FROM ` + Schema + `.tasks
	WHERE tenant_id = $1 AND id = $2 AND finished_at >= $4)
LIMIT 1`

// getAllSQL is get without the id's bound (the benchmark's comparison).
const getAllSQL = `SELECT ` + columns + ` FROM ` + Schema + `.tasks WHERE tenant_id = $1 AND id = $2 LIMIT 1`

// getWindow is the first branch of getSQL.
const getWindow = 3 * day

// Get implements archive.Driver (see getSQL), on a generic plan (it
// prunes partitions when it runs; at 5 million rows that beat planning
// each call: bench/README.md).
func (d *Driver) Get(ctx context.Context, tenant, id string) (archive.Record, error) {
	if _, err := uuid.Parse(id); err != nil {
		return archive.Record{}, greyerr.New(greyerr.NotFound, "task %s not found", id)
	}
	sql, args := getAllSQL, []any{tenant, id}
	if lb := lowerBound(id); lb.InfinityModifier == pgtype.Finite && !d.noIDPruning {
		sql, args = getSQL, []any{tenant, id, lb, pgtype.Timestamptz{Time: lb.Time.Add(getWindow), Valid: true}}
	}
	var rec archive.Record
	err := d.read(ctx, true, func(pl *pool) error {
		found := false
		err := d.readQuery(ctx, pl, tenant, !d.getCustomPlan, sql, args, func(rows pgx.Rows) error {
			var tj, pay, res, pj []byte
			if err := rows.Scan(&tj, &pay, &res, &pj); err != nil {
				return err
			}
			r, err := decode(tj, pay, res, pj)
			rec, found = r, err == nil
			return err
		})
		if err != nil || found {
			return err
		}
		return greyerr.New(greyerr.NotFound, "task %s not found", id)
	})
	return rec, err
}

// where builds the conditions of a filter, numbering arguments after
// those already in args.
func where(tenant string, f archive.Filter, args []any) (string, []any, error) {
	args = append(args, tenant)
	conds := []string{"tenant_id = $" + strconv.Itoa(len(args))}
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, strings.ReplaceAll(cond, "$?", "$"+strconv.Itoa(len(args))))
	}
	if len(f.Statuses) > 0 {
		st := make([]string, len(f.Statuses))
		for i, s := range f.Statuses {
			st[i] = string(s)
		}
		add("status = ANY($?::text[])", st)
	}
	if f.Kind != "" {
		add("kind = $?", f.Kind)
	}
	if !f.FinishedFrom.IsZero() {
		add("finished_at >= $?", f.FinishedFrom)
	}
	if !f.FinishedTo.IsZero() {
		add("finished_at < $?", f.FinishedTo)
	}
	if len(f.Labels) > 0 {
		lj, err := json.Marshal(f.Labels)
		if err != nil {
			return "", nil, greyerr.Invalid("label", "%v", err)
		}
		add("labels @> $?::jsonb", string(lj))
	}
	return strings.Join(conds, " AND "), args, nil
}

// unfiltered reports whether f selects all of a tenant's records (its
// statements then use a generic plan: see readQuery).
func unfiltered(f archive.Filter) bool {
	return len(f.Statuses) == 0 && f.Kind == "" && f.FinishedFrom.IsZero() && f.FinishedTo.IsZero() && len(f.Labels) == 0
}

// listWindow is how far back, from the newest id a page can hold, List
// first looks (see List).
const listWindow = 3 * 24 * time.Hour

// List implements archive.Driver: the tenant's records newest id first,
// after q.Before (keyset paging on the primary key, no OFFSET).
//
// A page merges the tenant's rows of every daily partition by id. Most
// pages come from the last few days before their first id, so List first
// looks only at partitions from listWindow before the page's anchor (now,
// or the cursor's id time). That answer is the page when it is full and
// its oldest id is at least clockSlack younger than the window's start:
// Upsert only stores tasks whose id time is at most clockSlack after they
// finished, so every row finished before the window has an older id.
// Otherwise (a sparse tenant) List asks all partitions.
func (d *Driver) List(ctx context.Context, tenant string, q archive.DriverQuery) ([]archive.Record, error) {
	cond, args, err := where(tenant, q.Filter, nil)
	if err != nil {
		return nil, err
	}
	anchor, windowed := time.Now(), !d.noListWindow
	if q.Before != "" {
		if _, err := uuid.Parse(q.Before); err != nil {
			return nil, greyerr.Invalid("cursor", "names no task id")
		}
		args = append(args, q.Before)
		cond += " AND id < $" + strconv.Itoa(len(args)) + "::uuid"
		t, ok := idTime(q.Before)
		anchor, windowed = t, windowed && ok
	}
	start := anchor.Add(-listWindow)
	if !q.FinishedFrom.IsZero() && !q.FinishedFrom.Before(start) {
		windowed = false // the filter bounds the partitions already
	}
	plain := unfiltered(q.Filter)
	query := func(cond string, args []any) ([]archive.Record, error) {
		args = append(args, q.Limit)
		sql := `SELECT ` + columns + ` FROM ` + Schema + `.tasks WHERE ` + cond +
			` ORDER BY id DESC LIMIT $` + strconv.Itoa(len(args))
		var out []archive.Record
		err := d.read(ctx, false, func(pl *pool) error {
			out = out[:0]
			return d.readQuery(ctx, pl, tenant, plain, sql, args, func(rows pgx.Rows) error {
				var tj, pay, res, pj []byte
				if err := rows.Scan(&tj, &pay, &res, &pj); err != nil {
					return err
				}
				r, err := decode(tj, pay, res, pj)
				if err == nil {
					out = append(out, r)
				}
				return err
			})
		})
		return out, err
	}
	if windowed {
		wargs := append(slices.Clone(args), start)
		out, err := query(cond+" AND finished_at >= $"+strconv.Itoa(len(wargs)), wargs)
		if err != nil {
			return nil, err
		}
		if len(out) == q.Limit {
			if t, ok := idTime(out[len(out)-1].Task.ID); ok && !t.Before(start.Add(clockSlack)) {
				return out, nil
			}
		}
	}
	return query(cond, args)
}

// Count implements archive.Driver.
func (d *Driver) Count(ctx context.Context, tenant string, f archive.Filter) (int64, error) {
	cond, args, err := where(tenant, f, nil)
	if err != nil {
		return 0, err
	}
	plain := unfiltered(f)
	var n int64
	err = d.read(ctx, false, func(pl *pool) error {
		return d.readQuery(ctx, pl, tenant, plain, `SELECT count(*) FROM `+Schema+`.tasks WHERE `+cond, args, func(rows pgx.Rows) error {
			return rows.Scan(&n)
		})
	})
	return n, err
}

// DeleteBefore implements archive.Driver: it drops the daily partitions
// that end at or before before and deletes the older rows of the one that
// holds it. It returns -1 when it dropped a partition (it does not count
// their rows), else the rows deleted.
func (d *Driver) DeleteBefore(ctx context.Context, before time.Time) (int64, error) {
	if err := d.ensureReady(ctx, d.primary); err != nil {
		return 0, err
	}
	var (
		dropped int32
		deleted int64
	)
	err := d.primary.p.QueryRow(ctx, `SELECT dropped, deleted FROM `+Schema+`.drop_before($1)`, before).Scan(&dropped, &deleted)
	d.forgetPartitions()
	if err != nil {
		return 0, classify(err, "archive primary: retention")
	}
	if dropped > 0 {
		d.log.Info("archive: retention", "before", before, "partitions_dropped", dropped, "rows_deleted", deleted)
		return -1, nil
	}
	return deleted, nil
}

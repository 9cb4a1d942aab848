package cassarchive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	gojson "github.com/goccy/go-json"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// MaxBatch is the most records of one Upsert (the Store splits larger
// batches).
const MaxBatch = 1000

// clockSlack is how much earlier than its id's UUIDv7 time a task may
// have finished (the clocks of the node that made the id and of the one
// that finished it may disagree; Upsert refuses more). The retention and
// a finished_to filter skip the buckets that start later than the bound
// plus this.
const clockSlack = 24 * time.Hour

// Limits of how a batch is written.
const (
	// writeParallelism bounds the requests one Upsert has in flight.
	writeParallelism = 16
	// batchBytes and batchRows bound one single-partition unlogged batch
	// (a single partition's batch is one mutation, which Cassandra caps
	// at half its commit log segment: 16 MiB by default).
	batchBytes = 512 << 10
	batchRows  = 100
	// listWindow bounds the buckets one List reads at once.
	listWindow = 8
	// maxTTL is Cassandra's largest TTL (20 years).
	maxTTL = 630720000
)

// statements are the driver's CQL, with the keyspace filled in.
type statements struct {
	insertTask, insertBucket, insertProof                         string
	getTask, getProof                                             string
	listBuckets, listBucketsBefore, allBuckets, distinctTenants   string
	pageFull, pageFullBefore, pageSlim, pageSlimBefore, pageByIDs string
	countAll, firstID, deleteIDs, deleteBucket, deleteBucketRow   string
	existIDs                                                      string
	deleteProof                                                   string
}

func newStatements(ks string) statements {
	f := func(s string) string { return fmt.Sprintf(s, ks) }
	const full = `id, task, payload, result, proof_id, proof`
	const slim = `id, finished_us, status, kind, labels, proof_id`
	return statements{
		insertTask: f(`INSERT INTO %s.tasks (tenant_id, bucket, id, finished_us, status, kind, labels, task, payload, result, proof_id, proof)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?`),
		insertBucket: f(`INSERT INTO %s.tenant_buckets (tenant_id, bucket) VALUES (?, ?)`),
		// A proof's write time is the latest finish of the tasks that
		// name it, so the retention's tombstone (at its cut) removes it
		// only when every such task finished before the cut.
		insertProof:       f(`INSERT INTO %s.proofs (tenant_id, proof_id, envelope) VALUES (?, ?, ?) USING TTL ? AND TIMESTAMP ?`),
		getTask:           f(`SELECT ` + full + ` FROM %s.tasks WHERE tenant_id = ? AND bucket = ? AND id = ?`),
		getProof:          f(`SELECT envelope FROM %s.proofs WHERE tenant_id = ? AND proof_id = ?`),
		listBuckets:       f(`SELECT bucket FROM %s.tenant_buckets WHERE tenant_id = ?`),
		listBucketsBefore: f(`SELECT bucket FROM %s.tenant_buckets WHERE tenant_id = ? AND bucket <= ?`),
		allBuckets:        f(`SELECT tenant_id, bucket FROM %s.tenant_buckets`),
		distinctTenants:   f(`SELECT DISTINCT tenant_id FROM %s.tenant_buckets`),
		pageFull:          f(`SELECT ` + full + ` FROM %s.tasks WHERE tenant_id = ? AND bucket = ? LIMIT ?`),
		pageFullBefore:    f(`SELECT ` + full + ` FROM %s.tasks WHERE tenant_id = ? AND bucket = ? AND id < ? LIMIT ?`),
		pageSlim:          f(`SELECT ` + slim + ` FROM %s.tasks WHERE tenant_id = ? AND bucket = ?`),
		pageSlimBefore:    f(`SELECT ` + slim + ` FROM %s.tasks WHERE tenant_id = ? AND bucket = ? AND id < ?`),
		pageByIDs:         f(`SELECT ` + full + ` FROM %s.tasks WHERE tenant_id = ? AND bucket = ? AND id IN ?`),
		countAll:          f(`SELECT COUNT(*) FROM %s.tasks WHERE tenant_id = ? AND bucket = ?`),
		firstID:           f(`SELECT id FROM %s.tasks WHERE tenant_id = ? AND bucket = ? LIMIT 1`),
		existIDs:          f(`SELECT id FROM %s.tasks WHERE tenant_id = ? AND bucket = ? AND id IN ?`),
		deleteIDs:         f(`DELETE FROM %s.tasks WHERE tenant_id = ? AND bucket = ? AND id IN ?`),
		deleteBucket:      f(`DELETE FROM %s.tasks USING TIMESTAMP ? WHERE tenant_id = ? AND bucket = ?`),
		deleteBucketRow:   f(`DELETE FROM %s.tenant_buckets USING TIMESTAMP ? WHERE tenant_id = ? AND bucket = ?`),
		deleteProof:       f(`DELETE FROM %s.proofs USING TIMESTAMP ? WHERE tenant_id = ? AND proof_id = ?`),
	}
}

// idTime returns the creation time a UUIDv7 id carries.
func idTime(id string) (time.Time, bool) {
	u, err := uuid.Parse(id)
	if err != nil || u.Version() != 7 || len(id) != 36 {
		return time.Time{}, false
	}
	sec, nsec := u.Time().UnixTime()
	return time.Unix(sec, nsec), true
}

// bucketOf returns the bucket of a task id (false: not a UUIDv7 id).
func bucketOf(id string, widthMs int64) (int64, bool) {
	t, ok := idTime(id)
	if !ok {
		return 0, false
	}
	return floorDiv(t.UnixMilli(), widthMs), true
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// row is a record as the tasks table holds it.
type row struct {
	bucket  int64
	id      string
	fin     int64 // µs
	status  string
	kind    string
	labels  map[string]string
	task    []byte
	payload []byte
	result  []byte
	proofID string // the envelope in the proofs table ("": none or inline)
	proof   []byte // an envelope only this record of its batch names
	ttl     int
	size    int
}

// Upsert implements archive.Driver. Proofs are written first, then the
// records (single-partition unlogged batches, in parallel, token-aware)
// with the tenant's bucket rows, so a record a reader finds finds its
// proof. Every statement is an idempotent upsert: a batch written twice
// leaves one copy of each record. With OpenOptions.Retention, each row's TTL is the time its task
// has left; a record already past it is skipped.
func (d *Driver) Upsert(ctx context.Context, tenant string, recs []archive.Record) (err error) {
	if err := checkCtx(ctx); err != nil {
		return err
	}
	ctx, end := d.span(ctx, "upsert", "tasks")
	defer func() { end(err) }()
	last := make(map[string]int, len(recs))
	for i, r := range recs {
		if r.Task == nil || r.Task.FinishedAt == nil {
			return greyerr.Invalid("task", "record %d is not a finished task", i)
		}
		if r.Task.TenantID != tenant {
			return greyerr.Invalid("tenant_id", "record of task %s belongs to another tenant", r.Task.ID)
		}
		last[r.Task.ID] = i
	}
	if len(recs) == 0 {
		return nil
	}
	now := time.Now()
	type proof struct {
		env  []byte
		fin  int64
		ttl  int
		uses int
	}
	proofs := map[string]*proof{} // by envelope id (SHA-256)
	envIDs := map[string]string{} // envelope bytes -> id
	rows := make([]row, 0, len(last))
	for i, r := range recs {
		if last[r.Task.ID] != i {
			continue
		}
		t := r.Task
		it, ok := idTime(t.ID)
		if !ok {
			return greyerr.Invalid("id", "task id %s is not a UUIDv7: the archive finds and orders tasks by the time in their ids", t.ID)
		}
		fin := t.FinishedAt.UTC()
		if it.After(fin.Add(clockSlack)) {
			return greyerr.Invalid("finished_at", "task %s finished at %s, more than %s before its id's time %s", t.ID, fin.Format(time.RFC3339Nano), clockSlack, it.UTC().Format(time.RFC3339Nano))
		}
		ttl := 0
		if d.opts.Retention > 0 {
			left := fin.Add(d.opts.Retention).Sub(now)
			if left <= 0 {
				continue // past its retention already
			}
			ttl = int(min((left+time.Second-1)/time.Second, maxTTL))
		}
		// A proof envelope covers a report batch of the tenant's tasks
		// (hundreds, kilobytes): it is validated and hashed once.
		envID, seen := envIDs[string(r.Proof)]
		for j, b := range [3]json.RawMessage{r.Proof, t.Payload, t.Result} {
			if j == 0 && seen {
				continue
			}
			if len(b) > 0 && !json.Valid(b) {
				f := [3]string{"proof", "payload", "result"}[j]
				return greyerr.Invalid(f, "the %s of task %s is not JSON", f, t.ID)
			}
		}
		bare := *t
		bare.Payload, bare.Result = nil, nil
		tj, err := gojson.Marshal(&bare)
		if err != nil {
			return greyerr.Invalid("task", "task %s does not encode as JSON: %v", t.ID, err)
		}
		rw := row{
			bucket: it.UnixMilli(), id: t.ID, fin: fin.UnixMicro(), // bucket: the id's ms until the width is known
			status: string(t.Status), kind: t.Kind, labels: t.Labels(),
			task: tj, payload: t.Payload, result: t.Result, ttl: ttl,
		}
		if len(r.Proof) > 0 {
			if !seen {
				sum := sha256.Sum256(r.Proof)
				envID = hex.EncodeToString(sum[:])
				envIDs[string(r.Proof)] = envID
			}
			rw.proofID = envID
			p := proofs[rw.proofID]
			if p == nil {
				p = &proof{env: r.Proof}
				proofs[rw.proofID] = p
			}
			p.fin = max(p.fin, rw.fin)
			p.ttl = max(p.ttl, ttl)
			p.uses++
		}
		rw.size = len(tj) + len(rw.payload) + len(rw.result) + 256
		rows = append(rows, rw)
	}
	if len(rows) == 0 {
		return nil
	}
	// An envelope only one record of the batch names (a task reported on
	// its own) rides in the record's row: a read then needs no second
	// query. One shared by several is stored once, in proofs.
	for i := range rows {
		if p := proofs[rows[i].proofID]; p != nil && p.uses == 1 {
			rows[i].proof = p.env
			rows[i].size += len(p.env)
			delete(proofs, rows[i].proofID)
			rows[i].proofID = ""
		}
	}
	s, err := d.ready(ctx)
	if err != nil {
		return err
	}
	width := d.bucketWidth()
	for i := range rows {
		rows[i].bucket = floorDiv(rows[i].bucket, width)
	}
	wc := d.cfg.WriteConsistency
	run := func(fs []func(context.Context) error) error {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(writeParallelism)
		for _, f := range fs {
			g.Go(func() error { return f(gctx) })
		}
		err := g.Wait()
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	// 1. proofs
	var steps []func(context.Context) error
	for id, p := range proofs {
		steps = append(steps, func(ctx context.Context) error {
			// A TTL of 0 (no retention) keeps the proof.
			err := s.Query(d.st.insertProof, tenant, id, []byte(p.env), p.ttl, p.fin).Consistency(wc).Idempotent(true).ExecContext(ctx)
			return classify(err, "write a proof")
		})
	}
	if err := run(steps); err != nil {
		return err
	}
	// 2. records, one partition's rows per batch, and the tenant's bucket
	// rows (a record whose bucket row is not there yet is not listed yet;
	// the retention's deletes are timestamped, so neither order loses a
	// write).
	byBucket := map[int64][]row{}
	for _, rw := range rows {
		byBucket[rw.bucket] = append(byBucket[rw.bucket], rw)
	}
	steps = steps[:0]
	for bucket, group := range byBucket {
		steps = append(steps, func(ctx context.Context) error {
			err := s.Query(d.st.insertBucket, tenant, bucket).Consistency(wc).Idempotent(true).ExecContext(ctx)
			return classify(err, "write a tenant's bucket")
		})
		for len(group) > 0 {
			n, size := 0, 0
			for n < len(group) && n < batchRows && (n == 0 || size+group[n].size <= batchBytes) {
				size += group[n].size
				n++
			}
			chunk := group[:n]
			group = group[n:]
			steps = append(steps, func(ctx context.Context) error {
				if len(chunk) == 1 {
					rw := chunk[0]
					err := s.Query(d.st.insertTask, tenant, rw.bucket, rw.id, rw.fin, rw.status, rw.kind, rw.labels,
						rw.task, nullable(rw.payload), nullable(rw.result), rw.proofID, inline(rw), rw.ttl).Consistency(wc).Idempotent(true).ExecContext(ctx)
					return classify(err, "write a task")
				}
				b := s.Batch(gocql.UnloggedBatch).Consistency(wc)
				for _, rw := range chunk {
					b.Query(d.st.insertTask, tenant, rw.bucket, rw.id, rw.fin, rw.status, rw.kind, rw.labels,
						rw.task, nullable(rw.payload), nullable(rw.result), rw.proofID, inline(rw), rw.ttl)
				}
				return classify(b.ExecContext(ctx), "write a batch of tasks")
			})
		}
	}
	return run(steps)
}

// inline binds a row's proof column: its own envelope; unset when it
// names one in proofs (no tombstone: a proof_id wins over a stale inline
// copy); null when it has none (clearing an earlier copy's).
func inline(rw row) any {
	switch {
	case rw.proof != nil:
		return rw.proof
	case rw.proofID != "":
		return gocql.UnsetValue
	}
	return nil
}

// nullable stores an absent JSON value as null, not as an empty blob.
func nullable(b json.RawMessage) []byte {
	if b == nil {
		return nil
	}
	return []byte(b)
}

// Get implements archive.Driver: one partition read (the id names its
// bucket), then the proof it names.
func (d *Driver) Get(ctx context.Context, tenant, id string) (rec archive.Record, err error) {
	if err := checkCtx(ctx); err != nil {
		return archive.Record{}, err
	}
	ctx, end := d.span(ctx, "get", "tasks")
	defer func() { end(err) }()
	s, err := d.ready(ctx)
	if err != nil {
		return archive.Record{}, err
	}
	bucket, ok := bucketOf(id, d.bucketWidth())
	if !ok {
		return archive.Record{}, greyerr.New(greyerr.NotFound, "task %s not found", id)
	}
	var fr fullRow
	err = s.Query(d.st.getTask, tenant, bucket, id).Consistency(d.cfg.ReadConsistency).Idempotent(true).
		ScanContext(ctx, &fr.id, &fr.task, &fr.payload, &fr.result, &fr.proofID, &fr.proof)
	if errors.Is(err, gocql.ErrNotFound) {
		return archive.Record{}, greyerr.New(greyerr.NotFound, "task %s not found", id)
	}
	if err != nil {
		return archive.Record{}, d.readErr(ctx, err, "read a task")
	}
	envs, err := d.proofs(ctx, s, tenant, []fullRow{fr})
	if err != nil {
		return archive.Record{}, err
	}
	return fr.record(envs)
}

func (d *Driver) readErr(ctx context.Context, err error, what string) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
	return classify(err, what)
}

// fullRow is a task row as read whole.
type fullRow struct {
	id                    string
	task, payload, result []byte
	proofID               string
	proof                 []byte
}

func (fr fullRow) record(envs map[string][]byte) (archive.Record, error) {
	var t task.Task
	if err := gojson.Unmarshal(fr.task, &t); err != nil {
		return archive.Record{}, greyerr.New(greyerr.Internal, "archive: stored task %s does not decode: %v", fr.id, err)
	}
	if fr.payload != nil {
		t.Payload = json.RawMessage(fr.payload)
	}
	if fr.result != nil {
		t.Result = json.RawMessage(fr.result)
	}
	r := archive.Record{Task: &t}
	if fr.proofID != "" {
		if env, ok := envs[fr.proofID]; ok {
			r.Proof = json.RawMessage(slices.Clone(env))
		}
	} else if fr.proof != nil {
		r.Proof = json.RawMessage(fr.proof)
	}
	return r, nil
}

// proofs reads the envelopes the rows name, in parallel.
func (d *Driver) proofs(ctx context.Context, s *gocql.Session, tenant string, rows []fullRow) (map[string][]byte, error) {
	ids := map[string]bool{}
	for _, fr := range rows {
		if fr.proofID != "" {
			ids[fr.proofID] = true
		}
	}
	out := map[string][]byte{}
	if len(ids) == 0 {
		return out, nil
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(writeParallelism)
	for id := range ids {
		g.Go(func() error {
			var env []byte
			err := s.Query(d.st.getProof, tenant, id).Consistency(d.cfg.ReadConsistency).Idempotent(true).ScanContext(gctx, &env)
			if errors.Is(err, gocql.ErrNotFound) {
				return nil // removed by the retention with its last task
			}
			if err != nil {
				return d.readErr(gctx, err, "read a proof")
			}
			mu.Lock()
			out[id] = env
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return out, nil
}

// buckets calls each with the tenant's buckets, newest first, from the
// bucket of before (all when before is ""), until each returns false.
func (d *Driver) buckets(ctx context.Context, s *gocql.Session, tenant string, from int64, bounded bool, each func(int64) (bool, error)) error {
	var q *gocql.Query
	if bounded {
		q = s.Query(d.st.listBucketsBefore, tenant, from)
	} else {
		q = s.Query(d.st.listBuckets, tenant)
	}
	it := q.Consistency(d.cfg.ReadConsistency).Idempotent(true).PageSize(256).IterContext(ctx)
	var b int64
	var ferr error
	for it.Scan(&b) {
		more, err := each(b)
		if err != nil {
			ferr = err
			break
		}
		if !more {
			break
		}
	}
	if err := it.Close(); err != nil && ferr == nil {
		return d.readErr(ctx, err, "read a tenant's buckets")
	}
	return ferr
}

// filtered reports whether f selects less than all of a tenant's records.
func filtered(f archive.Filter) bool {
	return len(f.Statuses) > 0 || f.Kind != "" || !f.FinishedFrom.IsZero() || !f.FinishedTo.IsZero() || len(f.Labels) > 0
}

// slimRow is the part of a task row filters look at.
type slimRow struct {
	id      string
	fin     int64
	status  string
	kind    string
	labels  map[string]string
	proofID string
}

// match applies f to a row (the Filter's semantics: any status, the kind
// byte for byte, FinishedFrom inclusive, FinishedTo exclusive, every
// label equal).
func match(r slimRow, f archive.Filter) bool {
	if len(f.Statuses) > 0 && !slices.Contains(f.Statuses, task.Status(r.status)) {
		return false
	}
	if f.Kind != "" && r.kind != f.Kind {
		return false
	}
	if !f.FinishedFrom.IsZero() && r.fin < ceilMicro(f.FinishedFrom) {
		return false
	}
	if !f.FinishedTo.IsZero() && r.fin >= ceilMicro(f.FinishedTo) {
		return false
	}
	for k, v := range f.Labels {
		if got, ok := r.labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// ceilMicro returns t in µs, rounded up (a finish time stored in µs is
// before t exactly when it is before ceilMicro(t)).
func ceilMicro(t time.Time) int64 {
	us := t.UnixMicro()
	if t.Sub(time.UnixMicro(us)) > 0 {
		us++
	}
	return us
}

// skipBucket reports whether no record of bucket can match f's
// finished_to bound: Upsert refuses tasks that finished more than
// clockSlack before their id's time.
func skipBucket(bucket, widthMs int64, f archive.Filter) bool {
	if f.FinishedTo.IsZero() {
		return false
	}
	start := time.UnixMilli(bucket * widthMs)
	return !start.Before(f.FinishedTo.Add(clockSlack))
}

// scanSlim pages through a bucket's slim rows (ids below before when not
// ""), calling each until it returns false.
func (d *Driver) scanSlim(ctx context.Context, s *gocql.Session, tenant string, bucket int64, before string, cl gocql.Consistency, each func(slimRow) bool) error {
	var q *gocql.Query
	if before != "" {
		q = s.Query(d.st.pageSlimBefore, tenant, bucket, before)
	} else {
		q = s.Query(d.st.pageSlim, tenant, bucket)
	}
	it := q.Consistency(cl).Idempotent(true).PageSize(1000).IterContext(ctx)
	var r slimRow
	for it.Scan(&r.id, &r.fin, &r.status, &r.kind, &r.labels, &r.proofID) {
		if !each(r) {
			break
		}
		r = slimRow{}
	}
	if err := it.Close(); err != nil {
		return d.readErr(ctx, err, "read a bucket")
	}
	return nil
}

// List implements archive.Driver: the tenant's buckets newest first, each
// read in clustering order (id descending) below q.Before. Without a
// filter a bucket's rows are read whole up to the page's need; with one,
// its slim columns are paged through and matched here, and only the
// matching rows are then read whole.
func (d *Driver) List(ctx context.Context, tenant string, q archive.DriverQuery) (recs []archive.Record, err error) {
	if err := checkCtx(ctx); err != nil {
		return nil, err
	}
	ctx, end := d.span(ctx, "list", "tasks")
	defer func() { end(err) }()
	if q.Limit <= 0 {
		return nil, nil
	}
	s, err := d.ready(ctx)
	if err != nil {
		return nil, err
	}
	width := d.bucketWidth()
	var from int64
	bounded := q.Before != ""
	if bounded {
		b, ok := bucketOf(q.Before, width)
		if !ok {
			return nil, greyerr.Invalid("cursor", "names no task id")
		}
		from = b
	}
	rc := d.cfg.ReadConsistency
	// readBucket returns up to need of a bucket's matching rows, id
	// descending.
	readBucket := func(ctx context.Context, bucket int64, need int) ([]fullRow, error) {
		before := ""
		if bounded && bucket == from {
			before = q.Before
		}
		if !filtered(q.Filter) {
			var it *gocql.Iter
			if before != "" {
				it = s.Query(d.st.pageFullBefore, tenant, bucket, before, need).Consistency(rc).Idempotent(true).IterContext(ctx)
			} else {
				it = s.Query(d.st.pageFull, tenant, bucket, need).Consistency(rc).Idempotent(true).IterContext(ctx)
			}
			var out []fullRow
			var fr fullRow
			for it.Scan(&fr.id, &fr.task, &fr.payload, &fr.result, &fr.proofID, &fr.proof) {
				out = append(out, fr)
				fr = fullRow{}
			}
			if err := it.Close(); err != nil {
				return nil, d.readErr(ctx, err, "read a bucket")
			}
			return out, nil
		}
		if skipBucket(bucket, width, q.Filter) {
			return nil, nil
		}
		var ids []string
		if err := d.scanSlim(ctx, s, tenant, bucket, before, rc, func(r slimRow) bool {
			if match(r, q.Filter) {
				ids = append(ids, r.id)
			}
			return len(ids) < need
		}); err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			return nil, nil
		}
		return d.readIDs(ctx, s, tenant, bucket, ids)
	}
	// Buckets are read in windows: the first alone (a busy tenant's page
	// is nearly always in its newest bucket), then 2, 4 and up to
	// listWindow at once, so a sparse tenant's page spread over many
	// buckets costs a few round trips, not one per bucket.
	var rows []fullRow
	var pending []int64
	window := 1
	flush := func() error {
		need := q.Limit - len(rows)
		got := make([][]fullRow, len(pending))
		g, gctx := errgroup.WithContext(ctx)
		for i, b := range pending {
			g.Go(func() (err error) {
				got[i], err = readBucket(gctx, b, need)
				return err
			})
		}
		if err := g.Wait(); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		for _, g := range got {
			rows = append(rows, g...)
		}
		if len(rows) > q.Limit {
			rows = rows[:q.Limit]
		}
		pending = pending[:0]
		window = min(2*window, listWindow)
		return nil
	}
	err = d.buckets(ctx, s, tenant, from, bounded, func(bucket int64) (bool, error) {
		pending = append(pending, bucket)
		if len(pending) < window {
			return true, nil
		}
		if err := flush(); err != nil {
			return false, err
		}
		return len(rows) < q.Limit, nil
	})
	if err == nil && len(pending) > 0 && len(rows) < q.Limit {
		err = flush()
	}
	if err != nil {
		return nil, err
	}
	envs, err := d.proofs(ctx, s, tenant, rows)
	if err != nil {
		return nil, err
	}
	out := make([]archive.Record, 0, len(rows))
	for _, fr := range rows {
		r, err := fr.record(envs)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// readIDs reads whole rows of one bucket by id, id descending.
func (d *Driver) readIDs(ctx context.Context, s *gocql.Session, tenant string, bucket int64, ids []string) ([]fullRow, error) {
	var out []fullRow
	for chunk := range slices.Chunk(ids, 100) {
		it := s.Query(d.st.pageByIDs, tenant, bucket, chunk).Consistency(d.cfg.ReadConsistency).Idempotent(true).IterContext(ctx)
		var fr fullRow
		for it.Scan(&fr.id, &fr.task, &fr.payload, &fr.result, &fr.proofID, &fr.proof) {
			out = append(out, fr)
			fr = fullRow{}
		}
		if err := it.Close(); err != nil {
			return nil, d.readErr(ctx, err, "read tasks by id")
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id > out[j].id })
	return out, nil
}

// Count implements archive.Driver: a COUNT per bucket without a filter,
// else the bucket's slim rows matched here.
func (d *Driver) Count(ctx context.Context, tenant string, f archive.Filter) (n int64, err error) {
	if err := checkCtx(ctx); err != nil {
		return 0, err
	}
	ctx, end := d.span(ctx, "count", "tasks")
	defer func() { end(err) }()
	s, err := d.ready(ctx)
	if err != nil {
		return 0, err
	}
	width := d.bucketWidth()
	rc := d.cfg.ReadConsistency
	err = d.buckets(ctx, s, tenant, 0, false, func(bucket int64) (bool, error) {
		if !filtered(f) {
			var c int64
			if err := s.Query(d.st.countAll, tenant, bucket).Consistency(rc).Idempotent(true).ScanContext(ctx, &c); err != nil {
				return false, d.readErr(ctx, err, "count a bucket")
			}
			n += c
			return true, nil
		}
		if skipBucket(bucket, width, f) {
			return true, nil
		}
		return true, d.scanSlim(ctx, s, tenant, bucket, "", rc, func(r slimRow) bool {
			if match(r, f) {
				n++
			}
			return true
		})
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// DeleteBefore implements archive.Driver. It walks every tenant's buckets
// that can hold a task finished before the cut (those starting before
// it plus clockSlack), reads each one's slim rows at consistency ALL, and
// deletes the rows finished before the cut: a whole partition at once (a
// partition tombstone timestamped when the walk began, so a record
// written since survives) when none stays, else by id; the emptied
// bucket's row goes too (timestamped the same way). When a replica is
// down, the rows a scan at the read consistency finds go by id and the
// bucket stays listed until a later pass. It also removes every proof
// whose tasks all finished before the cut (a tombstone timestamped at the
// cut: a proof's write time is its latest task's finish). It returns the
// number of records removed; records that expired by TTL are not counted
// (they were gone already).
func (d *Driver) DeleteBefore(ctx context.Context, before time.Time) (n int64, err error) {
	if err := checkCtx(ctx); err != nil {
		return 0, err
	}
	ctx, end := d.span(ctx, "delete_before", "tasks")
	defer func() { end(err) }()
	s, err := d.ready(ctx)
	if err != nil {
		return 0, err
	}
	width := d.bucketWidth()
	started := time.Now().UnixMicro()
	cut := ceilMicro(before)
	limit := before.Add(clockSlack)
	type tb struct {
		tenant string
		bucket int64
	}
	var cands []tb
	it := s.Query(d.st.allBuckets).Consistency(d.cfg.ReadConsistency).Idempotent(true).PageSize(1000).IterContext(ctx)
	var c tb
	for it.Scan(&c.tenant, &c.bucket) {
		if time.UnixMilli(c.bucket * width).Before(limit) {
			cands = append(cands, c)
		}
	}
	if err := it.Close(); err != nil {
		return 0, d.readErr(ctx, err, "read the buckets")
	}
	wc := d.cfg.WriteConsistency
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, c := range cands {
		g.Go(func() error {
			var gone []string
			var proofs map[string]bool
			stays := 0
			scan := func(cl gocql.Consistency) error {
				gone, proofs, stays = nil, map[string]bool{}, 0
				return d.scanSlim(gctx, s, c.tenant, c.bucket, "", cl, func(r slimRow) bool {
					if r.fin < cut {
						gone = append(gone, r.id)
						if r.proofID != "" {
							proofs[r.proofID] = true
						}
					} else {
						stays++
					}
					return true
				})
			}
			// Only a scan that every replica answered proves a bucket
			// holds nothing newer (whatever the write consistency was);
			// without one, the rows seen go one by one and the bucket
			// stays listed.
			whole := true
			if err := scan(gocql.All); err != nil {
				if !greyerr.Is(err, greyerr.Unavailable) {
					return err
				}
				whole = false
				if err := scan(d.cfg.ReadConsistency); err != nil {
					return err
				}
			}
			if whole && stays == 0 {
				if len(gone) > 0 {
					if err := s.Query(d.st.deleteBucket, started, c.tenant, c.bucket).Consistency(wc).Idempotent(true).ExecContext(gctx); err != nil {
						return classify(err, "delete a bucket")
					}
				}
				if err := s.Query(d.st.deleteBucketRow, started, c.tenant, c.bucket).Consistency(wc).Idempotent(true).ExecContext(gctx); err != nil {
					return classify(err, "delete a bucket's row")
				}
			} else {
				for chunk := range slices.Chunk(gone, 100) {
					if err := s.Query(d.st.deleteIDs, c.tenant, c.bucket, chunk).Consistency(wc).Idempotent(true).ExecContext(gctx); err != nil {
						return classify(err, "delete tasks")
					}
				}
			}
			for id := range maps.Keys(proofs) {
				if err := s.Query(d.st.deleteProof, cut-1, c.tenant, id).Consistency(wc).Idempotent(true).ExecContext(gctx); err != nil {
					return classify(err, "delete a proof")
				}
			}
			mu.Lock()
			n += int64(len(gone))
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, err
	}
	return n, nil
}

// Tenants implements archive.TenantLister: the tenants of the bucket
// table (a scan of its partition keys), each checked to still hold a
// record (TTLs expire records without telling the driver).
func (d *Driver) Tenants(ctx context.Context) (out []string, err error) {
	if err := checkCtx(ctx); err != nil {
		return nil, err
	}
	ctx, end := d.span(ctx, "tenants", "tenant_buckets")
	defer func() { end(err) }()
	s, err := d.ready(ctx)
	if err != nil {
		return nil, err
	}
	rc := d.cfg.ReadConsistency
	it := s.Query(d.st.distinctTenants).Consistency(rc).Idempotent(true).PageSize(1000).IterContext(ctx)
	var all []string
	var t string
	for it.Scan(&t) {
		all = append(all, t)
	}
	if err := it.Close(); err != nil {
		return nil, d.readErr(ctx, err, "read the tenants")
	}
	for _, tenant := range all {
		found := false
		err := d.buckets(ctx, s, tenant, 0, false, func(bucket int64) (bool, error) {
			var id string
			err := s.Query(d.st.firstID, tenant, bucket).Consistency(rc).Idempotent(true).ScanContext(ctx, &id)
			if errors.Is(err, gocql.ErrNotFound) {
				return true, nil
			}
			if err != nil {
				return false, d.readErr(ctx, err, "read a bucket")
			}
			found = true
			return false, nil
		})
		if err != nil {
			return nil, err
		}
		if found {
			out = append(out, tenant)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Delete implements archive.Deleter: per bucket, the ids the tenant has
// are read, then deleted. The proofs they name stay (another task may
// name one; with a retention they expire by TTL).
func (d *Driver) Delete(ctx context.Context, tenant string, ids []string) (n int64, err error) {
	if err := checkCtx(ctx); err != nil {
		return 0, err
	}
	ctx, end := d.span(ctx, "delete", "tasks")
	defer func() { end(err) }()
	s, err := d.ready(ctx)
	if err != nil {
		return 0, err
	}
	width := d.bucketWidth()
	byBucket := map[int64][]string{}
	seen := map[string]bool{}
	for _, id := range ids {
		b, ok := bucketOf(id, width)
		if !ok || seen[id] {
			continue // not a task id this archive can hold
		}
		seen[id] = true
		byBucket[b] = append(byBucket[b], id)
	}
	for bucket, bids := range byBucket {
		var have []string
		for chunk := range slices.Chunk(bids, 100) {
			it := s.Query(d.st.existIDs, tenant, bucket, chunk).Consistency(d.cfg.ReadConsistency).Idempotent(true).IterContext(ctx)
			var id string
			for it.Scan(&id) {
				have = append(have, id)
			}
			if err := it.Close(); err != nil {
				return n, d.readErr(ctx, err, "read tasks by id")
			}
		}
		if len(have) == 0 {
			continue
		}
		for chunk := range slices.Chunk(have, 100) {
			if err := s.Query(d.st.deleteIDs, tenant, bucket, chunk).Consistency(d.cfg.WriteConsistency).Idempotent(true).ExecContext(ctx); err != nil {
				return n, d.readErr(ctx, err, "delete tasks")
			}
		}
		n += int64(len(have))
	}
	return n, nil
}

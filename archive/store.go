package archive

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/retry"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/telemetry/tracing"
	"github.com/grey-distributed/grey/tenant"
)

// Options configure a Store.
type Options struct {
	// Name labels the store's metrics and spans ("default" when empty).
	Name string
	// Registerer receives the store's metrics; nil: not registered.
	Registerer prometheus.Registerer
	// Retry bounds retries of transient failures (Unavailable).
	Retry RetryOptions
}

// RetryOptions bound the retries of a transient failure, with the
// exponential backoff of the seed's retry policy (doubling, jittered).
// Zero values: 4 tries, 50 ms initial interval, 2 s max interval, 10 s in
// all.
type RetryOptions = retry.Options

// Store is the portable archive. It is safe for concurrent use.
type Store struct {
	drv     Driver
	caps    Capabilities
	retry   RetryOptions
	name    string
	metrics *metrics
}

// New returns a Store over d.
func New(d Driver, opts Options) (*Store, error) {
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	name := opts.Name
	if name == "" {
		name = "default"
	}
	return &Store{drv: d, caps: d.Capabilities(), retry: opts.Retry.WithDefaults(10 * time.Second), name: name, metrics: m}, nil
}

// Capabilities returns the driver's capabilities.
func (s *Store) Capabilities() Capabilities { return s.caps }

// As sets i to the driver's native client (see the driver's doc).
func (s *Store) As(i any) bool { return s.drv.As(i) }

// Close closes the driver.
func (s *Store) Close() error { return s.drv.Close() }

// Ping checks that the store answers and its schema suits this binary.
func (s *Store) Ping(ctx context.Context) error {
	return s.do(ctx, "ping", "", func(ctx context.Context) error { return s.drv.Ping(ctx) })
}

// Upsert archives recs, which may belong to several tenants: each tenant's
// records reach the driver in their own calls (tenant-scoped), split at the
// driver's MaxBatch, up to UpsertParallelism of them at once. It is
// idempotent: archiving a task twice keeps one record. A task that appears
// more than once in recs is written once, as its last occurrence (a
// driver's single-statement upsert may refuse to touch one row twice). A
// record that is not a finished task with a valid tenant and id is
// InvalidArgument and nothing is written. On error some tenants' records
// may be written; calling it again with the same records is safe.
func (s *Store) Upsert(ctx context.Context, recs []Record) error {
	byTenant := map[string][]Record{}
	type key struct{ tenant, id string }
	at := map[key]int{} // where a task sits in its tenant's group
	for i, r := range recs {
		if err := validRecord(r); err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		k := key{r.Task.TenantID, r.Task.ID}
		if j, dup := at[k]; dup {
			byTenant[k.tenant][j] = r
			continue
		}
		at[k] = len(byTenant[k.tenant])
		byTenant[k.tenant] = append(byTenant[k.tenant], r)
	}
	tenants := make([]string, 0, len(byTenant))
	for t := range byTenant {
		tenants = append(tenants, t)
	}
	sort.Strings(tenants)
	type call struct {
		tenant string
		recs   []Record
	}
	var calls []call
	for _, t := range tenants {
		group := byTenant[t]
		for len(group) > 0 {
			n := len(group)
			if s.caps.MaxBatch > 0 && n > s.caps.MaxBatch {
				n = s.caps.MaxBatch
			}
			calls = append(calls, call{t, group[:n]})
			group = group[n:]
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(UpsertParallelism)
	for _, c := range calls {
		g.Go(func() error {
			err := s.do(gctx, "upsert", c.tenant, func(ctx context.Context) error { return s.drv.Upsert(ctx, c.tenant, c.recs) })
			if err == nil {
				s.metrics.records.WithLabelValues(s.name, s.caps.Scheme).Add(float64(len(c.recs)))
			}
			return err
		})
	}
	return g.Wait()
}

// UpsertParallelism bounds the driver calls one Upsert makes at once (one
// per tenant's share of the batch: each is its own tenant-scoped
// transaction in a database driver).
const UpsertParallelism = 4

func validRecord(r Record) error {
	if r.Task == nil {
		return greyerr.Invalid("task", "a record needs its task")
	}
	if err := tenant.ValidID("tenant_id", r.Task.TenantID); err != nil {
		return err
	}
	if !task.ValidID(r.Task.ID) {
		return greyerr.Invalid("id", "%q is not a task id", r.Task.ID)
	}
	if !r.Task.Status.Terminal() || r.Task.FinishedAt == nil {
		return greyerr.Invalid("status", "task %s is %s: only finished tasks are archived", r.Task.ID, r.Task.Status)
	}
	return nil
}

// Get returns the tenant's archived task id, or NotFound (also for another
// tenant's task and for a string that is not a task id).
func (s *Store) Get(ctx context.Context, tenantID, id string) (Record, error) {
	if err := tenant.ValidID("tenant", tenantID); err != nil {
		return Record{}, err
	}
	if !task.ValidID(id) {
		return Record{}, greyerr.New(greyerr.NotFound, "task %s not found", id)
	}
	var r Record
	err := s.do(ctx, "get", tenantID, func(ctx context.Context) (err error) {
		r, err = s.drv.Get(ctx, tenantID, id)
		return err
	})
	if err == nil && (r.Task == nil || r.Task.TenantID != tenantID || r.Task.ID != id) {
		// A driver bug must not leak another tenant's task.
		return Record{}, greyerr.New(greyerr.Internal, "archive driver %s returned another task for %s", s.caps.Scheme, id)
	}
	return r, err
}

// ValidateFilter checks f, naming the offending field in an
// InvalidArgument error: statuses must be terminal, the time range must
// not be empty, label keys must not be empty, and a driver without
// LabelFilter cannot filter by labels (Unimplemented).
func (s *Store) ValidateFilter(f Filter) error {
	return validFilter(f, s.caps)
}

func validFilter(f Filter, caps Capabilities) error {
	for _, st := range f.Statuses {
		if !st.Valid() {
			return greyerr.Invalid("status", "unknown status %q", st)
		}
		if !st.Terminal() {
			return greyerr.Invalid("status", "status %q is not a finished status: the archive holds finished tasks only", st)
		}
	}
	if len(f.Kind) > 256 {
		return greyerr.Invalid("kind", "is longer than 256 bytes")
	}
	if !f.FinishedFrom.IsZero() && !f.FinishedTo.IsZero() && !f.FinishedFrom.Before(f.FinishedTo) {
		return greyerr.Invalid("finished_from", "must be before finished_to")
	}
	for k, v := range f.Labels {
		if k == "" {
			return greyerr.Invalid("label", "a label filter needs a key (key=value)")
		}
		if len(k) > 256 || len(v) > 256 {
			return greyerr.Invalid("label", "label %q is longer than 256 bytes", k)
		}
	}
	if len(f.Labels) > 0 && !caps.LabelFilter {
		return greyerr.New(greyerr.Unimplemented, "the %s archive cannot filter by label", caps.Scheme)
	}
	return nil
}

// List returns a page of the tenant's archived tasks that match q, newest
// first. q.Cursor must come from an earlier page of the same tenant and
// filter (else InvalidArgument on "cursor").
func (s *Store) List(ctx context.Context, tenantID string, q Query) (Page, error) {
	if err := tenant.ValidID("tenant", tenantID); err != nil {
		return Page{}, err
	}
	if err := validFilter(q.Filter, s.caps); err != nil {
		return Page{}, err
	}
	limit := q.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 1 || limit > MaxLimit {
		return Page{}, greyerr.Invalid("limit", "must be between 1 and %d", MaxLimit)
	}
	dq := DriverQuery{Filter: q.Filter, Limit: limit + 1}
	if q.Cursor != "" {
		c, err := DecodeCursor(q.Cursor, tenantID, q.Filter)
		if err != nil {
			return Page{}, err
		}
		dq.Before = c.Before
	}
	var recs []Record
	err := s.do(ctx, "list", tenantID, func(ctx context.Context) (err error) {
		recs, err = s.drv.List(ctx, tenantID, dq)
		return err
	})
	if err != nil {
		return Page{}, err
	}
	for _, r := range recs {
		if r.Task == nil || r.Task.TenantID != tenantID {
			return Page{}, greyerr.New(greyerr.Internal, "archive driver %s listed another tenant's task", s.caps.Scheme)
		}
	}
	p := Page{Records: recs}
	if len(recs) > limit {
		p.Records = recs[:limit]
		p.Next = EncodeCursor(tenantID, q.Filter, string(p.Records[limit-1].Task.ID))
	}
	return p, nil
}

// ListBefore returns up to limit of the tenant's archived tasks that match
// f and whose ids are less than before ("" : from the newest), newest
// first. It is the position-based form of List for callers that merge the
// archive with another source of tasks under their own cursor (the task
// list merges it with the Raft state, with cursors from EncodeCursor).
func (s *Store) ListBefore(ctx context.Context, tenantID string, f Filter, before string, limit int) ([]Record, error) {
	if err := tenant.ValidID("tenant", tenantID); err != nil {
		return nil, err
	}
	if err := validFilter(f, s.caps); err != nil {
		return nil, err
	}
	if limit < 1 || limit > MaxLimit+1 {
		return nil, greyerr.Invalid("limit", "must be between 1 and %d", MaxLimit)
	}
	if before != "" && !task.ValidID(before) {
		return nil, greyerr.Invalid("cursor", "is not a cursor this API returned")
	}
	var recs []Record
	err := s.do(ctx, "list", tenantID, func(ctx context.Context) (err error) {
		recs, err = s.drv.List(ctx, tenantID, DriverQuery{Filter: f, Limit: limit, Before: before})
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		if r.Task == nil || r.Task.TenantID != tenantID {
			return nil, greyerr.New(greyerr.Internal, "archive driver %s listed another tenant's task", s.caps.Scheme)
		}
	}
	return recs, nil
}

// Count returns how many of the tenant's archived tasks match f.
func (s *Store) Count(ctx context.Context, tenantID string, f Filter) (int64, error) {
	if err := tenant.ValidID("tenant", tenantID); err != nil {
		return 0, err
	}
	if err := validFilter(f, s.caps); err != nil {
		return 0, err
	}
	var n int64
	err := s.do(ctx, "count", tenantID, func(ctx context.Context) (err error) {
		n, err = s.drv.Count(ctx, tenantID, f)
		return err
	})
	return n, err
}

// DeleteBefore removes every tenant's records finished before before (the
// archive's retention) and returns how many went (-1: the driver dropped
// whole partitions and cannot tell).
func (s *Store) DeleteBefore(ctx context.Context, before time.Time) (int64, error) {
	if before.IsZero() {
		return 0, greyerr.Invalid("before", "is required")
	}
	var n int64
	err := s.do(ctx, "delete_before", "", func(ctx context.Context) (err error) {
		n, err = s.drv.DeleteBefore(ctx, before)
		return err
	})
	return n, err
}

// Tenants returns the ids of the tenants with records in the archive,
// sorted. It is Unimplemented when the driver is no TenantLister.
func (s *Store) Tenants(ctx context.Context) ([]string, error) {
	tl, ok := s.drv.(TenantLister)
	if !ok {
		return nil, greyerr.New(greyerr.Unimplemented, "the %s archive cannot list its tenants", s.caps.Scheme)
	}
	var out []string
	err := s.do(ctx, "tenants", "", func(ctx context.Context) (err error) {
		out, err = tl.Tenants(ctx)
		return err
	})
	return out, err
}

// Delete removes the tenant's records with these task ids (missing ids are
// skipped) and returns how many went. It is Unimplemented when the driver
// is no Deleter.
func (s *Store) Delete(ctx context.Context, tenantID string, ids []string) (int64, error) {
	if err := tenant.ValidID("tenant", tenantID); err != nil {
		return 0, err
	}
	dl, ok := s.drv.(Deleter)
	if !ok {
		return 0, greyerr.New(greyerr.Unimplemented, "the %s archive cannot delete single records", s.caps.Scheme)
	}
	var n int64
	if len(ids) == 0 {
		return 0, nil
	}
	err := s.do(ctx, "delete", tenantID, func(ctx context.Context) (err error) {
		n, err = dl.Delete(ctx, tenantID, ids)
		return err
	})
	return n, err
}

// do runs op with tracing and metrics, retrying it with exponential backoff
// while it fails with Unavailable, and wraps its error with the store's
// name and the operation.
func (s *Store) do(ctx context.Context, op, tenantID string, f func(context.Context) error) error {
	attrs := []attribute.KeyValue{
		attribute.String("grey.archive.scheme", s.caps.Scheme),
		attribute.String("grey.tenant_id", tenantID),
		// OpenTelemetry's database conventions, for trace backends that
		// group database calls.
		attribute.String("db.operation.name", op),
	}
	if sys := dbSystem(s.caps.Scheme); sys != "" {
		attrs = append(attrs, attribute.String("db.system.name", sys))
	}
	ctx, span := tracing.Start(ctx, "archive."+op, trace.WithAttributes(attrs...))
	defer span.End()
	start := time.Now()
	err := retry.Unavailable(ctx, s.retry, func() error { return f(ctx) },
		func() { s.metrics.retries.WithLabelValues(s.name, s.caps.Scheme, op).Inc() })
	err = s.wrap(ctx, op, err)
	code := "ok"
	if err != nil {
		code = string(greyerr.CodeOf(err))
		if code != string(greyerr.NotFound) {
			span.SetStatus(codes.Error, err.Error())
		}
	}
	s.metrics.ops.WithLabelValues(s.name, s.caps.Scheme, op, code).Inc()
	s.metrics.seconds.WithLabelValues(s.name, s.caps.Scheme, op).Observe(time.Since(start).Seconds())
	return err
}

// wrap gives err a code (ctx's when ctx ended, Unknown errors as Internal)
// and names the operation, keeping the driver's error as the cause.
func (s *Store) wrap(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	code := greyerr.CodeOf(err)
	switch {
	case ctx.Err() != nil && (code == greyerr.Unknown || errors.Is(err, ctx.Err())):
		code = greyerr.CodeOf(ctx.Err())
	case code == greyerr.Unknown:
		code = greyerr.Internal
	}
	var ge *greyerr.Error
	if errors.As(err, &ge) && ge.Code == code {
		if code == greyerr.NotFound || code == greyerr.InvalidArgument {
			return err // already says what the caller needs
		}
	}
	return &greyerr.Error{Code: code, Message: fmt.Sprintf("archive %s %s", s.caps.Scheme, op), Err: err}
}

// dbSystem is OpenTelemetry's db.system.name of a driver's scheme ("" for
// in-memory and composite archives, whose members' own spans name theirs).
func dbSystem(scheme string) string {
	switch scheme {
	case "postgres", "postgresql":
		return "postgresql"
	case "cassandra":
		return "cassandra"
	case "mongodb", "mongodb+srv":
		return "mongodb"
	}
	return ""
}

// Package memarchive is the in-memory archive driver (mem://), the
// reference driver that runs the conformance suite (archivetest) on every
// go test. Each mem:// URL opens a new, empty archive; nothing survives the
// process. Records are deep-copied in and out, so a caller that changes a
// record after Upsert or Get changes nothing stored. As reaches nothing.
//
// Two hooks serve tests of code built on the archive: SetUnavailable makes
// every method fail as an unreachable store would, and Len counts the
// records held.
package memarchive

import (
	"context"
	"maps"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/google/btree"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// Scheme is the URL scheme of in-memory archives.
const Scheme = "mem"

// Register registers the mem:// driver in r. Every Open of a mem:// URL
// returns a new, empty archive; the URL's host, path and query are ignored.
func Register(r *archive.Registry) error {
	return r.Register(Scheme, archive.OpenerFunc(func(ctx context.Context, _ *url.URL, _ archive.OpenOptions) (archive.Driver, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return NewDriver(), nil
	}))
}

// Open returns a Store over a new, empty in-memory archive.
func Open(opts archive.Options) (*archive.Store, error) {
	return archive.New(NewDriver(), opts)
}

// Driver is the in-memory archive. It is safe for concurrent use.
type Driver struct {
	mu          sync.RWMutex
	tenants     map[string]*tenantRecords
	unavailable error
	closed      bool
}

// tenantRecords are one tenant's records, by id and as an ordered set of
// ids (List walks it downwards).
type tenantRecords struct {
	byID map[string]archive.Record
	ids  *btree.BTreeG[string]
}

func newTenantRecords() *tenantRecords {
	return &tenantRecords{byID: map[string]archive.Record{}, ids: btree.NewOrderedG[string](32)}
}

var (
	_ archive.Driver       = (*Driver)(nil)
	_ archive.TenantLister = (*Driver)(nil)
	_ archive.Deleter      = (*Driver)(nil)
)

// NewDriver returns a driver over a new, empty in-memory archive.
func NewDriver() *Driver {
	return &Driver{tenants: map[string]*tenantRecords{}}
}

// SetUnavailable makes every method fail, while err is not nil, with an
// Unavailable error wrapping err, as a store that does not answer would;
// SetUnavailable(nil) makes the archive answer again, with its records
// intact.
func (d *Driver) SetUnavailable(err error) {
	d.mu.Lock()
	d.unavailable = err
	d.mu.Unlock()
}

// Len returns the number of records held, over all tenants.
func (d *Driver) Len() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	n := 0
	for _, tr := range d.tenants {
		n += len(tr.byID)
	}
	return n
}

// check returns the error every method returns before doing anything:
// ctx's, the simulated outage's, or the closed driver's. It is called with
// d.mu held.
func (d *Driver) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d.unavailable != nil {
		return &greyerr.Error{Code: greyerr.Unavailable, Message: "memarchive: the archive is unavailable", Err: d.unavailable}
	}
	if d.closed {
		return greyerr.New(greyerr.FailedPrecondition, "memarchive: the archive is closed")
	}
	return nil
}

// Upsert implements archive.Driver.
func (d *Driver) Upsert(ctx context.Context, tenant string, recs []archive.Record) error {
	for i, r := range recs {
		if r.Task == nil || r.Task.TenantID != tenant {
			return greyerr.Invalid("tenant_id", "memarchive: record %d does not belong to tenant %q", i, tenant)
		}
	}
	copies := make([]archive.Record, len(recs))
	for i, r := range recs {
		copies[i] = CopyRecord(r)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(ctx); err != nil {
		return err
	}
	tr := d.tenants[tenant]
	if tr == nil {
		tr = newTenantRecords()
		d.tenants[tenant] = tr
	}
	for _, r := range copies {
		tr.ids.ReplaceOrInsert(r.Task.ID)
		tr.byID[r.Task.ID] = r
	}
	return nil
}

// Get implements archive.Driver.
func (d *Driver) Get(ctx context.Context, tenant, id string) (archive.Record, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if err := d.check(ctx); err != nil {
		return archive.Record{}, err
	}
	if tr := d.tenants[tenant]; tr != nil {
		if r, ok := tr.byID[id]; ok {
			return CopyRecord(r), nil
		}
	}
	return archive.Record{}, greyerr.New(greyerr.NotFound, "task %s not found in the archive", id)
}

// List implements archive.Driver.
func (d *Driver) List(ctx context.Context, tenant string, q archive.DriverQuery) ([]archive.Record, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if err := d.check(ctx); err != nil {
		return nil, err
	}
	tr := d.tenants[tenant]
	if tr == nil || q.Limit <= 0 {
		return nil, nil
	}
	var out []archive.Record
	var err error
	seen := 0
	visit := func(id string) bool {
		if id == q.Before {
			return true // strictly before the cursor
		}
		if seen++; seen%1024 == 0 {
			if err = ctx.Err(); err != nil {
				return false
			}
		}
		if r := tr.byID[id]; Match(r, q.Filter) {
			out = append(out, CopyRecord(r))
		}
		return len(out) < q.Limit
	}
	if q.Before == "" {
		tr.ids.Descend(visit)
	} else {
		tr.ids.DescendLessOrEqual(q.Before, visit)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Count implements archive.Driver.
func (d *Driver) Count(ctx context.Context, tenant string, f archive.Filter) (int64, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if err := d.check(ctx); err != nil {
		return 0, err
	}
	tr := d.tenants[tenant]
	if tr == nil {
		return 0, nil
	}
	var n int64
	i := 0
	for _, r := range tr.byID {
		if i++; i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
		}
		if Match(r, f) {
			n++
		}
	}
	return n, nil
}

// DeleteBefore implements archive.Driver; it always knows how many records
// went.
func (d *Driver) DeleteBefore(ctx context.Context, before time.Time) (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(ctx); err != nil {
		return 0, err
	}
	var n int64
	for tenant, tr := range d.tenants {
		for id, r := range tr.byID {
			if r.Task.FinishedAt.Before(before) {
				delete(tr.byID, id)
				tr.ids.Delete(id)
				n++
			}
		}
		if len(tr.byID) == 0 {
			delete(d.tenants, tenant)
		}
	}
	return n, nil
}

// Tenants implements archive.TenantLister.
func (d *Driver) Tenants(ctx context.Context) ([]string, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if err := d.check(ctx); err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(d.tenants)), nil
}

// Delete implements archive.Deleter.
func (d *Driver) Delete(ctx context.Context, tenant string, ids []string) (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(ctx); err != nil {
		return 0, err
	}
	tr := d.tenants[tenant]
	if tr == nil {
		return 0, nil
	}
	var n int64
	for _, id := range ids {
		if _, ok := tr.byID[id]; ok {
			delete(tr.byID, id)
			tr.ids.Delete(id)
			n++
		}
	}
	if len(tr.byID) == 0 {
		delete(d.tenants, tenant)
	}
	return n, nil
}

// Ping implements archive.Driver.
func (d *Driver) Ping(ctx context.Context) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.check(ctx)
}

// Capabilities implements archive.Driver: labels are filtered, batches are
// unbounded, retention deletes records one by one, there are no replicas.
func (d *Driver) Capabilities() archive.Capabilities {
	return archive.Capabilities{Scheme: Scheme, LabelFilter: true}
}

// As implements archive.Driver; the in-memory archive has no native client,
// so it reports false for every i.
func (d *Driver) As(any) bool { return false }

// Close implements archive.Driver; it drops the records.
func (d *Driver) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	d.tenants = map[string]*tenantRecords{}
	return nil
}

// Match reports whether r is selected by f, by the Filter's documented
// semantics: any of the statuses, the kind, FinishedFrom inclusive,
// FinishedTo exclusive, and every label equal in the task's
// Spec.Labels (worker labels and the TEE platform).
func Match(r archive.Record, f archive.Filter) bool {
	t := r.Task
	if len(f.Statuses) > 0 && !slices.Contains(f.Statuses, t.Status) {
		return false
	}
	if f.Kind != "" && t.Kind != f.Kind {
		return false
	}
	if t.FinishedAt == nil {
		return f.FinishedFrom.IsZero() && f.FinishedTo.IsZero()
	}
	if !f.FinishedFrom.IsZero() && t.FinishedAt.Before(f.FinishedFrom) {
		return false
	}
	if !f.FinishedTo.IsZero() && !t.FinishedAt.Before(f.FinishedTo) {
		return false
	}
	if len(f.Labels) > 0 {
		labels := t.Labels()
		for k, v := range f.Labels {
			if got, ok := labels[k]; !ok || got != v {
				return false
			}
		}
	}
	return true
}

// CopyRecord returns a deep copy of r: it shares no mutable memory (maps,
// slices, pointers, JSON bytes) with r.
func CopyRecord(r archive.Record) archive.Record {
	out := archive.Record{Proof: cloneBytes(r.Proof)}
	if r.Task != nil {
		out.Task = copyTask(r.Task)
	}
	return out
}

func copyTask(t *task.Task) *task.Task {
	c := *t
	// Spec.
	c.Payload = cloneBytes(t.Payload)
	c.Priority = clonePtr(t.Priority)
	c.DependsOn = slices.Clone(t.DependsOn)
	if t.Constraints != nil {
		cc := *t.Constraints
		cc.Labels = maps.Clone(t.Constraints.Labels)
		c.Constraints = &cc
	}
	if t.Retry != nil {
		rp := *t.Retry
		rp.MaxRetries = clonePtr(t.Retry.MaxRetries)
		c.Retry = &rp
	}
	c.RequireProof = clonePtr(t.RequireProof)
	c.RunAt = clonePtr(t.RunAt)
	c.Headers = maps.Clone(t.Headers)
	// Task.
	if t.Lease != nil {
		l := *t.Lease
		c.Lease = &l
	}
	c.Result = cloneBytes(t.Result)
	c.PayloadObject = clonePtr(t.PayloadObject)
	c.ResultRef = clonePtr(t.ResultRef)
	c.Error = clonePtr(t.Error)
	if t.Attempts != nil {
		c.Attempts = make([]task.Attempt, len(t.Attempts))
		for i, a := range t.Attempts {
			a.StartedAt = clonePtr(a.StartedAt)
			a.FinishedAt = clonePtr(a.FinishedAt)
			a.Error = clonePtr(a.Error)
			c.Attempts[i] = a
		}
	}
	c.StartedAt = clonePtr(t.StartedAt)
	c.FinishedAt = clonePtr(t.FinishedAt)
	c.NextAttemptAt = clonePtr(t.NextAttemptAt)
	c.Usage = clonePtr(t.Usage)
	c.CostTags = maps.Clone(t.CostTags)
	c.CostUSD = clonePtr(t.CostUSD)
	return &c
}

func cloneBytes[B ~[]byte](b B) B {
	if b == nil {
		return nil
	}
	return append(B{}, b...)
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

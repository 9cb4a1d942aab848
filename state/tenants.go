package state

import (
	"sort"
	"time"

	"github.com/grey-distributed/grey/apitypes"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/tenant"
)

// tenantState is the store's per-tenant record: the tenant (nil for tasks
// of a tenant that has no record, e.g. deleted), derived counters, and the
// hourly usage ledger.
type tenantState struct {
	t        *tenant.Tenant
	queued   int   // unfinished tasks
	stored   int64 // payload + result bytes of stored tasks
	blob     int64 // bytes of the tenant's objects in blob buckets
	storedAt time.Time
	usage    map[int64]*tenant.Usage // unix hour → usage
}

func (s *Store) tstate(id string) *tenantState {
	ts := s.tenantsByID[id]
	if ts == nil {
		ts = &tenantState{usage: make(map[int64]*tenant.Usage)}
		s.tenantsByID[id] = ts
	}
	return ts
}

func (ts *tenantState) bucket(at time.Time) *tenant.Usage {
	h := tenant.Bucket(at).Unix()
	u := ts.usage[h]
	if u == nil {
		u = &tenant.Usage{}
		ts.usage[h] = u
	}
	return u
}

// held is every byte the tenant stores: payloads and results in the state
// and its objects in blob buckets (modules, uploads, stored results).
func (ts *tenantState) held() int64 { return ts.stored + ts.blob }

// integrate adds held×elapsed byte-seconds up to now, split by hour.
func (ts *tenantState) integrate(now time.Time) {
	if ts.storedAt.IsZero() || !now.After(ts.storedAt) {
		if ts.storedAt.IsZero() || now.After(ts.storedAt) {
			ts.storedAt = now
		}
		return
	}
	from := ts.storedAt
	for from.Before(now) {
		end := tenant.Bucket(from).Add(time.Hour)
		if end.After(now) {
			end = now
		}
		if held := ts.held(); held > 0 {
			ts.bucket(from).ByteSeconds += float64(held) * end.Sub(from).Seconds()
		}
		from = end
	}
	ts.storedAt = now
}

// account records the usage effects of replacing old with n (old nil: a new
// task). It updates n.Usage, so n must be a fresh, unpublished clone.
func (x *txn) account(old, n *task.Task) {
	ts := x.s.tstate(n.TenantID)
	now := x.now
	u := ts.bucket(now)
	// Tasks carry a Usage only once there is something to record (pending
	// tasks without payload stay small: a million of them are held).
	usage := func() *task.Usage {
		if n.Usage == nil {
			n.Usage = &task.Usage{}
		}
		return n.Usage
	}
	if old == nil {
		u.TasksSubmitted++
		u.BytesIn += int64(len(n.Payload))
		if len(n.Payload) > 0 {
			usage().BytesIn = int64(len(n.Payload))
		}
		ts.integrate(now)
		ts.stored += int64(len(n.Payload))
		if !n.Status.Terminal() {
			ts.queued++
		}
	}
	if old != nil && !old.Status.Terminal() && n.Status.Terminal() {
		ts.queued--
		switch n.Status {
		case task.Completed:
			usage()
			u.TasksCompleted++
		case task.Failed:
			u.TasksFailed++
		case task.Cancelled:
			u.TasksCancelled++
		}
	}
	// Finished attempts add execution time.
	for k := range n.Attempts {
		a := &n.Attempts[k]
		if a.StartedAt == nil || a.FinishedAt == nil {
			continue
		}
		if old != nil && k < len(old.Attempts) && old.Attempts[k].FinishedAt != nil {
			continue
		}
		d := a.FinishedAt.Sub(*a.StartedAt).Seconds()
		if d < 0 {
			d = 0
		}
		u.ExecSeconds += d
		u.CPUSeconds += d * n.CPU()
		usage().ExecSeconds += d
		usage().CPUSeconds += d * n.CPU()
		if g := n.GPU(); g > 0 {
			u.GPUSeconds += d * g
			usage().GPUSeconds += d * g
		}
	}
	oldOut := 0
	if old != nil {
		oldOut = len(old.Result)
	}
	if d := len(n.Result) - oldOut; d != 0 {
		if d > 0 {
			u.BytesOut += int64(d)
		}
		usage().BytesOut = int64(len(n.Result))
		ts.integrate(now)
		ts.stored += int64(d)
	}
}

// unaccount records a task's removal by GC.
func (x *txn) unaccount(t *task.Task) {
	ts := x.s.tstate(t.TenantID)
	ts.integrate(x.now)
	ts.stored -= int64(len(t.Payload) + len(t.Result))
	if !t.Status.Terminal() {
		ts.queued--
	}
}

// TenantPutRequest creates or updates a tenant.
type TenantPutRequest struct {
	Now    time.Time      `json:"now"`
	Tenant *tenant.Tenant `json:"tenant"`
	// Create refuses an existing id; otherwise a missing id is refused.
	Create bool `json:"create"`
}

// TenantDeleteRequest deletes a tenant with no unfinished tasks.
type TenantDeleteRequest struct {
	Now time.Time `json:"now"`
	ID  string    `json:"id"`
}

// PutTenant creates or updates a tenant record.
func (s *Store) PutTenant(index uint64, req *TenantPutRequest) (*tenant.Tenant, error) {
	x := s.begin(index, req.Now)
	defer x.commit()
	ts := s.tenantsByID[req.Tenant.ID]
	exists := ts != nil && ts.t != nil
	if req.Create && exists {
		return nil, greyerr.New(greyerr.AlreadyExists, "tenant %s already exists", req.Tenant.ID)
	}
	if !req.Create && !exists {
		return nil, greyerr.New(greyerr.NotFound, "tenant %s not found", req.Tenant.ID)
	}
	t := *req.Tenant
	t.UpdatedAt = req.Now
	if exists {
		t.CreatedAt = ts.t.CreatedAt
	} else {
		t.CreatedAt = req.Now
	}
	s.tstate(t.ID).t = &t
	x.tenantsChanged = true
	return &t, nil
}

// DeleteTenant removes a tenant record; its unfinished tasks must be gone.
func (s *Store) DeleteTenant(index uint64, req *TenantDeleteRequest) (*tenant.Tenant, error) {
	x := s.begin(index, req.Now)
	defer x.commit()
	ts := s.tenantsByID[req.ID]
	if ts == nil || ts.t == nil {
		return nil, greyerr.New(greyerr.NotFound, "tenant %s not found", req.ID)
	}
	if ts.queued > 0 {
		return nil, greyerr.New(greyerr.FailedPrecondition, "tenant %s has %d unfinished tasks; cancel them first", req.ID, ts.queued)
	}
	t := ts.t
	ts.t = nil
	x.tenantsChanged = true
	return t, nil
}

// Tenant returns a tenant record, or NotFound.
func (s *Store) Tenant(id string) (*tenant.Tenant, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if ts := s.tenantsByID[id]; ts != nil && ts.t != nil {
		return ts.t, nil
	}
	return nil, greyerr.New(greyerr.NotFound, "tenant %s not found", id)
}

// Quota returns a tenant's quota (zero Quota with weight 1 when the tenant
// has no record).
func (s *Store) Quota(id string) tenant.Quota {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if ts := s.tenantsByID[id]; ts != nil && ts.t != nil {
		return ts.t.Quota
	}
	return tenant.Quota{Weight: 1}
}

// Tenants lists tenant records sorted by id.
func (s *Store) Tenants() []*tenant.Tenant {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*tenant.Tenant
	for _, ts := range s.tenantsByID {
		if ts.t != nil {
			out = append(out, ts.t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// TenantLoad is a tenant's current load.
type TenantLoad = apitypes.TenantLoad

// Load returns a tenant's current load.
func (s *Store) Load(id string) TenantLoad {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if ts := s.tenantsByID[id]; ts != nil {
		return TenantLoad{Queued: ts.queued, StoredBytes: ts.held(), BlobBytes: ts.blob}
	}
	return TenantLoad{}
}

// UsageReport sums a tenant's hourly usage in [from, to) (whole hours;
// zero times are open ends). Storage up to `now` is included.
func (s *Store) UsageReport(id string, from, to, now time.Time) tenant.Usage {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var sum tenant.Usage
	ts := s.tenantsByID[id]
	if ts == nil {
		return sum
	}
	inRange := func(h time.Time) bool {
		return (from.IsZero() || !h.Before(tenant.Bucket(from))) && (to.IsZero() || h.Before(to))
	}
	for h, u := range ts.usage {
		if inRange(time.Unix(h, 0).UTC()) {
			sum.Add(*u)
		}
	}
	// The open storage interval since the last write.
	if held := ts.held(); held > 0 && !ts.storedAt.IsZero() && now.After(ts.storedAt) {
		start, end := ts.storedAt, now
		if !from.IsZero() && start.Before(from) {
			start = from
		}
		if !to.IsZero() && end.After(to) {
			end = to
		}
		if end.After(start) {
			sum.ByteSeconds += float64(held) * end.Sub(start).Seconds()
		}
	}
	return sum
}

// UsageTenants lists every tenant id with usage, sorted.
func (s *Store) UsageTenants() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.tenantsByID))
	for id, ts := range s.tenantsByID {
		if len(ts.usage) > 0 || ts.t != nil {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// SubmitCheck describes a prospective submit for quota checks.
type SubmitCheck struct {
	// New counts tasks that would be created (idempotent replays excluded).
	New int
	// Bytes is their payload bytes.
	Bytes int64
}

// checkQuota applies the tenant's quota to a submit; callers hold the lock.
func checkQuota(q tenant.Quota, ts *tenantState, tasks []*task.Task, c SubmitCheck) error {
	for i, t := range tasks {
		field := func(f string) string {
			if len(tasks) == 1 {
				return f
			}
			return "tasks[" + itoa(i) + "]." + f
		}
		if !q.Allows(t.Kind) {
			e := greyerr.New(greyerr.PermissionDenied, "tenant %s may not submit kind %q (allowed: %v)", t.TenantID, t.Kind, q.AllowedKinds)
			e.Field, e.Reason = field("kind"), "allowed_kinds"
			return e
		}
		if q.MaxPayloadBytes > 0 && int64(len(t.Payload)) > q.MaxPayloadBytes {
			e := greyerr.New(greyerr.TooLarge, "payload is %d bytes, tenant limit %d", len(t.Payload), q.MaxPayloadBytes)
			e.Field, e.Reason = field("payload"), "max_payload_bytes"
			return e
		}
		if q.MaxTaskTimeout > 0 && t.Timeout > q.MaxTaskTimeout {
			e := greyerr.Invalid(field("timeout"), "%s exceeds the tenant's max_task_timeout %s", t.Timeout.D(), q.MaxTaskTimeout.D())
			e.Reason = "max_task_timeout"
			return e
		}
	}
	queued, stored := 0, int64(0)
	if ts != nil {
		queued, stored = ts.queued, ts.held()
	}
	if q.MaxQueued > 0 && queued+c.New > q.MaxQueued {
		e := greyerr.New(greyerr.ResourceExhausted, "tenant has %d unfinished tasks; %d more exceed max_queued %d", queued, c.New, q.MaxQueued)
		e.Reason, e.RetryAfter = "max_queued", time.Second
		return e
	}
	if q.MaxStorageBytes > 0 && stored+c.Bytes > q.MaxStorageBytes {
		e := greyerr.New(greyerr.ResourceExhausted, "tenant stores %d bytes; %d more exceed max_storage_bytes %d", stored, c.Bytes, q.MaxStorageBytes)
		e.Reason, e.RetryAfter = "max_storage_bytes", time.Minute
		return e
	}
	return nil
}

// BlobBytesRequest adds Delta bytes to (or, negative, takes them from) the
// bytes a tenant holds in blob buckets: a module pushed or deleted, an
// upload Grey stored or first saw, a stored result written or collected.
// Writers reserve before they write (a positive Delta with Max set) and
// give the bytes back when the write fails, so two writes racing for the
// last bytes of a quota cannot both pass.
type BlobBytesRequest struct {
	// Now is the leader's clock: storage is integrated up to it.
	Now    time.Time `json:"now"`
	Tenant string    `json:"tenant"`
	Delta  int64     `json:"delta"`
	// Max, when above zero, refuses a positive Delta that takes the
	// tenant's stored bytes (state and blob) past it: the tenant's
	// max_storage_bytes as the leader saw it.
	Max int64 `json:"max,omitempty"`
}

// AddBlobBytes applies a BlobBytesRequest and returns the tenant's blob
// bytes after it. A refused reservation is TooLarge (413) with reason
// storage_quota; a release never takes the count below zero.
func (s *Store) AddBlobBytes(index uint64, req *BlobBytesRequest) (int64, error) {
	x := s.begin(index, req.Now)
	defer x.commit()
	if !task.ValidTenant(req.Tenant) {
		return 0, greyerr.Invalid("tenant", "%q is not a valid tenant id", req.Tenant)
	}
	ts := s.tstate(req.Tenant)
	if req.Delta > 0 && req.Max > 0 && ts.held()+req.Delta > req.Max {
		e := greyerr.New(greyerr.TooLarge, "tenant %s stores %d bytes (%d in blob storage); %d more exceed max_storage_bytes %d", req.Tenant, ts.held(), ts.blob, req.Delta, req.Max)
		e.Reason = "storage_quota"
		return ts.blob, e
	}
	ts.integrate(x.now)
	ts.blob += req.Delta
	if ts.blob < 0 {
		ts.blob = 0
	}
	return ts.blob, nil
}

package engine

import (
	"context"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/grey-distributed/grey/apitypes"
	"github.com/grey-distributed/grey/cluster"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/tenant"
)

// TenantsConfig configures tenancy, quotas and cost attribution.
type TenantsConfig struct {
	// AutoCreate creates an unknown tenant with DefaultQuota on its first
	// submit (dev mode); otherwise unknown tenants are refused.
	AutoCreate bool
	// DefaultQuota is the quota of auto-created tenants and the base of
	// tenants created without one.
	DefaultQuota tenant.Quota
	// DisableQuotas turns quota enforcement off (benchmark baseline).
	DisableQuotas bool
	// Prices turn usage into cost.
	Prices tenant.Prices
	// Environment is the grey-environment cost tag.
	Environment string
	// CostTags are extra cost tags on every task.
	CostTags map[string]string
}

// policy implements scheduler.Policy from the tenants in the store.
type policy struct{ store *state.Store }

func (p policy) Weight(t string) float64 { return p.store.Quota(t).Weight }
func (p policy) MaxRunning(t string) int { return p.store.Quota(t).MaxRunning }

// limiters holds the per-tenant submit-rate limiters of this server.
type limiters struct {
	mu sync.Mutex
	m  map[string]*limiter
}

type limiter struct {
	rate  float64
	burst int
	l     *rate.Limiter
}

// allow takes n tokens for tenant under q, or says how long to wait. When
// it takes them, giveBack returns them (for a submit the state machine
// then refused).
func (ls *limiters) allow(tenantID string, q tenant.Quota, n int, now time.Time) (ok bool, wait time.Duration, giveBack func()) {
	if q.SubmitRate <= 0 {
		return true, 0, func() {}
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.m == nil {
		ls.m = make(map[string]*limiter)
	}
	l := ls.m[tenantID]
	if l == nil || l.rate != q.SubmitRate || l.burst != q.SubmitBurst {
		l = &limiter{rate: q.SubmitRate, burst: q.SubmitBurst, l: rate.NewLimiter(rate.Limit(q.SubmitRate), q.SubmitBurst)}
		ls.m[tenantID] = l
	}
	if n > l.burst {
		// Never satisfiable: say so rather than ask to wait forever.
		return false, -1, nil
	}
	r := l.l.ReserveN(now, n)
	if !r.OK() {
		return false, -1, nil
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d, nil
	}
	// CancelAt restores tokens only for a time not after the reservation's
	// (an immediate one acts at now).
	return true, 0, func() { r.CancelAt(now) }
}

// admit runs the quota checks a submit must pass before it is proposed. It
// returns giveBack, which returns the submit-rate tokens it took: call it
// when the state machine refuses the submit.
func (e *Engine) admit(tenantID string, tasks []*task.Task, now time.Time) (giveBack func(), err error) {
	none := func() {}
	if err := e.store.CheckSubmit(tenantID, tasks, e.cfg.Tenants.AutoCreate); err != nil {
		if e.cfg.Tenants.DisableQuotas && !greyerr.Is(err, greyerr.InvalidArgument) {
			return none, nil
		}
		return nil, err
	}
	if e.cfg.Tenants.DisableQuotas {
		return none, nil
	}
	q := e.store.Quota(tenantID)
	if _, err := e.store.Tenant(tenantID); err != nil {
		q = e.cfg.Tenants.DefaultQuota
	}
	// Idempotent replays create nothing and take no tokens.
	fresh := e.store.NewTasks(tenantID, tasks)
	if fresh == 0 {
		return none, nil
	}
	ok, wait, giveBack := e.limits.allow(tenantID, q, fresh, now)
	if !ok {
		if wait < 0 {
			// Never satisfiable: a client must split the batch, not retry.
			e := greyerr.Invalid("tasks", "a batch of %d new tasks exceeds the tenant's submit_burst %d; split it", fresh, q.SubmitBurst)
			e.Reason = "submit_burst"
			return nil, e
		}
		err := greyerr.New(greyerr.ResourceExhausted, "tenant %s exceeds its submit_rate of %g tasks/s", tenantID, q.SubmitRate)
		err.Reason, err.RetryAfter = "submit_rate", wait
		return nil, err
	}
	return giveBack, nil
}

func (e *Engine) autoCreate(tenantID string) *tenant.Tenant {
	if !e.cfg.Tenants.AutoCreate {
		return nil
	}
	if _, err := e.store.Tenant(tenantID); err == nil {
		return nil
	}
	q := e.cfg.Tenants.DefaultQuota
	q.Normalize()
	return &tenant.Tenant{ID: tenantID, Quota: q}
}

// CreateTenant creates a tenant; quota fields left zero take the default
// quota's values only for weight (other zeros mean "no limit").
func (e *Engine) CreateTenant(ctx context.Context, t *tenant.Tenant) (*tenant.Tenant, error) {
	return e.putTenant(ctx, t, true)
}

// UpdateTenant replaces a tenant's quota.
func (e *Engine) UpdateTenant(ctx context.Context, t *tenant.Tenant) (*tenant.Tenant, error) {
	return e.putTenant(ctx, t, false)
}

func (e *Engine) putTenant(ctx context.Context, t *tenant.Tenant, create bool) (*tenant.Tenant, error) {
	if err := tenant.ValidID("id", t.ID); err != nil {
		return nil, err
	}
	t.Quota.Normalize()
	if err := t.Quota.Validate("quota."); err != nil {
		return nil, err
	}
	res, err := cluster.Apply(ctx, e.node, cluster.TenantPut(&state.TenantPutRequest{Now: time.Now().UTC(), Tenant: t, Create: create}))
	if err != nil {
		return nil, err
	}
	return res, nil
}

// GetTenant returns a tenant.
func (e *Engine) GetTenant(ctx context.Context, id string) (*tenant.Tenant, error) {
	if err := tenant.ValidID("id", id); err != nil {
		return nil, greyerr.New(greyerr.NotFound, "tenant %s not found", id)
	}
	return e.store.Tenant(id)
}

// ListTenants lists tenants.
func (e *Engine) ListTenants(ctx context.Context) []*tenant.Tenant {
	out := e.store.Tenants()
	if out == nil {
		out = []*tenant.Tenant{}
	}
	return out
}

// DeleteTenant deletes a tenant without unfinished tasks.
func (e *Engine) DeleteTenant(ctx context.Context, id string) (*tenant.Tenant, error) {
	if err := tenant.ValidID("id", id); err != nil {
		return nil, greyerr.New(greyerr.NotFound, "tenant %s not found", id)
	}
	res, err := cluster.Apply(ctx, e.node, cluster.TenantDelete(&state.TenantDeleteRequest{Now: time.Now().UTC(), ID: id}))
	if err != nil {
		return nil, err
	}
	return res, nil
}

// TenantUsage is one tenant's usage and cost over a period.
type TenantUsage = apitypes.TenantUsage

// UsageReport is the answer of GET /api/v1/cluster/usage.
type UsageReport = apitypes.UsageReport

// Usage reports usage and cost per tenant in [from, to) (zero = open),
// for one tenant when tenantID is not empty.
func (e *Engine) Usage(ctx context.Context, tenantID string, from, to time.Time) (*UsageReport, error) {
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return nil, greyerr.Invalid("from", "must be before to")
	}
	ids := e.store.UsageTenants()
	if tenantID != "" {
		if err := tenant.ValidID("tenant", tenantID); err != nil {
			return nil, err
		}
		ids = []string{tenantID}
	}
	now := time.Now().UTC()
	rep := &UsageReport{Prices: e.cfg.Tenants.Prices, Tenants: []TenantUsage{}}
	if !from.IsZero() {
		f := from.UTC()
		rep.From = &f
	}
	if !to.IsZero() {
		t := to.UTC()
		rep.To = &t
	}
	for _, id := range ids {
		u := e.store.UsageReport(id, from, to, now)
		c := e.cfg.Tenants.Prices.Price(u)
		rep.Tenants = append(rep.Tenants, TenantUsage{TenantID: id, Usage: u, Cost: c, Load: e.store.Load(id)})
		rep.Total.CPU += c.CPU
		rep.Total.GPU += c.GPU
		rep.Total.Storage += c.Storage
		rep.Total.Transfer += c.Transfer
		rep.Total.Tasks += c.Tasks
		rep.Total.Total += c.Total
	}
	return rep, nil
}

// costOf fills a finished task's cost tags and price (a view: the price
// table applies on read).
func (e *Engine) costOf(t *task.Task) *task.Task {
	c := *t
	tags := make(map[string]string, 3+len(e.cfg.Tenants.CostTags))
	for k, v := range e.cfg.Tenants.CostTags {
		tags[k] = v
	}
	tags["grey-tenant-id"] = t.TenantID
	tags["grey-task-id"] = t.ID
	tags["grey-environment"] = e.cfg.Tenants.Environment
	c.CostTags = tags
	if t.Status.Terminal() && t.Usage != nil {
		u := tenant.Usage{TasksSubmitted: 1, CPUSeconds: t.Usage.CPUSeconds, GPUSeconds: t.Usage.GPUSeconds, BytesIn: t.Usage.BytesIn, BytesOut: t.Usage.BytesOut}
		if t.FinishedAt != nil {
			// Storage while the task was live, created → finished.
			u.ByteSeconds = float64(t.Usage.BytesIn) * math.Max(0, t.FinishedAt.Sub(t.CreatedAt).Seconds())
		}
		usd := e.cfg.Tenants.Prices.Price(u).Total
		c.CostUSD = &usd
	}
	return &c
}

// AddBlobBytes records that tenant's objects in blob buckets gained delta
// bytes (negative: lost them). With max above zero a positive delta is a
// reservation, made before the write, that the state machine refuses
// (TooLarge, 413) when it takes the tenant's stored bytes past max; a
// writer whose write then fails gives the bytes back with -delta.
func (e *Engine) AddBlobBytes(ctx context.Context, tenant string, delta, max int64) error {
	if delta == 0 {
		return nil
	}
	_, err := cluster.Apply(ctx, e.node, cluster.BlobBytes(&state.BlobBytesRequest{Now: time.Now().UTC(), Tenant: tenant, Delta: delta, Max: max}))
	return err
}

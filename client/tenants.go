package client

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/grey-distributed/grey/apitypes"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/tenant"
)

// The tenant and usage routes are admin routes: when the server has an admin
// token they need it, set with WithToken. The client's own tenant
// (WithTenant) plays no part in them.

// tenantPath returns the path of a tenant, or an error for an empty id.
func tenantPath(id string) (string, error) {
	if id == "" {
		return "", greyerr.Invalid("id", "a tenant id is required")
	}
	return "/api/v1/tenants/" + url.PathEscape(id), nil
}

// newTenantRequest is the body of POST /api/v1/tenants.
type newTenantRequest struct {
	ID    string       `json:"id"`
	Quota tenant.Quota `json:"quota"`
}

// CreateTenant creates a tenant with quota and returns it as stored (zero
// quota fields mean "no limit"; a zero weight becomes 1). An existing id is
// an AlreadyExists error.
func (c *Client) CreateTenant(ctx context.Context, id string, quota tenant.Quota) (*tenant.Tenant, error) {
	var t tenant.Tenant
	if err := c.do(ctx, http.MethodPost, "/api/v1/tenants", nil, &newTenantRequest{ID: id, Quota: quota}, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// GetTenant returns a tenant; an unknown id is a NotFound error.
func (c *Client) GetTenant(ctx context.Context, id string) (*tenant.Tenant, error) {
	path, err := tenantPath(id)
	if err != nil {
		return nil, err
	}
	var t tenant.Tenant
	if err := c.do(ctx, http.MethodGet, path, nil, nil, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// ListTenants lists the tenants, sorted by id.
func (c *Client) ListTenants(ctx context.Context) ([]*tenant.Tenant, error) {
	var resp apitypes.TenantList
	if err := c.do(ctx, http.MethodGet, "/api/v1/tenants", nil, nil, &resp); err != nil {
		return nil, err
	}
	return resp.Tenants, nil
}

// UpdateTenant replaces a tenant's whole quota and returns the tenant. To
// change single fields, GetTenant first and send the changed quota.
func (c *Client) UpdateTenant(ctx context.Context, id string, quota tenant.Quota) (*tenant.Tenant, error) {
	path, err := tenantPath(id)
	if err != nil {
		return nil, err
	}
	var t tenant.Tenant
	if err := c.do(ctx, http.MethodPut, path, nil, &apitypes.UpdateTenantRequest{Quota: &quota}, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// DeleteTenant deletes a tenant and returns it as it was. A tenant with
// unfinished tasks is a FailedPrecondition error.
func (c *Client) DeleteTenant(ctx context.Context, id string) (*tenant.Tenant, error) {
	path, err := tenantPath(id)
	if err != nil {
		return nil, err
	}
	var t tenant.Tenant
	if err := c.do(ctx, http.MethodDelete, path, nil, nil, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// UsageOptions selects a usage report.
type UsageOptions struct {
	// Tenant reports only this tenant (all when empty).
	Tenant string
	// From and To bound the period [From, To); a zero time is an open end.
	// Usage is kept per hour: From is rounded down to its hour.
	From, To time.Time
}

// TenantLoad is a tenant's current load.
type TenantLoad = apitypes.TenantLoad

// TenantUsage is one tenant's usage and cost over the period.
type TenantUsage = apitypes.TenantUsage

// UsageReport is the answer of GET /api/v1/cluster/usage.
type UsageReport = apitypes.UsageReport

// Usage reports usage and cost per tenant.
func (c *Client) Usage(ctx context.Context, opts UsageOptions) (*UsageReport, error) {
	q := url.Values{}
	if opts.Tenant != "" {
		q.Set("tenant", opts.Tenant)
	}
	if !opts.From.IsZero() {
		q.Set("from", opts.From.UTC().Format(time.RFC3339Nano))
	}
	if !opts.To.IsZero() {
		q.Set("to", opts.To.UTC().Format(time.RFC3339Nano))
	}
	var r UsageReport
	if err := c.do(ctx, http.MethodGet, "/api/v1/cluster/usage", q, nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

package auth

import (
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// TenantHeader chooses, among the tenants a principal may act for, the
// one a request acts for.
const TenantHeader = "X-Grey-Tenant"

// ReasonTenantNotAllowed is the reason of the 403 answer to a request whose
// X-Grey-Tenant names a tenant the principal may not act for.
const ReasonTenantNotAllowed = "tenant_not_allowed"

// ReasonRoleNotAllowed is the reason of the 403 answer to a request the
// principal's roles on its tenant do not allow.
const ReasonRoleNotAllowed = "role_not_allowed"

// maxTenantHeader bounds the header before any other check.
const maxTenantHeader = 128

// ResolveTenant returns the tenant a request of p acts for, from the value
// of its X-Grey-Tenant header (header may be ""). The header only chooses
// among the tenants p may act for: another is refused with PermissionDenied
// (reason tenant_not_allowed). Without it, the tenant is p's only tenant,
// or DefaultTenant for a principal on every tenant; a principal of several
// tenants must name one.
func ResolveTenant(p *Principal, header string) (string, error) {
	if header != "" {
		if len(header) > maxTenantHeader || !task.ValidTenant(header) {
			e := greyerr.Invalid(TenantHeader, "is not a valid tenant id (lower-case letters, digits, '-', '_')")
			return "", e
		}
		if !p.ActsFor(header) {
			e := greyerr.New(greyerr.PermissionDenied, "this principal may not act for tenant %q", header)
			e.Reason = ReasonTenantNotAllowed
			e.Field = TenantHeader
			return "", e
		}
		return header, nil
	}
	if p.AllTenantsGrant() {
		return DefaultTenant, nil
	}
	ts := p.Tenants()
	switch len(ts) {
	case 1:
		return ts[0], nil
	case 0:
		e := greyerr.New(greyerr.PermissionDenied, "this principal may act for no tenant")
		e.Reason = ReasonTenantNotAllowed
		return "", e
	}
	return "", greyerr.Invalid(TenantHeader, "is required: this principal acts for %d tenants", len(ts))
}

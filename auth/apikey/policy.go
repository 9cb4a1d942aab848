package apikey

import (
	"slices"
	"strings"

	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// IsAdmin reports whether p holds the admin role (on every tenant).
func IsAdmin(p *auth.Principal) bool {
	if p == nil {
		return false
	}
	return slices.ContainsFunc(p.Grants, func(g auth.Grant) bool { return g.Role == auth.RoleAdmin })
}

// Manages reports whether p may manage the API keys of tenant: an admin, or
// an operator of that tenant.
func Manages(p *auth.Principal, tenant string) bool {
	if IsAdmin(p) {
		return true
	}
	if p == nil || tenant == auth.AllTenants {
		return false
	}
	return slices.ContainsFunc(p.Grants, func(g auth.Grant) bool {
		return g.Role == auth.RoleOperator && g.Tenant == tenant
	})
}

// ValidateGrant checks the shape of the grant a new key asks for: admin
// keys are for all tenants and name no kinds; other roles name one valid
// tenant; kinds only go with the worker role.
func ValidateGrant(g auth.Grant) error {
	if !g.Role.Valid() {
		return greyerr.Invalid("role", "must be one of admin, operator, viewer, worker; got %q", g.Role)
	}
	if g.Role == auth.RoleAdmin {
		if g.Tenant != auth.AllTenants {
			return greyerr.Invalid("tenant", "an admin key acts for every tenant: give tenant %q, got %q", auth.AllTenants, g.Tenant)
		}
	} else if !task.ValidTenant(g.Tenant) {
		return greyerr.Invalid("tenant", "%q is not a valid tenant (lower-case letters, digits, '-' and '_'; at most 63)", g.Tenant)
	}
	if len(g.Kinds) > 0 && g.Role != auth.RoleWorker {
		return greyerr.Invalid("kinds", "only worker keys are limited to kinds")
	}
	for _, k := range g.Kinds {
		if k == "" || len(k) > 63 || strings.TrimSpace(k) != k {
			return greyerr.Invalid("kinds", "a kind is 1 to 63 characters without spaces, got %q", k)
		}
	}
	return nil
}

// MayCreate is the rule for creating a key with grant g: only an admin may
// create admin keys (or keys for any tenant); an operator of tenant T may
// create keys for T with role operator, viewer or worker; viewers and
// workers create none. A nil principal (auth mode none) is refused: callers
// in development mode pass an admin principal for the anonymous caller.
func MayCreate(p *auth.Principal, g auth.Grant) error {
	if err := ValidateGrant(g); err != nil {
		return err
	}
	if IsAdmin(p) {
		return nil
	}
	if p == nil {
		return greyerr.New(greyerr.Unauthenticated, "creating an api key needs an authenticated caller")
	}
	if g.Role == auth.RoleAdmin {
		return greyerr.New(greyerr.PermissionDenied, "only an admin may create admin keys")
	}
	if !Manages(p, g.Tenant) {
		return greyerr.New(greyerr.PermissionDenied, "creating keys for tenant %s needs the operator role on it", g.Tenant)
	}
	return nil
}

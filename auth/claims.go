package auth

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/grey-distributed/grey/task"
)

// ClaimRules turns the verified claims of a token (or the attributes of a
// SAML assertion) into grants. Every source adds grants; the principal holds
// their union. The zero value maps nothing: start from DefaultClaimRules.
type ClaimRules struct {
	// Permissions names the claim of "tenant:role" strings, as Temporal
	// writes them ("acme:operator"; "*:admin" for admin on all tenants).
	// Empty turns the source off.
	Permissions string
	// Tenant names the claim holding one tenant id, and Roles the claim
	// holding the roles the principal has there. Empty turns them off.
	Tenant string
	// Roles: see Tenant.
	Roles string
	// Username names the claim used as the principal's display name.
	Username string
	// Bindings grant roles to principals whose claims select them.
	Bindings []Binding
}

// Binding is a binding rule in the manner of Nomad and Vault: a principal
// whose Claim holds a value matching Value (for a list claim: any element)
// gets Role on Tenant.
type Binding struct {
	// Claim is the claim tested; empty means "groups".
	Claim string
	// Value selects the principal: an exact value or a glob in the syntax of
	// path.Match ("acme-*").
	Value string
	// Tenant is a tenant id, or AllTenants (admin only).
	Tenant string
	// Role is granted on Tenant.
	Role Role
	// Kinds limits a worker grant to these task kinds.
	Kinds []string
}

// DefaultClaimRules returns the rules Grey uses unless configured otherwise:
// the permissions claim, grey_tenant_id with grey_roles, preferred_username,
// and no bindings.
func DefaultClaimRules() ClaimRules {
	return ClaimRules{Permissions: "permissions", Tenant: "grey_tenant_id", Roles: "grey_roles", Username: "preferred_username"}
}

// off reports whether a claim-name setting turns its source off.
func off(name string) bool { return name == "" || name == "-" }

// Validate reports the first rule that can never grant anything sensible:
// an unknown role, a malformed tenant, "*" for a role other than admin,
// kinds on a non-worker binding or a bad glob.
func (r ClaimRules) Validate() error {
	for i, b := range r.Bindings {
		if !b.Role.Valid() {
			return fmt.Errorf("binding %d: unknown role %q", i, b.Role)
		}
		if b.Tenant == AllTenants && b.Role != RoleAdmin {
			return fmt.Errorf("binding %d: tenant * is allowed only for role admin", i)
		}
		if b.Tenant != AllTenants && !task.ValidTenant(b.Tenant) {
			return fmt.Errorf("binding %d: %q is not a tenant id", i, b.Tenant)
		}
		if len(b.Kinds) > 0 && b.Role != RoleWorker {
			return fmt.Errorf("binding %d: kinds are only for worker bindings", i)
		}
		if b.Value == "" {
			return fmt.Errorf("binding %d: empty value", i)
		}
		if _, err := path.Match(b.Value, ""); err != nil {
			return fmt.Errorf("binding %d: value %q: %w", i, b.Value, err)
		}
	}
	return nil
}

// Name returns the principal's display name from claims, or "".
func (r ClaimRules) Name(claims map[string]any) string {
	if off(r.Username) {
		return ""
	}
	vs := claimStrings(claims[r.Username], false)
	if len(vs) == 0 {
		return ""
	}
	return truncate(vs[0], 256)
}

// Grants maps claims to grants. Entries that do not parse (another
// application's permission, an unknown role, a malformed tenant id, "*" with
// a role other than admin) grant nothing and are returned in ignored, for
// the audit log; they are not errors, since a token commonly carries
// permissions for other systems too. The result is deduplicated and
// deterministic.
func (r ClaimRules) Grants(claims map[string]any) (grants []Grant, ignored []string) {
	add := func(g Grant) {
		for i := range grants {
			if grants[i].Tenant == g.Tenant && grants[i].Role == g.Role {
				if len(grants[i].Kinds) == 0 || len(g.Kinds) == 0 {
					grants[i].Kinds = nil // one grant covers all kinds
				} else {
					for _, k := range g.Kinds {
						if !slices.Contains(grants[i].Kinds, k) {
							grants[i].Kinds = append(grants[i].Kinds, k)
						}
					}
				}
				return
			}
		}
		grants = append(grants, g)
	}
	if !off(r.Permissions) {
		for _, p := range claimStrings(claims[r.Permissions], true) {
			if g, ok := ParsePermission(p); ok {
				add(g)
			} else {
				ignored = append(ignored, truncate(p, 128))
			}
		}
	}
	if !off(r.Tenant) && !off(r.Roles) {
		if ts := claimStrings(claims[r.Tenant], false); len(ts) == 1 {
			for _, role := range claimStrings(claims[r.Roles], true) {
				if g, ok := grant(ts[0], strings.ToLower(strings.TrimSpace(role))); ok {
					add(g)
				} else {
					ignored = append(ignored, truncate(ts[0]+":"+role, 128))
				}
			}
		} else if len(ts) > 1 {
			ignored = append(ignored, r.Tenant+": more than one tenant")
		}
	}
	for _, b := range r.Bindings {
		claim := b.Claim
		if claim == "" {
			claim = "groups"
		}
		for _, v := range claimStrings(claims[claim], false) {
			if ok, _ := path.Match(b.Value, v); ok {
				if g, ok := grant(b.Tenant, string(b.Role)); ok {
					if g.Role == RoleWorker {
						g.Kinds = slices.Clone(b.Kinds)
					}
					add(g)
				}
				break
			}
		}
	}
	return grants, ignored
}

// ParsePermission parses one "tenant:role" string; "*:admin" is admin on
// all tenants.
func ParsePermission(s string) (Grant, bool) {
	tenant, role, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return Grant{}, false
	}
	return grant(tenant, strings.ToLower(role))
}

// grant checks a tenant and a role name and makes a Grant of them.
func grant(tenant, role string) (Grant, bool) {
	r := Role(role)
	switch {
	case !r.Valid():
		return Grant{}, false
	case tenant == AllTenants:
		if r != RoleAdmin {
			return Grant{}, false
		}
	case !task.ValidTenant(tenant):
		return Grant{}, false
	}
	return Grant{Tenant: tenant, Role: r}, true
}

// maxClaimValues bounds how many values of one claim are looked at, so a
// token with a huge list costs bounded work.
const maxClaimValues = 1024

// claimStrings reads a claim as a list of strings: a string (with split,
// cut at spaces and commas, as scope-like claims are written), or a list of
// strings (other elements are skipped). Anything else is no value.
func claimStrings(v any, split bool) []string {
	switch x := v.(type) {
	case string:
		if !split {
			if x == "" {
				return nil
			}
			return []string{x}
		}
		f := strings.FieldsFunc(x, func(r rune) bool { return r == ' ' || r == ',' })
		if len(f) > maxClaimValues {
			f = f[:maxClaimValues]
		}
		return f
	case []string:
		if len(x) > maxClaimValues {
			x = x[:maxClaimValues]
		}
		return x
	case []any:
		out := make([]string, 0, min(len(x), maxClaimValues))
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
				if len(out) == maxClaimValues {
					break
				}
			}
		}
		return out
	}
	return nil
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// utf8RuneStart reports whether b can begin a UTF-8 sequence.
func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// Principal builds the principal of a verified identity: subject and method
// from the caller, name and grants from claims by r.
func (r ClaimRules) Principal(subject string, method Method, claims map[string]any, expires time.Time) *Principal {
	grants, _ := r.Grants(claims)
	if grants == nil {
		grants = []Grant{}
	}
	return &Principal{Subject: subject, Name: r.Name(claims), Method: method, Grants: grants, Expires: expires}
}

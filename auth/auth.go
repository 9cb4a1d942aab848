// Package auth owns identity and access in Grey: the Principal a request or
// node-to-node call acts as, the roles and permissions it may hold, the
// Authenticator interface that each mode (OIDC bearer tokens, API keys, SAML
// sessions, mTLS peers) implements in its own subpackage, and the context
// plumbing that carries a principal from the HTTP middleware to the engine.
//
// The package imports no identity-provider SDK: drivers such as oidcauth
// and samlauth live in subpackages and are linked by cmd/greyd.
package auth

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"
)

// Role is a named set of permissions on a tenant (or, for admin, on the
// whole cluster).
type Role string

// The roles. The set is closed: RBAC decisions are made from this table, not
// from provider-specific strings.
const (
	// RoleAdmin may do everything: cluster, all tenants, snapshots, keys.
	RoleAdmin Role = "admin"
	// RoleOperator manages one tenant's tasks and modules: submit, cancel,
	// replay, push modules, read everything of the tenant.
	RoleOperator Role = "operator"
	// RoleViewer reads one tenant's tasks, modules, proofs and usage.
	RoleViewer Role = "viewer"
	// RoleWorker leases, heartbeats and reports tasks of the tenants (and
	// kinds) it is granted.
	RoleWorker Role = "worker"
)

// Roles lists every role, in order of decreasing power.
var Roles = []Role{RoleAdmin, RoleOperator, RoleViewer, RoleWorker}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool { return slices.Contains(Roles, r) }

// AllTenants is the tenant of a grant that covers every tenant. Only admin
// grants may name it.
const AllTenants = "*"

// Grant gives a principal one role on one tenant (or on AllTenants).
type Grant struct {
	// Tenant is the tenant id, or AllTenants.
	Tenant string `json:"tenant"`
	// Role is what the principal may do there.
	Role Role `json:"role"`
	// Kinds, for RoleWorker, limits the task kinds the principal may lease;
	// empty means every kind.
	Kinds []string `json:"kinds,omitempty"`
}

// Method names how a principal proved who it is.
type Method string

// The authentication methods.
const (
	// MethodNone is development mode: no credential, the caller is trusted.
	MethodNone Method = "none"
	// MethodOIDC is a verified OIDC/JWT bearer token.
	MethodOIDC Method = "oidc"
	// MethodAPIKey is a Grey API key of a service account.
	MethodAPIKey Method = "apikey"
	// MethodSAML is a browser session opened by a SAML assertion.
	MethodSAML Method = "saml"
	// MethodMTLS is a node's client certificate from the cluster CA.
	MethodMTLS Method = "mtls"
)

// Principal is a verified identity and what it may act as.
type Principal struct {
	// Subject identifies the principal across requests, prefixed by its
	// source: "oidc:<iss>#<sub>", "apikey:<key id>", "saml:<name id>",
	// "node:<node id>", "anonymous".
	Subject string `json:"subject"`
	// Name is a display name (preferred_username, key name), for audit.
	Name string `json:"name,omitempty"`
	// Method is how the principal authenticated.
	Method Method `json:"method"`
	// Grants are the roles the principal holds, per tenant.
	Grants []Grant `json:"grants"`
	// Expires is when the credential stops being valid (zero: never).
	Expires time.Time `json:"expires,omitzero"`
}

// Context plumbing: the middleware stores the principal, handlers and the
// engine read it.
type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal in ctx, or nil.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// ErrNoCredentials is returned by an Authenticator when the request carries
// no credential of its kind, so that the next authenticator may try. Any
// other error means a credential of its kind was presented and refused.
var ErrNoCredentials = errors.New("auth: no credentials of this kind")

// Authenticator verifies one kind of credential on a request.
type Authenticator interface {
	// Name is the mode's name in config ("oidc", "apikey", "saml", "mtls").
	Name() string
	// Authenticate returns the request's principal; ErrNoCredentials when
	// the request carries no credential this authenticator understands; or
	// a greyerr.Unauthenticated error (never echoing the secret) when the
	// credential is present but invalid, expired or revoked. It must not
	// read the request body.
	Authenticate(ctx context.Context, r *http.Request) (*Principal, error)
}

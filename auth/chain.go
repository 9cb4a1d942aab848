package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/grey-distributed/grey/greyerr"
)

// DefaultTenant is the tenant of a request without X-Grey-Tenant from a
// principal that may act for every tenant (an admin, or mode none).
const DefaultTenant = "default"

// Subjects of the built-in principals.
const (
	// SubjectAnonymous is the development principal of mode none.
	SubjectAnonymous = "anonymous"
	// SubjectAdminToken is the bootstrap admin of http.admin_token.
	SubjectAdminToken = "token:admin"
)

// MethodToken is the bootstrap admin credential (http.admin_token).
const MethodToken Method = "token"

// Chain tries its authenticators in order: the first answer that is not
// ErrNoCredentials wins (a principal, or a refusal). When none recognises
// a credential, Anonymous (if set) is the principal; otherwise the request
// is unauthenticated.
type Chain struct {
	// Authenticators are tried in order.
	Authenticators []Authenticator
	// Anonymous, when set, is the principal of a request without any
	// credential (mode none). Nil means such requests are refused.
	Anonymous *Principal
	// Realm names the protection space in WWW-Authenticate.
	Realm string
}

// Authenticate returns the request's principal, or a greyerr
// Unauthenticated error.
func (c *Chain) Authenticate(ctx context.Context, r *http.Request) (*Principal, error) {
	for _, a := range c.Authenticators {
		p, err := a.Authenticate(ctx, r)
		if errors.Is(err, ErrNoCredentials) {
			continue
		}
		if err != nil {
			if greyerr.CodeOf(err) == greyerr.Unknown || greyerr.CodeOf(err) == greyerr.Internal {
				// Never leak an authenticator's internals; the caller
				// only learns that its credential was refused.
				return nil, greyerr.Wrap(greyerr.Unauthenticated, err, "%s credential refused", a.Name())
			}
			return nil, err
		}
		if p == nil {
			return nil, greyerr.New(greyerr.Unauthenticated, "%s authenticator returned no principal", a.Name())
		}
		if !p.Expires.IsZero() && !time.Now().Before(p.Expires) {
			// Authenticators check expiry themselves; a cached principal
			// must not outlive its credential either.
			return nil, greyerr.New(greyerr.Unauthenticated, "%s credential expired", a.Name())
		}
		return p, nil
	}
	if c.Anonymous != nil {
		return c.Anonymous, nil
	}
	if r.Header.Get("Authorization") != "" {
		return nil, greyerr.New(greyerr.Unauthenticated, "the credential is not recognised by any enabled auth mode")
	}
	e := greyerr.New(greyerr.Unauthenticated, "this route needs a credential (Authorization: Bearer <token or API key>)")
	e.Reason = ReasonMissingCredentials
	return nil, e
}

// ReasonMissingCredentials is the reason of the 401 answer to a request
// that carries no credential at all (as opposed to a refused one).
const ReasonMissingCredentials = "missing_credentials"

// Challenge is the WWW-Authenticate value of a 401 answer to err (nil: a
// request that needs a credential it did not send).
func (c *Chain) Challenge(err error) string {
	realm := c.Realm
	if realm == "" {
		realm = "grey"
	}
	v := `Bearer realm="` + realm + `"`
	var ge *greyerr.Error
	if err != nil && !(errors.As(err, &ge) && ge.Reason == ReasonMissingCredentials) {
		// RFC 6750: a credential was presented and refused.
		v += `, error="invalid_token"`
	}
	return v
}

// BearerToken returns the token of an "Authorization: Bearer <token>"
// header, and whether there is one.
func BearerToken(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// Development returns the principal of mode none: anonymous, acting for
// any tenant its X-Grey-Tenant names. Without an admin token it is admin
// of the whole cluster (as Grey always was in development); with one, the
// cluster routes need the token and the anonymous caller is operator and
// worker on every tenant.
func Development(adminToken bool) *Principal {
	p := &Principal{Subject: SubjectAnonymous, Name: "anonymous", Method: MethodNone}
	if adminToken {
		p.Grants = []Grant{{Tenant: AllTenants, Role: RoleOperator}, {Tenant: AllTenants, Role: RoleWorker}}
	} else {
		p.Grants = []Grant{{Tenant: AllTenants, Role: RoleAdmin}}
	}
	return p
}

// Node returns the trusted principal of a node's own components (the
// in-process worker pool): admin on every tenant, subject "node:<id>".
func Node(nodeID string) *Principal {
	return &Principal{Subject: "node:" + nodeID, Name: nodeID, Method: MethodMTLS,
		Grants: []Grant{{Tenant: AllTenants, Role: RoleAdmin}}}
}

// AdminToken authenticates the bootstrap admin credential,
// http.admin_token, sent as a bearer token. It is how the first API key
// is created; other bearer tokens are left to the next authenticator.
type AdminToken struct {
	sum [sha256.Size]byte
}

// NewAdminToken returns the authenticator of token (which must not be "").
func NewAdminToken(token string) *AdminToken {
	return &AdminToken{sum: sha256.Sum256([]byte(token))}
}

// Name implements Authenticator.
func (a *AdminToken) Name() string { return string(MethodToken) }

// Authenticate implements Authenticator: an admin principal for the admin
// token, ErrNoCredentials for anything else.
func (a *AdminToken) Authenticate(_ context.Context, r *http.Request) (*Principal, error) {
	tok, ok := BearerToken(r)
	if !ok {
		return nil, ErrNoCredentials
	}
	// Compare digests: constant time whatever the token's length.
	sum := sha256.Sum256([]byte(tok))
	if subtle.ConstantTimeCompare(sum[:], a.sum[:]) != 1 {
		return nil, ErrNoCredentials
	}
	return &Principal{Subject: SubjectAdminToken, Name: "admin token", Method: MethodToken,
		Grants: []Grant{{Tenant: AllTenants, Role: RoleAdmin}}}, nil
}

// Static maps fixed bearer tokens to principals. It is for tests and for
// wiring fixed service identities; it has no expiry or revocation.
type Static map[string]*Principal

// Name implements Authenticator.
func (s Static) Name() string { return "static" }

// Authenticate implements Authenticator.
func (s Static) Authenticate(_ context.Context, r *http.Request) (*Principal, error) {
	tok, ok := BearerToken(r)
	if !ok {
		return nil, ErrNoCredentials
	}
	if p := s[tok]; p != nil {
		return p, nil
	}
	return nil, ErrNoCredentials
}

// Package mtlsauth authenticates Grey nodes by their client certificate:
// a request that arrived over TLS with a certificate the API verified
// against the cluster CA (tls.ca_file) acts as the node the certificate
// names. The role is in the certificate's URI SAN (certs.Identity):
//
//	spiffe://grey/server/<id>   a Raft server: admin on every tenant
//	spiffe://grey/worker/<id>   a worker-only node: worker on every tenant
//
// The principal's subject is "node:<id>". A request a follower forwarded
// to the leader (it carries api.ForwardedHeader) is not the node's own: the
// node only relays it, so this authenticator leaves it to the request's
// own credentials (which the proxy forwards unchanged) rather than lend it
// the forwarding server's admin role.
package mtlsauth

import (
	"context"
	"net/http"
	"time"

	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/certs"
	"github.com/grey-distributed/grey/greyerr"
)

// Name is the mode's name in config and in audit records.
const Name = "mtls"

// forwardedHeader is api.ForwardedHeader (not imported: auth drivers stay
// below the API layer).
const forwardedHeader = "X-Grey-Forwarded-By"

// Authenticator maps a verified node certificate to a Principal.
type Authenticator struct{}

var _ auth.Authenticator = (*Authenticator)(nil)

// New returns the mTLS authenticator.
func New() *Authenticator { return &Authenticator{} }

// Name returns "mtls".
func (*Authenticator) Name() string { return Name }

// Authenticate returns the node principal of a verified client
// certificate; auth.ErrNoCredentials when the request has none (plaintext,
// no certificate, or a certificate the server did not verify) or was
// forwarded by another node; an Unauthenticated error when the verified
// certificate names no node role.
func (*Authenticator) Authenticate(_ context.Context, r *http.Request) (*auth.Principal, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil, auth.ErrNoCredentials
	}
	if r.Header.Get(forwardedHeader) != "" {
		return nil, auth.ErrNoCredentials
	}
	leaf := r.TLS.VerifiedChains[0][0]
	id, ok := certs.IdentityOf(leaf)
	if !ok {
		return nil, greyerr.New(greyerr.Unauthenticated, "client certificate %q names no grey node (want a URI SAN spiffe://grey/server/<id> or spiffe://grey/worker/<id>)", leaf.Subject.CommonName)
	}
	return PrincipalOf(id, leaf.NotAfter), nil
}

// PrincipalOf is the principal of a node identity whose certificate is
// valid until expires.
func PrincipalOf(id certs.Identity, expires time.Time) *auth.Principal {
	p := &auth.Principal{Subject: "node:" + id.Name, Name: id.Name, Method: auth.MethodMTLS, Expires: expires}
	switch id.Role {
	case certs.RoleServer:
		p.Grants = []auth.Grant{{Tenant: auth.AllTenants, Role: auth.RoleAdmin}}
	case certs.RoleWorker:
		p.Grants = []auth.Grant{{Tenant: auth.AllTenants, Role: auth.RoleWorker}}
	}
	return p
}

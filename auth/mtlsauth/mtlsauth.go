// Package mtlsauth authenticates Grey nodes by their client certificate:
// a request that arrived over TLS with a certificate the API verified
// against the cluster CA (tls.ca_file) acts as the node the certificate
// names. The role is in the certificate's URI SAN (certs.Identity):
//
//	spiffe://grey/server/<id>   a Raft server: admin on every tenant
//	spiffe://grey/worker/<id>   a worker-only node: worker on every tenant
//
// The principal's subject is "node:<id>". A request a follower forwarded
// to the leader (it carries api.ForwardedHeader) is not the forwarding
// node's own: the node only relays it, so it never gets the forwarding
// server's admin role. If the follower verified a node certificate on the
// original connection (a worker node leasing through a follower), it names
// that node in api.ForwardedNodeHeader, and the leader acts for that node,
// but only when the connection it came on is a server's; otherwise the
// request's own credentials (which the proxy passes on unchanged) decide.
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

// forwardedHeader and forwardedNodeHeader are api.ForwardedHeader and
// api.ForwardedNodeHeader (not imported: auth drivers stay below the API
// layer).
const (
	forwardedHeader     = "X-Grey-Forwarded-By"
	forwardedNodeHeader = "X-Grey-Forwarded-Node"
)

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
	leaf := r.TLS.VerifiedChains[0][0]
	id, ok := certs.IdentityOf(leaf)
	if r.Header.Get(forwardedHeader) != "" {
		// Relayed by another node: only a server may name the original node.
		fwd := r.Header.Get(forwardedNodeHeader)
		if !ok || id.Role != certs.RoleServer || fwd == "" {
			return nil, auth.ErrNoCredentials
		}
		orig, err := certs.ParseIdentity(fwd)
		if err != nil {
			return nil, greyerr.New(greyerr.Unauthenticated, "forwarded node identity: %v", err)
		}
		return PrincipalOf(orig, leaf.NotAfter), nil
	}
	if !ok {
		return nil, greyerr.New(greyerr.Unauthenticated, "client certificate %q names no grey node (want a URI SAN spiffe://grey/server/<id> or spiffe://grey/worker/<id>)", leaf.Subject.CommonName)
	}
	return PrincipalOf(id, leaf.NotAfter), nil
}

// ServerPeer returns the identity of the request's TLS peer when it is a
// verified server node (ok false otherwise): what a middleware checks
// before it believes anything a forwarding server says about the request.
func ServerPeer(r *http.Request) (certs.Identity, bool) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return certs.Identity{}, false
	}
	id, ok := certs.IdentityOf(r.TLS.VerifiedChains[0][0])
	return id, ok && id.Role == certs.RoleServer
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

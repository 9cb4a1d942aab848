package certs

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"strings"
)

// Role is the part a node plays in the cluster, as its certificate says.
type Role string

// The node roles a certificate can carry.
const (
	// RoleServer is a Raft server: it may replicate, forward to the leader
	// and join; over the API it acts as admin.
	RoleServer Role = "server"
	// RoleWorker is a worker-only node: over the API it may lease,
	// heartbeat and report tasks of every tenant, and register itself.
	RoleWorker Role = "worker"
)

// Valid reports whether r is RoleServer or RoleWorker.
func (r Role) Valid() bool { return r == RoleServer || r == RoleWorker }

// TrustDomain is the host of the URI SANs that carry a node's identity.
const TrustDomain = "grey"

// Identity is who a node certificate names: its role and node id.
type Identity struct {
	// Role is RoleServer or RoleWorker.
	Role Role
	// Name is the node id.
	Name string
}

// URI is the identity's URI SAN, spiffe://grey/<role>/<name>.
func (id Identity) URI() *url.URL {
	return &url.URL{Scheme: "spiffe", Host: TrustDomain, Path: "/" + string(id.Role) + "/" + id.Name}
}

// String is the URI's text.
func (id Identity) String() string { return id.URI().String() }

// ParseIdentity reads an identity URI: spiffe://grey/<role>/<name> (or the
// equivalent grey://<role>/<name>).
func ParseIdentity(s string) (Identity, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Identity{}, fmt.Errorf("identity %q: %w", s, err)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.Opaque != "" || u.Port() != "" || u.RawPath != "" {
		return Identity{}, fmt.Errorf("identity %q: no port, user, query, fragment or escapes allowed", s)
	}
	var role, name string
	switch {
	case u.Scheme == "spiffe" && u.Host == TrustDomain:
		role, name, _ = strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	case u.Scheme == "grey":
		role, name = u.Host, strings.TrimPrefix(u.Path, "/")
	default:
		return Identity{}, fmt.Errorf("identity %q: not spiffe://%s/<role>/<name>", s, TrustDomain)
	}
	id := Identity{Role: Role(role), Name: name}
	if !id.Role.Valid() {
		return Identity{}, fmt.Errorf("identity %q: role %q is not server or worker", s, role)
	}
	if !validName(name) {
		return Identity{}, fmt.Errorf("identity %q: name must be 1 to 64 letters, digits, '.', '_' or '-'", s)
	}
	return id, nil
}

// IdentityOf returns the node identity in cert's URI SANs; ok is false when
// it carries none (or more than one).
func IdentityOf(cert *x509.Certificate) (id Identity, ok bool) {
	found := 0
	for _, u := range cert.URIs {
		if got, err := ParseIdentity(u.String()); err == nil {
			id = got
			found++
		}
	}
	return id, found == 1
}

// validName mirrors the node id rule of the configuration.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if r != '.' && r != '_' && r != '-' && !('a' <= r && r <= 'z') && !('A' <= r && r <= 'Z') && !('0' <= r && r <= '9') {
			return false
		}
	}
	return true
}

package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/grey-distributed/grey/config"
)

// Material is one node's TLS material, loaded from the tls block of its
// configuration, and the tls.Configs built from it.
type Material struct {
	// API is the API listener's key pair; nil when the API is plaintext.
	API *KeyPair
	// Node is this node's certificate for mutual TLS; nil without a CA.
	Node *KeyPair
	// CA is the cluster CA; nil without one.
	CA *x509.CertPool
	// Role is what the node certificate must say this node is.
	Role Role
	// RequireClientCert is tls.require_client_cert.
	RequireClientCert bool
}

// Load reads and checks the files the tls block of cfg names: each exists,
// each certificate and key form a pair, the node certificate chains to
// the CA, is valid now and names this node's role (server for node.role
// server or both, worker for worker), and the API certificate chains to
// the CA when there is one (followers verify the leader's API against it).
// Each error names its config key. onError is told of a failed reload
// later on. With an empty tls block it returns an empty Material.
func Load(cfg *config.Config, onError func(error)) (*Material, error) {
	t := &cfg.TLS
	m := &Material{Role: RoleServer, RequireClientCert: t.RequireClientCert}
	if cfg.Node.Role == config.RoleWorker {
		m.Role = RoleWorker
	}
	now := time.Now()
	var caCerts []*x509.Certificate
	if t.CAFile != "" {
		var err error
		if caCerts, err = readCerts(t.CAFile); err != nil {
			return nil, keyError("tls.ca_file", err)
		}
		m.CA = x509.NewCertPool()
		for _, c := range caCerts {
			m.CA.AddCert(c)
		}
	}
	if t.CertFile != "" && cfg.Node.Role != config.RoleWorker {
		kp, err := loadPair("tls.cert_file", t.CertFile, "tls.key_file", t.KeyFile, onError)
		if err != nil {
			return nil, err
		}
		leaf := kp.Leaf()
		if err := expired(leaf, now); err != nil {
			return nil, keyError("tls.cert_file", fmt.Errorf("%s: %w", t.CertFile, err))
		}
		if m.CA != nil {
			if err := verify(kp, m.CA, x509.ExtKeyUsageServerAuth); err != nil {
				return nil, keyError("tls.cert_file", fmt.Errorf("%s is not signed by tls.ca_file (other nodes verify this API against it): %w", t.CertFile, err))
			}
		}
		m.API = kp
	}
	if m.CA == nil {
		return m, nil
	}
	certFile, keyFile, certKey, keyKey := t.NodeCert()
	kp, err := loadPair(certKey, certFile, keyKey, keyFile, onError)
	if err != nil {
		return nil, err
	}
	if err := verify(kp, m.CA, x509.ExtKeyUsageClientAuth); err != nil {
		return nil, keyError(certKey, fmt.Errorf("%s is not signed by tls.ca_file: %w", certFile, err))
	}
	id, ok := IdentityOf(kp.Leaf())
	if !ok {
		return nil, keyError(certKey, fmt.Errorf("%s carries no node identity (a URI SAN %s; issue it with greyd certs issue)", certFile, Identity{Role: m.Role, Name: "<node id>"}))
	}
	if id.Role != m.Role {
		return nil, keyError(certKey, fmt.Errorf("%s is a %s certificate (%s), but this node runs as a %s", certFile, id.Role, id, m.Role))
	}
	m.Node = kp
	return m, nil
}

// keyError is a config.Error naming key.
func keyError(key string, err error) error {
	return &config.Error{Key: key, Msg: err.Error(), Err: err}
}

// loadPair checks that both files exist (naming the missing one) and
// loads them as a reloading KeyPair.
func loadPair(certKey, certFile, keyKey, keyFile string, onError func(error)) (*KeyPair, error) {
	for _, f := range [][2]string{{certKey, certFile}, {keyKey, keyFile}} {
		if _, err := os.Stat(f[1]); err != nil {
			return nil, keyError(f[0], err)
		}
	}
	kp, err := LoadKeyPair(certFile, keyFile, onError)
	if err != nil {
		return nil, keyError(keyKey, fmt.Errorf("%s and %s (%s) do not form a key pair: %w", keyFile, certFile, certKey, err))
	}
	return kp, nil
}

// verify checks kp's chain against roots for usage.
func verify(kp *KeyPair, roots *x509.CertPool, usage x509.ExtKeyUsage) error {
	c, _ := kp.Certificate()
	_, err := verifyChain(c.Certificate, roots, usage)
	return err
}

// verifyChain verifies a peer's DER chain (leaf first) against roots.
func verifyChain(chain [][]byte, roots *x509.CertPool, usage x509.ExtKeyUsage) (*x509.Certificate, error) {
	if len(chain) == 0 {
		return nil, errors.New("no certificate")
	}
	var leaf *x509.Certificate
	inter := x509.NewCertPool()
	for i, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			leaf = c
		} else {
			inter.AddCert(c)
		}
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}})
	return leaf, err
}

// APIServerConfig is the API listener's TLS config (nil: plaintext): the
// API certificate, reloaded on change; with a CA, client certificates are
// verified against it (required with tls.require_client_cert, else
// verified when presented).
func (m *Material) APIServerConfig() *tls.Config {
	if m.API == nil {
		return nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: m.API.GetCertificate}
	if m.CA != nil {
		c.ClientCAs = m.CA
		c.ClientAuth = tls.VerifyClientCertIfGiven
		if m.RequireClientCert {
			c.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return c
}

// NodeClientConfig is the TLS config of this node's HTTPS calls to other
// nodes (forwarding, joins, leases): it presents the node certificate and
// verifies the server (and its host name) against the CA. Nil without a
// CA (the system roots then apply to https:// peers).
func (m *Material) NodeClientConfig() *tls.Config {
	if m.CA == nil || m.Node == nil {
		return nil
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: m.CA, GetClientCertificate: m.Node.GetClientCertificate}
}

// RaftServerConfig is the Raft listener's TLS config (nil without a CA):
// it serves the node certificate and accepts only peers whose certificate
// chains to the CA and names a server.
func (m *Material) RaftServerConfig() *tls.Config {
	if m.CA == nil || m.Node == nil {
		return nil
	}
	return &tls.Config{
		MinVersion:       tls.VersionTLS13,
		GetCertificate:   m.Node.GetCertificate,
		ClientAuth:       tls.RequireAndVerifyClientCert,
		ClientCAs:        m.CA,
		VerifyConnection: requireRole(RoleServer),
	}
}

// RaftClientConfig is the TLS config of Raft dials (nil without a CA): it
// presents the node certificate and accepts only a peer whose certificate
// chains to the CA and names a server. Raft addresses are often bare IPs
// that change, so the peer's identity, not its host name, is checked.
func (m *Material) RaftClientConfig() *tls.Config {
	if m.CA == nil || m.Node == nil {
		return nil
	}
	roots := m.CA
	check := requireRole(RoleServer)
	return &tls.Config{
		MinVersion:           tls.VersionTLS13,
		GetClientCertificate: m.Node.GetClientCertificate,
		// The chain is verified below, against the CA, without a host name.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if _, err := verifyChain(rawChain(cs.PeerCertificates), roots, x509.ExtKeyUsageServerAuth); err != nil {
				return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
			}
			return check(cs)
		},
	}
}

func rawChain(cs []*x509.Certificate) [][]byte {
	out := make([][]byte, len(cs))
	for i, c := range cs {
		out[i] = c.Raw
	}
	return out
}

// requireRole refuses a peer whose certificate does not name role.
func requireRole(role Role) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("certs: the peer presented no certificate")
		}
		id, ok := IdentityOf(cs.PeerCertificates[0])
		if !ok || id.Role != role {
			return fmt.Errorf("certs: peer %q is not a %s node (want a URI SAN spiffe://%s/%s/<id>)", cs.PeerCertificates[0].Subject.CommonName, role, TrustDomain, role)
		}
		return nil
	}
}

// IsRefusal reports whether err is a TLS refusal that retrying does not
// fix: this side did not trust the peer's certificate, or the peer
// refused ours.
func IsRefusal(err error) bool {
	if err == nil {
		return false
	}
	var (
		unknown  x509.UnknownAuthorityError
		invalid  x509.CertificateInvalidError
		hostname x509.HostnameError
		verr     *tls.CertificateVerificationError
		alert    tls.AlertError
	)
	if errors.As(err, &unknown) || errors.As(err, &invalid) || errors.As(err, &hostname) || errors.As(err, &verr) {
		return true
	}
	if errors.As(err, &alert) {
		return certAlert(uint8(alert))
	}
	// The HTTP transport flattens some errors read after the handshake
	// into text.
	s := err.Error()
	for _, m := range []string{"tls: bad certificate", "tls: unknown certificate authority", "tls: certificate required", "tls: unknown certificate", "tls: certificate expired", "tls: failed to verify certificate"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// certAlert reports TLS alerts about certificates (RFC 8446 §6.2).
func certAlert(a uint8) bool {
	switch a {
	case 42, 43, 44, 45, 46, 48, 116:
		return true
	}
	return false
}

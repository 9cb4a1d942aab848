package config

import (
	"net/url"
	"strings"
)

// TLSConfig configures TLS on the API and mutual TLS between nodes
// (docs/AUTH.md, "TLS and mutual TLS"). All fields empty (the default) is
// plaintext, which is fine on loopback only.
//
// CertFile/KeyFile turn on TLS on the API listener; CAFile turns on mutual
// TLS between nodes: Raft runs over TLS, and every node-to-node call
// (forwarding to the leader, joins, worker nodes' leases) presents the node
// certificate and verifies the server against the CA. The files are read,
// and checked against each other, when greyd starts; the API and node
// certificates are read again whenever their files change.
type TLSConfig struct {
	// CertFile is the API server's certificate (PEM, leaf first, then any
	// intermediates).
	CertFile string `yaml:"cert_file"`
	// KeyFile is the private key of CertFile (PEM).
	KeyFile string `yaml:"key_file"`
	// CAFile is the cluster CA (PEM, one or more certificates): node
	// certificates are verified against it, and so are client certificates
	// presented to the API.
	CAFile string `yaml:"ca_file"`
	// RequireClientCert makes the API refuse connections that present no
	// certificate from CAFile. Without it a client may present one (nodes
	// always do) or authenticate otherwise (tokens, API keys); a
	// certificate that is presented is always verified.
	RequireClientCert bool `yaml:"require_client_cert"`
	// NodeCertFile is this node's own certificate, presented to other nodes
	// (Raft, forwarding, joins, worker leases) and served on the Raft
	// listener; "" means CertFile. Its URI SAN carries the node's role
	// (spiffe://grey/server/<id> or spiffe://grey/worker/<id>).
	NodeCertFile string `yaml:"node_cert_file"`
	// NodeKeyFile is the private key of NodeCertFile; "" means KeyFile.
	NodeKeyFile string `yaml:"node_key_file"`
}

// APIEnabled reports whether the API listener serves TLS.
func (t *TLSConfig) APIEnabled() bool { return t.CertFile != "" }

// MutualEnabled reports whether nodes talk to each other over mutual TLS
// (a cluster CA is configured).
func (t *TLSConfig) MutualEnabled() bool { return t.CAFile != "" }

// NodeCert returns the node certificate and key files (falling back to
// the API's) and the config keys they came from, for error messages.
func (t *TLSConfig) NodeCert() (certFile, keyFile, certKey, keyKey string) {
	certFile, certKey = t.NodeCertFile, "tls.node_cert_file"
	if certFile == "" {
		certFile, certKey = t.CertFile, "tls.cert_file"
	}
	keyFile, keyKey = t.NodeKeyFile, "tls.node_key_file"
	if keyFile == "" {
		keyFile, keyKey = t.KeyFile, "tls.key_file"
	}
	return certFile, keyFile, certKey, keyKey
}

// PeerURL turns a peer address from node.servers or raft.join into a base
// URL: host:port gets https:// when the API serves TLS or nodes use mutual
// TLS, http:// otherwise; a URL is kept.
func (c *Config) PeerURL(addr string) string {
	if strings.Contains(addr, "://") {
		return addr
	}
	if c.TLS.APIEnabled() || c.TLS.MutualEnabled() {
		return "https://" + addr
	}
	return "http://" + addr
}

// tls validates the tls block. It checks that the keys fit together; the
// files themselves are read and checked when greyd starts.
func (v *validator) tls(t *TLSConfig) {
	role := v.c.Node.Role
	v.pair("tls.cert_file", t.CertFile, "tls.key_file", t.KeyFile)
	v.pair("tls.node_cert_file", t.NodeCertFile, "tls.node_key_file", t.NodeKeyFile)
	if t.RequireClientCert && t.CAFile == "" {
		v.fail("tls.require_client_cert", "needs tls.ca_file (the CA client certificates are verified against)")
	}
	if t.RequireClientCert && t.CertFile == "" {
		v.fail("tls.require_client_cert", "needs tls.cert_file and tls.key_file (client certificates are asked for during a TLS handshake)")
	}
	if role != RoleWorker && t.CAFile != "" && t.CertFile == "" {
		v.fail("tls.cert_file", "is required when tls.ca_file is set on a server: followers forward to the leader's API, which must serve TLS")
	}
	if t.CAFile != "" && t.CertFile == "" && t.NodeCertFile == "" {
		v.fail("tls.node_cert_file", "is required when tls.ca_file is set: this node presents it to the others")
	}
	if t.NodeCertFile != "" && t.CAFile == "" {
		v.fail("tls.ca_file", "is required when tls.node_cert_file is set (node certificates are verified against the cluster CA)")
	}
	if !t.APIEnabled() && !t.MutualEnabled() {
		return
	}
	if a := v.c.HTTP.Advertise; a != "" && t.APIEnabled() && strings.HasPrefix(a, "http://") {
		v.fail("http.advertise", "must be an https:// URL when tls.cert_file is set, got %q", a)
	}
	if t.MutualEnabled() {
		for key, addrs := range map[string][]string{"node.servers": v.c.Node.Servers, "raft.join": v.c.Raft.Join} {
			for _, a := range addrs {
				if u, err := url.Parse(a); err == nil && u.Scheme == "http" {
					v.fail(key, "must use https:// when tls.ca_file is set (nodes talk over mutual TLS), got %q", a)
				}
			}
		}
	}
}

// pair checks that a certificate and its key are set together, naming the
// one that is missing.
func (v *validator) pair(certKey, cert, keyKey, key string) {
	switch {
	case cert != "" && key == "":
		v.fail(keyKey, "is required when %s is set", certKey)
	case cert == "" && key != "":
		v.fail(certKey, "is required when %s is set", keyKey)
	}
}

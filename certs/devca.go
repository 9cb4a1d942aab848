package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File names of the development CA inside its directory.
const (
	// CACertFile is the CA certificate (the tls.ca_file of every node).
	CACertFile = "ca.crt"
	// CAKeyFile is the CA's private key (mode 0600; keep it off the nodes).
	CAKeyFile = "ca.key"
)

// Validity of what the development CA makes.
const (
	caValidity   = 10 * 365 * 24 * time.Hour
	nodeValidity = 825 * 24 * time.Hour
)

// DefaultHosts are the SANs of a node certificate issued without hosts: the
// loopback names, enough for a cluster on one machine.
var DefaultHosts = []string{"localhost", "127.0.0.1", "::1"}

// InitCA creates a development CA in dir: an ECDSA P-256 key (ca.key, mode
// 0600) and a self-signed certificate (ca.crt). It refuses to overwrite an
// existing CA. It returns the certificate's path.
func InitCA(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("certs dir %s: %w", dir, err)
	}
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	for _, p := range []string{certPath, keyPath} {
		if _, err := os.Stat(p); err == nil {
			return "", fmt.Errorf("%s exists: a CA is already there (remove it to start over)", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", fmt.Errorf("generate CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Grey development CA", Organization: []string{"Grey"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return "", fmt.Errorf("sign CA certificate: %w", err)
	}
	if err := writeKey(keyPath, key); err != nil {
		return "", err
	}
	if err := writePEM(certPath, "CERTIFICATE", der, 0o644); err != nil {
		return "", err
	}
	return certPath, nil
}

// IssueRequest describes a node certificate.
type IssueRequest struct {
	// Name is the node id: the certificate's common name and the name in
	// its identity URI.
	Name string
	// Role is the node's role.
	Role Role
	// Hosts are the DNS names and IP addresses the node is reached at
	// (empty: DefaultHosts).
	Hosts []string
	// Validity is how long the certificate is valid (0: 825 days).
	Validity time.Duration
}

// Issued names the files Issue wrote.
type Issued struct {
	// CertFile is <dir>/<name>.crt.
	CertFile string
	// KeyFile is <dir>/<name>.key (mode 0600).
	KeyFile string
	// Identity is the identity URI in the certificate.
	Identity Identity
}

// Issue signs a node certificate with the CA in dir (made by InitCA) and
// writes <name>.crt and <name>.key (0600) there. The certificate is for
// both server and client authentication (nodes use it both ways) and
// carries the node's identity URI and a SAN for each host.
func Issue(dir string, req IssueRequest) (*Issued, error) {
	id := Identity{Role: req.Role, Name: req.Name}
	if !validName(req.Name) {
		return nil, fmt.Errorf("name %q: must be 1 to 64 letters, digits, '.', '_' or '-'", req.Name)
	}
	if !req.Role.Valid() {
		return nil, fmt.Errorf("role %q: must be server or worker", req.Role)
	}
	caCert, caKey, err := loadCA(dir)
	if err != nil {
		return nil, err
	}
	hosts := req.Hosts
	if len(hosts) == 0 {
		hosts = DefaultHosts
	}
	validity := req.Validity
	if validity <= 0 {
		validity = nodeValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate node key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: req.Name, Organization: []string{"Grey"}, OrganizationalUnit: []string{string(req.Role)}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{id.URI()},
	}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		switch {
		case h == "":
		case net.ParseIP(h) != nil:
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(h))
		default:
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	if notAfter := caCert.NotAfter; tmpl.NotAfter.After(notAfter) {
		tmpl.NotAfter = notAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("sign node certificate: %w", err)
	}
	out := &Issued{CertFile: filepath.Join(dir, req.Name+".crt"), KeyFile: filepath.Join(dir, req.Name+".key"), Identity: id}
	if err := writeKey(out.KeyFile, key); err != nil {
		return nil, err
	}
	if err := writePEM(out.CertFile, "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	return out, nil
}

// loadCA reads the CA that InitCA wrote in dir.
func loadCA(dir string) (*x509.Certificate, crypto.Signer, error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	certs, err := readCerts(certPath)
	if err != nil {
		return nil, nil, fmt.Errorf("CA certificate (run greyd certs init --dir %s first): %w", dir, err)
	}
	b, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("CA key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, nil, fmt.Errorf("CA key %s: no PEM block", keyPath)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("CA key %s: %w", keyPath, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("CA key %s: not a signing key", keyPath)
	}
	if !certs[0].IsCA {
		return nil, nil, fmt.Errorf("%s is not a CA certificate", certPath)
	}
	return certs[0], signer, nil
}

// serial returns a random 128-bit serial number.
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // rand.Reader never fails on supported platforms
	}
	return n.Add(n, big.NewInt(1))
}

// writeKey writes key as PKCS #8 PEM, mode 0600.
func writeKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

// writePEM writes one PEM block to path with mode perm, replacing the file
// atomically (a reloading reader never sees half a file).
func writePEM(path, typ string, der []byte, perm fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := pem.Encode(tmp, &pem.Block{Type: typ, Bytes: der}); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

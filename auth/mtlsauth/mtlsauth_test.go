package mtlsauth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/auth/mtlsauth"
	"github.com/grey-distributed/grey/certs"
	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/greyerr"
)

type result struct {
	p      *auth.Principal
	err    error
	server bool // mtlsauth.ServerPeer
}

// server is an API-like TLS server (client certificates verified when
// presented, against the CA in dir) that authenticates every request.
func server(t *testing.T, dir string, got chan<- result) *httptest.Server {
	t.Helper()
	is, err := certs.Issue(dir, certs.IssueRequest{Name: "s1", Role: certs.RoleServer})
	if err != nil {
		t.Fatal(err)
	}
	c := config.Default()
	c.TLS = config.TLSConfig{CertFile: is.CertFile, KeyFile: is.KeyFile, CAFile: filepath.Join(dir, certs.CACertFile)}
	m, err := certs.Load(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := mtlsauth.New()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Authenticate(r.Context(), r)
		_, server := mtlsauth.ServerPeer(r)
		got <- result{p, err, server}
	}))
	srv.TLS = m.APIServerConfig()
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func clientWith(t *testing.T, dir string, cert *tls.Certificate) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	ca, err := tls.LoadX509KeyPair(filepath.Join(dir, certs.CACertFile), filepath.Join(dir, certs.CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	pool.AddCert(ca.Leaf)
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
}

func nodeCert(t *testing.T, dir, name string, role certs.Role) *tls.Certificate {
	t.Helper()
	is, err := certs.Issue(dir, certs.IssueRequest{Name: name, Role: role})
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.LoadX509KeyPair(is.CertFile, is.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

// plainCert is a client certificate from the CA in dir without a node
// identity (a user's certificate, say).
func plainCert(t *testing.T, dir string) *tls.Certificate {
	t.Helper()
	ca, err := tls.LoadX509KeyPair(filepath.Join(dir, certs.CACertFile), filepath.Join(dir, certs.CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "alice"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Leaf, key.Public(), ca.PrivateKey.(crypto.Signer))
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	dir, other := t.TempDir(), t.TempDir()
	for _, d := range []string{dir, other} {
		if _, err := certs.InitCA(d); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan result, 1)
	srv := server(t, dir, got)
	do := func(c *http.Client, forwarded bool, node ...string) (result, error) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		if forwarded {
			req.Header.Set("X-Grey-Forwarded-By", "s2")
		}
		for _, n := range node {
			req.Header.Set("X-Grey-Forwarded-Node", n)
		}
		resp, err := c.Do(req)
		if err != nil {
			return result{}, err
		}
		resp.Body.Close()
		return <-got, nil
	}

	r, err := do(clientWith(t, dir, nodeCert(t, dir, "s2", certs.RoleServer)), false)
	if err != nil || r.err != nil {
		t.Fatalf("server node: %v %v", err, r.err)
	}
	if !r.server {
		t.Error("ServerPeer is false for a server certificate")
	}
	if p := r.p; p.Subject != "node:s2" || p.Method != auth.MethodMTLS || len(p.Grants) != 1 || p.Grants[0].Tenant != auth.AllTenants || p.Grants[0].Role != auth.RoleAdmin || p.Expires.IsZero() {
		t.Errorf("server principal = %+v", p)
	}
	r, err = do(clientWith(t, dir, nodeCert(t, dir, "w1", certs.RoleWorker)), false)
	if err != nil || r.err != nil {
		t.Fatalf("worker node: %v %v", err, r.err)
	}
	if r.server {
		t.Error("ServerPeer is true for a worker certificate")
	}
	if p := r.p; p.Subject != "node:w1" || len(p.Grants) != 1 || p.Grants[0].Role != auth.RoleWorker || p.Grants[0].Tenant != auth.AllTenants {
		t.Errorf("worker principal = %+v", p)
	}
	// No certificate, or a forwarded request: not this authenticator's.
	r, err = do(clientWith(t, dir, nil), false)
	if err != nil || !errors.Is(r.err, auth.ErrNoCredentials) {
		t.Errorf("no certificate: %v %v", err, r.err)
	}
	r, err = do(clientWith(t, dir, nodeCert(t, dir, "s3", certs.RoleServer)), true)
	if err != nil || !errors.Is(r.err, auth.ErrNoCredentials) || r.p != nil {
		t.Errorf("forwarded: %+v %v %v", r.p, err, r.err)
	}
	// A server relaying a worker node's request names the worker: the
	// leader acts for the worker, not with the server's admin role.
	s3 := clientWith(t, dir, nodeCert(t, dir, "s4", certs.RoleServer))
	r, err = do(s3, true, "spiffe://grey/worker/w7")
	if err != nil || r.err != nil || r.p.Subject != "node:w7" || r.p.Grants[0].Role != auth.RoleWorker {
		t.Errorf("forwarded worker: %+v %v %v", r.p, err, r.err)
	}
	if r, err = do(s3, true, "spiffe://grey/admin/x"); err != nil || greyerr.CodeOf(r.err) != greyerr.Unauthenticated {
		t.Errorf("forwarded junk identity: %+v %v %v", r.p, err, r.err)
	}
	// Only a server may name a forwarded node: a worker claiming to relay
	// a server gets nothing.
	r, err = do(clientWith(t, dir, nodeCert(t, dir, "w8", certs.RoleWorker)), true, "spiffe://grey/server/s1")
	if err != nil || !errors.Is(r.err, auth.ErrNoCredentials) || r.p != nil {
		t.Errorf("worker relaying a server: %+v %v %v", r.p, err, r.err)
	}
	// Without the forwarded-by header the node header means nothing.
	r, err = do(clientWith(t, dir, nodeCert(t, dir, "w9", certs.RoleWorker)), false, "spiffe://grey/server/s1")
	if err != nil || r.err != nil || r.p.Subject != "node:w9" || r.p.Grants[0].Role != auth.RoleWorker {
		t.Errorf("node header on a direct request: %+v %v %v", r.p, err, r.err)
	}
	// A certificate of the CA that names no node: refused.
	r, err = do(clientWith(t, dir, plainCert(t, dir)), false)
	if err != nil || greyerr.CodeOf(r.err) != greyerr.Unauthenticated {
		t.Errorf("certificate without identity: %v %v", err, r.err)
	}
	// A certificate from another CA never reaches the handler.
	if _, err := do(clientWith(t, dir, nodeCert(t, other, "s2", certs.RoleServer)), false); err == nil {
		t.Error("a client certificate from another CA was accepted")
	} else if !certs.IsRefusal(err) {
		t.Errorf("foreign CA: %v is not a TLS refusal", err)
	}
	// Plaintext.
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := mtlsauth.New().Authenticate(r.Context(), r)
		got <- result{nil, err, false}
	}))
	defer plain.Close()
	if _, err := http.Get(plain.URL); err != nil {
		t.Fatal(err)
	}
	if r := <-got; !errors.Is(r.err, auth.ErrNoCredentials) {
		t.Errorf("plaintext: %v", r.err)
	}
	if mtlsauth.New().Name() != "mtls" {
		t.Error("name")
	}
}

package certs_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grey-distributed/grey/certs"
	"github.com/grey-distributed/grey/config"
)

// newCA makes a development CA in a temp dir.
func newCA(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := certs.InitCA(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func issue(t *testing.T, dir, name string, role certs.Role, hosts ...string) *certs.Issued {
	t.Helper()
	out, err := certs.Issue(dir, certs.IssueRequest{Name: name, Role: role, Hosts: hosts})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func readLeaf(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(path, strings.TrimSuffix(path, ".crt")+".key")
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf
}

func TestInitAndIssue(t *testing.T) {
	t.Parallel()
	dir := newCA(t)
	for _, f := range []string{certs.CAKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v mode %v, want 0600", f, err, fi.Mode())
		}
	}
	if _, err := certs.InitCA(dir); err == nil || !strings.Contains(err.Error(), "already") {
		t.Errorf("second InitCA = %v, want a refusal", err)
	}
	out := issue(t, dir, "node-1", certs.RoleServer, "grey-1.example.com", "10.0.0.5")
	if fi, err := os.Stat(out.KeyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("node key: %v mode %v", err, fi.Mode())
	}
	leaf := readLeaf(t, out.CertFile)
	id, ok := certs.IdentityOf(leaf)
	if !ok || id != (certs.Identity{Role: certs.RoleServer, Name: "node-1"}) || id.String() != "spiffe://grey/server/node-1" {
		t.Errorf("identity = %v %v", id, ok)
	}
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "grey-1.example.com" || len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("10.0.0.5")) {
		t.Errorf("SANs = %v %v", leaf.DNSNames, leaf.IPAddresses)
	}
	pool := x509.NewCertPool()
	pool.AddCert(readCA(t, dir))
	for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "grey-1.example.com", KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
			t.Errorf("verify for %v: %v", u, err)
		}
	}
	// Without hosts, the loopback names.
	def := readLeaf(t, issue(t, dir, "w1", certs.RoleWorker).CertFile)
	if len(def.DNSNames) != 1 || def.DNSNames[0] != "localhost" || len(def.IPAddresses) != 2 {
		t.Errorf("default SANs = %v %v", def.DNSNames, def.IPAddresses)
	}
	for _, bad := range []certs.IssueRequest{{Name: "a b", Role: certs.RoleServer}, {Name: "n", Role: "admin"}, {Name: "", Role: certs.RoleWorker}} {
		if _, err := certs.Issue(dir, bad); err == nil {
			t.Errorf("Issue(%+v) succeeded", bad)
		}
	}
	if _, err := certs.Issue(t.TempDir(), certs.IssueRequest{Name: "n", Role: certs.RoleServer}); err == nil || !strings.Contains(err.Error(), "certs init") {
		t.Errorf("Issue without a CA = %v", err)
	}
}

func readCA(t *testing.T, dir string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, certs.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatal("no CA cert")
	}
	c, err := tls.X509KeyPair(b, mustRead(t, filepath.Join(dir, certs.CAKeyFile)))
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseIdentity(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]certs.Identity{
		"spiffe://grey/server/n1": {Role: certs.RoleServer, Name: "n1"},
		"grey://worker/w-2":       {Role: certs.RoleWorker, Name: "w-2"},
	} {
		if got, err := certs.ParseIdentity(in); err != nil || got != want {
			t.Errorf("ParseIdentity(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"spiffe://other/server/n1", "spiffe://grey/admin/n1", "spiffe://grey/server/", "spiffe://grey/server/a/b", "https://grey/server/n1", "grey://server/a b", "spiffe://grey/server/n1?x=1", "spiffe://grey:1/server/n1", "spiffe://u@grey/server/n1", "spiffe://grey/server/n1#f"} {
		if got, err := certs.ParseIdentity(bad); err == nil {
			t.Errorf("ParseIdentity(%q) = %v, want an error", bad, got)
		}
	}
}

func FuzzParseIdentity(f *testing.F) {
	f.Add("spiffe://grey/server/n1")
	f.Add("grey://worker/w")
	f.Add("spiffe://grey/worker/%2F..")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := certs.ParseIdentity(s)
		if err != nil {
			return
		}
		back, err := certs.ParseIdentity(id.String())
		if err != nil || back != id {
			t.Fatalf("%q -> %v -> %q -> %v, %v", s, id, id.String(), back, err)
		}
	})
}

// The API certificate is read again when its files change: a handshake
// after the files were replaced sees the new certificate, without a
// restart; a broken replacement keeps the old one.
func TestKeyPairReloads(t *testing.T) {
	t.Parallel()
	dir := newCA(t)
	first := issue(t, dir, "api", certs.RoleServer)
	var (
		mu         sync.Mutex
		reloadErrs []error
	)
	kp, err := certs.LoadKeyPair(first.CertFile, first.KeyFile, func(err error) { mu.Lock(); reloadErrs = append(reloadErrs, err); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: kp.GetCertificate})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _ = c.(*tls.Conn).Handshake(); _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	serial := func() string {
		t.Helper()
		pool := x509.NewCertPool()
		pool.AddCert(readCA(t, dir))
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	if before != readLeaf(t, first.CertFile).SerialNumber.String() {
		t.Fatal("serves another certificate than the file's")
	}
	// A new pair replaces the files (greyd certs issue writes by rename).
	second := issue(t, dir, "api", certs.RoleServer)
	want := readLeaf(t, second.CertFile).SerialNumber.String()
	if got := serial(); got != want || got == before {
		t.Fatalf("after replacing the files: serial %s, want the new %s (old %s)", got, want, before)
	}
	// A key that does not match: the previous pair stays, the error is told.
	other := issue(t, dir, "other", certs.RoleServer)
	if err := os.WriteFile(second.KeyFile, mustRead(t, other.KeyFile), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got != want {
		t.Errorf("after a broken replacement: serial %s, want the previous %s", got, want)
	}
	mu.Lock()
	n := len(reloadErrs)
	mu.Unlock()
	if n != 1 {
		t.Errorf("reload errors = %v, want one", reloadErrs)
	}
	// Repaired: the pair is read again.
	if err := os.WriteFile(second.CertFile, mustRead(t, other.CertFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, want := serial(), readLeaf(t, other.CertFile).SerialNumber.String(); got != want {
		t.Errorf("after the repair: serial %s, want %s", got, want)
	}
}

// tlsCfg is a config whose tls block names the files of a CA dir.
func tlsCfg(role, caDir string, node *certs.Issued) *config.Config {
	c := config.Default()
	c.Node.Role = role
	c.TLS = config.TLSConfig{CAFile: filepath.Join(caDir, certs.CACertFile)}
	if role == config.RoleWorker {
		c.TLS.NodeCertFile, c.TLS.NodeKeyFile = node.CertFile, node.KeyFile
	} else {
		c.TLS.CertFile, c.TLS.KeyFile = node.CertFile, node.KeyFile
	}
	return c
}

// Start-up checks name the key whose file is wrong.
func TestLoadNamesTheKey(t *testing.T) {
	t.Parallel()
	ca, other := newCA(t), newCA(t)
	srv := issue(t, ca, "s1", certs.RoleServer)
	wrk := issue(t, ca, "w1", certs.RoleWorker)
	foreign := issue(t, other, "s9", certs.RoleServer)
	if m, err := certs.Load(tlsCfg(config.RoleBoth, ca, srv), nil); err != nil || m.API == nil || m.Node == nil || m.CA == nil {
		t.Fatalf("valid server: %+v, %v", m, err)
	}
	if _, err := certs.Load(tlsCfg(config.RoleWorker, ca, wrk), nil); err != nil {
		t.Fatalf("valid worker: %v", err)
	}
	if m, err := certs.Load(config.Default(), nil); err != nil || m.API != nil || m.APIServerConfig() != nil || m.RaftServerConfig() != nil || m.NodeClientConfig() != nil {
		t.Fatalf("no tls: %+v, %v", m, err)
	}
	tests := []struct {
		name   string
		mutate func(c *config.Config)
		key    string
		want   string
	}{
		{"missing ca", func(c *config.Config) { c.TLS.CAFile = filepath.Join(ca, "nope.crt") }, "tls.ca_file", "no such file"},
		{"ca not PEM", func(c *config.Config) { c.TLS.CAFile = srv.KeyFile }, "tls.ca_file", "no PEM CERTIFICATE"},
		{"missing cert", func(c *config.Config) { c.TLS.CertFile = filepath.Join(ca, "x.crt") }, "tls.cert_file", "no such file"},
		{"missing key", func(c *config.Config) { c.TLS.KeyFile = filepath.Join(ca, "x.key") }, "tls.key_file", "no such file"},
		{"key of another cert", func(c *config.Config) { c.TLS.KeyFile = wrk.KeyFile }, "tls.key_file", "do not form a key pair"},
		{"api cert of another CA", func(c *config.Config) { c.TLS.CertFile, c.TLS.KeyFile = foreign.CertFile, foreign.KeyFile }, "tls.cert_file", "not signed by tls.ca_file"},
		{"node cert of another CA", func(c *config.Config) { c.TLS.NodeCertFile, c.TLS.NodeKeyFile = foreign.CertFile, foreign.KeyFile }, "tls.node_cert_file", "not signed by tls.ca_file"},
		{"worker cert on a server", func(c *config.Config) { c.TLS.NodeCertFile, c.TLS.NodeKeyFile = wrk.CertFile, wrk.KeyFile }, "tls.node_cert_file", "is a worker certificate"},
		{"server cert on a worker", func(c *config.Config) {
			c.Node.Role = config.RoleWorker
			c.TLS.CertFile, c.TLS.KeyFile = "", ""
			c.TLS.NodeCertFile, c.TLS.NodeKeyFile = srv.CertFile, srv.KeyFile
		}, "tls.node_cert_file", "is a server certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tlsCfg(config.RoleBoth, ca, srv)
			tc.mutate(c)
			_, err := certs.Load(c, nil)
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Key != tc.key || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load = %v; want a %s error containing %q", err, tc.key, tc.want)
			}
		})
	}
}

// handshake runs one TLS handshake between a server and a client config
// and returns each side's error.
func handshake(t *testing.T, server, client *tls.Config) (srvErr, cliErr error) {
	t.Helper()
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() {
		s := tls.Server(a, server)
		err := s.Handshake()
		if err == nil {
			// TLS 1.3: the client learns of a refusal on its first read.
			_, _ = s.Write([]byte("x"))
		}
		done <- err
		a.Close()
	}()
	c := tls.Client(b, client)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	cliErr = c.Handshake()
	if cliErr == nil {
		_, cliErr = c.Read(make([]byte, 1))
	}
	b.Close()
	return <-done, cliErr
}

// The Raft configs accept only server certificates from the same CA, in
// both directions.
func TestRaftConfigs(t *testing.T) {
	t.Parallel()
	ca, other := newCA(t), newCA(t)
	load := func(role, dir, name string) *certs.Material {
		r := certs.RoleServer
		if role == config.RoleWorker {
			r = certs.RoleWorker
		}
		m, err := certs.Load(tlsCfg(role, dir, issue(t, dir, name, r)), nil)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	s1, s2 := load(config.RoleServer, ca, "s1"), load(config.RoleServer, ca, "s2")
	w1 := load(config.RoleWorker, ca, "w1")
	rogue := load(config.RoleServer, other, "s1")
	if se, ce := handshake(t, s1.RaftServerConfig(), s2.RaftClientConfig()); se != nil || ce != nil {
		t.Fatalf("same CA: server %v, client %v", se, ce)
	}
	if se, _ := handshake(t, s1.RaftServerConfig(), rogue.RaftClientConfig()); se == nil {
		t.Error("a peer from another CA was accepted")
	}
	if _, ce := handshake(t, rogue.RaftServerConfig(), s1.RaftClientConfig()); ce == nil || !certs.IsRefusal(ce) {
		t.Errorf("dialing a peer from another CA: %v, want a refusal", ce)
	}
	// A worker certificate from the right CA is no Raft peer.
	if se, _ := handshake(t, s1.RaftServerConfig(), &tls.Config{GetClientCertificate: w1.Node.GetClientCertificate, InsecureSkipVerify: true}); se == nil || !strings.Contains(se.Error(), "not a server node") {
		t.Errorf("worker cert on Raft: %v", se)
	}
	// The API: a worker's client certificate is verified, a foreign one refused.
	if se, ce := handshake(t, s1.APIServerConfig(), withName(w1.NodeClientConfig())); se != nil || ce != nil {
		t.Errorf("worker to API: %v %v", se, ce)
	}
	if se, _ := handshake(t, s1.APIServerConfig(), withName(&tls.Config{RootCAs: s1.CA, GetClientCertificate: rogue.Node.GetClientCertificate})); se == nil {
		t.Error("API accepted a client certificate from another CA")
	}
}

func withName(c *tls.Config) *tls.Config {
	c = c.Clone()
	c.ServerName = "localhost"
	return c
}

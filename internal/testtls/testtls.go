// Package testtls makes the certificates of tests that start a private
// broker with a TLS listener: a CA of the test's own and a server
// certificate it signed for 127.0.0.1 and localhost, written as PEM files.
// Package certs (behind `greyd certs`) makes both; this package only lays
// the files out as the brokers read them.
package testtls

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/grey-distributed/grey/certs"
)

// Files are the PEM files of one CA and the server certificate it signed.
type Files struct {
	// CA is the CA's certificate (what a client trusts).
	CA string
	// Cert is the server's certificate followed by the CA's (the chain).
	Cert string
	// Key is the server's private key (PKCS#8, unencrypted).
	Key string
	// KeyAndChain is Key then Cert in one file (Kafka's PEM keystore).
	KeyAndChain string
}

// New writes a fresh CA and a server certificate for 127.0.0.1 and
// localhost into a folder name of t.TempDir().
func New(t testing.TB, name string) Files {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	caFile, err := certs.InitCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := certs.Issue(dir, certs.IssueRequest{Name: "localhost", Role: certs.RoleServer, Hosts: []string{"localhost", "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	read := func(path string) []byte {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	caPEM, keyPEM := read(caFile), read(srv.KeyFile)
	chain := append(read(srv.CertFile), caPEM...)
	f := Files{CA: caFile, Cert: filepath.Join(dir, "chain.pem"), Key: srv.KeyFile, KeyAndChain: filepath.Join(dir, "keystore.pem")}
	for path, b := range map[string][]byte{f.Cert: chain, f.KeyAndChain: append(keyPEM, chain...)} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

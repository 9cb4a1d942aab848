package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/grey-distributed/grey/client"
)

// tlsFlags are the global TLS flags: the CA that signed the servers'
// certificates (for a private CA such as `greyd certs init`'s) and a
// client certificate for servers that require one.
type tlsFlags struct {
	caFile, certFile, keyFile string
}

// register adds the flags to f.
func (t *tlsFlags) register(f *pflag.FlagSet) {
	f.StringVar(&t.caFile, "ca-file", "", "PEM CA to verify https servers against (env GREY_CA_FILE; default: the system roots)")
	f.StringVar(&t.certFile, "cert-file", "", "PEM client certificate, for servers that require one (env GREY_CERT_FILE)")
	f.StringVar(&t.keyFile, "key-file", "", "PEM key of --cert-file (env GREY_KEY_FILE)")
}

// option returns the client option for the flags (falling back to the
// environment), or nil when none is set.
func (t *tlsFlags) option(getenv func(string) string) (client.Option, error) {
	pick := func(v, env string) string {
		if v != "" {
			return v
		}
		return getenv(env)
	}
	ca, cert, key := pick(t.caFile, "GREY_CA_FILE"), pick(t.certFile, "GREY_CERT_FILE"), pick(t.keyFile, "GREY_KEY_FILE")
	if ca == "" && cert == "" && key == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		b, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--ca-file %s: no PEM certificate", ca)
		}
	}
	if (cert == "") != (key == "") {
		return nil, fmt.Errorf("--cert-file and --key-file go together")
	}
	if cert != "" {
		kp, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("--cert-file/--key-file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{kp}
	}
	return client.WithTLSConfig(cfg), nil
}

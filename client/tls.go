package client

import (
	"crypto/tls"
	"net/http"
)

// WithTLSConfig sets the TLS configuration of the client's connections
// (https:// servers): the CA to verify servers against (RootCAs) and, for
// mutual TLS, the client certificate (Certificates or
// GetClientCertificate). It replaces the HTTP client, so it and
// WithHTTPClient exclude each other; the last one given wins.
//
// The connections speak HTTP/1.1: with HTTP/2 a server's refusal of the
// client certificate (which TLS 1.3 reports after the handshake) reaches
// the caller only as "client conn could not be established", and callers
// such as joining nodes need to tell a refused certificate, which retrying
// does not fix, from a server that is not up yet.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(c *Client) {
		t := defaultTransport()
		if ht, ok := t.(*http.Transport); ok && cfg != nil {
			ht.TLSClientConfig = cfg.Clone()
			ht.ForceAttemptHTTP2 = false
			ht.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
			t = ht
		}
		c.hc = &http.Client{Transport: t}
	}
}

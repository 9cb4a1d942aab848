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
func WithTLSConfig(cfg *tls.Config) Option {
	return func(c *Client) {
		t := defaultTransport()
		if ht, ok := t.(*http.Transport); ok && cfg != nil {
			ht.TLSClientConfig = cfg.Clone()
			t = ht
		}
		c.hc = &http.Client{Transport: t}
	}
}

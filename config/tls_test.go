package config

import (
	"errors"
	"testing"
)

func TestTLSValidation(t *testing.T) {
	t.Parallel()
	const api = "tls:\n  cert_file: a.crt\n  key_file: a.key\n"
	tests := []struct {
		name, src, key, want string
	}{
		{"cert without key", "tls:\n  cert_file: a.crt\n", "tls.key_file", "required when tls.cert_file"},
		{"key without cert", "tls:\n  key_file: a.key\n", "tls.cert_file", "required when tls.key_file"},
		{"node cert without key", "tls:\n  ca_file: ca.crt\n  cert_file: a\n  key_file: b\n  node_cert_file: n.crt\n", "tls.node_key_file", "required when tls.node_cert_file"},
		{"require without ca", api + "  require_client_cert: true\n", "tls.require_client_cert", "needs tls.ca_file"},
		{"require without cert", "tls:\n  ca_file: ca.crt\n  node_cert_file: n\n  node_key_file: k\n  require_client_cert: true\n", "tls.require_client_cert", "needs tls.cert_file"},
		{"ca on a server without api cert", "tls:\n  ca_file: ca.crt\n  node_cert_file: n\n  node_key_file: k\n", "tls.cert_file", "followers forward"},
		{"ca on a worker without node cert", "node:\n  role: worker\n  servers: [\"https://s:8080\"]\ntls:\n  ca_file: ca.crt\n", "tls.node_cert_file", "presents it"},
		{"node cert without ca", api + "  node_cert_file: n\n  node_key_file: k\n", "tls.ca_file", "node certificates are verified"},
		{"http advertise", "http:\n  advertise: http://a:8080\n" + api, "http.advertise", "https://"},
		{"plain join", "raft:\n  bootstrap: false\n  join: [\"http://s1:8080\"]\n" + api + "  ca_file: ca.crt\n", "raft.join", "must use https://"},
		{"plain servers", "node:\n  role: worker\n  servers: [\"http://s1:8080\"]\ntls:\n  ca_file: ca.crt\n  node_cert_file: n\n  node_key_file: k\n", "node.servers", "must use https://"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadBytes([]byte(tc.src), "grey.yaml", nil)
			wantErr(t, err, tc.key, tc.want)
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != tc.key {
				t.Errorf("first error %v: want key %s", err, tc.key)
			}
		})
	}
	// Valid combinations.
	for _, src := range []string{
		api,
		api + "  ca_file: ca.crt\n  require_client_cert: true\n",
		api + "  ca_file: ca.crt\n  node_cert_file: n\n  node_key_file: k\n",
		"node:\n  role: worker\n  servers: [s1:8080]\ntls:\n  ca_file: ca.crt\n  node_cert_file: n\n  node_key_file: k\n",
	} {
		if _, err := LoadBytes([]byte(src), "grey.yaml", nil); err != nil {
			t.Errorf("%s: %v", src, err)
		}
	}
}

func TestTLSURLs(t *testing.T) {
	t.Parallel()
	c := Default()
	if got := c.APIAdvertise(); got != "http://127.0.0.1:8080" {
		t.Errorf("plain APIAdvertise = %q", got)
	}
	if got := c.PeerURL("s1:8080"); got != "http://s1:8080" {
		t.Errorf("plain PeerURL = %q", got)
	}
	c.TLS.CertFile, c.TLS.KeyFile = "a.crt", "a.key"
	if got := c.APIAdvertise(); got != "https://127.0.0.1:8080" {
		t.Errorf("TLS APIAdvertise = %q", got)
	}
	if got := c.PeerURL("s1:8080"); got != "https://s1:8080" {
		t.Errorf("TLS PeerURL = %q", got)
	}
	if got := c.PeerURL("http://s1:8080"); got != "http://s1:8080" {
		t.Errorf("PeerURL kept URL = %q", got)
	}
	cert, key, ck, kk := c.TLS.NodeCert()
	if cert != "a.crt" || key != "a.key" || ck != "tls.cert_file" || kk != "tls.key_file" {
		t.Errorf("NodeCert fallback = %s %s %s %s", cert, key, ck, kk)
	}
}

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grey-distributed/grey/certs"
	"github.com/grey-distributed/grey/config"
)

// `greyd certs init` then `greyd certs issue` produce files that a node's
// tls block loads.
func TestCertsCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	var out, errb bytes.Buffer
	if code := run([]string{"certs", "init", "--dir", dir}, &out, &errb); code != 0 {
		t.Fatalf("init: %d %s", code, errb.String())
	}
	if fi, err := os.Stat(filepath.Join(dir, "ca.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("ca.key: %v %v", err, fi)
	}
	if code := run([]string{"certs", "init", "--dir", dir}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "already") {
		t.Errorf("second init: %d %s", code, errb.String())
	}
	out.Reset()
	if code := run([]string{"certs", "issue", "--dir", dir, "--name", "node-1", "--role", "server", "--host", "localhost,127.0.0.1,grey-1.internal"}, &out, &errb); code != 0 {
		t.Fatalf("issue: %d %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "spiffe://grey/server/node-1") {
		t.Errorf("issue output: %s", out.String())
	}
	cfg := config.Default()
	cfg.TLS = config.TLSConfig{CertFile: filepath.Join(dir, "node-1.crt"), KeyFile: filepath.Join(dir, "node-1.key"), CAFile: filepath.Join(dir, "ca.crt")}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if m, err := certs.Load(cfg, nil); err != nil || m.Node == nil {
		t.Fatalf("load issued files: %v", err)
	}
	for _, bad := range [][]string{
		{"certs"},
		{"certs", "rotate"},
		{"certs", "init"},
		{"certs", "issue", "--dir", dir, "--name", "n"},
		{"certs", "issue", "--dir", dir, "--name", "n", "--role", "admin"},
		{"certs", "issue", "--dir", t.TempDir(), "--name", "n", "--role", "worker"},
	} {
		errb.Reset()
		if code := run(bad, &out, &errb); code == 0 || errb.Len() == 0 {
			t.Errorf("%q: exit %d, stderr %q", bad, code, errb.String())
		}
	}
}

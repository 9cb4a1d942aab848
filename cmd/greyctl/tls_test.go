package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grey-distributed/grey/certs"
	"github.com/grey-distributed/grey/config"
)

// greyctl reaches an https server signed by a private CA with --ca-file
// (or GREY_CA_FILE), and presents --cert-file to one that requires it.
func TestTLSFlags(t *testing.T) {
	dir := t.TempDir()
	if _, err := certs.InitCA(dir); err != nil {
		t.Fatal(err)
	}
	srvCert, err := certs.Issue(dir, certs.IssueRequest{Name: "s1", Role: certs.RoleServer})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := certs.Issue(dir, certs.IssueRequest{Name: "ops", Role: certs.RoleWorker})
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	caFile := filepath.Join(dir, certs.CACertFile)
	cfg.TLS = config.TLSConfig{CertFile: srvCert.CertFile, KeyFile: srvCert.KeyFile, CAFile: caFile, RequireClientCert: true}
	m, err := certs.Load(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}))
	srv.TLS = m.APIServerConfig()
	srv.StartTLS()
	defer srv.Close()
	url := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)

	ctl := func(env map[string]string, args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"--server", url}, args...), strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
		return code, errb.String()
	}
	if code, _ := ctl(nil, "cluster", "status"); code == 0 {
		t.Error("status without --ca-file succeeded against a private CA")
	}
	if code, stderr := ctl(nil, "--ca-file", caFile, "cluster", "status"); code == 0 {
		t.Errorf("status without a client certificate succeeded: %s", stderr)
	}
	if code, stderr := ctl(nil, "--ca-file", caFile, "--cert-file", cli.CertFile, "--key-file", cli.KeyFile, "cluster", "status"); code != 0 {
		t.Errorf("with CA and client certificate: exit %d: %s", code, stderr)
	}
	env := map[string]string{"GREY_CA_FILE": caFile, "GREY_CERT_FILE": cli.CertFile, "GREY_KEY_FILE": cli.KeyFile}
	if code, stderr := ctl(env, "cluster", "status"); code != 0 {
		t.Errorf("from the environment: exit %d: %s", code, stderr)
	}
	if code, stderr := ctl(nil, "--ca-file", caFile, "--cert-file", cli.CertFile, "cluster", "status"); code != exitUsage || !strings.Contains(stderr, "go together") {
		t.Errorf("cert without key: exit %d: %s", code, stderr)
	}
	if code, stderr := ctl(nil, "--ca-file", filepath.Join(dir, "nope"), "cluster", "status"); code != exitUsage || !strings.Contains(stderr, "--ca-file") {
		t.Errorf("missing CA file: exit %d: %s", code, stderr)
	}
}

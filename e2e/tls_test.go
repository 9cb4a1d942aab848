package e2e

// TestTLSCluster: the quick start of a TLS cluster, as docs/CLUSTER.md
// shows it. `greyd certs init` and `greyd certs issue` make a CA and node
// certificates; three greyd servers form a cluster over mutual TLS (joins
// over https, Raft over TLS), a worker-only node leases over mutual TLS,
// greyctl submits a task to a follower with --ca-file and it completes on
// every replica; a server with a certificate from another CA cannot join.
//
//	GREY_E2E=1 go test -count=1 -run TestTLSCluster -v ./e2e/

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/task"
)

// certsCmd runs `greyd certs ARGS` and fails the test if it fails.
func certsCmd(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(greydBin, append([]string{"certs"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("greyd certs %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestTLSCluster(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	pki, rogue := filepath.Join(dir, "pki"), filepath.Join(dir, "rogue-pki")
	certsCmd(t, "init", "--dir", pki)
	certsCmd(t, "init", "--dir", rogue)
	for _, n := range []string{"n1", "n2", "n3"} {
		certsCmd(t, "issue", "--dir", pki, "--name", n, "--role", "server", "--host", "localhost,127.0.0.1")
	}
	certsCmd(t, "issue", "--dir", pki, "--name", "w1", "--role", "worker")
	certsCmd(t, "issue", "--dir", rogue, "--name", "n4", "--role", "server", "--host", "127.0.0.1")

	serverYAML := func(ca, certDir, id string) string {
		return fmt.Sprintf(`raft:
  heartbeat_timeout: 500ms
  election_timeout: 500ms
  leader_lease_timeout: 250ms
worker:
  enabled: false
tls:
  cert_file: %[2]s/%[3]s.crt
  key_file: %[2]s/%[3]s.key
  ca_file: %[1]s/ca.crt
`, ca, certDir, id)
	}
	type srv struct {
		*nodeProc
		url string
	}
	var servers []srv
	startServer := func(id, ca, certDir string, join string) srv {
		cfg := filepath.Join(dir, id+".yaml")
		if err := os.WriteFile(cfg, []byte(serverYAML(ca, certDir, id)), 0o600); err != nil {
			t.Fatal(err)
		}
		httpAddr := fmt.Sprintf("127.0.0.1:%d", freePortOn(t, "127.0.0.1"))
		args := []string{"--config", cfg, "--node-id", id, "--data-dir", filepath.Join(dir, id),
			"--http-addr", httpAddr, "--raft-addr", fmt.Sprintf("127.0.0.1:%d", freePortOn(t, "127.0.0.1")),
			"--metrics-addr", fmt.Sprintf("127.0.0.1:%d", freePortOn(t, "127.0.0.1"))}
		if join == "" {
			args = append(args, "--bootstrap")
		} else {
			args = append(args, "--join", join)
		}
		p := newNodeProc(t, dir, id, "", args...)
		p.Start()
		return srv{p, "https://" + httpAddr}
	}

	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(filepath.Join(pki, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(caPEM)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	waitReady := func(s srv) *client.Client {
		c, err := client.New(s.url, client.WithTLSConfig(&tls.Config{RootCAs: pool}), client.WithTenant("acme"))
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for c.Ready(ctx) != nil {
			if time.Now().After(deadline) || !s.Running() {
				t.Fatalf("%s not ready; stderr:\n%s", s.Name, tail([]byte(s.Stderr()), 3000))
			}
			time.Sleep(50 * time.Millisecond)
		}
		return c
	}

	servers = append(servers, startServer("n1", pki, pki, ""))
	c1 := waitReady(servers[0])
	servers = append(servers, startServer("n2", pki, pki, servers[0].url), startServer("n3", pki, pki, servers[0].url))
	for _, s := range servers[1:] {
		waitReady(s)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ci, err := c1.Cluster(ctx)
		if err == nil && countServers(ci) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 3-server cluster: %+v, %v", ci, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A worker-only node with its worker certificate.
	wcfg := filepath.Join(dir, "w1.yaml")
	if err := os.WriteFile(wcfg, []byte(fmt.Sprintf(`node:
  role: worker
  servers: [%[2]s, %[3]s]
tls:
  ca_file: %[1]s/ca.crt
  node_cert_file: %[1]s/w1.crt
  node_key_file: %[1]s/w1.key
`, pki, strings.TrimPrefix(servers[1].url, "https://"), strings.TrimPrefix(servers[2].url, "https://"))), 0o600); err != nil {
		t.Fatal(err)
	}
	w := newNodeProc(t, dir, "w1", "", "--config", wcfg, "--node-id", "w1", "--data-dir", filepath.Join(dir, "w1"),
		"--metrics-addr", fmt.Sprintf("127.0.0.1:%d", freePortOn(t, "127.0.0.1")))
	w.Start()

	// greyctl with the CA, against a follower or the leader alike.
	res := greyctl(t, servers[2].url, time.Minute, "--ca-file", filepath.Join(pki, "ca.crt"), "--tenant", "acme", "-o", "json",
		"task", "submit", "--kind", "echo", "--payload", `"over mtls"`, "--wait", "--wait-timeout", "45s")
	if res.Code != 0 {
		t.Fatalf("greyctl submit: exit %d\n%s\n%s\nworker:\n%s", res.Code, res.Stdout, res.Stderr, tail([]byte(w.Stderr()), 3000))
	}
	var tk task.Task
	if err := json.Unmarshal([]byte(res.Stdout), &tk); err != nil || tk.Status != task.Completed {
		t.Fatalf("task: %v\n%s", err, res.Stdout)
	}
	if len(tk.Attempts) == 0 || tk.Attempts[len(tk.Attempts)-1].WorkerID != "w1" {
		t.Errorf("task ran on %+v, want the worker node w1", tk.Attempts)
	}
	// Every replica holds it (a stale read answers from the local state).
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, s := range servers {
		deadline := time.Now().Add(10 * time.Second)
		for {
			var got task.Task
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/api/v1/tasks/"+string(tk.ID)+"?consistency=stale", nil)
			req.Header.Set("X-Grey-Tenant", "acme")
			resp, err := hc.Do(req)
			if err == nil {
				err = json.NewDecoder(resp.Body).Decode(&got)
				resp.Body.Close()
			}
			if err == nil && got.Status == task.Completed {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s's replica: %+v, %v", s.Name, got, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// A server with a certificate from another CA: greyd exits, refused.
	r := startServer("n4", rogue, rogue, servers[0].url)
	code, ok := r.WaitExit(60 * time.Second)
	if !ok || code == 0 || !strings.Contains(r.Stderr(), "TLS refused") {
		t.Fatalf("rogue server: exited=%v code=%d; stderr:\n%s", ok, code, tail([]byte(r.Stderr()), 3000))
	}
	if ci, err := c1.Cluster(ctx); err != nil || countServers(ci) != 3 {
		t.Errorf("cluster after the rogue: %+v, %v", ci, err)
	}
}

// countServers counts the Raft servers among a cluster's members.
func countServers(ci *client.ClusterInfo) int {
	n := 0
	for _, m := range ci.Members {
		if m.Role == "server" {
			n++
		}
	}
	return n
}

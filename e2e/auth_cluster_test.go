package e2e

// TestAuthMTLSCluster: three greyd servers with authentication on (mode
// apikey, the bootstrap admin token) and mutual TLS between nodes (greyd
// certs init/issue). Followers reach the leader with their node
// certificate, which the mTLS authenticator turns into a node principal:
// joins, forwarded requests and the followers' in-process workers all go
// that way. Two worker-only nodes lease over mutual TLS: one authenticates
// with a worker API key (node.credentials.api_key), the other with its
// worker certificate alone. Each task is pinned to one worker by a label
// constraint, so the test knows who must run it.
//
//	GREY_E2E=1 go test -count=1 -run TestAuthMTLSCluster -v ./e2e/

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/tenant"
)

func TestAuthMTLSCluster(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	certsCmd(t, "init", "--dir", pki)
	for _, n := range []string{"n1", "n2", "n3"} {
		certsCmd(t, "issue", "--dir", pki, "--name", n, "--role", "server", "--host", "localhost,127.0.0.1")
	}
	for _, n := range []string{"wk", "wc"} {
		certsCmd(t, "issue", "--dir", pki, "--name", n, "--role", "worker")
	}
	const adminToken = "e2e-bootstrap-admin-token-7f3a9c"

	type srv struct {
		*nodeProc
		id, url string
	}
	startServer := func(id, join string) srv {
		cfg := filepath.Join(dir, id+".yaml")
		if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`http:
  admin_token: %[3]s
auth:
  mode: [apikey]
  audit:
    sink: %[4]s
raft:
  heartbeat_timeout: 500ms
  election_timeout: 500ms
  leader_lease_timeout: 250ms
worker:
  enabled: true
  concurrency: 2
  labels: {node: %[2]s}
tls:
  cert_file: %[1]s/%[2]s.crt
  key_file: %[1]s/%[2]s.key
  ca_file: %[1]s/ca.crt
`, pki, id, adminToken, filepath.Join(dir, id+"-audit.log"))), 0o600); err != nil {
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
		return srv{p, id, "https://" + httpAddr}
	}

	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(filepath.Join(pki, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(caPEM)
	tlsCfg := &tls.Config{RootCAs: pool}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	newClient := func(s srv, opts ...client.Option) *client.Client {
		c, err := client.New(s.url, append([]client.Option{client.WithTLSConfig(tlsCfg), client.WithTenant("acme")}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	waitReady := func(s srv) {
		c := newClient(s)
		deadline := time.Now().Add(60 * time.Second)
		for c.Ready(ctx) != nil {
			if time.Now().After(deadline) || !s.Running() {
				t.Fatalf("%s not ready; stderr:\n%s", s.Name, tail([]byte(s.Stderr()), 3000))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	servers := []srv{startServer("n1", "")}
	waitReady(servers[0])
	servers = append(servers, startServer("n2", servers[0].url), startServer("n3", servers[0].url))
	for _, s := range servers[1:] {
		waitReady(s)
	}
	admin1 := newClient(servers[0], client.WithToken(adminToken))
	var leader string
	deadline := time.Now().Add(60 * time.Second)
	for {
		ci, err := admin1.Cluster(ctx)
		if err == nil && countServers(ci) == 3 {
			leader = ci.LeaderID
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 3-server cluster: %+v, %v", ci, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var followers []srv
	for _, s := range servers {
		if s.id != leader {
			followers = append(followers, s)
		}
	}
	t.Logf("leader %s, followers %s and %s", leader, followers[0].id, followers[1].id)

	// Without a credential a follower answers 401 (it authenticates, the
	// leader authenticates again): no node certificate stands in for a user.
	if _, err := newClient(followers[0]).Submit(ctx, task.Spec{Kind: "noop"}); err == nil || !strings.Contains(err.Error(), "unauthenticated") {
		t.Fatalf("submit without a credential through a follower: %v, want unauthenticated", err)
	}

	// The admin, through a follower (forwarded to the leader): the tenant,
	// an operator key and a worker key for acme.
	adminF := newClient(followers[1], client.WithToken(adminToken))
	if _, err := adminF.CreateTenant(ctx, "acme", tenant.Quota{}); err != nil {
		t.Fatalf("create tenant through a follower: %v", err)
	}
	opKey, err := adminF.CreateAPIKey(ctx, client.NewAPIKey{Tenant: "acme", Role: "operator", ExpiresIn: "1h", Name: "e2e-op"})
	if err != nil {
		t.Fatalf("operator key through a follower: %v", err)
	}
	workerKey, err := adminF.CreateAPIKey(ctx, client.NewAPIKey{Tenant: "acme", Role: "worker", Kinds: []string{"noop", "echo"}, ExpiresIn: "1h", Name: "e2e-wk"})
	if err != nil {
		t.Fatalf("worker key through a follower: %v", err)
	}

	// The worker-only nodes, through the followers.
	startWorker := func(id, credentials string) *nodeProc {
		cfg := filepath.Join(dir, id+".yaml")
		if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`node:
  role: worker
  servers: [%[2]s, %[3]s]
%[5]sworker:
  labels: {node: %[4]s}
tls:
  ca_file: %[1]s/ca.crt
  node_cert_file: %[1]s/%[4]s.crt
  node_key_file: %[1]s/%[4]s.key
`, pki, followers[0].url, followers[1].url, id, credentials)), 0o600); err != nil {
			t.Fatal(err)
		}
		w := newNodeProc(t, dir, id, "", "--config", cfg, "--node-id", id, "--data-dir", filepath.Join(dir, id),
			"--metrics-addr", fmt.Sprintf("127.0.0.1:%d", freePortOn(t, "127.0.0.1")))
		w.Start()
		return w
	}
	startWorker("wk", "  credentials:\n    api_key: "+workerKey.Token+"\n")
	startWorker("wc", "")

	// The joins were the servers' own: the bootstrap server's audit log
	// names n2 and n3 by their certificates, not the admin token.
	ab, err := os.ReadFile(filepath.Join(dir, "n1-audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"n2", "n3"} {
		if !strings.Contains(string(ab), `"principal":"node:`+id+`","auth_method":"mtls"`) {
			t.Errorf("n1's audit log has no request of node:%s over mtls:\n%s", id, ab)
		}
	}

	// The operator submits through a follower, one task per worker.
	op := newClient(followers[0], client.WithAPIKey(opKey.Token))
	// label node= -> the principals its lease may record: a server's
	// in-process workers lease as the node through the leader's API
	// (node:<id>), or with none while it leads (the leader can change
	// under load); never as the shared bootstrap admin.
	want := map[string][]string{
		"wk": {"apikey:" + workerKey.Key.ID},
		"wc": {"node:wc"},
	}
	for _, s := range servers {
		want[s.id] = []string{"", "node:" + s.id}
	}
	ids := map[string]task.ID{}
	for node := range want {
		tk, err := op.Submit(ctx, task.Spec{Kind: "echo", Payload: []byte(`"for ` + node + `"`),
			Constraints: &task.Constraints{Labels: map[string]string{"node": node}}})
		if err != nil {
			t.Fatalf("submit for %s through a follower: %v", node, err)
		}
		ids[node] = tk.ID
	}
	waitCtx, waitCancel := context.WithTimeout(ctx, 90*time.Second)
	defer waitCancel()
	for node, id := range ids {
		tk, err := op.Wait(waitCtx, id)
		if err != nil {
			t.Errorf("task for %s: %v", node, err)
			continue
		}
		last := tk.Attempts[len(tk.Attempts)-1]
		t.Logf("task for %s: %s by worker %s, principal %q", node, tk.Status, last.WorkerID, last.Principal)
		if tk.Status != task.Completed {
			t.Errorf("task for %s: %s %+v", node, tk.Status, tk.Error)
		}
		if !strings.HasPrefix(last.WorkerID, node) {
			t.Errorf("task for %s ran on worker %s", node, last.WorkerID)
		}
		if !slices.Contains(want[node], last.Principal) {
			t.Errorf("task for %s leased by principal %q, want one of %q", node, last.Principal, want[node])
		}
	}
}

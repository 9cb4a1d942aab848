package server

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/internal/blobtest"
	"github.com/grey-distributed/grey/internal/greytest"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestForwardKeepsCredentials: a follower forwards a write with the
// caller's Authorization header, and the leader authenticates it itself:
// the admin token is accepted there, a request without it is refused
// there (the follower does not vouch for anyone), and the leader's audit
// log names both.
func TestForwardKeepsCredentials(t *testing.T) {
	t.Parallel()
	const token = "forward-admin-token-0123456789"
	dir := t.TempDir()
	start := func(id string, join string) *Server {
		cfg := config.Default()
		cfg.Node.ID = id
		cfg.Node.DataDir = filepath.Join(dir, id)
		cfg.HTTP.Addr, cfg.Raft.Addr = freeAddr(t), freeAddr(t)
		cfg.HTTP.AdminToken = token
		cfg.Raft.HeartbeatTimeout = config.Duration(200 * time.Millisecond)
		cfg.Raft.ElectionTimeout = config.Duration(200 * time.Millisecond)
		cfg.Raft.LeaderLeaseTimeout = config.Duration(100 * time.Millisecond)
		cfg.Monitoring.Prometheus.Enabled = false
		cfg.Worker.Enabled = false
		cfg.Auth.Audit.Sink = filepath.Join(dir, id+"-audit.log")
		if join == "" {
			cfg.Raft.Bootstrap = true
		} else {
			cfg.Raft.Bootstrap = false
			cfg.Raft.Join = []string{join}
		}
		s, err := New(cfg, greytest.Logger(t), WithBlobRegistry(blobtest.Registry(t)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = s.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		return s
	}
	leader := start("n1", "")
	greytest.Eventually(t, 10*time.Second, func() bool { ok, _ := leader.Engine().Ready(); return ok && leader.Engine().IsLeader() })
	follower := start("n2", "http://"+leader.HTTPAddr())
	greytest.Eventually(t, 20*time.Second, func() bool { return follower.Engine().LeaderAPI() != "" && !follower.Engine().IsLeader() })

	post := func(tok, id string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+follower.HTTPAddr()+"/api/v1/tenants", strings.NewReader(`{"id":"`+id+`"}`))
		req.Header.Set("Content-Type", "application/json")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := post(token, "fwd-ok"); st != http.StatusCreated {
		t.Fatalf("admin token through the follower: %d, want 201", st)
	}
	if st := post("", "fwd-anon"); st != http.StatusUnauthorized {
		t.Fatalf("no token through the follower: %d, want 401", st)
	}
	if st := post("wrong-token-0123456789", "fwd-wrong"); st != http.StatusUnauthorized {
		t.Fatalf("wrong token through the follower: %d, want 401", st)
	}
	if _, err := leader.Engine().GetTenant(context.Background(), "fwd-anon"); err == nil {
		t.Fatal("the anonymous request created a tenant")
	}
	// The leader decided: its audit log has the allowed and the denied
	// requests; the follower's has none of them.
	lb, _ := os.ReadFile(filepath.Join(dir, "n1-audit.log"))
	var allowed, denied int
	for _, l := range strings.Split(string(lb), "\n") {
		if !strings.Contains(l, `"route":"/api/v1/tenants"`) {
			continue
		}
		switch {
		case strings.Contains(l, `"principal":"token:admin"`) && strings.Contains(l, `"outcome":"allowed"`):
			allowed++
		case strings.Contains(l, `"outcome":"denied"`) && strings.Contains(l, `"status":401`):
			denied++
		}
	}
	if allowed != 1 || denied != 2 {
		t.Fatalf("leader audit log: %d allowed, %d denied tenant creations, want 1 and 2:\n%s", allowed, denied, lb)
	}
	fb, _ := os.ReadFile(filepath.Join(dir, "n2-audit.log"))
	if strings.Contains(string(fb), "/api/v1/tenants") {
		t.Fatalf("the follower authorized a forwarded request itself:\n%s", fb)
	}
}

package server

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/internal/blobtest"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/task"
)

// A greyd with the default proofs setting creates its key (0600) in the
// data dir, signs every completed task, serves proofs that verify, and
// counts them in its metrics.
func TestServerSignsAndCountsProofs(t *testing.T) {
	cfg := config.Default()
	cfg.Node.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Raft.Addr = "127.0.0.1:0"
	cfg.Monitoring.Prometheus.Host, cfg.Monitoring.Prometheus.Port = "127.0.0.1", 0
	cfg.Raft.HeartbeatTimeout = config.Duration(200 * time.Millisecond)
	cfg.Raft.ElectionTimeout = config.Duration(200 * time.Millisecond)
	cfg.Raft.LeaderLeaseTimeout = config.Duration(100 * time.Millisecond)
	s, err := New(cfg, greytest.Logger(t), WithBlobRegistry(blobtest.Registry(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-runErr; err != nil {
			t.Error(err)
		}
	}()
	fi, err := os.Stat(filepath.Join(cfg.Node.DataDir, "node.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("node key: %v, mode %v; want a 0600 file", err, fi.Mode())
	}
	c, err := client.New("http://"+s.HTTPAddr(), client.WithTenant("acme"))
	if err != nil {
		t.Fatal(err)
	}
	greytest.Eventually(t, 10*time.Second, func() bool { return c.Ready(ctx) == nil })
	tk, err := c.Submit(ctx, task.Spec{Kind: "echo", Payload: []byte(`"x"`)})
	if err != nil {
		t.Fatal(err)
	}
	if tk, err = c.Wait(ctx, tk.ID); err != nil || tk.ProofID == "" {
		t.Fatalf("task = %+v, %v; want a proof id", tk, err)
	}
	rec, err := c.Proof(ctx, tk.ID)
	if err != nil || !rec.Verified || rec.NodeID != cfg.Node.ID {
		t.Fatalf("proof = %+v, %v", rec, err)
	}
	// A wasm task run by the in-process pool (whose handlers the metrics
	// wrap) is measured by its module, not by the greyd binary.
	echo, err := os.ReadFile("../examples/wasm/echo/echo.wasm")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := c.PushModule(ctx, echo)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := c.Submit(ctx, task.Spec{Kind: "wasm", Payload: []byte(`{"module":"` + mod.Digest + `","input":"hi"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if wt, err = c.Wait(ctx, wt.ID); err != nil || wt.Status != task.Completed {
		t.Fatalf("wasm task = %+v, %v", wt, err)
	}
	if wrec, err := c.Proof(ctx, wt.ID); err != nil || !wrec.Verified || wrec.Short.Measurement != mod.Digest {
		t.Fatalf("wasm proof = %+v, %v; want measurement %s", wrec, err, mod.Digest)
	}
	resp, err := http.Get("http://" + s.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`grey_proofs_total{platform="software",result="generated"} 2`,
		`grey_proofs_total{platform="software",result="verified"} 2`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

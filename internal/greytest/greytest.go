// Package greytest holds test helpers for Grey's own tests: a single-node
// engine on a temporary data dir, and polling helpers. Not for users.
package greytest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/grey-distributed/grey/cluster"
	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/executor"
	"github.com/grey-distributed/grey/proof"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/worker"
)

// Logger returns a logger that writes to the test log when -v is set.
func Logger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// Node is a single-voter engine on a temporary data dir.
type Node struct {
	Dir    string
	Store  *state.Store
	Raft   *cluster.Node
	Engine *engine.Engine
	cfg    engine.Config
	t      testing.TB
	// RequireTenants keeps Tenants.AutoCreate as configured.
	RequireTenants bool
	// Signer is the node's proof signer; StartWorkers gives it to pools
	// that have none. Its key is registered as the node's.
	Signer *proof.Signer
	pools  []func()
}

// NewNode starts a single-node engine that auto-creates tenants (dev
// mode); it stops at the end of the test.
func NewNode(t testing.TB, cfg engine.Config) *Node {
	t.Helper()
	return newNode(t, cfg, false)
}

// NewStrictNode is NewNode with cfg.Tenants.AutoCreate as given.
func NewStrictNode(t testing.TB, cfg engine.Config) *Node {
	t.Helper()
	return newNode(t, cfg, true)
}

func newNode(t testing.TB, cfg engine.Config, strict bool) *Node {
	t.Helper()
	n := &Node{Dir: t.TempDir(), cfg: cfg, t: t, RequireTenants: strict}
	key, err := proof.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	n.Signer = &proof.Signer{Key: key, NodeID: "test-1"}
	if n.cfg.Self.ID == "" {
		n.cfg.Self = state.Node{ID: "test-1", Role: "server", APIAddr: "http://127.0.0.1:0", Features: state.ServerFeatures()}
	}
	n.cfg.Self.KeyID, n.cfg.Self.PublicKey = key.KeyID(), key.Public()
	if n.cfg.Replay == nil {
		n.cfg.Replay = executor.Builtins()
	}
	if n.cfg.ValidatePayload == nil {
		// As greyd does: the built-in kinds check payloads at submit.
		builtins := executor.Builtins()
		n.cfg.ValidatePayload = func(kind string, p json.RawMessage) error {
			if v, ok := builtins[kind].(worker.PayloadValidator); ok {
				return v.ValidatePayload(p)
			}
			return nil
		}
	}
	n.open()
	t.Cleanup(n.Close)
	return n
}

func (n *Node) open() {
	t := n.t
	t.Helper()
	n.Store = state.New()
	rn, err := cluster.Open(cluster.Config{
		NodeID: "test-1", DataDir: n.Dir, BindAddr: "127.0.0.1:0", Bootstrap: true,
		HeartbeatTimeout: 200 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond,
		LeaderLeaseTimeout: 100 * time.Millisecond, Logger: Logger(t), LogOutput: io.Discard,
	}, n.Store)
	if err != nil {
		t.Fatalf("open raft: %v", err)
	}
	n.Raft = rn
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rn.WaitLeader(ctx); err != nil {
		t.Fatalf("no leader: %v", err)
	}
	cfg := n.cfg
	if !n.RequireTenants {
		cfg.Tenants.AutoCreate = true
	}
	for k := range executor.Builtins() {
		cfg.Kinds = append(cfg.Kinds, k)
	}
	n.Engine = engine.New(cfg, rn, n.Store, Logger(t))
	Eventually(t, 10*time.Second, func() bool { ok, _ := n.Engine.Ready(); return ok && n.Engine.Node().IsLeader() })
}

// Close stops the engine and the Raft node (idempotent).
func (n *Node) Close() {
	if n.Engine == nil {
		return
	}
	n.Engine.Close()
	_ = n.Raft.Shutdown(false)
	n.Engine = nil
}

// Restart closes the node and opens it again on the same data dir.
// Worker pools started with StartWorkers are stopped first (they are bound
// to the old engine).
func (n *Node) Restart(snapshot bool) {
	n.t.Helper()
	for _, stop := range n.pools {
		stop()
	}
	n.pools = nil
	n.Engine.Close()
	if err := n.Raft.Shutdown(snapshot); err != nil {
		n.t.Fatalf("shutdown: %v", err)
	}
	n.Engine = nil
	n.open()
}

// StartWorkers runs a built-in worker pool against the engine until the
// test ends; it returns the pool and a stop function that drains it.
func (n *Node) StartWorkers(t testing.TB, opts worker.Options, extra map[string]worker.Handler) (*worker.Pool, func()) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = Logger(t)
	}
	if opts.Signer == nil {
		opts.Signer = n.Signer
	}
	p := worker.NewPool(n.Engine, opts)
	for k, h := range executor.Builtins() {
		p.Handle(k, h)
	}
	for k, h := range extra {
		p.Handle(k, h)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := p.Run(ctx); err != nil {
			t.Errorf("pool: %v", err)
		}
	}()
	stop := func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	n.pools = append(n.pools, stop)
	return p, stop
}

// Eventually polls cond every 5ms until it holds or the timeout passes.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"go.opentelemetry.io/otel/trace"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/telemetry/tracing"
)

// Config configures a Raft node.
type Config struct {
	// NodeID is the Raft server id.
	NodeID string
	// DataDir holds raft/wal and raft/snapshots.
	DataDir string
	// BindAddr is the Raft transport's listen address.
	BindAddr string
	// Advertise is the address peers dial ("" = the bound address).
	Advertise string
	// Bootstrap forms a one-voter cluster when there is no state yet.
	Bootstrap bool
	// SnapshotThreshold is how many log entries trigger a snapshot.
	SnapshotThreshold uint64
	// SnapshotInterval is how often the threshold is checked.
	SnapshotInterval time.Duration
	// SnapshotRetain is how many snapshots are kept.
	SnapshotRetain int
	// HeartbeatTimeout, ElectionTimeout and LeaderLeaseTimeout tune Raft.
	HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout time.Duration
	// MaxAppendEntries bounds entries per append batch (one fsync each).
	MaxAppendEntries int
	// Logger receives the node's logs.
	Logger *slog.Logger
	// LogOutput receives raft's own logs (nil = discarded below warnings to stderr).
	LogOutput io.Writer
	// TLSServer and TLSClient, when both are set, run the Raft transport
	// over mutual TLS: TLSServer verifies peers that connect, TLSClient
	// the peers this node dials (certs.Material's Raft configs).
	TLSServer, TLSClient *tls.Config
}

// Node is a Raft server holding the replicated state.
type Node struct {
	cfg       Config
	raft      *raft.Raft
	wal       *raftwal.WAL
	meta      *metadb.BoltMetaDB
	transport *raft.NetworkTransport
	snaps     *raft.FileSnapshotStore
	store     *state.Store
	fsm       *FSM
	logger    *slog.Logger

	shutdownCh   chan struct{}
	shutdownOnce sync.Once
}

// Open starts a Raft node over store, restoring its state from the latest
// snapshot and replaying the log.
func Open(cfg Config, store *state.Store) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.NodeID == "" {
		return nil, greyerr.Invalid("node.id", "is required")
	}
	dir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(filepath.Join(dir, "wal"), 0o700); err != nil {
		return nil, fmt.Errorf("create raft dir: %w", err)
	}
	out := cfg.LogOutput
	if out == nil {
		out = os.Stderr
	}
	hl := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: out})

	// raft-wal's Close leaves its meta store open (and bolt's file lock
	// held), so the node owns the meta store and closes it itself.
	meta := &metadb.BoltMetaDB{}
	wal, err := raftwal.Open(filepath.Join(dir, "wal"), raftwal.WithMetaStore(meta))
	if err != nil {
		_ = meta.Close()
		return nil, fmt.Errorf("open raft-wal in %s: %w", dir, err)
	}
	retain := cfg.SnapshotRetain
	if retain <= 0 {
		retain = 2
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, retain, hl.Named("snapshots"))
	if err != nil {
		_ = wal.Close()
		_ = meta.Close()
		return nil, fmt.Errorf("open snapshot store: %w", err)
	}
	var adv net.Addr
	if cfg.Advertise != "" {
		a, err := net.ResolveTCPAddr("tcp", cfg.Advertise)
		if err != nil {
			_ = wal.Close()
			_ = meta.Close()
			return nil, greyerr.Invalid("raft.advertise", "%v", err)
		}
		adv = a
	}
	trans, err := newTransport(cfg, adv, hl.Named("transport"))
	if err != nil {
		_ = wal.Close()
		_ = meta.Close()
		return nil, fmt.Errorf("raft transport on %s: %w", cfg.BindAddr, err)
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = hl
	if cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = cfg.SnapshotThreshold
	}
	if cfg.SnapshotInterval > 0 {
		rc.SnapshotInterval = cfg.SnapshotInterval
	}
	if cfg.HeartbeatTimeout > 0 {
		rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	}
	if cfg.ElectionTimeout > 0 {
		rc.ElectionTimeout = cfg.ElectionTimeout
	}
	if cfg.LeaderLeaseTimeout > 0 {
		rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	}
	if cfg.MaxAppendEntries > 0 {
		rc.MaxAppendEntries = cfg.MaxAppendEntries
	}
	rc.TrailingLogs = 10240
	rc.BatchApplyCh = true
	rc.NoSnapshotRestoreOnStart = false

	fsm := NewFSM(store, cfg.Logger)
	n := &Node{shutdownCh: make(chan struct{}), cfg: cfg, wal: wal, meta: meta, transport: trans, snaps: snaps, store: store, fsm: fsm, logger: cfg.Logger}

	// A follower reads every entry back right after storing it (to apply
	// it), and the leader reads each new entry once per follower to send
	// it: the cache answers those reads from memory instead of the WAL's
	// segment files. It holds the last logCacheEntries entries.
	logs, err := raft.NewLogCache(logCacheEntries, wal)
	if err != nil {
		n.closeStores()
		return nil, fmt.Errorf("raft log cache: %w", err)
	}
	has, err := raft.HasExistingState(logs, wal, snaps)
	if err != nil {
		n.closeStores()
		return nil, fmt.Errorf("inspect raft state: %w", err)
	}
	r, err := raft.NewRaft(rc, fsm, logs, wal, snaps, trans)
	if err != nil {
		n.closeStores()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	n.raft = r
	if !has && cfg.Bootstrap {
		conf := raft.Configuration{Servers: []raft.Server{{
			ID: rc.LocalID, Address: trans.LocalAddr(), Suffrage: raft.Voter,
		}}}
		if err := r.BootstrapCluster(conf).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			_ = n.Shutdown(false)
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
	}
	return n, nil
}

// logCacheEntries is how many recent Raft entries the log cache keeps: two
// append batches' worth (raft's MaxAppendEntries defaults to 64), enough
// for followers that keep up, small enough that the entries it pins (each
// a batch of commands) cost little memory.
const logCacheEntries = 128

// newTransport is the TCP transport, or a mutual-TLS one when cfg has TLS
// configs.
func newTransport(cfg Config, adv net.Addr, logger hclog.Logger) (*raft.NetworkTransport, error) {
	if cfg.TLSServer == nil || cfg.TLSClient == nil {
		return raft.NewTCPTransportWithLogger(cfg.BindAddr, adv, 8, 10*time.Second, logger)
	}
	stream, err := newTLSStream(cfg.BindAddr, adv, cfg.TLSServer, cfg.TLSClient)
	if err != nil {
		return nil, err
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: stream, MaxPool: 8, Timeout: 10 * time.Second, Logger: logger,
	}), nil
}

func (n *Node) closeStores() {
	_ = n.transport.Close()
	_ = n.wal.Close()
	_ = n.meta.Close()
}

// propose replicates one encoded entry (a command of type t, which names
// it in errors and traces) and returns the FSM's response, an error value
// included. It returns an Unavailable error when this node is not the
// leader. Inside a trace it runs in a grey.raft.apply span. Apply and
// ApplyBatch are its typed callers.
func (n *Node) propose(ctx context.Context, t MsgType, entry []byte) (any, error) {
	if !trace.SpanContextFromContext(ctx).IsValid() || !tracing.Enabled() {
		return n.replicate(ctx, t, entry)
	}
	ctx, span := tracing.Tracer().Start(ctx, tracing.SpanRaftApply, trace.WithAttributes(tracing.RaftMsgType.String(t.String())))
	res, err := n.replicate(ctx, t, entry)
	tracing.End(span, err)
	return res, err
}

func (n *Node) replicate(ctx context.Context, t MsgType, entry []byte) (any, error) {
	timeout := 30 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
		if timeout <= 0 {
			return nil, greyerr.New(greyerr.DeadlineExceeded, "deadline passed before %s was applied", t)
		}
	}
	f := n.raft.Apply(entry, timeout)
	// Raft may have queued the command where nobody reads it any more (a
	// shutdown), so the wait also ends with ctx.
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if err != nil {
			return nil, raftError(err, t)
		}
	case <-ctx.Done():
		return nil, greyerr.Wrap(greyerr.Unavailable, ctx.Err(), "%s not confirmed before the request ended; it may still apply", t)
	case <-n.shutdownCh:
		return nil, &greyerr.Error{Code: greyerr.Unavailable, Message: "shutting down; " + t.String() + " may not apply"}
	}
	return f.Response(), nil
}

func raftError(err error, t MsgType) error {
	switch {
	case errors.Is(err, raft.ErrLeadershipLost):
		// The entry may still commit under the next leader (raft's own
		// documentation): the outcome is unknown, not "not applied".
		return &greyerr.Error{Code: greyerr.DeadlineExceeded, Message: "leadership lost while applying " + t.String() + "; it may or may not have committed (retry with an idempotency key)", Err: err}
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		e := greyerr.New(greyerr.Unavailable, "not the leader; %s not applied", t)
		e.Err = err
		e.RetryAfter = time.Second
		return e
	case errors.Is(err, raft.ErrRaftShutdown):
		return &greyerr.Error{Code: greyerr.Unavailable, Message: "shutting down", Err: err}
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return &greyerr.Error{Code: greyerr.Unavailable, Message: "raft is overloaded", Err: err, RetryAfter: time.Second}
	}
	return greyerr.Wrap(greyerr.Internal, err, "apply %s", t)
}

// IsLeader reports whether this node leads.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// ID returns this node's id.
func (n *Node) ID() string { return n.cfg.NodeID }

// LeaderID returns the current leader's id ("" when unknown).
func (n *Node) LeaderID() string {
	_, id := n.raft.LeaderWithID()
	return string(id)
}

// LeaderCh signals leadership changes (true = gained).
func (n *Node) LeaderCh() <-chan bool { return n.raft.LeaderCh() }

// WaitLeader blocks until some node leads or ctx ends.
func (n *Node) WaitLeader(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if addr, _ := n.raft.LeaderWithID(); addr != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return greyerr.Wrap(greyerr.Unavailable, ctx.Err(), "no leader elected")
		case <-t.C:
		}
	}
}

// Barrier waits until every command committed before it is applied here.
func (n *Node) Barrier(ctx context.Context) error {
	timeout := 30 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	f := n.raft.Barrier(timeout)
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if err != nil {
			return raftError(err, 0)
		}
		return nil
	case <-ctx.Done():
		return greyerr.Wrap(greyerr.Unavailable, ctx.Err(), "barrier")
	case <-n.shutdownCh:
		return &greyerr.Error{Code: greyerr.Unavailable, Message: "shutting down"}
	}
}

// Snapshot takes a snapshot now.
func (n *Node) Snapshot() error {
	err := n.raft.Snapshot().Error()
	if err != nil && errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return nil
	}
	return err
}

// AddVoter adds (or re-adds with a new address) a voting server and waits
// for the configuration change to commit.
func (n *Node) AddVoter(ctx context.Context, id, addr string) error {
	if err := n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeoutOf(ctx)).Error(); err != nil {
		return raftError(err, 0)
	}
	return nil
}

// RemoveServer removes a server from the configuration.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, timeoutOf(ctx)).Error(); err != nil {
		return raftError(err, 0)
	}
	return nil
}

// Servers returns the current Raft configuration.
func (n *Node) Servers() ([]raft.Server, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, raftError(err, 0)
	}
	return f.Configuration().Servers, nil
}

// LocalAddr is the Raft transport's address.
func (n *Node) LocalAddr() string { return string(n.transport.LocalAddr()) }

func timeoutOf(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return time.Until(d)
	}
	return 30 * time.Second
}

// Info describes the node's view of the cluster.
type Info struct {
	NodeID            string
	State             string
	LeaderID          string
	LeaderAddr        string
	Term              uint64
	CommitIndex       uint64
	AppliedIndex      uint64
	LastSnapshotIndex uint64
	Servers           []raft.Server
	LastContact       time.Time
}

// Progress is the part of the node's view that a request needs to decide
// whether this server may serve it: the leader's ID and how far this
// replica has applied the committed log.
type Progress struct {
	NodeID       string
	LeaderID     string
	CommitIndex  uint64
	AppliedIndex uint64
}

// Progress returns the node's leader and log positions. Unlike Info it
// reads only atomics: every API request asks it, and Info's Raft
// statistics and configuration go through Raft's main loop.
func (n *Node) Progress() Progress {
	_, id := n.raft.LeaderWithID()
	return Progress{
		NodeID:       n.cfg.NodeID,
		LeaderID:     string(id),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.raft.AppliedIndex(),
	}
}

// Info returns the node's view of the cluster.
func (n *Node) Info() Info {
	addr, id := n.raft.LeaderWithID()
	st := n.raft.Stats()
	var servers []raft.Server
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		servers = f.Configuration().Servers
	}
	snapIdx := uint64(0)
	fmt.Sscan(st["last_snapshot_index"], &snapIdx)
	term := uint64(0)
	fmt.Sscan(st["term"], &term)
	commit := uint64(0)
	fmt.Sscan(st["commit_index"], &commit)
	return Info{
		NodeID:            n.cfg.NodeID,
		State:             lower(n.raft.State().String()),
		LeaderID:          string(id),
		LeaderAddr:        string(addr),
		Term:              term,
		CommitIndex:       commit,
		AppliedIndex:      n.raft.AppliedIndex(),
		LastSnapshotIndex: snapIdx,
		Servers:           servers,
		LastContact:       n.raft.LastContact(),
	}
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

// TransferLeadership hands the leadership to the most up-to-date other
// voter and waits until it leads (or the transfer times out), so that a
// leader about to stop does not leave the cluster leaderless for an
// election timeout while it drains. It does nothing on a follower or in a
// one-voter cluster.
func (n *Node) TransferLeadership() error {
	if n.raft.State() != raft.Leader {
		return nil
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	voters := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			voters++
		}
	}
	if voters < 2 {
		return nil
	}
	return n.raft.LeadershipTransfer().Error()
}

// Shutdown stops the node, taking a snapshot first when snapshot is true.
func (n *Node) Shutdown(snapshot bool) error {
	n.shutdownOnce.Do(func() { close(n.shutdownCh) })
	var errs []error
	if snapshot && n.raft.State() != raft.Shutdown {
		if err := n.Snapshot(); err != nil {
			errs = append(errs, fmt.Errorf("final snapshot: %w", err))
		}
	}
	if err := n.raft.Shutdown().Error(); err != nil {
		errs = append(errs, err)
	}
	n.closeStores()
	return errors.Join(errs...)
}

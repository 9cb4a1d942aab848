package engine

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grey-distributed/grey/cluster"
	"github.com/grey-distributed/grey/relay"
	"github.com/grey-distributed/grey/scheduler"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/worker"
)

// Config holds the engine's task settings.
type Config struct {
	// MaxPayloadBytes bounds inline payloads.
	MaxPayloadBytes int
	// MaxDependsOn bounds a task's parents.
	MaxDependsOn int
	// DefaultTimeout applies to tasks without a timeout.
	DefaultTimeout time.Duration
	// KindTimeouts are default timeouts of particular kinds (the inference
	// kind's ai.inference_timeout): a task of such a kind submitted without
	// a timeout is stored with this one (at most MaxTimeout).
	KindTimeouts map[string]time.Duration
	// MaxTimeout bounds a task's timeout.
	MaxTimeout time.Duration
	// LeaseTTL is how long a lease lives without a heartbeat.
	LeaseTTL time.Duration
	// Retry is the global retry policy.
	Retry task.RetryPolicy
	// Retention is how long finished tasks are kept.
	Retention time.Duration
	// GCInterval is how often finished tasks are collected.
	GCInterval time.Duration
	// FIFO switches fair share off (baseline for benchmarks).
	FIFO bool
	// Policy gives tenants' weights and limits (nil = equal shares).
	Policy scheduler.Policy
	// Kinds are accepted at submit besides those workers have asked for.
	Kinds []string
	// SubmitSlots is how many submit requests of one tenant a server
	// handles at once (default 1); further ones wait their turn.
	SubmitSlots int
	// Tenants configures tenancy, quotas and costs.
	Tenants TenantsConfig
	// Self is this server's registration (id, API address, labels).
	Self state.Node
	// DeadServerTimeout removes servers unreachable this long (0 = never).
	DeadServerTimeout time.Duration
	// PeerTLS, when set, is the TLS config of the leader's health probes
	// of the other servers' APIs (the node certificate and the cluster CA).
	PeerTLS *tls.Config
	// ProofsOff stops asking workers for proofs, except for tasks and
	// tenants with require_proof (the cluster's proofs setting, on by
	// default).
	ProofsOff bool
	// Replay holds the handlers this server can replay tasks with, by kind
	// (only worker.Deterministic ones replay).
	Replay map[string]worker.Handler
	// ValidatePayload, if set, checks a task's payload at submit with its
	// kind's executor (executor.Registry.ValidatePayload); an error is a
	// 400 naming the payload field. Payloads given by payload_ref are
	// checked when they run.
	ValidatePayload func(kind string, payload json.RawMessage) error
	// SubmitHooks, by kind, check and complete a task of that kind at
	// submit, after Validate and ValidatePayload (the inference kind
	// resolves its model there and stamps the routing constraint). A task
	// whose payload is given by payload_ref is checked too: its hook sees
	// the object's bytes (read at submit) as sp.Payload.
	SubmitHooks map[string]SubmitHook
	// BinaryPayloads names the kinds whose payload_ref may name an object
	// in the binary form (task.IsBinaryPayload); the lease names such a
	// kind's payload object (Assignment.PayloadFetch) and the worker fetches
	// it (FetchPayload). For any other kind such
	// an object is refused at submit (400 naming payload_ref).
	BinaryPayloads map[string]bool
	// ProofChecked, if set, is told the platform and outcome ("verified",
	// "rejected" or "error") of every proof this server checks on read.
	ProofChecked func(platform, result string)
	// Data stores large task data: payloads named by payload_ref and
	// results over the inline limit (nil: payload_ref is refused and a
	// large result fails its task, as before).
	Data TaskData
	// APIKeyUseInterval is how often the leader writes API keys' last-used
	// times, and how stale one may get (default one minute).
	APIKeyUseInterval time.Duration
	// Archive is where finished tasks go before they leave the state.
	Archive ArchiveConfig
	// Metrics receives the engine's metrics (the archive's lag); nil: not
	// registered.
	Metrics prometheus.Registerer
	// Sinks follow the feed of finished tasks besides the archive (event
	// streams); each holds finished tasks in the state until it has
	// acknowledged them.
	Sinks []relay.Sink
	// OnLeader are run while this node leads (event sources: one
	// consumer per cluster), each until its context ends.
	OnLeader []func(context.Context)
	// Health, if set, names components besides the archive that work but
	// not fully (an event source whose broker does not answer), each with
	// why: Degraded and /readyz report them.
	Health func() map[string]string
}

func (c *Config) defaults() {
	if c.MaxPayloadBytes == 0 {
		c.MaxPayloadBytes = 1 << 20
	}
	if c.MaxDependsOn == 0 {
		c.MaxDependsOn = 100
	}
	if c.DefaultTimeout == 0 {
		c.DefaultTimeout = 5 * time.Minute
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 30 * time.Second
	}
	c.Retry = c.Retry.Merge(task.DefaultRetryPolicy())
	if c.Retention == 0 {
		c.Retention = 24 * time.Hour
	}
	if c.GCInterval == 0 {
		c.GCInterval = time.Minute
	}
	if c.SubmitSlots <= 0 {
		c.SubmitSlots = 1
	}
	if c.APIKeyUseInterval <= 0 {
		c.APIKeyUseInterval = defaultAPIKeyUseInterval
	}
	if c.Archive.BatchSize <= 0 {
		c.Archive.BatchSize = 1000
	}
	if c.Archive.MaxBacklog <= 0 {
		c.Archive.MaxBacklog = 100000
	}
}

// SubmitHook checks a validated spec of its kind for tenant at submit and
// may complete it (constraint labels, server-set headers under
// task.ReservedHeaderPrefix). It must not keep sp, and must copy any map it
// changes (the caller's spec shares them). A *greyerr.Error is returned as
// it is (NotFound is a 404, PermissionDenied a 403); any other error is an
// InvalidArgument naming the payload.
type SubmitHook func(ctx context.Context, tenant string, sp *task.Spec) error

// Engine is the task service of one greyd server.
type Engine struct {
	cfg    Config
	node   *cluster.Node
	store  *state.Store
	sched  *scheduler.Scheduler
	logger *slog.Logger
	hub    *hub

	rndMu sync.Mutex
	rnd   *rand.Rand

	kindsMu sync.RWMutex
	kinds   map[string]bool

	limits  limiters
	members members
	packed  featureGate // whether the leader may pack proofs (packedProofs)
	// packScratch holds *[]byte buffers that proofs are compressed into
	// before their blocks are copied into a log entry.
	packScratch sync.Pool
	keyUses     keyUses

	slotsMu sync.Mutex
	slots   map[string]chan struct{}

	replays   chan struct{} // replay slots
	platforms platforms

	relay        *relay.Relay // nil without sinks
	archiveSwept time.Time    // the leader's last archive retention run

	stop     chan struct{}
	loopDone chan struct{}
	stopOnce sync.Once
}

// New returns an engine over a Raft node and its store, and starts the
// goroutine that follows leadership.
func New(cfg Config, node *cluster.Node, store *state.Store, logger *slog.Logger) *Engine {
	cfg.defaults()
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Policy == nil {
		cfg.Policy = policy{store: store}
	}
	e := &Engine{
		cfg:      cfg,
		node:     node,
		store:    store,
		sched:    scheduler.New(store, scheduler.Options{Policy: cfg.Policy, FIFO: cfg.FIFO}),
		logger:   logger,
		hub:      newHub(),
		replays:  make(chan struct{}, maxReplays),
		rnd:      rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x9e3779b97f4a7c15)),
		stop:     make(chan struct{}),
		loopDone: make(chan struct{}),
		kinds:    make(map[string]bool),
		slots:    make(map[string]chan struct{}),
	}
	e.RegisterKinds(cfg.Kinds...)
	r, err := e.newRelay()
	if err != nil {
		// Only a metric registered twice with another shape fails here: a
		// wiring bug, not a runtime condition.
		panic(fmt.Sprintf("engine: relay: %v", err))
	}
	e.relay = r
	store.Observe(e.hub.observe)
	go e.followLeadership()
	return e
}

// Close stops the engine's loops (not the Raft node).
func (e *Engine) Close() {
	e.stopOnce.Do(func() { close(e.stop) })
	<-e.loopDone
	e.hub.closeAll()
}

// Store returns the state store (read-only use).
func (e *Engine) Store() *state.Store { return e.store }

// Node returns the Raft node.
func (e *Engine) Node() *cluster.Node { return e.node }

// Scheduler returns the leader's scheduler.
func (e *Engine) Scheduler() *scheduler.Scheduler { return e.sched }

// LeaseTTL returns the lease time-to-live.
func (e *Engine) LeaseTTL() time.Duration { return e.cfg.LeaseTTL }

// Limits returns the task validation limits.
func (e *Engine) Limits() task.Limits {
	return task.Limits{MaxPayloadBytes: e.cfg.MaxPayloadBytes, MaxDependsOn: e.cfg.MaxDependsOn, MaxTimeout: task.Duration(e.cfg.MaxTimeout)}
}

func (e *Engine) timeoutOf(t *task.Task) time.Duration {
	if t.Timeout > 0 {
		return t.Timeout.D()
	}
	return e.cfg.DefaultTimeout
}

func (e *Engine) retryPolicy(t *task.Task) task.RetryPolicy {
	if t.Retry == nil {
		return e.cfg.Retry
	}
	return t.Retry.Merge(e.cfg.Retry)
}

// retryAt decides whether attempt number t.Attempt may be retried and when.
func (e *Engine) retryAt(t *task.Task, retryable bool, now time.Time) *time.Time {
	if !retryable {
		return nil
	}
	p := e.retryPolicy(t)
	if t.Attempt > p.Retries() {
		return nil
	}
	e.rndMu.Lock()
	d := p.Delay(t.Attempt, e.rnd)
	e.rndMu.Unlock()
	at := now.Add(d)
	return &at
}

// followLeadership enables the scheduler and leader loops while this node
// leads.
func (e *Engine) followLeadership() {
	defer close(e.loopDone)
	var cancel context.CancelFunc
	var loopWG sync.WaitGroup
	stopLoop := func() {
		if cancel != nil {
			cancel()
			loopWG.Wait()
			cancel = nil
		}
		e.sched.Disable()
	}
	start := func() {
		stopLoop()
		ctx, c := context.WithCancel(context.Background())
		cancel = c
		loopWG.Add(1)
		go func() {
			defer loopWG.Done()
			e.leaderLoop(ctx)
		}()
	}
	if e.node.IsLeader() {
		start()
	}
	ch := e.node.LeaderCh()
	for {
		select {
		case <-e.stop:
			stopLoop()
			return
		case isLeader := <-ch:
			switch {
			case isLeader && cancel == nil:
				start()
			case isLeader:
				// Already leading (the initial notification raced our own
				// IsLeader check): keep the running loop.
			default:
				stopLoop()
			}
		}
	}
}

func (e *Engine) leaderLoop(ctx context.Context) {
	// Apply everything committed by earlier terms before scheduling.
	for ctx.Err() == nil {
		bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := e.node.Barrier(bctx)
		cancel()
		if err == nil {
			break
		}
		e.logger.Warn("leader barrier failed", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	e.sched.Enable(time.Now(), e.cfg.LeaseTTL)
	e.logger.Info("leadership gained; scheduler enabled")
	var wg sync.WaitGroup
	defer wg.Wait()
	if e.relay != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.relay.Run(ctx)
		}()
	}
	for _, run := range e.cfg.OnLeader {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(ctx)
		}()
	}
	e.ensureMembership(ctx)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	probe := time.NewTicker(2 * time.Second)
	defer probe.Stop()
	gc := time.NewTicker(e.cfg.GCInterval)
	defer gc.Stop()
	keyUse := time.NewTicker(e.cfg.APIKeyUseInterval)
	defer keyUse.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			now := time.Now()
			e.sched.Promote(now)
			if due := e.sched.Due(now, e.timeoutOf); len(due) > 0 {
				e.expire(ctx, due, now)
			}
		case <-gc.C:
			e.collect(ctx)
		case <-keyUse.C:
			e.flushKeyUses(ctx)
		case <-probe.C:
			e.probe(ctx)
		}
	}
}

// expire retries or fails tasks whose lease or timeout ran out.
func (e *Engine) expire(ctx context.Context, due []scheduler.Expiry, now time.Time) {
	req := &state.FailRequest{Now: now}
	for _, d := range due {
		msg := "lease expired: the worker stopped heartbeating"
		if d.Code == "timeout" {
			msg = "attempt exceeded its timeout of " + e.timeoutOf(d.Task).String()
		}
		e.logger.LogAttrs(ctx, slog.LevelDebug, "attempt expired", slog.String("task_id", d.Task.ID), slog.String("tenant_id", d.Task.TenantID),
			slog.Int("attempt", d.Task.Attempt), slog.String("code", d.Code))
		req.Items = append(req.Items, state.FailItem{
			Ref:     state.Ref{TaskID: d.Task.ID, Attempt: d.Task.Attempt},
			Error:   task.Error{Message: msg, Retryable: true, Code: d.Code},
			RetryAt: e.retryAt(d.Task, true, now),
			At:      now,
		})
	}
	if _, err := cluster.Apply(ctx, e.node, cluster.Retry(req)); err != nil {
		e.logger.Warn("expire leases", "tasks", len(req.Items), "err", err)
	}
}

// collect removes finished tasks older than the retention.
func (e *Engine) collect(ctx context.Context) {
	now := time.Now()
	for {
		n, err := cluster.Apply(ctx, e.node, cluster.GC(&state.GCRequest{Now: now, Before: now.Add(-e.cfg.Retention), Max: 10000, Hold: e.gcHold()}))
		if err != nil {
			e.logger.Warn("gc", "err", err)
			return
		}
		if n > 0 {
			e.logger.Debug("collected finished tasks", "count", n)
		}
		if n < 10000 {
			e.sweepResults(ctx)
			e.collectArchive(ctx, now)
			return
		}
	}
}

// RegisterKinds makes kinds acceptable at submit. Built-in executors are
// registered by greyd; a worker's lease request registers its kinds.
func (e *Engine) RegisterKinds(kinds ...string) {
	e.kindsMu.RLock()
	known := true
	for _, k := range kinds {
		known = known && e.kinds[k]
	}
	e.kindsMu.RUnlock()
	if known {
		return
	}
	e.kindsMu.Lock()
	for _, k := range kinds {
		e.kinds[k] = true
	}
	e.kindsMu.Unlock()
}

// KnownKind reports whether kind was registered.
func (e *Engine) KnownKind(kind string) bool {
	e.kindsMu.RLock()
	defer e.kindsMu.RUnlock()
	return e.kinds[kind]
}

// Kinds returns the registered kinds, sorted.
func (e *Engine) Kinds() []string {
	e.kindsMu.RLock()
	defer e.kindsMu.RUnlock()
	out := make([]string, 0, len(e.kinds))
	for k := range e.kinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

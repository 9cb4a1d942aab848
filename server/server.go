// Package server assembles one greyd process from its configuration: the
// Raft node and state store, the engine, the REST API, the metrics listener
// and the in-process worker pool; and runs them until the context ends,
// then shuts down in order (stop leasing and drain workers, stop the API,
// snapshot, close Raft).
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/admission"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grey-distributed/grey/ai/modelstore"
	"github.com/grey-distributed/grey/api"
	"github.com/grey-distributed/grey/apitypes"
	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/audit"
	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/certs"
	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/cluster"
	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/engine"
	wasmexec "github.com/grey-distributed/grey/executor/wasm"
	"github.com/grey-distributed/grey/proof"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/taskdata"
	"github.com/grey-distributed/grey/telemetry"
	"github.com/grey-distributed/grey/tenant"
	"github.com/grey-distributed/grey/worker"
)

// Server is one greyd process.
type Server struct {
	cfg    *config.Config
	logger *slog.Logger

	store *state.Store
	node  *cluster.Node
	eng   *engine.Engine
	api   *api.Server

	httpLn    net.Listener
	httpSrv   *http.Server
	metricsLn net.Listener
	metricsSv *http.Server
	pool      *worker.Pool
	metrics   *telemetry.Metrics
	signer    *proof.Signer   // this node's proof key and attester
	tls       *certs.Material // the API's certificate and the node's mTLS material
	audit     *audit.Log      // the audit log (nil: off)
	// stopTracing flushes and stops trace export (telemetry.SetupTracing).
	stopTracing func(context.Context) error
	// blobs opens bucket URLs (WithBlobRegistry); registry is the metrics
	// registry buckets register with (nil without metrics).
	blobs *blobstore.Registry
	// models is the model registry (ai.model_registry).
	models *modelstore.Store
	// data is the task data store (tasks.data_url).
	data     *taskdata.Store
	registry *prometheus.Registry
	// archive holds finished tasks once they leave Raft (nil: none).
	archive *archive.Store
	// events are the event sources and sinks (events.kafka,
	// events.rabbitmq).
	events *eventStreams
}

// New opens the node's state and listeners. Nothing runs until Run. It
// refuses a configuration without authentication that listens beyond
// loopback (config.CheckExposure).
func New(cfg *config.Config, logger *slog.Logger, opts ...Option) (*Server, error) {
	if cfg.Node.Role == config.RoleWorker {
		return nil, errors.New("role worker: run greyd with --role worker through RunWorker")
	}
	if err := cfg.CheckExposure(); err != nil {
		return nil, err
	}
	var o options
	for _, f := range opts {
		f(&o)
	}
	if _, err := authChain(cfg, &o, nil); err != nil {
		return nil, err
	}
	blobs := o.blobs
	if blobs == nil {
		blobs = blobstore.NewRegistry()
	}
	if err := checkBackupURL(blobs, cfg.Raft.Backup.URL); err != nil {
		return nil, err
	}
	if err := probeBackupBucket(blobs, cfg); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Node.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", cfg.Node.DataDir, err)
	}
	// The tls block's files are read and checked now, so a bad one stops
	// start-up with the key that names it.
	mat, err := certs.Load(cfg, func(err error) { logger.Error("TLS certificate reload failed", "err", err) })
	if err != nil {
		return nil, err
	}
	if mat.API != nil && mat.CA == nil {
		logger.Warn("tls.cert_file without tls.ca_file: Raft and node-to-node calls are not mutually authenticated, and other servers' APIs are verified against the system roots; set tls.ca_file for a cluster")
	}
	s := &Server{cfg: cfg, logger: logger, store: state.New(), tls: mat, blobs: blobs}
	// Metrics observe the store from the start, so a log replay counts
	// the same way on every restart.
	var reg *prometheus.Registry
	if cfg.Monitoring.Prometheus.Enabled {
		reg = newRegistry()
		m, err := telemetry.NewMetrics(reg, telemetry.Options{
			IncludeTenantLabels: cfg.Monitoring.Prometheus.IncludeTenantLabels,
			Buckets:             cfg.Monitoring.Prometheus.Buckets,
			NodeID:              cfg.Node.ID,
			Prices:              tenantsConfig(cfg).Prices,
			Store:               s.store,
		})
		if err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
		s.metrics = m
		s.registry = reg
		s.store.Observe(m.Observe)
	}
	// The event streams only check their URLs here (they connect once
	// running): a scheme this build lacks stops start-up before anything
	// is locked or opened.
	var evReg prometheus.Registerer
	if reg != nil {
		evReg = reg
	}
	if s.events, err = openEvents(cfg, &o, evReg, logger, s.submitter(), s.tenantIDs); err != nil {
		return nil, err
	}
	lock, err := lockDataDir(cfg.Node.DataDir)
	if err != nil {
		return nil, err
	}
	_ = lock // released when the process exits
	// The module store, then the executors: every kind, from the registry a
	// worker-only node builds too. A follower's workers fetch modules its
	// bucket lacks from the leader.
	mods, err := openModules(context.Background(), cfg, s.blobs, s.blobOptions("modules"))
	if err != nil {
		return nil, err
	}
	// The model registry, where the inference kind of the in-process
	// workers gets models (then the leader's, for a follower) unless the
	// binary gave a source (WithModelSource).
	if s.models, err = openModelRegistry(context.Background(), cfg, s.blobs, s.blobOptions(modelstore.Kind)); err != nil {
		_ = mods.Close()
		return nil, err
	}
	modelSrc := o.models
	if modelSrc == nil {
		modelSrc = s.ModelSource()
	}
	var aiReg prometheus.Registerer
	if reg != nil {
		aiReg = reg
	}
	execs, err := executors(context.Background(), cfg, wasmexec.Chain(mods, leaderSource(func() string {
		if s.eng == nil || s.eng.IsLeader() {
			return ""
		}
		return s.eng.LeaderAPI()
	}, s.peerToken(), s.peerOptions()...)), inferenceDeps{runtimes: o.runtimes, models: modelSrc, metrics: aiReg}, logger)
	if err != nil {
		_ = s.models.Close()
		_ = mods.Close()
		return nil, err
	}
	mods.SetValidator(execs.Wasm().Validate)
	// Modules and task data share the tenant's max_storage_bytes through
	// the replicated stored-byte counters (blobStorage): no listing.
	data, err := s.openTaskData(context.Background(), cfg, s.storageQuota)
	if err != nil {
		_ = execs.Close(context.Background())
		_ = mods.Close()
		return nil, err
	}
	s.data = data
	data.SetStorage(s.blobStorage)
	mods.SetStorage(s.blobStorage)
	// Models count in the same stored bytes.
	s.models.SetStorage(s.blobStorage)
	signer, err := newSigner(cfg)
	if err != nil {
		return nil, err
	}
	s.signer = signer
	var archReg prometheus.Registerer
	if reg != nil {
		archReg = reg
	}
	if s.archive, err = openArchive(context.Background(), cfg, &o, archReg, logger); err != nil {
		return nil, err
	}
	if s.metrics != nil {
		instrumentSigner(signer, s.metrics)
	}

	httpLn, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return nil, fmt.Errorf("http.addr %s: %w", cfg.HTTP.Addr, err)
	}
	s.httpLn = httpLn

	node, err := cluster.Open(cluster.Config{
		NodeID:             cfg.Node.ID,
		DataDir:            cfg.Node.DataDir,
		BindAddr:           cfg.Raft.Addr,
		Advertise:          cfg.Raft.Advertise,
		Bootstrap:          cfg.Raft.Bootstrap,
		SnapshotThreshold:  cfg.Raft.SnapshotThreshold,
		SnapshotInterval:   cfg.Raft.SnapshotInterval.Std(),
		SnapshotRetain:     cfg.Raft.SnapshotRetain,
		HeartbeatTimeout:   cfg.Raft.HeartbeatTimeout.Std(),
		ElectionTimeout:    cfg.Raft.ElectionTimeout.Std(),
		LeaderLeaseTimeout: cfg.Raft.LeaderLeaseTimeout.Std(),
		MaxAppendEntries:   cfg.Raft.MaxAppendEntries,
		Logger:             logger,
		TLSServer:          mat.RaftServerConfig(),
		TLSClient:          mat.RaftClientConfig(),
	}, s.store)
	if err != nil {
		_ = httpLn.Close()
		return nil, err
	}
	s.node = node
	if s.metrics != nil {
		s.metrics.SetCluster(node)
	}

	builtins := execs.Handlers()
	kinds := append(append([]string(nil), cfg.Tasks.Kinds...), execs.Kinds()...)
	maxRetries := cfg.Tasks.Retry.MaxRetries
	s.eng = engine.New(engine.Config{
		MaxPayloadBytes: int(cfg.Tasks.MaxPayloadBytes),
		MaxDependsOn:    cfg.Tasks.MaxDependsOn,
		DefaultTimeout:  cfg.Tasks.DefaultTimeout.Std(),
		KindTimeouts:    kindTimeouts(cfg),
		// An inference task names a model of its tenant's: resolved at
		// submit (404 when the tenant has none such, 403 outside
		// ai.tenant_models), its framework stamped as a constraint label.
		SubmitHooks:    map[string]engine.SubmitHook{ai.Kind: admission.New(s.ModelSource(), s.models.Allowed).Check},
		BinaryPayloads: map[string]bool{ai.Kind: true},
		MaxTimeout:     cfg.Tasks.MaxTimeout.Std(),
		LeaseTTL:       cfg.Tasks.LeaseTTL.Std(),
		Retry: task.RetryPolicy{
			MaxRetries: &maxRetries,
			BaseDelay:  task.Duration(cfg.Tasks.Retry.BaseDelay.Std()),
			MaxDelay:   task.Duration(cfg.Tasks.Retry.MaxDelay.Std()),
		},
		Retention:  cfg.Tasks.Retention.Std(),
		GCInterval: cfg.Tasks.GCInterval.Std(),
		FIFO:       !cfg.Tasks.FairShare,

		SubmitSlots: cfg.Tasks.SubmitSlotsPerTenant,
		Kinds:       kinds,
		Tenants:     tenantsConfig(cfg),
		Self: state.Node{ID: cfg.Node.ID, APIAddr: cfg.APIAdvertise(), Role: "server", Labels: cfg.Node.Labels,
			KeyID: signer.Key.KeyID(), PublicKey: signer.Key.Public(), Features: state.ServerFeatures()},
		ProofsOff: !cfg.Proofs.Enabled,
		ProofChecked: func(platform, result string) {
			if s.metrics != nil {
				s.metrics.Proof(platform, result)
			}
		},
		Replay: builtins,
		// Payloads a kind can never run are refused at submit.
		ValidatePayload: validatePayload(execs),
		Data:            data,
		Archive:         archiveConfig(cfg, s.archive),
		Metrics:         archReg,
		Sinks:           s.events.relaySinks(),
		OnLeader:        s.events.onLeader(),
		Health:          func() map[string]string { return s.events.health(s.eng.Sinks) },

		DeadServerTimeout: cfg.Raft.DeadServerTimeout.Std(),
		PeerTLS:           mat.NodeClientConfig(),
	}, node, s.store, logger)

	var authResult func(string)
	var auditCount func()
	if s.metrics != nil {
		authResult, auditCount = s.metrics.AuthRequest, s.metrics.AuditEvent
	}
	if s.audit, err = openAudit(cfg, auditCount); err != nil {
		s.closeEarly()
		return nil, err
	}
	chain, err := authChain(cfg, &o, s.eng)
	if err != nil {
		s.closeEarly()
		return nil, err
	}
	s.api = api.New(s.eng, api.Options{Refused: s.refused, NodeID: cfg.Node.ID, AdminToken: string(cfg.HTTP.AdminToken), Modules: mods, ModelRegistry: s.models, TaskData: data, MaxBodyBytes: cfg.HTTP.MaxBodyBytes, APIAddr: cfg.APIAdvertise(), PeerTLS: mat.NodeClientConfig(), Logger: logger,
		Auth: chain, Audit: s.audit, AuthResult: authResult, Public: o.public,
		Events: func() apitypes.EventsStatus { return s.events.status(s.eng.Sinks) }})
	handler, err := withConsole(s.api, o.public, logger)
	if err != nil {
		s.closeEarly()
		return nil, err
	}
	if s.metrics != nil {
		handler = s.metrics.HTTP(func(r *http.Request) string { return r.Pattern }, handler)
	}
	s.httpSrv = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       cfg.HTTP.ReadTimeout.Std(),
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		TLSConfig:         mat.APIServerConfig(),
	}

	if cfg.Monitoring.Prometheus.Enabled {
		if s.metricsLn, s.metricsSv, err = listenMetrics(cfg, reg, debugGuard(chain)); err != nil {
			s.closeEarly()
			return nil, err
		}
	}

	// worker.enabled runs in-process workers on a node of role both only:
	// a server-role node is the control plane and executes nothing.
	if cfg.Worker.Enabled && cfg.Node.Role != config.RoleServer {
		// Inference runtimes earn the in-process workers framework and
		// gpu labels and report the models they hold warm (as on a
		// worker-only node).
		labels, warm := cfg.Worker.Labels, (func() []string)(nil)
		if inf := execs.Inference(); inf != nil {
			lctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			labels = ai.MergeLabels(labels, inf.Labels(lctx))
			cancel()
			warm = inf.Warm
		}
		s.pool = worker.NewPool(newRouter(s.eng, s.peerToken(), s.peerOptions()...), worker.Options{
			WorkerID:      cfg.Node.ID + "/builtin",
			Kinds:         cfg.Worker.Kinds,
			Labels:        labels,
			Warm:          warm,
			Concurrency:   workerConcurrency(cfg),
			ShutdownGrace: cfg.Worker.ShutdownGrace.Std(),
			Signer:        signer,
			Logger:        logger.With("component", "worker"),
		})
		var slots *telemetry.WorkerSlots
		if s.metrics != nil {
			slots = s.metrics.WorkerSlots(workerConcurrency(cfg))
		}
		for k, h := range builtins {
			if slots != nil {
				h = slots.Wrap(h)
			}
			s.pool.Handle(k, h)
		}
	}
	// OpenTelemetry spans (off without monitoring.opentelemetry.endpoint);
	// flushed at the end of Run.
	if s.stopTracing, err = telemetry.SetupTracing(context.Background(), telemetry.TracingConfig(cfg.Monitoring.OpenTelemetry, "greyd", cfg.Node.ID)); err != nil {
		s.closeEarly()
		return nil, fmt.Errorf("monitoring.opentelemetry: %w", err)
	}
	return s, nil
}

func (s *Server) closeEarly() {
	s.eng.Close()
	_ = s.node.Shutdown(false)
	_ = s.httpLn.Close()
	if s.archive != nil {
		_ = s.archive.Close()
	}
}

// APIURL is the API's base URL on its bound address (https:// with TLS).
func (s *Server) APIURL() string {
	if s.tls.API != nil {
		return "https://" + s.HTTPAddr()
	}
	return "http://" + s.HTTPAddr()
}

// peerOptions are the client options of this node's calls to other nodes:
// mutual TLS with the node certificate when a cluster CA is configured.
func (s *Server) peerOptions() []client.Option {
	if c := s.tls.NodeClientConfig(); c != nil {
		return []client.Option{client.WithTLSConfig(c)}
	}
	return nil
}

// peerToken is the bearer token of this server's own calls to other
// servers (joining, its in-process workers through the leader, module
// fetches). With authentication on and a cluster CA it is none: the node
// certificate of peerOptions authenticates the call as this node
// (node:<id>, mtlsauth), so leases and audit lines name the node rather
// than the shared bootstrap admin, and the calls keep working once
// http.admin_token is removed. Otherwise it is http.admin_token (in mode
// none the cluster-admin routes stay behind it).
func (s *Server) peerToken() string {
	if s.cfg.Auth.Mode.Enabled() && s.cfg.TLS.MutualEnabled() {
		return ""
	}
	return string(s.cfg.HTTP.AdminToken)
}

// HTTPAddr is the API's bound address.
func (s *Server) HTTPAddr() string { return s.httpLn.Addr().String() }

// MetricsAddr is the metrics listener's bound address ("" if disabled).
func (s *Server) MetricsAddr() string {
	if s.metricsLn == nil {
		return ""
	}
	return s.metricsLn.Addr().String()
}

// Engine returns the task engine.
func (s *Server) Engine() *engine.Engine { return s.eng }

// Run serves until ctx ends, then shuts down gracefully: the worker pool
// stops leasing and drains (running tasks get worker.shutdown_grace), the
// API stops, a snapshot is taken and Raft closes.
func (s *Server) Run(ctx context.Context) error {
	defer telemetry.FlushTracing(s.stopTracing, s.logger)
	errc := make(chan error, 3)
	go func() {
		serve := s.httpSrv.Serve
		if s.httpSrv.TLSConfig != nil {
			// The certificate comes from TLSConfig.GetCertificate.
			serve = func(ln net.Listener) error { return s.httpSrv.ServeTLS(ln, "", "") }
		}
		if err := serve(s.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("api server: %w", err)
		}
	}()
	if s.metricsSv != nil {
		go func() {
			if err := s.metricsSv.Serve(s.metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("metrics server: %w", err)
			}
		}()
	}
	wctx, stopWorkers := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if s.pool != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.pool.Run(wctx); err != nil {
				errc <- fmt.Errorf("worker pool: %w", err)
			}
		}()
	}
	if len(s.cfg.Raft.Join) > 0 {
		if err := s.joinCluster(ctx); err != nil {
			runErr := fmt.Errorf("join: %w", err)
			s.logger.Error("could not join the cluster", "err", err)
			stopWorkers()
			wg.Wait()
			_ = s.httpSrv.Close()
			s.eng.Close()
			_ = s.node.Shutdown(false)
			return runErr
		}
	}
	s.logger.Info("greyd running", "node", s.cfg.Node.ID, "api", s.APIURL(), "metrics", s.MetricsAddr(), "data_dir", s.cfg.Node.DataDir)
	stopBackups := s.startBackups()

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	stopBackups()
	// A leader hands over first: while it drains (long polls may hold its
	// HTTP server for up to their timeout) its API no longer accepts
	// connections, so writes forwarded to it would fail until it is gone.
	if s.node.IsLeader() {
		if err := s.node.TransferLeadership(); err != nil {
			s.logger.Warn("shutting down: leadership transfer failed", "err", err)
		} else {
			s.logger.Info("shutting down: leadership transferred", "leader", s.node.LeaderID())
		}
	}
	s.logger.Info("shutting down: draining workers")
	stopWorkers()
	wg.Wait()
	grace := s.cfg.HTTP.ShutdownGrace.Std()
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := s.httpSrv.Shutdown(sctx); err != nil {
		_ = s.httpSrv.Close()
	}
	if s.metricsSv != nil {
		_ = s.metricsSv.Shutdown(sctx)
	}
	_ = s.audit.Close()
	s.eng.Close()
	if err := s.node.Shutdown(true); err != nil {
		s.logger.Warn("raft shutdown", "err", err)
	}
	if s.archive != nil {
		_ = s.archive.Close()
	}
	s.events.close()
	s.logger.Info("greyd stopped")
	return runErr
}

// lockDataDir refuses to open a data dir another greyd holds.
func lockDataDir(dir string) (*os.File, error) {
	p := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	if err := flock(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("data dir %s is in use by another greyd: %w", dir, err)
	}
	return f, nil
}

func tenantsConfig(cfg *config.Config) engine.TenantsConfig {
	t := cfg.Tenants
	q := t.DefaultQuota
	return engine.TenantsConfig{
		AutoCreate:    t.AutoCreate,
		DisableQuotas: !t.EnforceQuotas,
		DefaultQuota: tenant.Quota{
			Weight: q.Weight, MaxRunning: q.MaxRunning, MaxQueued: q.MaxQueued,
			SubmitRate: q.SubmitRate, SubmitBurst: q.SubmitBurst,
			MaxPayloadBytes: q.MaxPayloadBytes, MaxStorageBytes: q.MaxStorageBytes,
			AllowedKinds: q.AllowedKinds, MaxTaskTimeout: task.Duration(q.MaxTaskTimeout.Std()),
		},
		Prices: tenant.Prices{
			CPUSecond: t.Cost.Prices.CPUSecondUSD, GPUSecond: t.Cost.Prices.GPUSecondUSD, GBMonth: t.Cost.Prices.GBMonthUSD,
			GBMoved: t.Cost.Prices.GBMovedUSD, Task: t.Cost.Prices.TaskUSD,
		},
		Environment: t.Cost.Environment,
		CostTags:    t.Cost.Tags,
	}
}

// refused counts quota refusals in the metrics.
func (s *Server) refused(tenantID string, err error) {
	if s.metrics != nil {
		s.metrics.Refused(tenantID, err)
	}
}

// validatePayload is the engine's payload check at submit: the kind's
// executor's, except for the inference kind, whose submit hook decodes and
// checks the whole payload (it needs the decoded model reference anyway),
// so that the submit path decodes it once, not twice.
func validatePayload(execs interface {
	ValidatePayload(kind string, payload json.RawMessage) error
}) func(kind string, p json.RawMessage) error {
	return func(kind string, p json.RawMessage) error {
		if kind == ai.Kind {
			return nil
		}
		return execs.ValidatePayload(kind, p)
	}
}

package server

import (
	"context"
	"errors"
	"fmt"
	"github.com/grey-distributed/grey/ai"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/grey-distributed/grey/auth/apikey"
	"github.com/grey-distributed/grey/certs"
	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/proof"
	"github.com/grey-distributed/grey/telemetry"
	"github.com/grey-distributed/grey/worker"
)

// RunWorker runs a worker-only node (node.role: worker): a pool of the
// built-in executors leasing from node.servers over HTTP (the client fails
// over between them and any server forwards to the leader) until ctx ends,
// then drains: no new leases, running tasks get worker.shutdown_grace,
// outcomes are flushed.
//
// opts may give the model runtime drivers and the model source
// (WithRuntimeRegistry, WithModelSource) for the inference kind; the
// other options do not apply to a worker-only node.
func RunWorker(ctx context.Context, cfg *config.Config, logger *slog.Logger, opts ...Option) error {
	if err := cfg.CheckExposure(); err != nil {
		return err
	}
	var o options
	for _, f := range opts {
		f(&o)
	}
	if p := &cfg.Monitoring.Prometheus; p.Enabled && p.Pprof && !config.IsLoopback(cfg.MetricsAddr()) {
		// A worker-only node authenticates no caller: its profiles stay
		// on loopback.
		return &config.Error{Key: "monitoring.prometheus.pprof", Msg: fmt.Sprintf("a worker-only node serves pprof on loopback only; the metrics listener is %s (set pprof: false)", cfg.MetricsAddr())}
	}
	// grey.execute spans join the submitter's trace through the tasks'
	// headers (off without monitoring.opentelemetry.endpoint).
	stopTracing, err := telemetry.SetupTracing(ctx, telemetry.TracingConfig(cfg.Monitoring.OpenTelemetry, "greyd-worker", cfg.Node.ID))
	if err != nil {
		return fmt.Errorf("monitoring.opentelemetry: %w", err)
	}
	defer telemetry.FlushTracing(stopTracing, logger)
	copts, err := credentialOptions(ctx, cfg)
	if err != nil {
		return err
	}
	// The node certificate (a worker's) and the cluster CA, checked now.
	mat, err := certs.Load(cfg, func(err error) { logger.Error("TLS certificate reload failed", "err", err) })
	if err != nil {
		return err
	}
	if tc := mat.NodeClientConfig(); tc != nil {
		copts = append(copts, client.WithTLSConfig(tc))
	}
	servers := make([]string, len(cfg.Node.Servers))
	for i, a := range cfg.Node.Servers {
		servers[i] = cfg.PeerURL(a)
	}
	c, err := client.New(strings.Join(servers, ","), copts...)
	if err != nil {
		return fmt.Errorf("node.servers: %w", err)
	}
	labels := map[string]string{}
	for k, v := range cfg.Node.Labels {
		labels[k] = v
	}
	for k, v := range cfg.Worker.Labels {
		labels[k] = v
	}
	signer, err := newSigner(cfg)
	if err != nil {
		return err
	}
	// Metrics of this node's own work: worker slots, the proofs it signs,
	// its TEE quotes (plus Go and process metrics), with pprof.
	var slots *telemetry.WorkerSlots
	var aiReg prometheus.Registerer
	if cfg.Monitoring.Prometheus.Enabled {
		reg := newRegistry()
		aiReg = reg
		m, err := telemetry.NewMetrics(reg, telemetry.Options{NodeID: cfg.Node.ID, Buckets: cfg.Monitoring.Prometheus.Buckets})
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		ln, srv, err := listenMetrics(cfg, reg, func(h http.Handler) http.Handler { return h })
		if err != nil {
			return err
		}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("metrics server", "err", err)
			}
		}()
		defer srv.Close()
		slots = m.WorkerSlots(workerConcurrency(cfg))
		instrumentSigner(signer, m)
		logger.Info("metrics", "addr", ln.Addr().String(), "path", cfg.Monitoring.Prometheus.Path)
	}
	handle := func(p *worker.Pool, kind string, h worker.Handler) {
		if slots != nil {
			h = slots.Wrap(h)
		}
		p.Handle(kind, h)
	}
	// The same executors as a server's, with wasm modules fetched from the
	// servers' API.
	// Models too, as the task's tenant, unless the binary gave a source.
	modelSrc := o.models
	if modelSrc == nil {
		modelSrc = client.ModelSource(c)
	}
	execs, err := executors(ctx, cfg, clientSource(c), inferenceDeps{runtimes: o.runtimes, models: modelSrc, metrics: aiReg}, logger)
	if err != nil {
		return err
	}
	defer execs.Close(context.Background())
	// Inference runtimes earn the node framework and gpu labels (a
	// configured label wins) and report the models they hold warm, so the
	// scheduler routes inference tasks here and prefers the warm ones.
	var warm func() []string
	if inf := execs.Inference(); inf != nil {
		lctx, cancel := context.WithTimeout(ctx, time.Minute)
		labels = ai.MergeLabels(labels, inf.Labels(lctx))
		cancel()
		warm = inf.Warm
	}
	pool := worker.NewPool(c, worker.Options{
		WorkerID:      cfg.Node.ID,
		Warm:          warm,
		Kinds:         cfg.Worker.Kinds,
		Labels:        labels,
		Concurrency:   workerConcurrency(cfg),
		ShutdownGrace: cfg.Worker.ShutdownGrace.Std(),
		Signer:        signer,
		Logger:        logger.With("component", "worker"),
	})
	for k, h := range execs.Handlers() {
		handle(pool, k, h)
	}
	// Register for GET /cluster/nodes and, above all, register the proof
	// key before leasing, so every proof this node signs verifies.
	if err := register(ctx, c, &client.JoinRequest{NodeID: cfg.Node.ID, Role: "worker", Labels: labels, PublicKey: signer.Key.Public()}, logger); err != nil {
		return err
	}
	logger.Info("worker node running", "node", cfg.Node.ID, "servers", cfg.Node.Servers, "labels", labels)
	err = pool.Run(ctx)
	logger.Info("worker node stopped")
	return err
}

// register joins the cluster as a worker, retrying with backoff until it
// succeeds or ctx ends. A refusal that retrying cannot fix (another node
// has this id or key, a bad request) is returned.
func register(ctx context.Context, c *client.Client, req *client.JoinRequest, logger *slog.Logger) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = 200*time.Millisecond, 10*time.Second
	for {
		jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := c.Join(jctx, req)
		cancel()
		if err == nil {
			logger.Info("registered with the cluster", "node", req.NodeID, "key_id", proof.KeyIDOf(req.PublicKey))
			return nil
		}
		if certs.IsRefusal(err) {
			return fmt.Errorf("register worker node %s: TLS refused (is the node certificate from the cluster CA in tls.ca_file?): %w", req.NodeID, err)
		}
		switch greyerr.CodeOf(err) {
		case greyerr.AlreadyExists:
			return fmt.Errorf("register worker node %s: %w (each node needs its own node.data_dir or proofs.key_file)", req.NodeID, err)
		case greyerr.InvalidArgument, greyerr.PermissionDenied, greyerr.Unauthenticated:
			return fmt.Errorf("register worker node %s: %w", req.NodeID, err)
		}
		d := b.NextBackOff()
		logger.Warn("could not register with the cluster; retrying", "err", err, "retry_in", d)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d):
		}
	}
}

// credentialOptions returns the client options of a worker-role node's
// credential (node.credentials); without one, the admin token if set.
func credentialOptions(ctx context.Context, cfg *config.Config) ([]client.Option, error) {
	cr := cfg.Node.Credentials
	switch {
	case cr.TokenFile != "":
		return []client.Option{client.WithTokenSource(client.FileTokenSource(cr.TokenFile))}, nil
	case cr.APIKey != "":
		if _, err := apikey.Parse(string(cr.APIKey)); err != nil {
			return nil, fmt.Errorf("node.credentials.api_key: %w", err)
		}
		return []client.Option{client.WithAPIKey(string(cr.APIKey))}, nil
	case cr.APIKeyFile != "":
		b, err := os.ReadFile(cr.APIKeyFile)
		if err != nil {
			return nil, fmt.Errorf("node.credentials.api_key_file: %w", err)
		}
		key := strings.TrimSpace(string(b))
		if _, err := apikey.Parse(key); err != nil {
			return nil, fmt.Errorf("node.credentials.api_key_file %s: %w", cr.APIKeyFile, err)
		}
		return []client.Option{client.WithAPIKey(key)}, nil
	case cr.OAuth2.Set():
		cc := &clientcredentials.Config{
			ClientID:     cr.OAuth2.ClientID,
			ClientSecret: string(cr.OAuth2.ClientSecret),
			TokenURL:     cr.OAuth2.TokenURL,
			Scopes:       cr.OAuth2.Scopes,
		}
		// The token source outlives this call: it refreshes for the
		// node's whole life, so it gets a context that is never cancelled.
		return []client.Option{client.WithClientCredentials(context.WithoutCancel(ctx), cc)}, nil
	case cfg.HTTP.AdminToken != "":
		return []client.Option{client.WithToken(string(cfg.HTTP.AdminToken))}, nil
	}
	return nil, nil
}

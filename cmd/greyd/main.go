// Command greyd runs a Grey node. With no configuration it is the embedded
// default: one Raft voter, data in ./grey-data, the API on 127.0.0.1:8080,
// metrics on 127.0.0.1:9090/metrics, built-in workers, no authentication.
//
// `greyd certs init|issue` makes a development CA and node certificates for
// TLS and mutual TLS between nodes (docs/AUTH.md). `greyd archive
// migrate|status` manages the PostgreSQL archive's schema (docs/ARCHIVE.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/internal/gctune"
	"github.com/grey-distributed/grey/server"
	"github.com/grey-distributed/grey/telemetry"
)

func main() {
	// The state lives in memory and ranges from megabytes to a gigabyte:
	// the collector's target follows the live heap (package gctune), and
	// GOGC or GOMEMLIMIT in the environment override it.
	gctune.Start(context.Background(), gctune.DefaultPolicy, time.Second)
	// Task ids are UUIDv7: their random bits come from crypto/rand in
	// batches of 16 ids instead of one read (and one allocation) per id.
	// An id names a task and grants nothing (every read checks the
	// tenant), so the pool's bytes on the heap give nothing away.
	uuid.EnableRandPool()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "certs" {
		return runCerts(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "archive" {
		return runArchive(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("greyd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfgPath     = fs.String("config", "", "path of grey.yaml (none: embedded defaults)")
		integPath   = fs.String("integrations", "", "path of grey-integrations.yaml (the seed's database, monitoring and cloud blocks), loaded after --config")
		dataDir     = fs.String("data-dir", "", "data directory (default ./grey-data)")
		httpAddr    = fs.String("http-addr", "", "API listen address (default 127.0.0.1:8080)")
		metricsAddr = fs.String("metrics-addr", "", "Prometheus listen address host:port (default 127.0.0.1:9090)")
		raftAddr    = fs.String("raft-addr", "", "Raft listen address (default 127.0.0.1:7000)")
		nodeID      = fs.String("node-id", "", "node id (default node-1)")
		logFormat   = fs.String("log-format", "", "log format: text or json")
		logLevel    = fs.String("log-level", "", "log level: debug, info, warn, error")
		printConfig = fs.Bool("print-config", false, "print the effective configuration (secrets masked) and exit")
		bootstrap   = fs.Bool("bootstrap", false, "form a new cluster with this server as its first voter")
		join        = fs.String("join", "", "comma-separated API URLs of servers of the cluster to join")
		role        = fs.String("role", "", "server, worker or both (default both: a server with built-in workers)")
		servers     = fs.String("servers", "", "worker role: comma-separated API URLs of the servers")
		labels      = fs.String("labels", "", "node labels k=v,k=v offered to task constraints")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "greyd: unexpected arguments %q\n", fs.Args())
		return 2
	}
	cfg, err := config.LoadFiles([]string{*cfgPath, *integPath}, os.LookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "greyd: %v\n", err)
		return 2
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&cfg.Node.DataDir, *dataDir)
	set(&cfg.HTTP.Addr, *httpAddr)
	set(&cfg.Raft.Addr, *raftAddr)
	set(&cfg.Node.ID, *nodeID)
	set(&cfg.Log.Format, *logFormat)
	set(&cfg.Log.Level, *logLevel)
	set(&cfg.Node.Role, *role)
	if *bootstrap {
		cfg.Raft.Bootstrap = true
	}
	if *join != "" {
		cfg.Raft.Join = splitList(*join)
		cfg.Raft.Bootstrap = false
	}
	if *servers != "" {
		cfg.Node.Servers = splitList(*servers)
	}
	if *labels != "" {
		if cfg.Node.Labels == nil {
			cfg.Node.Labels = map[string]string{}
		}
		for _, kv := range splitList(*labels) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				fmt.Fprintf(stderr, "greyd: --labels: %q is not k=v\n", kv)
				return 2
			}
			cfg.Node.Labels[k] = v
		}
	}
	if *metricsAddr != "" {
		if err := cfg.SetMetricsAddr(*metricsAddr); err != nil {
			fmt.Fprintf(stderr, "greyd: --metrics-addr: %v\n", err)
			return 2
		}
	}
	if !*printConfig {
		// Before validation: without authentication, a non-loopback
		// listener is refused first, naming auth.mode.
		if err := cfg.CheckExposure(); err != nil {
			fmt.Fprintf(stderr, "greyd: %v\n", err)
			return 2
		}
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "greyd: %v\n", err)
		return 2
	}
	if *printConfig {
		if err := cfg.WriteEffective(stdout); err != nil {
			fmt.Fprintf(stderr, "greyd: %v\n", err)
			return 1
		}
		return 0
	}
	logger := newLogger(cfg, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if cfg.Node.Role == config.RoleWorker {
		runtimes, err := runtimeDrivers()
		if err != nil {
			fmt.Fprintf(stderr, "greyd: %v\n", err)
			return 1
		}
		if err := server.RunWorker(ctx, cfg, logger, server.WithRuntimeRegistry(runtimes)); err != nil {
			var ce *config.Error
			if errors.As(err, &ce) {
				fmt.Fprintf(stderr, "greyd: %v\n", err)
				return 2
			}
			logger.Error("worker failed", "err", err)
			return 1
		}
		return 0
	}
	srv, err := newServer(ctx, cfg, logger)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			// A refused configuration (auth.mode none beyond loopback, an
			// identity driver that cannot start): said plainly, like the
			// other configuration errors.
			fmt.Fprintf(stderr, "greyd: %v\n", err)
			return 2
		}
		logger.Error("start-up failed", "err", err)
		return 1
	}
	if err := srv.Run(ctx); err != nil {
		logger.Error("greyd failed", "err", err)
		return 1
	}
	return 0
}

// newServer links the drivers greyd is built with into a server: the blob
// and archive drivers, the event-stream drivers, and the identity drivers
// of the enabled auth modes.
func newServer(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*server.Server, error) {
	blobs, err := blobDrivers()
	if err != nil {
		return nil, err
	}
	archives, err := archiveDrivers()
	if err != nil {
		return nil, err
	}
	evs, err := eventDrivers()
	if err != nil {
		return nil, err
	}
	runtimes, err := runtimeDrivers()
	if err != nil {
		return nil, err
	}
	opts, err := identityOptions(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return server.New(cfg, logger, append(opts, server.WithBlobRegistry(blobs), server.WithArchiveRegistry(archives), server.WithEventsRegistry(evs),
		server.WithRuntimeRegistry(runtimes))...)
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	// Records logged with a context get its trace_id and span_id (and a
	// task's tenant_id and task_id).
	if cfg.Log.Format == config.LogJSON {
		return slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(w, opts)))
	}
	return slog.New(telemetry.NewLogHandler(slog.NewTextHandler(w, opts)))
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

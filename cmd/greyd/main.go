// Command greyd runs a Grey node. With no configuration it is the embedded
// default: one Raft voter, data in ./grey-data, the API on 127.0.0.1:8080,
// metrics on 127.0.0.1:9090/metrics, built-in workers, no authentication.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/server"
	"github.com/grey-distributed/grey/telemetry"
)

func main() {
	// The state lives in memory: with the default GOGC=100 the heap may
	// grow to twice the live state before a collection (1M pending tasks:
	// ~0.8 GiB live, ~1.5 GiB RSS). 50 keeps RSS near 1.5x live for a
	// little more GC work. GOGC in the environment overrides it.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
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
	if !isLoopback(cfg.HTTP.Addr) {
		logger.Warn("the API has no authentication in this mode and listens beyond loopback", "addr", cfg.HTTP.Addr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if cfg.Node.Role == config.RoleWorker {
		if err := server.RunWorker(ctx, cfg, logger); err != nil {
			logger.Error("worker failed", "err", err)
			return 1
		}
		return 0
	}
	blobs, err := blobDrivers()
	if err != nil {
		logger.Error("start-up failed", "err", err)
		return 1
	}
	srv, err := server.New(cfg, logger, server.WithBlobRegistry(blobs))
	if err != nil {
		logger.Error("start-up failed", "err", err)
		return 1
	}
	if err := srv.Run(ctx); err != nil {
		logger.Error("greyd failed", "err", err)
		return 1
	}
	return 0
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

package server

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/proof"
	"github.com/grey-distributed/grey/telemetry"
)

// newRegistry is a Prometheus registry with the Go runtime and process
// collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// listenMetrics opens the metrics listener of cfg and returns it with the
// server that serves reg at monitoring.prometheus.path and pprof profiles
// under /debug/pprof/ (loopback by default; with monitoring.prometheus.pprof
// off, none), each behind guard.
func listenMetrics(cfg *config.Config, reg *prometheus.Registry, guard func(http.Handler) http.Handler) (net.Listener, *http.Server, error) {
	ln, err := net.Listen("tcp", cfg.MetricsAddr())
	if err != nil {
		return nil, nil, fmt.Errorf("monitoring.prometheus %s (set --metrics-addr or monitoring.prometheus.port): %w", cfg.MetricsAddr(), err)
	}
	mux := http.NewServeMux()
	if cfg.Monitoring.Prometheus.Pprof {
		mux.Handle("/debug/pprof/", guard(http.HandlerFunc(pprof.Index)))
		mux.Handle("/debug/pprof/profile", guard(http.HandlerFunc(pprof.Profile)))
		mux.Handle("/debug/pprof/trace", guard(http.HandlerFunc(pprof.Trace)))
	}
	mux.Handle(cfg.Monitoring.Prometheus.Path, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return ln, &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, nil
}

// instrumentSigner counts the proofs s signs (generated per task, error per
// failed statement) and its TEE quotes in m.
func instrumentSigner(s *proof.Signer, m *telemetry.Metrics) {
	s.OnSign = func(platform string, tasks int, err error) {
		if err != nil {
			m.Proof(platform, telemetry.ProofError)
			return
		}
		for range tasks {
			m.Proof(platform, telemetry.ProofGenerated)
		}
	}
	s.OnQuote = func(platform string, err error, d time.Duration) { m.Attestation(platform, err == nil, d) }
}

package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/grey-distributed/grey/api"
	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/events/memevents"
	"github.com/grey-distributed/grey/executor"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/relay"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/tenant"
	"github.com/grey-distributed/grey/worker"
)

// Queries that may return no series while the cluster is healthy: alert
// conditions that do not hold under the test's load. They must still
// evaluate without error.
var mayBeEmpty = map[string]string{
	"GreyScrapeDown":            "the node is up",
	"GreyNoLeader":              "the node leads",
	"GreyFrequentLeaderChanges": "no elections after the first",
	"GreyGrowingBacklog":        "the backlog stays under 1000",
	"GreyArchiveLagging":        "no archive is configured",
	"GreyEventConsumerLagging":  "the event source keeps up",
}

// TestPrometheusQueries runs a real Prometheus against an in-process greyd
// (single-node engine, worker pool, REST API behind the HTTP middleware,
// metrics on a registry with the Go and process collectors) under load
// from two tenants, with the alert rules loaded, and runs every dashboard
// query and every rule expression through Prometheus' query API: each must
// succeed, and all but the listed alert conditions must return data.
//
// Proofs and TEE attestations have no producer yet; the test calls
// Metrics.Proof and Metrics.Attestation as their producers will.
//
// It needs the prometheus binary (Debian package prometheus): skipped
// without it, except in CI (CI=true), where that fails.
func TestPrometheusQueries(t *testing.T) {
	bin := tool(t, "prometheus")
	rules, err := filepath.Abs("alerts/grey-rules.yml")
	if err != nil {
		t.Fatal(err)
	}

	// The greyd equivalent, with event streams on the in-memory broker as
	// greyd runs them for events.kafka (source and sink) and
	// events.rabbitmq (sink).
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	broker := memevents.New()
	evm, err := events.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	var n *greytest.Node
	src, _ := broker.OpenSource()
	consumer, err := events.NewConsumer(src, events.ConsumerOptions{Name: "kafka", Metrics: evm, LagInterval: 200 * time.Millisecond,
		Submit: func(ctx context.Context, tenantID string, spec task.Spec) (*task.Task, error) {
			res, err := n.Engine.Submit(ctx, tenantID, []task.Spec{spec}, false)
			if err != nil {
				return nil, err
			}
			return res.Tasks[0], nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	var sinks []relay.Sink
	for _, name := range []string{"kafka", "rabbitmq"} {
		d, _ := broker.OpenSink()
		p, err := events.NewPublisher(d, events.PublisherOptions{Name: name, Metrics: evm})
		if err != nil {
			t.Fatal(err)
		}
		sinks = append(sinks, p)
	}
	n = greytest.NewNode(t, engine.Config{
		Retry:    task.RetryPolicy{BaseDelay: task.Duration(5 * time.Millisecond), MaxDelay: task.Duration(20 * time.Millisecond)},
		Sinks:    sinks,
		OnLeader: []func(context.Context){func(ctx context.Context) { _ = consumer.Run(ctx) }},
		Metrics:  reg,
	})
	m, err := NewMetrics(reg, Options{
		IncludeTenantLabels: true, NodeID: "test-1", Store: n.Store, Cluster: n.Raft,
		Prices:       tenant.Prices{CPUSecond: 0.001, Task: 0.0001, GBMonth: 0.02, GBMoved: 0.09},
		ScanInterval: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	n.Store.Observe(m.Observe)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	metricsSrv := httptest.NewServer(mux)
	t.Cleanup(metricsSrv.Close)
	apiSrv := httptest.NewServer(m.HTTP(func(r *http.Request) string { return r.Pattern }, api.New(n.Engine, api.Options{Logger: greytest.Logger(t)})))
	t.Cleanup(apiSrv.Close)

	const slots = 4
	ws := m.WorkerSlots(slots)
	counted := map[string]worker.Handler{}
	for kind, h := range executor.Builtins() {
		counted[kind] = ws.Wrap(h)
	}
	n.StartWorkers(t, worker.Options{WorkerID: "test-1/builtin", Concurrency: slots, LeaseWait: time.Second, HeartbeatInterval: 100 * time.Millisecond}, counted)

	ctx := t.Context()
	for _, tn := range []*tenant.Tenant{
		{ID: "acme", Quota: tenant.Quota{Weight: 2, MaxQueued: 10000, MaxRunning: 3, MaxStorageBytes: 10 << 20}},
		{ID: "beta", Quota: tenant.Quota{MaxQueued: 10000}},
		{ID: "gamma", Quota: tenant.Quota{MaxQueued: 2}}, // kept full: quota exhausted, throttled
	} {
		if _, err := n.Engine.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
	}

	prom := startPrometheus(t, bin, metricsSrv.Listener.Addr().String(), rules)
	// Prometheus applies new targets only every 5 s: load from before the
	// first scrape would only show as the series' first values, not rates.
	waitFor(t, 30*time.Second, "the first scrape", func() bool {
		ok, _ := prom.nonEmpty(`up{job="grey"} == 1`)
		return ok
	})

	// Load: 30 rounds (at least six seconds) of submits across the tenants,
	// enough for the alert thresholds over 5m windows: beta finishes 90
	// tasks, a third failed (GreyHighTaskFailureRate: > 0.1/s, > 10%);
	// gamma is refused 750 times (GreyTenantThrottled: > 1/s).
	later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	post(t, apiSrv.URL, "gamma", "/api/v1/tasks/batch", fmt.Sprintf(`{"tasks":[{"kind":"noop","run_at":%q},{"kind":"noop","run_at":%q}]}`, later, later), m)
	for round := 0; round < 30; round++ {
		post(t, apiSrv.URL, "acme", "/api/v1/tasks/batch",
			`{"tasks":[{"kind":"echo","payload":{"n":1}},{"kind":"echo","payload":"hello","priority":9},{"kind":"sleep","payload":{"ms":20}},`+
				`{"kind":"fail","payload":{"retryable":true},"retry":{"max_retries":1}},{"kind":"noop","priority":1}]}`, m)
		post(t, apiSrv.URL, "beta", "/api/v1/tasks/batch", `{"tasks":[{"kind":"fail","payload":{"message":"bad input"}},{"kind":"noop","priority":7},{"kind":"noop"}]}`, m)
		if id := post(t, apiSrv.URL, "beta", "/api/v1/tasks", fmt.Sprintf(`{"kind":"noop","run_at":%q}`, later), m); id != "" && round%2 == 0 {
			req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, apiSrv.URL+"/api/v1/tasks/"+id, nil)
			req.Header.Set(api.TenantHeader, "beta")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
		for i := 0; i < 25; i++ { // refused: max_queued
			post(t, apiSrv.URL, "gamma", "/api/v1/tasks", `{"kind":"noop"}`, m)
		}
		m.Proof("risc0", ProofGenerated)
		m.Proof("risc0", ProofVerified)
		if round%4 == 0 {
			m.Proof("sp1", ProofRejected)
		}
		m.Attestation("sgx", round%10 != 0, time.Duration(10+round%7)*time.Millisecond)
		m.Attestation("tdx", true, 25*time.Millisecond)
		_, _ = broker.Produce("acme", memevents.Message{Value: []byte(`{"kind":"echo","payload":"from kafka"}`)})
		if round%10 == 0 {
			_, _ = broker.Produce("acme", memevents.Message{Value: []byte(`{"kind":`)})
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Wait until Prometheus has scraped the load and evaluated the rules.
	waitFor(t, 30*time.Second, "scrapes and rule evaluations", func() bool {
		ok, _ := prom.nonEmpty(`count_over_time(grey_tasks_completed_total{job="grey"}[1m]) >= 5`)
		rec, _ := prom.nonEmpty(`grey:task_failure_ratio:rate5m`)
		return ok && rec
	})

	exprs := dashboardExprs(t)
	for _, e := range exprs {
		got, err := prom.query(e.Expr)
		switch {
		case err != nil:
			t.Errorf("%s: %s: %v", e.Where, e.Expr, err)
		case got == 0:
			t.Errorf("%s: %s: no data", e.Where, e.Expr)
		}
	}
	// Dashboard variables' series exist too.
	for _, q := range []string{`grey_workers{job="grey"}`, `grey_tasks_submitted_total{job="grey"}`} {
		if n, err := prom.query(q); err != nil || n == 0 {
			t.Errorf("variable source %s: %d series, %v", q, n, err)
		}
	}

	// Every rule loaded, evaluates, and (but for the listed alerts) has data.
	groups := prom.rules(t)
	seen := 0
	for _, g := range groups {
		for _, r := range g.Rules {
			seen++
			name := r.Name
			if r.Health != "ok" {
				t.Errorf("rule %s: health %q: %s", name, r.Health, r.LastError)
			}
			got, err := prom.query(r.Query)
			switch {
			case err != nil:
				t.Errorf("rule %s: %s: %v", name, r.Query, err)
			case got == 0 && mayBeEmpty[name] == "":
				t.Errorf("rule %s: %s: no data", name, r.Query)
			case got > 0 && mayBeEmpty[name] != "":
				t.Errorf("alert %s fires (%d series) though %s", name, got, mayBeEmpty[name])
			}
		}
	}
	if seen < 20 {
		t.Errorf("Prometheus loaded %d rules", seen)
	}
	t.Logf("ran %d dashboard queries and %d rule expressions", len(exprs), seen)
}

// post sends a submit and returns the task id (the first of a batch). A
// quota refusal is counted with Metrics.Throttled as the API's error path
// will once it is wired.
func post(t *testing.T, base, tenantID, path, body string, m *Metrics) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(api.TenantHeader, tenantID)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		var e struct{ Code, Reason string }
		_ = json.Unmarshal(data, &e)
		switch resp.StatusCode {
		case http.StatusTooManyRequests, http.StatusForbidden, http.StatusRequestEntityTooLarge:
			m.Throttled(tenantID, e.Reason)
			return ""
		}
		t.Fatalf("POST %s for %s: %d %s", path, tenantID, resp.StatusCode, data)
	}
	var one struct {
		ID    string `json:"id"`
		Tasks []struct {
			ID string `json:"id"`
		} `json:"tasks"`
	}
	_ = json.Unmarshal(data, &one)
	if one.ID == "" && len(one.Tasks) > 0 {
		return one.Tasks[0].ID
	}
	return one.ID
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// promServer is a Prometheus process of this test.
type promServer struct {
	url string
	out *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startPrometheus runs bin scraping target every second with the rule file
// loaded, on a free loopback port, until the test ends.
func startPrometheus(t *testing.T, bin, target, rules string) *promServer {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: grey
    metrics_path: /metrics
    static_configs:
      - targets: [%q]
`, rules, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var lastErr string
	for try := 0; try < 3; try++ {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		out := &syncBuffer{}
		data := filepath.Join(dir, fmt.Sprintf("data-%d", try))
		cmd := exec.Command(bin,
			"--config.file="+filepath.Join(dir, "prometheus.yml"),
			"--storage.tsdb.path="+data,
			"--storage.tsdb.retention.time=1h",
			"--web.listen-address="+addr,
			"--log.level=warn",
		)
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		}
		p := &promServer{url: "http://" + addr, out: out}
		ready := false
		for end := time.Now().Add(20 * time.Second); time.Now().Before(end); {
			select {
			case <-exited:
				end = time.Time{}
				continue
			default:
			}
			if resp, err := http.Get(p.url + "/-/ready"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ready = true
					break
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		if ready {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("prometheus output:\n%s", out.String())
				}
			})
			return p
		}
		stop()
		lastErr = out.String()
	}
	t.Fatalf("prometheus did not become ready:\n%s", lastErr)
	return nil
}

// query runs an instant query and returns how many series or samples it
// returned.
func (p *promServer) query(q string) (int, error) {
	resp, err := http.PostForm(p.url+"/api/v1/query", url.Values{"query": {q}})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string            `json:"resultType"`
			Result     json.RawMessage   `json:"result"`
			Warnings   []json.RawMessage `json:"warnings"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, fmt.Errorf("HTTP %d: %v", resp.StatusCode, err)
	}
	if body.Status != "success" {
		return 0, fmt.Errorf("%s: %s: %s", body.Status, body.ErrorType, body.Error)
	}
	switch body.Data.ResultType {
	case "vector", "matrix":
		var rs []json.RawMessage
		if err := json.Unmarshal(body.Data.Result, &rs); err != nil {
			return 0, err
		}
		return len(rs), nil
	}
	return 1, nil // scalar, string
}

func (p *promServer) nonEmpty(q string) (bool, error) {
	n, err := p.query(q)
	return n > 0, err
}

type ruleGroup struct {
	Name  string `json:"name"`
	Rules []struct {
		Name      string `json:"name"`
		Query     string `json:"query"`
		Health    string `json:"health"`
		LastError string `json:"lastError"`
		Type      string `json:"type"`
	} `json:"rules"`
}

func (p *promServer) rules(t *testing.T) []ruleGroup {
	t.Helper()
	resp, err := http.Get(p.url + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Data   struct {
			Groups []ruleGroup `json:"groups"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Status != "success" {
		t.Fatalf("rules API: %v %s", err, body.Status)
	}
	return body.Data.Groups
}

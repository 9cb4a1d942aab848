package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/grey-distributed/grey/cluster"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/tenant"
	"github.com/grey-distributed/grey/worker"
)

// fakeCluster is a ClusterSource with a fixed view.
type fakeCluster struct {
	info   cluster.Info
	leader bool
}

func (f *fakeCluster) Info() cluster.Info { return f.info }
func (f *fakeCluster) IsLeader() bool     { return f.leader }

// storeDriver writes to a state.Store the way the FSM does, one index per
// write.
type storeDriver struct {
	t     *testing.T
	s     *state.Store
	index uint64
	now   time.Time
	n     int
}

func newDriver(t *testing.T) *storeDriver {
	return &storeDriver{t: t, s: state.New(), now: time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)}
}

func (d *storeDriver) next() uint64 {
	d.index++
	d.now = d.now.Add(time.Second)
	return d.index
}

func (d *storeDriver) putTenant(id string, q tenant.Quota) {
	d.t.Helper()
	q.Normalize()
	if _, err := d.s.PutTenant(d.next(), &state.TenantPutRequest{Now: d.now, Create: true, Tenant: &tenant.Tenant{ID: id, Quota: q}}); err != nil {
		d.t.Fatal(err)
	}
}

func (d *storeDriver) submit(tenantID, kind string, prio int, deps ...string) string {
	d.t.Helper()
	d.n++
	id := fmt.Sprintf("00000000-0000-7000-8000-%012d", d.n)
	p := prio
	index := d.next()
	tk := &task.Task{ID: id, TenantID: tenantID, Spec: task.Spec{Kind: kind, Priority: &p, Payload: []byte(`{"x":1}`), DependsOn: deps},
		Status: task.Pending, CreatedAt: d.now, UpdatedAt: d.now}
	auto := &tenant.Tenant{ID: tenantID, Quota: tenant.Quota{Weight: 1}}
	if _, err := d.s.Submit(index, &state.SubmitRequest{Now: d.now, Tasks: []*task.Task{tk}, AutoCreate: auto, Enforce: true}); err != nil {
		d.t.Fatal(err)
	}
	return id
}

func (d *storeDriver) lease(id string, attempt int) {
	d.t.Helper()
	r := d.s.Lease(d.next(), &state.LeaseRequest{Now: d.now, WorkerID: "w", Deadline: d.now.Add(time.Minute), Items: []state.Ref{{TaskID: id, Attempt: attempt}}})
	if len(r.Leased) != 1 {
		d.t.Fatalf("lease %s refused", id)
	}
}

func (d *storeDriver) start(id string, attempt int) {
	d.t.Helper()
	d.s.Start(d.next(), &state.StartRequest{Now: d.now, WorkerID: "w", Items: []state.StartItem{{Ref: state.Ref{TaskID: id, Attempt: attempt}, At: d.now}}})
}

func (d *storeDriver) heartbeat(id string, attempt int) {
	d.s.Heartbeat(d.next(), &state.HeartbeatRequest{Now: d.now, WorkerID: "w", Deadline: d.now.Add(time.Hour), Items: []state.Ref{{TaskID: id, Attempt: attempt}}})
}

func (d *storeDriver) complete(id string, attempt int) {
	d.s.Complete(d.next(), &state.CompleteRequest{Now: d.now, WorkerID: "w", Items: []state.CompleteItem{{Ref: state.Ref{TaskID: id, Attempt: attempt}, At: d.now, Result: []byte(`"ok"`)}}})
}

func (d *storeDriver) fail(id string, attempt int, code string, retry bool) {
	it := state.FailItem{Ref: state.Ref{TaskID: id, Attempt: attempt}, Error: task.Error{Code: code, Message: "boom"}, At: d.now}
	if retry {
		ra := d.now
		it.RetryAt = &ra
	}
	d.s.Fail(d.next(), &state.FailRequest{Now: d.now, WorkerID: "w", Items: []state.FailItem{it}})
}

// value returns the value of the series of family name with exactly the
// given labels (counter, gauge, or a histogram's sample count), and
// whether it exists.
func value(t *testing.T, g prometheus.Gatherer, name string, labels ...string) (float64, bool) {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(want) {
				continue
			}
			for _, l := range m.GetLabel() {
				if v, ok := want[l.GetName()]; !ok || v != l.GetValue() {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func wantValue(t *testing.T, g prometheus.Gatherer, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := value(t, g, name, labels...)
	if !ok {
		t.Errorf("%s%v: no such series\n%s", name, labels, dump(t, g, name))
		return
	}
	if got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func dump(t *testing.T, g prometheus.Gatherer, name string) string {
	fams, _ := g.Gather()
	var b strings.Builder
	for _, f := range fams {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				fmt.Fprintf(&b, "  %v\n", labelsOf(m))
			}
		}
	}
	return b.String()
}

func labelsOf(m *dto.Metric) []string {
	var out []string
	for _, l := range m.GetLabel() {
		out = append(out, l.GetName()+"="+l.GetValue())
	}
	sort.Strings(out)
	return out
}

func newTestMetrics(t *testing.T, opts Options) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

func TestObserveCountsTransitions(t *testing.T) {
	d := newDriver(t)
	d.putTenant("acme", tenant.Quota{})
	d.putTenant("beta", tenant.Quota{})
	m, reg := newTestMetrics(t, Options{IncludeTenantLabels: true, Store: d.s, ScanInterval: -1})
	d.s.Observe(m.Observe)

	// ok: submitted, leased, started, heartbeat, completed.
	ok := d.submit("acme", "echo", 5)
	d.lease(ok, 1)
	d.start(ok, 1)
	d.heartbeat(ok, 1)
	d.complete(ok, 1)
	// flaky: fails once (retry), then completes without a start report.
	flaky := d.submit("acme", "echo", 5)
	d.lease(flaky, 1)
	d.start(flaky, 1)
	d.fail(flaky, 1, "executor", true)
	d.lease(flaky, 2)
	d.complete(flaky, 2)
	// bad: fails for good with a code outside the set; its child fails by
	// dependency.
	bad := d.submit("beta", "fail", 9)
	child := d.submit("beta", "noop", 1, bad)
	d.lease(bad, 1)
	d.start(bad, 1)
	d.fail(bad, 1, "weird_code", false)
	// cancelled while pending; one left pending, one leased and never started.
	c := d.submit("beta", "noop", 0)
	if _, err := d.s.Cancel(d.next(), &state.CancelRequest{Now: d.now, TenantID: "beta", TaskID: c}); err != nil {
		t.Fatal(err)
	}
	d.submit("beta", "noop", 7)
	held := d.submit("beta", "noop", 7)
	d.lease(held, 1)

	wantValue(t, reg, 2, "grey_tasks_submitted_total", "tenant", "acme", "kind", "echo")
	wantValue(t, reg, 2, "grey_tasks_completed_total", "tenant", "acme", "kind", "echo")
	wantValue(t, reg, 1, "grey_task_retries_total", "tenant", "acme", "kind", "echo")
	wantValue(t, reg, 2, "grey_task_duration_seconds", "tenant", "acme", "kind", "echo")
	wantValue(t, reg, 2, "grey_task_queue_wait_seconds", "tenant", "acme", "kind", "echo")
	wantValue(t, reg, 1, "grey_tasks_failed_total", "tenant", "beta", "kind", "fail", "reason", "other")
	wantValue(t, reg, 1, "grey_tasks_failed_total", "tenant", "beta", "kind", "noop", "reason", "dependency_failed")
	wantValue(t, reg, 1, "grey_task_duration_seconds", "tenant", "beta", "kind", "fail")
	wantValue(t, reg, 0, "grey_task_duration_seconds", "tenant", "beta", "kind", "noop")
	wantValue(t, reg, 1, "grey_tasks_cancelled_total", "tenant", "beta", "kind", "noop")
	wantValue(t, reg, 4, "grey_tasks_submitted_total", "tenant", "beta", "kind", "noop")
	_ = child

	// A child of an already failed parent fails in its own submit.
	late := d.submit("beta", "echo", 5, bad)
	wantValue(t, reg, 1, "grey_tasks_submitted_total", "tenant", "beta", "kind", "echo")
	wantValue(t, reg, 1, "grey_tasks_failed_total", "tenant", "beta", "kind", "echo", "reason", "dependency_failed")
	if tk := d.s.Lookup(late); tk == nil || tk.Status != task.Failed {
		t.Fatalf("late child = %+v, want failed", tk)
	}

	// Queue wait: created at submit, first start one write after the lease.
	if s := m.series[seriesKey{"acme", "echo"}]; s == nil {
		t.Fatal("no series cache")
	}
	if len(m.unstarted) != 1 {
		t.Errorf("unstarted = %v, want only the held task", m.unstarted)
	}
	if _, ok := m.unstarted[held]; !ok {
		t.Errorf("held task not remembered")
	}

	// Scrape-time gauges.
	wantValue(t, reg, 1, "grey_queue_depth", "tenant", "beta", "priority", "7")
	wantValue(t, reg, 0, "grey_queue_depth", "tenant", "acme", "priority", "7")
	wantValue(t, reg, 1, "grey_tasks", "tenant", "beta", "status", "leased")
	wantValue(t, reg, 2, "grey_tasks", "tenant", "acme", "status", "completed")
	wantValue(t, reg, 3, "grey_tasks", "tenant", "beta", "status", "failed")

	// GC forgets what it removes.
	d.fail(held, 1, "lease_expired", false)
	wantValue(t, reg, 1, "grey_tasks_failed_total", "tenant", "beta", "kind", "noop", "reason", "lease_expired")
	if len(m.unstarted) != 0 {
		t.Errorf("unstarted = %v after the task failed", m.unstarted)
	}
}

func TestQueueWaitAndDurationValues(t *testing.T) {
	d := newDriver(t)
	m, reg := newTestMetrics(t, Options{IncludeTenantLabels: true, Buckets: []float64{1.5, 2.5, 10}})
	d.s.Observe(m.Observe)
	id := d.submit("acme", "echo", 5) // created at T
	d.lease(id, 1)                    // T+1
	d.start(id, 1)                    // T+2 → wait 2s
	d.heartbeat(id, 1)
	d.complete(id, 1) // T+4 → run 2s
	fams, _ := reg.Gather()
	sums := map[string]float64{}
	for _, f := range fams {
		for _, mm := range f.GetMetric() {
			if h := mm.GetHistogram(); h != nil {
				sums[f.GetName()] = h.GetSampleSum()
			}
		}
	}
	if sums["grey_task_queue_wait_seconds"] != 2 || sums["grey_task_duration_seconds"] != 2 {
		t.Errorf("sums = %v, want wait 2s and duration 2s", sums)
	}
}

func TestFollowerRecordsNothing(t *testing.T) {
	d := newDriver(t)
	fc := &fakeCluster{info: cluster.Info{NodeID: "n2", LeaderID: "n1", State: "follower"}}
	m, reg := newTestMetrics(t, Options{IncludeTenantLabels: true, Store: d.s, Cluster: fc})
	d.s.Observe(m.Observe)
	d.submit("acme", "echo", 5)
	if _, ok := value(t, reg, "grey_tasks_submitted_total", "tenant", "acme", "kind", "echo"); ok {
		t.Error("a follower counted a submit")
	}
	if _, ok := value(t, reg, "grey_queue_depth", "tenant", "acme", "priority", "5"); ok {
		t.Error("a follower exported store gauges")
	}
	wantValue(t, reg, 0, "grey_consensus_leader", "node_id", "n2")
	fc.leader = true
	d.submit("acme", "echo", 5)
	wantValue(t, reg, 1, "grey_tasks_submitted_total", "tenant", "acme", "kind", "echo")
}

func TestClusterGauges(t *testing.T) {
	fc := &fakeCluster{leader: true, info: cluster.Info{
		NodeID: "n1", LeaderID: "n1", State: "leader", Term: 7, CommitIndex: 42, AppliedIndex: 41,
		Servers: []raft.Server{
			{ID: "n1", Suffrage: raft.Voter}, {ID: "n2", Suffrage: raft.Voter},
			{ID: "n3", Suffrage: raft.Voter}, {ID: "n4", Suffrage: raft.Nonvoter},
		},
	}}
	_, reg := newTestMetrics(t, Options{NodeID: "node-1", Cluster: fc})
	wantValue(t, reg, 7, "grey_consensus_term")
	wantValue(t, reg, 42, "grey_consensus_commit_index")
	wantValue(t, reg, 41, "grey_consensus_applied_index")
	wantValue(t, reg, 2, "grey_consensus_quorum_size")
	wantValue(t, reg, 1, "grey_consensus_leader", "node_id", "node-1")
	wantValue(t, reg, 1, "grey_consensus_has_leader")
	wantValue(t, reg, 1, "grey_cluster_nodes_total", "role", "voter", "status", "leader")
	wantValue(t, reg, 2, "grey_cluster_nodes_total", "role", "voter", "status", "follower")
	wantValue(t, reg, 1, "grey_cluster_nodes_total", "role", "nonvoter", "status", "follower")
	wantValue(t, reg, 0, "grey_cluster_nodes_total", "role", "nonvoter", "status", "leader")
}

func TestTenantGauges(t *testing.T) {
	d := newDriver(t)
	d.putTenant("acme", tenant.Quota{MaxQueued: 4, MaxRunning: 2, MaxStorageBytes: 100})
	d.putTenant("beta", tenant.Quota{MaxQueued: 10})
	prices := tenant.Prices{Task: 0.5, CPUSecond: 1}
	m, reg := newTestMetrics(t, Options{IncludeTenantLabels: true, Store: d.s, Prices: prices, ScanInterval: -1})
	d.s.Observe(m.Observe)
	a := d.submit("acme", "echo", 5)
	d.submit("acme", "echo", 5)
	d.submit("beta", "echo", 5)
	d.lease(a, 1)
	d.start(a, 1)
	d.now = d.now.Add(2 * time.Second)
	d.complete(a, 1) // 3 s of CPU

	wantValue(t, reg, 0.25, "grey_tenant_quota_utilization_ratio", "tenant", "acme", "resource", "queued")
	wantValue(t, reg, 0, "grey_tenant_quota_utilization_ratio", "tenant", "acme", "resource", "running")
	wantValue(t, reg, float64(7+7+4)/100, "grey_tenant_quota_utilization_ratio", "tenant", "acme", "resource", "storage")
	wantValue(t, reg, 0.1, "grey_tenant_quota_utilization_ratio", "tenant", "beta", "resource", "queued")
	if _, ok := value(t, reg, "grey_tenant_quota_utilization_ratio", "tenant", "beta", "resource", "running"); ok {
		t.Error("running utilisation exported for a tenant without max_running")
	}
	wantValue(t, reg, 3, "grey_tenant_cpu_seconds_total", "tenant", "acme")
	wantValue(t, reg, 0, "grey_tenant_gpu_seconds_total", "tenant", "acme")
	wantValue(t, reg, 2*0.5+3, "grey_tenant_cost_usd_total", "tenant", "acme")
	wantValue(t, reg, 0.5, "grey_tenant_cost_usd_total", "tenant", "beta")
	wantValue(t, reg, 18, "grey_tenant_stored_bytes", "tenant", "acme")

	// Running utilisation from the scan.
	b := d.submit("acme", "echo", 5)
	d.lease(b, 1)
	wantValue(t, reg, 0.5, "grey_tenant_quota_utilization_ratio", "tenant", "acme", "resource", "running")
}

func TestWithoutTenantLabels(t *testing.T) {
	d := newDriver(t)
	d.putTenant("acme", tenant.Quota{MaxQueued: 4})
	d.putTenant("beta", tenant.Quota{MaxQueued: 2})
	m, reg := newTestMetrics(t, Options{IncludeTenantLabels: false, Store: d.s, Prices: tenant.Prices{Task: 1}, ScanInterval: -1})
	d.s.Observe(m.Observe)
	d.submit("acme", "echo", 5)
	d.submit("beta", "echo", 5)
	wantValue(t, reg, 2, "grey_tasks_submitted_total", "tenant", "", "kind", "echo")
	wantValue(t, reg, 2, "grey_queue_depth", "tenant", "", "priority", "5")
	wantValue(t, reg, 0.5, "grey_tenant_quota_utilization_ratio", "tenant", "", "resource", "queued") // the highest
	wantValue(t, reg, 2, "grey_tenant_cost_usd_total", "tenant", "")
	m.Throttled("acme", "max_queued")
	wantValue(t, reg, 1, "grey_tenant_throttled_total", "tenant", "", "reason", "max_queued")
	fams, _ := reg.Gather()
	for _, f := range fams {
		for _, mm := range f.GetMetric() {
			for _, l := range mm.GetLabel() {
				if l.GetName() == "tenant" && l.GetValue() != "" {
					t.Errorf("%s has tenant %q", f.GetName(), l.GetValue())
				}
			}
		}
	}
}

func TestScanInterval(t *testing.T) {
	d := newDriver(t)
	_, reg := newTestMetrics(t, Options{IncludeTenantLabels: true, Store: d.s, ScanInterval: time.Hour})
	d.submit("acme", "echo", 5)
	wantValue(t, reg, 1, "grey_queue_depth", "tenant", "acme", "priority", "5")
	d.submit("acme", "echo", 5)
	wantValue(t, reg, 1, "grey_queue_depth", "tenant", "acme", "priority", "5") // cached pass
}

func TestThrottled(t *testing.T) {
	d := newDriver(t)
	d.putTenant("acme", tenant.Quota{})
	m, reg := newTestMetrics(t, Options{IncludeTenantLabels: true, Store: d.s})
	m.Throttled("acme", "submit_rate")
	m.Throttled("acme", "something-new")
	m.Throttled("attacker-chosen-id", "max_queued")
	wantValue(t, reg, 1, "grey_tenant_throttled_total", "tenant", "acme", "reason", "submit_rate")
	wantValue(t, reg, 1, "grey_tenant_throttled_total", "tenant", "acme", "reason", "other")
	wantValue(t, reg, 1, "grey_tenant_throttled_total", "tenant", UnknownTenant, "reason", "max_queued")

	refusal := func(code greyerr.Code, reason string) error {
		e := greyerr.New(code, "refused")
		e.Reason = reason
		return fmt.Errorf("wrapped: %w", e)
	}
	cases := []struct {
		err  error
		want bool
	}{
		{refusal(greyerr.ResourceExhausted, "max_queued"), true},
		{refusal(greyerr.TooLarge, "max_payload_bytes"), true},
		{refusal(greyerr.PermissionDenied, "allowed_kinds"), true},
		{refusal(greyerr.InvalidArgument, "max_task_timeout"), false},
		{refusal(greyerr.InvalidArgument, "unknown_tenant"), false},
		{refusal(greyerr.TooLarge, ""), false},
		{errors.New("plain"), false},
		{nil, false},
	}
	for _, c := range cases {
		if got := m.Refused("acme", c.err); got != c.want {
			t.Errorf("Refused(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	wantValue(t, reg, 1, "grey_tenant_throttled_total", "tenant", "acme", "reason", "max_queued")
	wantValue(t, reg, 1, "grey_tenant_throttled_total", "tenant", "acme", "reason", "max_payload_bytes")
	wantValue(t, reg, 1, "grey_tenant_throttled_total", "tenant", "acme", "reason", "allowed_kinds")
}

func TestProofsAndAttestations(t *testing.T) {
	m, reg := newTestMetrics(t, Options{})
	m.Proof("risc0", ProofVerified)
	m.Proof("risc0", "bogus")
	m.Proof("bad platform\n", ProofError)
	m.Attestation("sgx", true, 30*time.Millisecond)
	m.Attestation("sgx", false, time.Second)
	for i := 0; i < maxPlatforms+5; i++ {
		m.Proof(fmt.Sprintf("p%d", i), ProofGenerated)
	}
	wantValue(t, reg, 1, "grey_proofs_total", "platform", "risc0", "result", "verified")
	wantValue(t, reg, 1, "grey_proofs_total", "platform", "risc0", "result", "other")
	wantValue(t, reg, 1, "grey_proofs_total", "platform", "other", "result", "error")
	wantValue(t, reg, 1, "grey_tee_attestations_total", "platform", "sgx", "result", "success")
	wantValue(t, reg, 1, "grey_tee_attestations_total", "platform", "sgx", "result", "failure")
	wantValue(t, reg, 2, "grey_tee_attestation_duration_seconds", "platform", "sgx")
	if got, _ := value(t, reg, "grey_proofs_total", "platform", "other", "result", "generated"); got == 0 {
		t.Error("platforms past the cap are not folded into other")
	}
}

func TestHTTPMiddleware(t *testing.T) {
	m, reg := newTestMetrics(t, Options{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/tasks/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "missing" {
			http.Error(w, "nope", http.StatusNotFound)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		fl, ok := w.(http.Flusher)
		if !ok {
			http.Error(w, "no flusher", http.StatusInternalServerError)
			return
		}
		fl.Flush()
	})
	mux.HandleFunc("GET /panic", func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
	srv := httptest.NewServer(m.HTTP(func(r *http.Request) string { return r.Pattern }, mux))
	defer srv.Close()
	for _, p := range []string{"/api/v1/tasks/a", "/api/v1/tasks/b", "/api/v1/tasks/missing", "/stream", "/nowhere", "/panic"} {
		resp, err := http.Get(srv.URL + p)
		if err == nil {
			resp.Body.Close()
		}
	}
	wantValue(t, reg, 2, "grey_http_requests_total", "route", "GET /api/v1/tasks/{id}", "code", "200")
	wantValue(t, reg, 1, "grey_http_requests_total", "route", "GET /api/v1/tasks/{id}", "code", "404")
	// The flushed stream's client may finish before the handler returns and
	// the request is recorded.
	testEventually(t, func() bool {
		v, _ := value(t, reg, "grey_http_requests_total", "route", "GET /stream", "code", "200")
		return v == 1
	})
	wantValue(t, reg, 1, "grey_http_requests_total", "route", Unmatched, "code", "404")
	wantValue(t, reg, 3, "grey_http_request_duration_seconds", "route", "GET /api/v1/tasks/{id}")
	// The panic is recorded as a 500 after the handler unwinds.
	testEventually(t, func() bool {
		v, _ := value(t, reg, "grey_http_requests_total", "route", "GET /panic", "code", "500")
		return v == 1
	})
	// Raw paths never become routes: past the cap they fold into other.
	for i := 0; i < maxRoutes+10; i++ {
		m.observeHTTP(fmt.Sprintf("/r/%d", i), 200, time.Millisecond)
	}
	if v, _ := value(t, reg, "grey_http_requests_total", "route", Other, "code", "200"); v == 0 {
		t.Error("routes past the cap are not folded into other")
	}
}

func testEventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLint(t *testing.T) {
	d := newDriver(t)
	d.putTenant("acme", tenant.Quota{MaxQueued: 3})
	fc := &fakeCluster{leader: true, info: cluster.Info{NodeID: "n1", LeaderID: "n1", Servers: []raft.Server{{ID: "n1"}}}}
	m, reg := newTestMetrics(t, Options{IncludeTenantLabels: true, Store: d.s, Cluster: fc})
	d.s.Observe(m.Observe)
	id := d.submit("acme", "echo", 5)
	d.lease(id, 1)
	d.fail(id, 1, "executor", false)
	m.Throttled("acme", "max_queued")
	m.Proof("risc0", ProofVerified)
	m.Attestation("sgx", true, time.Millisecond)
	m.SetWorkers(1, 3)
	m.observeHTTP("GET /healthz", 200, time.Millisecond)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(fams).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		// The issue names this gauge grey_cluster_nodes_total.
		if p.Metric == "grey_cluster_nodes_total" && strings.Contains(p.Text, "_total") {
			continue
		}
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	// Every family the docs promise is there.
	have := map[string]bool{}
	for _, f := range fams {
		have[f.GetName()] = true
	}
	for _, name := range Families() {
		if !have[name] {
			t.Errorf("family %s not exported", name)
		}
	}
}

func TestDuplicateRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg, Options{}); err == nil {
		t.Error("second registration on one registry succeeded")
	}
}

// BenchmarkObserve measures the apply-path cost of one submit → lease →
// start → complete cycle (four changes).
func BenchmarkObserve(b *testing.B) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, Options{IncludeTenantLabels: true})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	base := &task.Task{ID: "x", TenantID: "acme", Spec: task.Spec{Kind: "echo"}, CreatedAt: now}
	versions := make([]*task.Task, 4)
	for i, st := range []task.Status{task.Pending, task.Leased, task.Running, task.Completed} {
		v := base.Clone()
		v.Status = st
		v.Index = uint64(i + 1)
		if st != task.Pending {
			v.Attempts = []task.Attempt{{N: 1, LeasedAt: now}}
		}
		if st == task.Running || st == task.Completed {
			v.Attempts[0].StartedAt = &now
		}
		if st == task.Completed {
			v.Attempts[0].FinishedAt = &now
		}
		versions[i] = v
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j, v := range versions {
			m.Observe(state.Change{Index: uint64(j + 1), Tasks: []*task.Task{v}})
		}
	}
}

// BenchmarkScan measures one scrape-time pass over stored tasks.
func BenchmarkScan(b *testing.B) {
	s := state.New()
	now := time.Now()
	const n = 100000
	var tasks []*task.Task
	for i := 0; i < n; i++ {
		p := i % 11
		tasks = append(tasks, &task.Task{ID: fmt.Sprintf("00000000-0000-7000-8000-%012d", i), TenantID: fmt.Sprintf("t%d", (i/1000)%16),
			Spec: task.Spec{Kind: "noop", Priority: &p}, Status: task.Pending, CreatedAt: now})
		if len(tasks) == 1000 {
			if _, err := s.Submit(uint64(i), &state.SubmitRequest{Now: now, Tasks: tasks, AutoCreate: &tenant.Tenant{ID: tasks[0].TenantID}}); err != nil {
				b.Fatal(err)
			}
			tasks = nil
		}
	}
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, Options{IncludeTenantLabels: true, Store: s, ScanInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.coll.scanTasks(time.Now())
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/task")
}

func TestWorkerSlots(t *testing.T) {
	m, reg := newTestMetrics(t, Options{})
	ws := m.WorkerSlots(3)
	wantValue(t, reg, 0, "grey_workers", "state", "active")
	wantValue(t, reg, 3, "grey_workers", "state", "idle")
	release := make(chan struct{})
	started := make(chan struct{})
	h := ws.Wrap(worker.HandlerFunc(func(context.Context, *worker.Job) (any, error) {
		started <- struct{}{}
		<-release
		return nil, nil
	}))
	done := make(chan struct{})
	for i := 0; i < 2; i++ {
		go func() {
			_, _ = h.Work(context.Background(), &worker.Job{})
			done <- struct{}{}
		}()
		<-started
	}
	wantValue(t, reg, 2, "grey_workers", "state", "active")
	wantValue(t, reg, 1, "grey_workers", "state", "idle")
	close(release)
	<-done
	<-done
	wantValue(t, reg, 0, "grey_workers", "state", "active")
	wantValue(t, reg, 3, "grey_workers", "state", "idle")
}

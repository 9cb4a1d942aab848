package telemetry

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grey-distributed/grey/cluster"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/tenant"
)

// Namespace prefixes every family this package exports.
const Namespace = "grey"

// DefaultBuckets are the task duration and queue-wait buckets (seconds)
// used when Options.Buckets is empty; they match the config default
// monitoring.prometheus.buckets.
var DefaultBuckets = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// HTTPBuckets are the HTTP request duration buckets (seconds). Long polls
// (wait, lease) and SSE watches land in the top buckets.
var HTTPBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// DefaultScanInterval is the least time between two passes over the
// stored tasks for the scrape-time gauges (queue depth, task counts, running
// quota).
const DefaultScanInterval = 5 * time.Second

// UnknownTenant is the tenant label of a quota refusal for a tenant that has
// no record in the store (it cannot be a tenant id: those start with a
// letter or digit). It keeps request input out of label values.
const UnknownTenant = "_unknown"

// Label values of grey_proofs_total{result}.
const (
	ProofGenerated = "generated"
	ProofVerified  = "verified"
	ProofRejected  = "rejected"
	ProofError     = "error"
)

// Other is the label value that stands for any value outside a label's
// bounded set (failure reasons, throttle reasons, routes past the cap,
// unknown proof results and platforms).
const Other = "other"

// FailureReasons are the task.Error codes reported as themselves in
// grey_tasks_failed_total{reason}; any other code (or none) is "other".
var FailureReasons = []string{
	"executor", "timeout", "lease_expired", "dependency_failed", "worker_shutdown",
	"result_too_large", "unknown_kind", "http_4xx", "http_5xx", "proof_failed",
	"attestation_failed",
}

// ThrottleReasons are the quota refusal reasons reported as themselves in
// grey_tenant_throttled_total{reason}; any other reason is "other".
var ThrottleReasons = []string{
	"max_queued", "submit_rate", "submit_burst", "max_storage_bytes",
	"max_payload_bytes", "allowed_kinds", "max_task_timeout",
}

// ClusterSource is the Raft node's view of the cluster (*cluster.Node).
type ClusterSource interface {
	// Info returns term, commit index, leader and servers.
	Info() cluster.Info
	// IsLeader reports whether this server leads; replicated-state
	// metrics are recorded and exported only while it does.
	IsLeader() bool
}

// StoreSource is the part of *state.Store the scrape-time gauges read.
type StoreSource interface {
	// Each calls fn for every stored task under the store's read lock.
	Each(fn func(*task.Task))
	// Tenants lists tenant records.
	Tenants() []*tenant.Tenant
	// Tenant returns a tenant record or an error.
	Tenant(id string) (*tenant.Tenant, error)
	// Load returns a tenant's unfinished tasks and stored bytes.
	Load(id string) state.TenantLoad
	// UsageTenants lists the tenants with usage or a record.
	UsageTenants() []string
	// UsageReport sums a tenant's usage in [from, to).
	UsageReport(id string, from, to, now time.Time) tenant.Usage
}

var (
	_ ClusterSource = (*cluster.Node)(nil)
	_ StoreSource   = (*state.Store)(nil)
)

// Options configure NewMetrics.
type Options struct {
	// IncludeTenantLabels keeps tenant ids in the tenant label; false sets
	// every tenant label value to "" and aggregates per-tenant values (the
	// config key monitoring.prometheus.include_tenant_labels, default true).
	IncludeTenantLabels bool
	// Buckets are the task duration and queue-wait histogram buckets in
	// seconds (monitoring.prometheus.buckets); empty = DefaultBuckets.
	Buckets []float64
	// NodeID is this server's id, the node_id of grey_consensus_leader
	// ("" = the id the ClusterSource reports).
	NodeID string
	// Prices turn usage into grey_tenant_cost_usd_total (zero = free).
	Prices tenant.Prices
	// Store feeds the scrape-time task and tenant gauges and tells
	// Throttled which tenants exist (nil = no such gauges, and every
	// throttle counts as UnknownTenant).
	Store StoreSource
	// Cluster feeds the consensus gauges and says whether this server
	// leads (nil = no consensus gauges; replicated-state metrics always
	// recorded). It can also be set later with SetCluster.
	Cluster ClusterSource
	// ScanInterval is the least time between two passes over the stored
	// tasks; scrapes in between reuse the last pass (0 = DefaultScanInterval,
	// negative = every scrape).
	ScanInterval time.Duration
}

// Metrics holds every Grey metric family. Its methods are safe for
// concurrent use.
type Metrics struct {
	opts Options

	submitted    *prometheus.CounterVec
	completed    *prometheus.CounterVec
	failed       *prometheus.CounterVec
	cancelled    *prometheus.CounterVec
	retries      *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	queueWait    *prometheus.HistogramVec
	workers      *prometheus.GaugeVec
	throttled    *prometheus.CounterVec
	proofs       *prometheus.CounterVec
	attestations *prometheus.CounterVec
	attestDur    *prometheus.HistogramVec
	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	authRequests *prometheus.CounterVec
	auditEvents  prometheus.Counter

	cluster atomic.Pointer[clusterRef]

	obsMu     sync.Mutex
	series    map[seriesKey]*taskSeries
	unstarted map[string]struct{} // leased tasks whose first start is not seen yet

	routes     boundedSet
	platforms  boundedSet
	failReason map[string]bool
	throttleRs map[string]bool

	coll *collector
}

type clusterRef struct{ c ClusterSource }

type seriesKey struct{ tenant, kind string }

// taskSeries caches one (tenant, kind)'s children so the apply path does
// not hash label values for every event.
type taskSeries struct {
	submitted, completed, cancelled, retries prometheus.Counter
	duration, queueWait                      prometheus.Observer
	failed                                   map[string]prometheus.Counter
}

// NewMetrics creates every family and registers it, and the scrape-time
// collector, with reg.
func NewMetrics(reg prometheus.Registerer, opts Options) (*Metrics, error) {
	if len(opts.Buckets) == 0 {
		opts.Buckets = DefaultBuckets
	}
	if opts.ScanInterval == 0 {
		opts.ScanInterval = DefaultScanInterval
	}
	tk := []string{"tenant", "kind"}
	m := &Metrics{
		opts: opts,
		submitted: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "tasks_submitted_total",
			Help: "Tasks accepted (stored by a submit)."}, tk),
		completed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "tasks_completed_total",
			Help: "Tasks that completed successfully."}, tk),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "tasks_failed_total",
			Help: "Tasks that failed for good (retries exhausted, permanent error, failed dependency), by the last error's code."}, []string{"tenant", "kind", "reason"}),
		cancelled: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "tasks_cancelled_total",
			Help: "Tasks cancelled by a client."}, tk),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "task_retries_total",
			Help: "Failed attempts that were scheduled for another attempt."}, tk),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "task_duration_seconds",
			Help: "Run time of the final attempt (started to finished) of completed and failed tasks.", Buckets: opts.Buckets}, tk),
		queueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "task_queue_wait_seconds",
			Help: "Time from a task's creation to the start of its first attempt.", Buckets: opts.Buckets}, tk),
		workers: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "workers",
			Help: "Worker slots of this node's worker pool by state (active = running a task, idle)."}, []string{"state"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "tenant_throttled_total",
			Help: "Submits refused by a tenant quota (HTTP 429, 403, 413), by quota."}, []string{"tenant", "reason"}),
		proofs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "proofs_total",
			Help: "Proof artifacts by platform and result (generated, verified, rejected, error)."}, []string{"platform", "result"}),
		attestations: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "tee_attestations_total",
			Help: "TEE attestations by platform and result (success, failure)."}, []string{"platform", "result"}),
		attestDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "tee_attestation_duration_seconds",
			Help: "Time to obtain and verify a TEE attestation.", Buckets: HTTPBuckets}, []string{"platform"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "http_requests_total",
			Help: "HTTP requests by route pattern and status code."}, []string{"route", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "http_request_duration_seconds",
			Help: "HTTP request duration by route pattern (long polls and watches included).", Buckets: HTTPBuckets}, []string{"route"}),
		authRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "auth_requests_total",
			Help: "API requests on authorized routes by authentication result (allowed, anonymous, unauthenticated, denied)."}, []string{"result"}),
		auditEvents: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "audit_events_total",
			Help: "Lines written to the audit log."}),
		series:     make(map[seriesKey]*taskSeries),
		unstarted:  make(map[string]struct{}),
		routes:     boundedSet{max: maxRoutes},
		platforms:  boundedSet{max: maxPlatforms},
		failReason: setOf(FailureReasons),
		throttleRs: setOf(ThrottleReasons),
	}
	if opts.Cluster != nil {
		m.cluster.Store(&clusterRef{opts.Cluster})
	}
	m.workers.WithLabelValues("active").Set(0)
	m.workers.WithLabelValues("idle").Set(0)
	m.coll = newCollector(m)
	for _, c := range []prometheus.Collector{
		m.submitted, m.completed, m.failed, m.cancelled, m.retries, m.duration, m.queueWait,
		m.workers, m.throttled, m.proofs, m.attestations, m.attestDur, m.httpRequests, m.httpDuration, m.authRequests, m.auditEvents, m.coll,
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// SetCluster sets (or replaces) the cluster source, for a server that
// creates the Metrics before its Raft node.
func (m *Metrics) SetCluster(c ClusterSource) {
	if c == nil {
		m.cluster.Store(nil)
		return
	}
	m.cluster.Store(&clusterRef{c})
}

func (m *Metrics) clusterSource() ClusterSource {
	if r := m.cluster.Load(); r != nil {
		return r.c
	}
	return nil
}

// recording reports whether replicated-state metrics are recorded here:
// always without a cluster source, else only on the leader.
func (m *Metrics) recording() bool {
	c := m.clusterSource()
	return c == nil || c.IsLeader()
}

// tenantLabel is the tenant label value for a tenant id from the store.
func (m *Metrics) tenantLabel(id string) string {
	if !m.opts.IncludeTenantLabels {
		return ""
	}
	return id
}

// SetWorkers sets grey_workers{state="active"} and {state="idle"}: this
// node's worker slots running a task and free.
func (m *Metrics) SetWorkers(active, idle int) {
	m.workers.WithLabelValues("active").Set(float64(active))
	m.workers.WithLabelValues("idle").Set(float64(idle))
}

// Throttled counts one quota refusal of tenantID's request. reason is the
// quota (the error body's reason: max_queued, submit_rate, ...; others
// count as "other"). A tenant without a record in the store counts as
// UnknownTenant, so request input never becomes a label value.
func (m *Metrics) Throttled(tenantID, reason string) {
	if !m.throttleRs[reason] {
		reason = Other
	}
	m.throttled.WithLabelValues(m.knownTenant(tenantID), reason).Inc()
}

func (m *Metrics) knownTenant(id string) string {
	if !m.opts.IncludeTenantLabels {
		return ""
	}
	if m.opts.Store == nil {
		return UnknownTenant
	}
	if t, err := m.opts.Store.Tenant(id); err != nil || t == nil {
		return UnknownTenant
	}
	return id
}

// Refused counts err as a throttle of tenantID when it is a quota refusal
// (a *greyerr.Error with code resource_exhausted (429), permission_denied
// (403) or too_large (413) and a quota reason) and reports whether it did.
// It is meant for the API's error path.
func (m *Metrics) Refused(tenantID string, err error) bool {
	var ge *greyerr.Error
	if !errors.As(err, &ge) || ge.Reason == "" || !m.throttleRs[ge.Reason] {
		return false
	}
	switch ge.Code {
	case greyerr.ResourceExhausted, greyerr.PermissionDenied, greyerr.TooLarge:
	default:
		return false
	}
	m.Throttled(tenantID, ge.Reason)
	return true
}

// Proof counts one proof artifact event: result is ProofGenerated,
// ProofVerified, ProofRejected or ProofError (others count as "other").
// platform is a short lower-case name (e.g. risc0, sp1); past 32 distinct
// platforms, or for a malformed name, it counts as "other".
func (m *Metrics) Proof(platform, result string) {
	switch result {
	case ProofGenerated, ProofVerified, ProofRejected, ProofError:
	default:
		result = Other
	}
	m.proofs.WithLabelValues(m.platforms.value(platform), result).Inc()
}

// Attestation counts one TEE attestation on platform (e.g. sgx, tdx,
// sev-snp, nitro) as success or failure and observes how long it took.
func (m *Metrics) Attestation(platform string, ok bool, d time.Duration) {
	p := m.platforms.value(platform)
	result := "failure"
	if ok {
		result = "success"
	}
	m.attestations.WithLabelValues(p, result).Inc()
	m.attestDur.WithLabelValues(p).Observe(d.Seconds())
}

func setOf(vs []string) map[string]bool {
	out := make(map[string]bool, len(vs))
	for _, v := range vs {
		out[v] = true
	}
	return out
}

const (
	maxRoutes    = 256
	maxPlatforms = 32
	maxLabelLen  = 128
)

// boundedSet admits at most max distinct well-formed values; the rest map
// to Other.
type boundedSet struct {
	mu   sync.RWMutex
	max  int
	seen map[string]bool
}

func (b *boundedSet) value(v string) string {
	if !labelSafe(v) {
		return Other
	}
	b.mu.RLock()
	ok := b.seen[v]
	b.mu.RUnlock()
	if ok {
		return v
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen == nil {
		b.seen = make(map[string]bool)
	}
	if !b.seen[v] {
		if len(b.seen) >= b.max {
			return Other
		}
		b.seen[v] = true
	}
	return v
}

// labelSafe admits printable ASCII (space included, for "METHOD /path"
// patterns) up to maxLabelLen bytes.
func labelSafe(v string) bool {
	if v == "" || len(v) > maxLabelLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

// Families lists the name of every family a Metrics exports, sorted.
func Families() []string {
	return []string{
		"grey_cluster_nodes_total",
		"grey_consensus_applied_index",
		"grey_consensus_commit_index",
		"grey_consensus_has_leader",
		"grey_consensus_leader",
		"grey_consensus_quorum_size",
		"grey_consensus_term",
		"grey_http_request_duration_seconds",
		"grey_http_requests_total",
		"grey_proofs_total",
		"grey_queue_depth",
		"grey_task_duration_seconds",
		"grey_task_queue_wait_seconds",
		"grey_task_retries_total",
		"grey_tasks",
		"grey_tasks_cancelled_total",
		"grey_tasks_completed_total",
		"grey_tasks_failed_total",
		"grey_tasks_submitted_total",
		"grey_tee_attestation_duration_seconds",
		"grey_tee_attestations_total",
		"grey_tenant_cost_usd_total",
		"grey_tenant_cpu_seconds_total",
		"grey_tenant_gpu_seconds_total",
		"grey_tenant_quota_utilization_ratio",
		"grey_tenant_stored_bytes",
		"grey_tenant_throttled_total",
		"grey_workers",
	}
}

package telemetry

import (
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/grey-distributed/grey/task"
)

// collector computes the pull-style gauges at scrape time.
type collector struct {
	m *Metrics

	nodes, term, leader, hasLeader, commit, applied, quorum *prometheus.Desc
	tasks, queue, quota, cost, cpu, gpu, stored             *prometheus.Desc

	scanMu   sync.Mutex
	last     *scan
	lastTook time.Duration
}

// scan is one pass over the stored tasks, per tenant id.
type scan struct {
	at      time.Time
	tenants map[string]*tenantScan
}

type tenantScan struct {
	status [numStatuses]int
	queue  [task.MaxPriority + 1]int // pending + retrying by priority
	active int                       // leased + running
}

const numStatuses = 7

func statusIndex(s task.Status) int {
	switch s {
	case task.Pending:
		return 0
	case task.Leased:
		return 1
	case task.Running:
		return 2
	case task.Retrying:
		return 3
	case task.Completed:
		return 4
	case task.Failed:
		return 5
	case task.Cancelled:
		return 6
	}
	return -1
}

func newCollector(m *Metrics) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(Namespace+"_"+name, help, labels, nil)
	}
	return &collector{
		m:         m,
		nodes:     d("cluster_nodes_total", "Servers in the Raft configuration by role (voter, nonvoter) and status (leader, follower), as this server sees them.", "role", "status"),
		term:      d("consensus_term", "Current Raft term."),
		leader:    d("consensus_leader", "1 when this server (node_id) is the Raft leader, else 0.", "node_id"),
		hasLeader: d("consensus_has_leader", "1 when this server knows a Raft leader, else 0."),
		commit:    d("consensus_commit_index", "Raft commit index."),
		applied:   d("consensus_applied_index", "Raft index last applied to the state store."),
		quorum:    d("consensus_quorum_size", "Voters needed for a quorum (voters/2 + 1)."),
		tasks:     d("tasks", "Stored tasks by status (finished tasks until they are collected).", "tenant", "status"),
		queue:     d("queue_depth", "Tasks waiting to run (pending + retrying) by priority (0-10).", "tenant", "priority"),
		quota:     d("tenant_quota_utilization_ratio", "Use of a tenant quota, 0-1+: queued (unfinished/max_queued), running (leased+running/max_running), storage (stored bytes/max_storage_bytes); only quotas with a limit. Without tenant labels: the highest over tenants.", "tenant", "resource"),
		cost:      d("tenant_cost_usd_total", "Cost of a tenant's usage since it started, priced with the configured price table at scrape time.", "tenant"),
		cpu:       d("tenant_cpu_seconds_total", "CPU-seconds (execution time x requested cpu) used by a tenant's tasks.", "tenant"),
		gpu:       d("tenant_gpu_seconds_total", "GPU-seconds (execution time x requested GPUs) used by a tenant's tasks.", "tenant"),
		stored:    d("tenant_stored_bytes", "Payload + result bytes a tenant's stored tasks hold.", "tenant"),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.nodes, c.term, c.leader, c.hasLeader, c.commit, c.applied, c.quorum,
		c.tasks, c.queue, c.quota, c.cost, c.cpu, c.gpu, c.stored} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	if cs := c.m.clusterSource(); cs != nil {
		c.collectCluster(ch, cs)
	}
	if c.m.opts.Store != nil && c.m.recording() {
		c.collectStore(ch)
	}
}

func (c *collector) collectCluster(ch chan<- prometheus.Metric, cs ClusterSource) {
	in := cs.Info()
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	g(c.term, float64(in.Term))
	g(c.commit, float64(in.CommitIndex))
	g(c.applied, float64(in.AppliedIndex))
	id := c.m.opts.NodeID
	if id == "" {
		id = in.NodeID
	}
	isLeader := 0.0
	if in.LeaderID != "" && in.LeaderID == in.NodeID {
		isLeader = 1
	}
	g(c.leader, isLeader, id)
	hasLeader := 0.0
	if in.LeaderID != "" {
		hasLeader = 1
	}
	g(c.hasLeader, hasLeader)
	var counts [2][2]int // [voter, nonvoter][leader, follower]
	voters := 0
	for _, s := range in.Servers {
		r := 1
		if s.Suffrage == raft.Voter {
			r = 0
			voters++
		}
		st := 1
		if string(s.ID) == in.LeaderID {
			st = 0
		}
		counts[r][st]++
	}
	for r, role := range []string{"voter", "nonvoter"} {
		for s, status := range []string{"leader", "follower"} {
			g(c.nodes, float64(counts[r][s]), role, status)
		}
	}
	if voters > 0 {
		g(c.quorum, float64(voters/2+1))
	}
}

// scanTasks returns a pass over the stored tasks no older than the scan
// interval. The pass holds the store's read lock (about 0.1-0.2 µs per
// task), so passes are also spaced at least 50 times their own duration
// apart: at most 2% of the time, whatever the scrape rate.
func (c *collector) scanTasks(now time.Time) *scan {
	c.scanMu.Lock()
	defer c.scanMu.Unlock()
	if c.last != nil && c.m.opts.ScanInterval > 0 {
		gap := c.m.opts.ScanInterval
		if g := 50 * c.lastTook; g > gap {
			gap = g
		}
		if now.Sub(c.last.at) < gap {
			return c.last
		}
	}
	sc := &scan{at: now, tenants: make(map[string]*tenantScan)}
	start := time.Now()
	c.m.opts.Store.Each(func(t *task.Task) {
		cur := sc.tenants[t.TenantID]
		if cur == nil {
			cur = &tenantScan{}
			sc.tenants[t.TenantID] = cur
		}
		if i := statusIndex(t.Status); i >= 0 {
			cur.status[i]++
		}
		switch t.Status {
		case task.Pending, task.Retrying:
			p := t.Prio()
			if p < task.MinPriority || p > task.MaxPriority {
				p = task.DefaultPriority
			}
			cur.queue[p]++
		case task.Leased, task.Running:
			cur.active++
		}
	})
	c.lastTook = time.Since(start)
	c.last = sc
	return sc
}

func (c *collector) collectStore(ch chan<- prometheus.Metric) {
	m := c.m
	store := m.opts.Store
	now := time.Now()
	sc := c.scanTasks(now)

	// Task counts and queue depth, aggregated per label value.
	agg := make(map[string]*tenantScan, len(sc.tenants))
	for id, ts := range sc.tenants {
		l := m.tenantLabel(id)
		a := agg[l]
		if a == nil {
			a = &tenantScan{}
			agg[l] = a
		}
		for i := range ts.status {
			a.status[i] += ts.status[i]
		}
		for i := range ts.queue {
			a.queue[i] += ts.queue[i]
		}
		a.active += ts.active
	}
	for l, a := range agg {
		for _, st := range task.Statuses {
			if i := statusIndex(st); i >= 0 {
				ch <- prometheus.MustNewConstMetric(c.tasks, prometheus.GaugeValue, float64(a.status[i]), l, string(st))
			}
		}
		for p, n := range a.queue {
			ch <- prometheus.MustNewConstMetric(c.queue, prometheus.GaugeValue, float64(n), l, strconv.Itoa(p))
		}
	}

	// Quota utilisation of tenants with records (the highest per resource
	// without tenant labels).
	type qk struct{ tenant, resource string }
	quota := make(map[qk]float64)
	put := func(tenantID, resource string, v float64) {
		k := qk{m.tenantLabel(tenantID), resource}
		if old, ok := quota[k]; !ok || v > old {
			quota[k] = v
		}
	}
	for _, tn := range store.Tenants() {
		q := tn.Quota
		load := store.Load(tn.ID)
		if q.MaxQueued > 0 {
			put(tn.ID, "queued", float64(load.Queued)/float64(q.MaxQueued))
		}
		if q.MaxStorageBytes > 0 {
			put(tn.ID, "storage", float64(load.StoredBytes)/float64(q.MaxStorageBytes))
		}
		if q.MaxRunning > 0 {
			active := 0
			if ts := sc.tenants[tn.ID]; ts != nil {
				active = ts.active
			}
			put(tn.ID, "running", float64(active)/float64(q.MaxRunning))
		}
	}
	for k, v := range quota {
		ch <- prometheus.MustNewConstMetric(c.quota, prometheus.GaugeValue, v, k.tenant, k.resource)
	}

	// Usage, cost and storage (sums without tenant labels).
	type usage struct{ cost, cpu, gpu, stored float64 }
	use := make(map[string]*usage)
	for _, id := range store.UsageTenants() {
		u := store.UsageReport(id, time.Time{}, time.Time{}, now)
		l := m.tenantLabel(id)
		a := use[l]
		if a == nil {
			a = &usage{}
			use[l] = a
		}
		a.cost += m.opts.Prices.Price(u).Total
		a.cpu += u.CPUSeconds
		a.gpu += u.GPUSeconds
		a.stored += float64(store.Load(id).StoredBytes)
	}
	for l, a := range use {
		ch <- prometheus.MustNewConstMetric(c.cost, prometheus.CounterValue, a.cost, l)
		ch <- prometheus.MustNewConstMetric(c.cpu, prometheus.CounterValue, a.cpu, l)
		ch <- prometheus.MustNewConstMetric(c.gpu, prometheus.CounterValue, a.gpu, l)
		ch <- prometheus.MustNewConstMetric(c.stored, prometheus.GaugeValue, a.stored, l)
	}
}

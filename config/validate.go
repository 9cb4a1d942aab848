package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Validate checks every value and returns all problems joined, each an
// *Error naming the key (and the file line or environment variable the value
// came from, while it still holds that value).
func (c *Config) Validate() error {
	v := validator{c: c, leaves: leafValues(c)}
	n, h, r, t, w := &c.Node, &c.HTTP, &c.Raft, &c.Tasks, &c.Worker
	p, o := &c.Monitoring.Prometheus, &c.Monitoring.OpenTelemetry

	if !validID(n.ID) {
		v.fail("node.id", "must be 1 to 64 letters, digits, '.', '_' or '-', got %q", n.ID)
	}
	v.nonEmpty("node.data_dir", n.DataDir)
	v.oneOf("node.role", n.Role, RoleServer, RoleWorker, RoleBoth)
	switch {
	case n.Role == RoleWorker && len(n.Servers) == 0:
		v.fail("node.servers", "must list at least one server when node.role is %q", RoleWorker)
	case n.Role != RoleWorker && len(n.Servers) > 0:
		v.fail("node.servers", "is only used when node.role is %q (it is %q)", RoleWorker, n.Role)
	}
	v.peers("node.servers", n.Servers)
	v.labels("node.labels", n.Labels)
	v.credentials(n)

	v.hostPort("http.addr", h.Addr, false)
	if h.Advertise != "" {
		if u, err := url.Parse(h.Advertise); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.fail("http.advertise", "must be an http(s) base URL such as http://10.0.0.5:8080, got %q", h.Advertise)
		}
	} else if host, _, err := net.SplitHostPort(h.Addr); err == nil && unspecified(host) {
		v.fail("http.advertise", "is required when http.addr %q listens on all interfaces", h.Addr)
	}
	between(&v, "http.max_body_bytes", h.MaxBodyBytes, 1, 1<<30)
	if h.MaxBodyBytes < t.MaxPayloadBytes {
		v.fail("http.max_body_bytes", "must be >= tasks.max_payload_bytes (%d), got %d", t.MaxPayloadBytes, h.MaxBodyBytes)
	}
	v.positive("http.read_timeout", h.ReadTimeout)
	v.nonNegative("http.shutdown_grace", h.ShutdownGrace)
	if h.AdminToken != "" && len(h.AdminToken) < 16 {
		v.fail("http.admin_token", "must be at least 16 characters")
	}

	v.hostPort("raft.addr", r.Addr, false)
	if r.Advertise != "" {
		v.hostPort("raft.advertise", r.Advertise, true)
	} else if host, _, err := net.SplitHostPort(r.Addr); err == nil && unspecified(host) {
		v.fail("raft.advertise", "is required when raft.addr %q listens on all interfaces", r.Addr)
	}
	if r.Bootstrap && len(r.Join) > 0 {
		v.fail("raft.join", "cannot be used with raft.bootstrap: true (set bootstrap to false to join a cluster)")
	}
	v.peers("raft.join", r.Join)
	v.nonNegative("raft.dead_server_timeout", r.DeadServerTimeout)
	if r.SnapshotThreshold == 0 {
		v.fail("raft.snapshot_threshold", "must be at least 1")
	}
	v.atLeast("raft.snapshot_interval", r.SnapshotInterval, 5*time.Millisecond)
	between(&v, "raft.snapshot_retain", r.SnapshotRetain, 1, 1000)
	v.atLeast("raft.heartbeat_timeout", r.HeartbeatTimeout, 5*time.Millisecond)
	v.atLeast("raft.election_timeout", r.ElectionTimeout, 5*time.Millisecond)
	v.atLeast("raft.leader_lease_timeout", r.LeaderLeaseTimeout, 5*time.Millisecond)
	if r.ElectionTimeout < r.HeartbeatTimeout {
		v.fail("raft.election_timeout", "must be >= raft.heartbeat_timeout (%s), got %s", r.HeartbeatTimeout, r.ElectionTimeout)
	}
	if r.LeaderLeaseTimeout > r.HeartbeatTimeout {
		v.fail("raft.leader_lease_timeout", "must be <= raft.heartbeat_timeout (%s), got %s", r.HeartbeatTimeout, r.LeaderLeaseTimeout)
	}
	between(&v, "raft.max_append_entries", r.MaxAppendEntries, 1, 1024)
	if b := r.Backup; b.URL != "" {
		if u, err := url.Parse(b.URL); err != nil || u.Scheme == "" || (u.Scheme == "file" && (u.Host != "" || !strings.HasPrefix(u.Path, "/"))) {
			v.fail("raft.backup.url", "must be a bucket URL such as file:///var/backups/grey (an absolute path), got %q", b.URL)
		}
	}
	v.atLeast("raft.backup.interval", r.Backup.Interval, 10*time.Millisecond)
	between(&v, "raft.backup.retain", r.Backup.Retain, 1, 100000)

	between(&v, "tasks.max_payload_bytes", t.MaxPayloadBytes, 1, 64*MiB)
	between(&v, "tasks.max_data_bytes", t.MaxDataBytes, 1, 1<<30)
	if t.DataURL != "" {
		if u, err := url.Parse(t.DataURL); err != nil || u.Scheme == "" || (u.Scheme == "file" && (u.Host != "" || !strings.HasPrefix(u.Path, "/"))) {
			v.fail("tasks.data_url", "must be a bucket URL such as file:///var/lib/grey/taskdata or s3://bucket (a file:// path is absolute), got %q", t.DataURL)
		}
	}
	v.positive("tasks.retention", t.Retention)
	v.positive("tasks.gc_interval", t.GCInterval)
	v.positive("tasks.default_timeout", t.DefaultTimeout)
	v.positive("tasks.max_timeout", t.MaxTimeout)
	if t.DefaultTimeout > t.MaxTimeout {
		v.fail("tasks.default_timeout", "must be <= tasks.max_timeout (%s), got %s", t.MaxTimeout, t.DefaultTimeout)
	}
	v.atLeast("tasks.lease_ttl", t.LeaseTTL, time.Second)
	between(&v, "tasks.max_depends_on", t.MaxDependsOn, 0, 10000)
	between(&v, "tasks.submit_slots_per_tenant", t.SubmitSlotsPerTenant, 1, 1000)
	between(&v, "tasks.retry.max_retries", t.Retry.MaxRetries, 0, 1000)
	v.positive("tasks.retry.base_delay", t.Retry.BaseDelay)
	v.positive("tasks.retry.max_delay", t.Retry.MaxDelay)
	if t.Retry.BaseDelay > t.Retry.MaxDelay {
		v.fail("tasks.retry.base_delay", "must be <= tasks.retry.max_delay (%s), got %s", t.Retry.MaxDelay, t.Retry.BaseDelay)
	}

	between(&v, "worker.concurrency", w.Concurrency, 1, 10000)
	seen := map[string]bool{}
	for _, k := range w.Kinds {
		switch {
		case strings.TrimSpace(k) == "":
			v.fail("worker.kinds", "must not contain an empty kind")
		case seen[k]:
			v.fail("worker.kinds", "lists %q twice", k)
		}
		seen[k] = true
	}
	v.labels("worker.labels", w.Labels)
	between(&v, "worker.lease_batch", w.LeaseBatch, 1, 10000)
	v.nonNegative("worker.shutdown_grace", w.ShutdownGrace)

	between(&v, "monitoring.prometheus.port", p.Port, 1, 65535)
	if strings.ContainsAny(p.Host, " /[]") {
		v.fail("monitoring.prometheus.host", "must be a host name or IP address, got %q", p.Host)
	}
	if !strings.HasPrefix(p.Path, "/") || strings.ContainsAny(p.Path, " ?#") {
		v.fail("monitoring.prometheus.path", "must be a URL path starting with '/', got %q", p.Path)
	}
	if p.Enabled && c.MetricsAddr() == h.Addr {
		v.fail("monitoring.prometheus.port", "metrics address %s is the same as http.addr", h.Addr)
	}
	if len(p.Buckets) == 0 {
		v.fail("monitoring.prometheus.buckets", "must not be empty")
	}
	for i, b := range p.Buckets {
		if math.IsNaN(b) || math.IsInf(b, 0) || b <= 0 || (i > 0 && b <= p.Buckets[i-1]) {
			v.fail("monitoring.prometheus.buckets", "must be finite, positive and strictly increasing (item %d is %v)", i, b)
			break
		}
	}
	if o.Endpoint != "" {
		if u, err := url.Parse(o.Endpoint); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			v.fail("monitoring.opentelemetry.endpoint", "must be an http:// or https:// URL such as http://collector:4317, got %q", o.Endpoint)
		}
	}
	if o.Protocol != "" {
		v.oneOf("monitoring.opentelemetry.protocol", o.Protocol, "grpc", "http")
	}
	if !(o.SampleRate >= 0 && o.SampleRate <= 1) {
		v.fail("monitoring.opentelemetry.sample_rate", "must be between 0 and 1, got %v", o.SampleRate)
	}

	v.oneOf("log.level", c.Log.Level, LogDebug, LogInfo, LogWarn, LogError)
	v.oneOf("log.format", c.Log.Format, LogText, LogJSON)

	q := &c.Tenants.DefaultQuota
	if q.Weight <= 0 || q.Weight > 1000 || math.IsNaN(q.Weight) {
		v.fail("tenants.default_quota.weight", "must be greater than 0 and at most 1000, got %g", q.Weight)
	}
	between(&v, "tenants.default_quota.max_running", q.MaxRunning, 0, 1<<30)
	between(&v, "tenants.default_quota.max_queued", q.MaxQueued, 0, 1<<30)
	if q.SubmitRate < 0 || q.SubmitRate > 1e7 || math.IsNaN(q.SubmitRate) {
		v.fail("tenants.default_quota.submit_rate", "must be between 0 (no limit) and 1e7 tasks/s, got %g", q.SubmitRate)
	}
	between(&v, "tenants.default_quota.submit_burst", q.SubmitBurst, 0, 1<<30)
	if q.SubmitRate > 0 && q.SubmitBurst < 1 {
		v.fail("tenants.default_quota.submit_burst", "must be at least 1 when submit_rate is set")
	}
	between(&v, "tenants.default_quota.max_payload_bytes", q.MaxPayloadBytes, 0, 64*MiB)
	between(&v, "tenants.default_quota.max_storage_bytes", q.MaxStorageBytes, 0, 1<<50)
	v.nonNegative("tenants.default_quota.max_task_timeout", q.MaxTaskTimeout)
	pr := &c.Tenants.Cost.Prices
	for key, val := range map[string]float64{"cpu_second_usd": pr.CPUSecondUSD, "gpu_second_usd": pr.GPUSecondUSD, "gb_month_usd": pr.GBMonthUSD, "gb_moved_usd": pr.GBMovedUSD, "task_usd": pr.TaskUSD} {
		if val < 0 || val > 1e9 || math.IsNaN(val) {
			v.fail("tenants.cost.prices."+key, "must be a price between 0 and 1e9 USD, got %g", val)
		}
	}
	v.labels("tenants.cost.tags", c.Tenants.Cost.Tags)
	v.executors(&c.Executors)
	v.ai(&c.AI)
	v.oneOf("proofs.attester", c.Proofs.Attester, "software", "auto", "sgx", "tdx", "sev-snp", "nitro")
	v.auth(&c.Auth)
	v.tls(&c.TLS)
	v.cloud(&c.Cloud)
	v.database(&c.Database, &c.Archive)
	v.events(&c.Events)
	return errors.Join(v.errs...)
}

// validator collects validation errors.
type validator struct {
	c      *Config
	leaves map[string]reflect.Value
	errs   []error
}

// fail records a problem with key, with its origin if the value still is
// the one loaded from there.
func (v *validator) fail(key, format string, args ...any) {
	e := &Error{Key: key, Msg: fmt.Sprintf(format, args...)}
	if o, ok := v.c.origins[key]; ok {
		if f, ok := v.leaves[key]; ok && reflect.DeepEqual(o.val, f.Interface()) {
			e.Line, e.Env, e.File = o.line, o.env, o.file
		}
	}
	v.errs = append(v.errs, e)
}

// nonEmpty checks that s has a non-blank value.
func (v *validator) nonEmpty(key, s string) {
	if strings.TrimSpace(s) == "" {
		v.fail(key, "must not be empty")
	}
}

// oneOf checks that s is one of allowed.
func (v *validator) oneOf(key, s string, allowed ...string) {
	for _, a := range allowed {
		if s == a {
			return
		}
	}
	v.fail(key, "must be one of %s, got %q", strings.Join(allowed, ", "), s)
}

// between checks lo <= n <= hi.
func between[T int | int64](v *validator, key string, n, lo, hi T) {
	if n < lo || n > hi {
		v.fail(key, "must be between %d and %d, got %d", lo, hi, n)
	}
}

// positive checks d > 0.
func (v *validator) positive(key string, d Duration) {
	if d <= 0 {
		v.fail(key, "must be a positive duration, got %s", d)
	}
}

// nonNegative checks d >= 0.
func (v *validator) nonNegative(key string, d Duration) {
	if d < 0 {
		v.fail(key, "must not be negative, got %s", d)
	}
}

// atLeast checks d >= lo.
func (v *validator) atLeast(key string, d Duration, lo time.Duration) {
	if d.Std() < lo {
		v.fail(key, "must be at least %s, got %s", Duration(lo), d)
	}
}

// hostPort checks a host:port address; advertised addresses need a host
// that peers can dial.
func (v *validator) hostPort(key, addr string, advertised bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.fail(key, "must be host:port, got %q", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		v.fail(key, "port must be between 1 and 65535, got %q", port)
	}
	if advertised && (host == "" || unspecified(host)) {
		v.fail(key, "must name a host peers can reach, got %q", addr)
	}
}

// peers checks addresses of other nodes: host:port or an http(s) URL.
func (v *validator) peers(key string, addrs []string) {
	for _, a := range addrs {
		if strings.Contains(a, "://") {
			if u, err := url.Parse(a); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
				v.fail(key, "must be host:port or an http(s) URL, got %q", a)
			}
			continue
		}
		if host, _, err := net.SplitHostPort(a); err != nil || host == "" {
			v.fail(key, "must be host:port or an http(s) URL, got %q", a)
			continue
		}
		v.hostPort(key, a, true)
	}
}

// labels checks label names.
func (v *validator) labels(key string, m map[string]string) {
	for k := range m {
		if strings.TrimSpace(k) == "" {
			v.fail(key, "must not have an empty label name")
		}
	}
}

// validID reports whether s is a usable node id.
func validID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if r != '.' && r != '_' && r != '-' && !('a' <= r && r <= 'z') && !('A' <= r && r <= 'Z') && !('0' <= r && r <= '9') {
			return false
		}
	}
	return true
}

// unspecified reports whether host is a wildcard listen address.
func unspecified(host string) bool {
	ip := net.ParseIP(host)
	return host == "" || (ip != nil && ip.IsUnspecified())
}

// executors checks the executors section.
func (v *validator) executors(e *ExecutorsConfig) {
	wc, hc := &e.Wasm, &e.HTTP
	if wc.ModuleURL != "" {
		if u, err := url.Parse(wc.ModuleURL); err != nil || u.Scheme == "" || (u.Scheme == "file" && (u.Host != "" || !strings.HasPrefix(u.Path, "/"))) {
			v.fail("executors.wasm.module_url", "must be a bucket URL such as file:///var/lib/grey/modules (an absolute path), got %q", wc.ModuleURL)
		}
	}
	between(v, "executors.wasm.max_module_bytes", wc.MaxModuleBytes, 1, 1<<30)
	between(v, "executors.wasm.max_memory_pages", wc.MaxMemoryPages, 1, 65536)
	for t, p := range wc.TenantMaxMemoryPages {
		if !validTenant(t) {
			v.fail("executors.wasm.tenant_max_memory_pages", "%q is not a valid tenant id", t)
		}
		if p < 1 || p > 65536 {
			v.fail("executors.wasm.tenant_max_memory_pages", "tenant %s: must be between 1 and 65536 pages, got %d", t, p)
		}
	}
	between(v, "executors.wasm.max_output_bytes", wc.MaxOutputBytes, 1, 64*MiB)
	v.capabilities("executors.wasm.allow", wc.Allow)
	for t, caps := range wc.TenantAllow {
		if !validTenant(t) {
			v.fail("executors.wasm.tenant_allow", "%q is not a valid tenant id", t)
		}
		v.capabilities("executors.wasm.tenant_allow."+t, caps)
	}
	between(v, "executors.wasm.cache_modules", wc.CacheModules, 1, 100000)
	between(v, "executors.wasm.max_instances", wc.MaxInstances, 1, 100000)
	for _, h := range hc.AllowHosts {
		if msg := hostPatternProblem(h); msg != "" {
			v.fail("executors.http.allow_hosts", "%q: %s", h, msg)
		}
	}
	for t, hosts := range hc.TenantAllowHosts {
		if !validTenant(t) {
			v.fail("executors.http.tenant_allow_hosts", "%q is not a valid tenant id", t)
		}
		for _, h := range hosts {
			if msg := hostPatternProblem(h); msg != "" {
				v.fail("executors.http.tenant_allow_hosts", "tenant %s: %q: %s", t, h, msg)
			}
		}
	}
	between(v, "executors.http.max_response_bytes", hc.MaxResponseBytes, 1, 64*MiB)
}

// validTenant mirrors the tenant id rule (task.ValidTenant), which config
// does not import.
func validTenant(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i, r := range s {
		if !('a' <= r && r <= 'z') && !('0' <= r && r <= '9') && (i == 0 || (r != '-' && r != '_')) {
			return false
		}
	}
	return true
}

// hostPatternProblem says what is wrong with an allow_hosts entry ("" if
// nothing): a host name or IP address, optionally "*." before a name and
// ":port" after.
func hostPatternProblem(h string) string {
	if strings.TrimSpace(h) == "" {
		return "must not be empty"
	}
	if strings.Contains(h, "://") || strings.ContainsAny(h, "/?#@ \t") {
		return "must be a host such as api.example.com, *.example.com or api.example.com:8443, not a URL"
	}
	host := h
	if hp, port, err := net.SplitHostPort(h); err == nil {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "port must be between 1 and 65535"
		}
		host = hp
	}
	host = strings.TrimPrefix(host, "*.")
	if host == "" || strings.Contains(host, "*") {
		return "a wildcard is only allowed as a leading \"*.\""
	}
	return ""
}

// capabilities checks a list of wasm capabilities (clock, random).
func (v *validator) capabilities(key string, caps []string) {
	seen := map[string]bool{}
	for _, a := range caps {
		switch {
		case a != "clock" && a != "random":
			v.fail(key, "must list only clock and random, got %q", a)
		case seen[a]:
			v.fail(key, "lists %q twice", a)
		}
		seen[a] = true
	}
}

package config

import (
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
)

// Node roles.
const (
	// RoleServer runs the API, Raft and the scheduler, but no workers.
	RoleServer = "server"
	// RoleWorker runs workers only, leasing tasks from node.servers.
	RoleWorker = "worker"
	// RoleBoth runs a server and in-process workers (the default).
	RoleBoth = "both"
)

// Log levels and formats.
const (
	// LogDebug, LogInfo, LogWarn and LogError are the values of log.level.
	LogDebug = "debug"
	LogInfo  = "info"
	LogWarn  = "warn"
	LogError = "error"
	// LogText and LogJSON are the values of log.format.
	LogText = "text"
	LogJSON = "json"
)

// MiB is one mebibyte, the unit of the byte-size defaults and limits.
const MiB = 1 << 20

// Config is greyd's whole configuration; its YAML form is grey.yaml.
type Config struct {
	// Node identifies this process and says which parts of Grey it runs.
	Node NodeConfig `yaml:"node"`
	// HTTP configures the REST API listener.
	HTTP HTTPConfig `yaml:"http"`
	// Raft configures the replicated state machine.
	Raft RaftConfig `yaml:"raft"`
	// Tasks holds the limits and timings that apply to every task.
	Tasks TasksConfig `yaml:"tasks"`
	// Worker configures the in-process (or worker-role) task runners.
	Worker WorkerConfig `yaml:"worker"`
	// Monitoring configures metrics and tracing.
	Monitoring MonitoringConfig `yaml:"monitoring"`
	// Log configures the process log.
	Log LogConfig `yaml:"log"`
	// Tenants configures tenancy, default quotas and cost attribution.
	Tenants TenantsConfig `yaml:"tenants"`
	// Executors configures the wasm and http task kinds (docs/EXECUTORS.md).
	Executors ExecutorsConfig `yaml:"executors"`
	// AI configures the model registry and the inference kind.
	AI AIConfig `yaml:"ai"`
	// Proofs configures signed execution proofs (docs/PROOFS.md).
	Proofs ProofsConfig `yaml:"proofs"`
	// Auth configures who may call Grey and as which tenant (docs/AUTH.md).
	Auth AuthConfig `yaml:"auth"`
	// TLS configures the API's TLS and mutual TLS between nodes.
	TLS TLSConfig `yaml:"tls"`
	// Cloud is the seed's cloud block: provider, region and cost tags for
	// the blob drivers (docs/BLOB.md).
	Cloud CloudConfig `yaml:"cloud"`
	// Database is the seed's database block: the archive's driver
	// (docs/ARCHIVE.md).
	Database DatabaseConfig `yaml:"database"`
	// Archive tunes the pipeline from the Raft state to the archive.
	Archive ArchiveConfig `yaml:"archive"`
	// Events configures the event streams: Kafka and RabbitMQ as task
	// sources and result sinks (docs/EVENTS.md).
	Events EventsConfig `yaml:"events"`

	// origins records where loaded values came from, for error messages.
	origins map[string]origin
}

// NodeConfig identifies the node.
type NodeConfig struct {
	// ID is the node's stable identity (the Raft server id).
	ID string `yaml:"id"`
	// DataDir holds Raft's log and snapshots, keys and file blobs.
	DataDir string `yaml:"data_dir"`
	// Role is RoleServer, RoleWorker or RoleBoth.
	Role string `yaml:"role"`
	// Servers are the API addresses (host:port or http(s) URLs) a worker-role
	// node leases tasks from; only valid with RoleWorker.
	Servers []string `yaml:"servers"`
	// Labels describe the node to the scheduler (e.g. gpu: "true").
	Labels map[string]string `yaml:"labels"`
	// Credentials authenticate a worker-role node to the servers.
	Credentials NodeCredentials `yaml:"credentials"`
}

// HTTPConfig configures the REST API listener.
type HTTPConfig struct {
	// Addr is the listen address (host:port).
	Addr string `yaml:"addr"`
	// Advertise is the API base URL other nodes use to reach this one
	// (default http://<addr>; required when addr listens on all interfaces).
	Advertise string `yaml:"advertise"`
	// MaxBodyBytes bounds a request body.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ReadTimeout bounds reading one request.
	ReadTimeout Duration `yaml:"read_timeout"`
	// ShutdownGrace is how long in-flight requests may finish on shutdown.
	ShutdownGrace Duration `yaml:"shutdown_grace"`
	// AdminToken, when set, is the bearer token of the admin API.
	AdminToken Secret `yaml:"admin_token"`
}

// RaftConfig configures the Raft node.
type RaftConfig struct {
	// Addr is the Raft transport's listen address (host:port).
	Addr string `yaml:"addr"`
	// Advertise is the address peers dial; "" means Addr.
	Advertise string `yaml:"advertise"`
	// Bootstrap forms a one-voter cluster when there is no state yet.
	Bootstrap bool `yaml:"bootstrap"`
	// Join lists API addresses of existing members to join through.
	Join []string `yaml:"join"`
	// SnapshotThreshold is how many log entries trigger a snapshot.
	SnapshotThreshold uint64 `yaml:"snapshot_threshold"`
	// SnapshotInterval is how often the threshold is checked.
	SnapshotInterval Duration `yaml:"snapshot_interval"`
	// SnapshotRetain is how many snapshots are kept.
	SnapshotRetain int `yaml:"snapshot_retain"`
	// HeartbeatTimeout is how long a follower waits for the leader.
	HeartbeatTimeout Duration `yaml:"heartbeat_timeout"`
	// ElectionTimeout is how long a candidate waits before a new election.
	ElectionTimeout Duration `yaml:"election_timeout"`
	// LeaderLeaseTimeout is how long a leader stays without a quorum contact.
	LeaderLeaseTimeout Duration `yaml:"leader_lease_timeout"`
	// MaxAppendEntries bounds entries per append batch (one fsync each).
	MaxAppendEntries int `yaml:"max_append_entries"`
	// DeadServerTimeout removes a server the leader could not reach for
	// this long, while the rest keep quorum (0 = never).
	DeadServerTimeout Duration `yaml:"dead_server_timeout"`
	// Backup configures periodic snapshot backups to a blob bucket.
	Backup BackupConfig `yaml:"backup"`
}

// BackupConfig configures periodic snapshot backups: while a server leads,
// it writes a snapshot file grey-snapshot-<UTC time>-<index>.snap to the
// bucket every interval and deletes the oldest beyond retain.
type BackupConfig struct {
	// URL is the bucket (gocloud.dev blob URL, e.g. file:///var/backups/grey);
	// "" turns backups off.
	URL string `yaml:"url"`
	// Interval is the time between backups.
	Interval Duration `yaml:"interval"`
	// Retain is how many backup files are kept.
	Retain int `yaml:"retain"`
}

// TasksConfig holds limits and timings that apply to every task.
type TasksConfig struct {
	// MaxPayloadBytes bounds an inline task payload; a result larger than
	// it is stored in the task data bucket and referenced (result_ref).
	MaxPayloadBytes int64 `yaml:"max_payload_bytes"`
	// DataURL is the bucket of large task data (gocloud.dev blob URL:
	// file://, s3://, gs://, azblob://): payloads named by payload_ref,
	// uploads and stored results, under tenants/<id>/. "" means
	// file://<node.data_dir>/taskdata. Servers of one cluster should share
	// a bucket (and, for file://, the signing key <node.data_dir>/taskdata.key).
	DataURL string `yaml:"data_url"`
	// MaxDataBytes bounds one payload or result object in the bucket.
	MaxDataBytes int64 `yaml:"max_data_bytes"`
	// Retention is how long a finished task stays in Raft after archiving.
	Retention Duration `yaml:"retention"`
	// GCInterval is how often expired tasks are collected.
	GCInterval Duration `yaml:"gc_interval"`
	// DefaultTimeout applies to a task that sets none.
	DefaultTimeout Duration `yaml:"default_timeout"`
	// MaxTimeout is the largest timeout a task may ask for.
	MaxTimeout Duration `yaml:"max_timeout"`
	// LeaseTTL is how long a worker's lease lasts without a heartbeat.
	LeaseTTL Duration `yaml:"lease_ttl"`
	// MaxDependsOn bounds a task's depends_on list.
	MaxDependsOn int `yaml:"max_depends_on"`
	// Kinds are task kinds accepted at submit besides the built-in ones and
	// those a connected worker has asked for (custom worker kinds that may
	// be submitted before their worker starts).
	Kinds []string `yaml:"kinds"`
	// FairShare serves tenants by weighted deficit round robin (default
	// true); false dispatches in one global priority/age order, a FIFO
	// baseline for benchmarks.
	FairShare bool `yaml:"fair_share"`
	// SubmitSlotsPerTenant is how many submit requests of one tenant a
	// server decodes and applies at once; the rest wait. 1 (the default)
	// keeps a tenant flooding large batches from delaying the others.
	SubmitSlotsPerTenant int `yaml:"submit_slots_per_tenant"`
	// Retry is the default retry policy.
	Retry RetryConfig `yaml:"retry"`
}

// RetryConfig is an exponential-backoff retry policy.
type RetryConfig struct {
	// MaxRetries is how many times a failed task is retried (0 = never).
	MaxRetries int `yaml:"max_retries"`
	// BaseDelay is the delay before the first retry.
	BaseDelay Duration `yaml:"base_delay"`
	// MaxDelay caps the delay between retries.
	MaxDelay Duration `yaml:"max_delay"`
}

// WorkerConfig configures task runners.
type WorkerConfig struct {
	// Enabled runs in-process workers on a RoleBoth node.
	Enabled bool `yaml:"enabled"`
	// Concurrency is how many tasks run at once.
	Concurrency int `yaml:"concurrency"`
	// Kinds restricts the task kinds run here; empty means all built-in kinds.
	Kinds []string `yaml:"kinds"`
	// Labels are matched against task constraints, on top of node.labels.
	Labels map[string]string `yaml:"labels"`
	// LeaseBatch bounds how many tasks one lease request takes.
	LeaseBatch int `yaml:"lease_batch"`
	// ShutdownGrace is how long running tasks may finish on shutdown.
	ShutdownGrace Duration `yaml:"shutdown_grace"`
}

// MonitoringConfig configures metrics and tracing.
type MonitoringConfig struct {
	// Prometheus configures the metrics endpoint.
	Prometheus PrometheusConfig `yaml:"prometheus"`
	// OpenTelemetry configures trace export.
	OpenTelemetry OpenTelemetryConfig `yaml:"opentelemetry"`
}

// PrometheusConfig configures the Prometheus metrics endpoint.
type PrometheusConfig struct {
	// Enabled serves metrics.
	Enabled bool `yaml:"enabled"`
	// Port is the metrics listener's port.
	Port int `yaml:"port"`
	// Host is the metrics listener's host ("" = all interfaces).
	Host string `yaml:"host"`
	// Path is the metrics URL path.
	Path string `yaml:"path"`
	// Buckets are the task-duration histogram buckets, in seconds.
	Buckets []float64 `yaml:"buckets"`
	// IncludeTenantLabels puts tenant ids in the tenant label of the
	// grey_* families; false sets it to "" everywhere (aggregated), for
	// clusters with many tenants (label cardinality).
	IncludeTenantLabels bool `yaml:"include_tenant_labels"`
	// Pprof serves Go profiles under /debug/pprof/ on the metrics
	// listener. Beyond loopback it needs authentication on (then an admin
	// credential is required to read them) or pprof off.
	Pprof bool `yaml:"pprof"`
}

// OpenTelemetryConfig configures OpenTelemetry trace export.
type OpenTelemetryConfig struct {
	// Endpoint is the OTLP collector URL; "" disables export.
	Endpoint string `yaml:"endpoint"`
	// Protocol is the OTLP transport, "grpc" or "http"; "" picks HTTP for
	// an endpoint on port 4318 or with a /v1/traces path, gRPC otherwise.
	Protocol string `yaml:"protocol"`
	// SampleRate is the fraction of traces sampled, 0 to 1.
	SampleRate float64 `yaml:"sample_rate"`
}

// LogConfig configures the process log.
type LogConfig struct {
	// Level is LogDebug, LogInfo, LogWarn or LogError.
	Level string `yaml:"level"`
	// Format is LogText or LogJSON.
	Format string `yaml:"format"`
}

// Default returns the embedded configuration: one node running server and
// workers, data in ./grey-data, the API on 127.0.0.1:8080 and metrics on
// 127.0.0.1:9090/metrics.
func Default() *Config {
	return &Config{
		Node: NodeConfig{ID: "node-1", DataDir: "./grey-data", Role: RoleBoth},
		HTTP: HTTPConfig{
			Addr:          "127.0.0.1:8080",
			MaxBodyBytes:  8 * MiB,
			ReadTimeout:   Duration(30 * time.Second),
			ShutdownGrace: Duration(30 * time.Second),
		},
		Raft: RaftConfig{
			Addr:               "127.0.0.1:7000",
			Bootstrap:          true,
			SnapshotThreshold:  8192,
			SnapshotInterval:   Duration(2 * time.Minute),
			SnapshotRetain:     2,
			HeartbeatTimeout:   Duration(time.Second),
			ElectionTimeout:    Duration(time.Second),
			LeaderLeaseTimeout: Duration(500 * time.Millisecond),
			MaxAppendEntries:   1024,
			DeadServerTimeout:  Duration(10 * time.Minute),
			Backup:             BackupConfig{Interval: Duration(time.Hour), Retain: 24},
		},
		Tasks: TasksConfig{
			MaxPayloadBytes: 1 * MiB,
			MaxDataBytes:    64 * MiB,
			Retention:       Duration(24 * time.Hour),
			GCInterval:      Duration(time.Minute),
			DefaultTimeout:  Duration(5 * time.Minute),
			MaxTimeout:      Duration(24 * time.Hour),
			LeaseTTL:        Duration(30 * time.Second),
			MaxDependsOn:    100,
			FairShare:       true,

			SubmitSlotsPerTenant: 1,
			Retry: RetryConfig{
				MaxRetries: 5,
				BaseDelay:  Duration(100 * time.Millisecond),
				MaxDelay:   Duration(30 * time.Second),
			},
		},
		Auth: AuthConfig{Mode: AuthModes{"none"}, OIDC: defaultOIDC(), SAML: defaultSAML(), Claims: defaultClaims()},
		Worker: WorkerConfig{
			Enabled:       true,
			Concurrency:   256,
			LeaseBatch:    256,
			ShutdownGrace: Duration(30 * time.Second),
		},
		Monitoring: MonitoringConfig{
			Prometheus: PrometheusConfig{
				Enabled:             true,
				Port:                9090,
				Host:                "127.0.0.1",
				Path:                "/metrics",
				Buckets:             []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
				IncludeTenantLabels: true,
				Pprof:               true,
			},
			OpenTelemetry: OpenTelemetryConfig{SampleRate: 0.1},
		},
		Log: LogConfig{Level: LogInfo, Format: LogText},
		Tenants: TenantsConfig{
			AutoCreate:    true,
			EnforceQuotas: true,
			DefaultQuota:  QuotaConfig{Weight: 1},
			Cost:          CostConfig{Environment: "development"},
		},
		Executors: ExecutorsConfig{
			Wasm: WasmConfig{MaxModuleBytes: 32 * MiB, MaxMemoryPages: 256, MaxOutputBytes: 1 * MiB, CacheModules: 64, MaxInstances: 64},
			HTTP: HTTPExecutorConfig{MaxResponseBytes: 1 * MiB},
		},
		AI:     defaultAI(),
		Proofs: ProofsConfig{Enabled: true, Attester: "software"},
		// The seed's quorum; over one database every level is that one.
		Database: DatabaseConfig{Postgres: PostgresConfig{Quorum: QuorumMajority, AntiEntropy: Duration(10 * time.Minute)}},
		Events:   defaultEvents(),
	}
}

// MetricsAddr is the Prometheus listener's address, host:port.
func (c *Config) MetricsAddr() string {
	return net.JoinHostPort(c.Monitoring.Prometheus.Host, strconv.Itoa(c.Monitoring.Prometheus.Port))
}

// APIAdvertise is the API base URL other nodes use for this one
// (https:// when the API serves TLS).
func (c *Config) APIAdvertise() string {
	if c.HTTP.Advertise != "" {
		return strings.TrimRight(c.HTTP.Advertise, "/")
	}
	if c.TLS.APIEnabled() {
		return "https://" + c.HTTP.Addr
	}
	return "http://" + c.HTTP.Addr
}

// SetMetricsAddr sets the Prometheus listener from host:port (the
// --metrics-addr flag).
func (c *Config) SetMetricsAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port: %w", err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("port %q is not a number", port)
	}
	c.Monitoring.Prometheus.Host, c.Monitoring.Prometheus.Port = host, n
	return nil
}

// WriteEffective writes the configuration as YAML, with secrets masked (for
// greyd --print-config). Any literal "${" is written as "$${", so the output
// loads back to the same configuration.
func (c *Config) WriteEffective(w io.Writer) error {
	out, err := yaml.MarshalWithOptions(c, yaml.Indent(2), yaml.IndentSequence(true))
	if err != nil {
		return fmt.Errorf("config: encode: %w", err)
	}
	if _, err := w.Write(escape(out)); err != nil {
		return fmt.Errorf("config: write: %w", err)
	}
	return nil
}

// TenantsConfig configures tenancy.
type TenantsConfig struct {
	// AutoCreate creates an unknown tenant, with the default quota, on its
	// first submit (dev mode, the default); false refuses unknown tenants.
	AutoCreate bool `yaml:"auto_create"`
	// EnforceQuotas applies tenants' quotas (default true; false is a
	// benchmark baseline).
	EnforceQuotas bool `yaml:"enforce_quotas"`
	// DefaultQuota is the quota of auto-created tenants.
	DefaultQuota QuotaConfig `yaml:"default_quota"`
	// Cost configures cost attribution.
	Cost CostConfig `yaml:"cost"`
}

// QuotaConfig is a tenant quota in the config file (0 = no limit).
type QuotaConfig struct {
	// Weight is the fair-share weight (default 1).
	Weight float64 `yaml:"weight"`
	// MaxRunning bounds leased + running tasks.
	MaxRunning int `yaml:"max_running"`
	// MaxQueued bounds unfinished tasks.
	MaxQueued int `yaml:"max_queued"`
	// SubmitRate is tasks per second.
	SubmitRate float64 `yaml:"submit_rate"`
	// SubmitBurst is the burst in tasks.
	SubmitBurst int `yaml:"submit_burst"`
	// MaxPayloadBytes bounds one payload (0 = tasks.max_payload_bytes).
	MaxPayloadBytes int64 `yaml:"max_payload_bytes"`
	// MaxStorageBytes bounds payload + result bytes held.
	MaxStorageBytes int64 `yaml:"max_storage_bytes"`
	// AllowedKinds restricts kinds (all when empty).
	AllowedKinds []string `yaml:"allowed_kinds"`
	// MaxTaskTimeout bounds a task's timeout (0 = tasks.max_timeout).
	MaxTaskTimeout Duration `yaml:"max_task_timeout"`
}

// CostConfig configures cost attribution.
type CostConfig struct {
	// Environment is the grey-environment cost tag.
	Environment string `yaml:"environment"`
	// Tags are extra cost tags on every task (the seed's cost_tags).
	Tags map[string]string `yaml:"tags"`
	// Prices is the price table in USD.
	Prices PricesConfig `yaml:"prices"`
}

// PricesConfig is the price table.
type PricesConfig struct {
	// CPUSecondUSD is the price of one CPU-second.
	CPUSecondUSD float64 `yaml:"cpu_second_usd"`
	// GPUSecondUSD is the price of one GPU-second (seconds × requested
	// GPUs).
	GPUSecondUSD float64 `yaml:"gpu_second_usd"`
	// GBMonthUSD is the price of storing 1 GB for 30 days.
	GBMonthUSD float64 `yaml:"gb_month_usd"`
	// GBMovedUSD is the price of moving 1 GB in or out.
	GBMovedUSD float64 `yaml:"gb_moved_usd"`
	// TaskUSD is the price of one task.
	TaskUSD float64 `yaml:"task_usd"`
}

// ProofsConfig configures signed execution proofs (issue #4; see
// docs/PROOFS.md).
type ProofsConfig struct {
	// Enabled asks workers to sign a proof for every completed task (tasks
	// and tenants may override with require_proof).
	Enabled bool `yaml:"enabled"`
	// KeyFile is the node's ed25519 key, created on first start with mode
	// 0600 ("" = <data_dir>/node.key; worker-only nodes
	// <data_dir>/worker-<node id>.key).
	KeyFile string `yaml:"key_file"`
	// Attester is the platform attester: software, auto (the detected TEE,
	// else software), sgx, tdx, sev-snp or nitro.
	Attester string `yaml:"attester"`
}

// KeyPath is the node key's path: proofs.key_file, else node.key in the
// data dir, or worker-<node id>.key for a worker-only node (which may share
// a data dir, e.g. the default ./grey-data, with a server or other workers).
func (c *Config) KeyPath() string {
	if c.Proofs.KeyFile != "" {
		return c.Proofs.KeyFile
	}
	if c.Node.Role == RoleWorker {
		return filepath.Join(c.Node.DataDir, "worker-"+c.Node.ID+".key")
	}
	return filepath.Join(c.Node.DataDir, "node.key")
}

// ExecutorsConfig configures the wasm and http task kinds (issue #4; see
// docs/EXECUTORS.md).
type ExecutorsConfig struct {
	// Wasm configures the wasm kind and the module store.
	Wasm WasmConfig `yaml:"wasm"`
	// HTTP configures the http kind.
	HTTP HTTPExecutorConfig `yaml:"http"`
}

// WasmConfig configures the wasm kind: WebAssembly (WASI) modules uploaded
// to the module store, run on wazero.
type WasmConfig struct {
	// ModuleURL is the module store's bucket (gocloud.dev blob URL); ""
	// means file://<node.data_dir>/modules. Servers of one cluster should
	// share a bucket; otherwise followers fetch modules from the leader.
	ModuleURL string `yaml:"module_url"`
	// MaxModuleBytes bounds an uploaded module.
	MaxModuleBytes int64 `yaml:"max_module_bytes"`
	// MaxMemoryPages bounds a module instance's memory, in 64 KiB pages
	// (256 = 16 MiB; at most 65536).
	MaxMemoryPages int `yaml:"max_memory_pages"`
	// TenantMaxMemoryPages overrides max_memory_pages per tenant.
	TenantMaxMemoryPages map[string]int `yaml:"tenant_max_memory_pages"`
	// MaxOutputBytes bounds a module's stdout (its result).
	MaxOutputBytes int64 `yaml:"max_output_bytes"`
	// Allow lists the capabilities every tenant's tasks may ask for: clock,
	// random. Empty: modules get wazero's deterministic fake clock and
	// randomness.
	Allow []string `yaml:"allow"`
	// TenantAllow adds capabilities per tenant, e.g. {acme: [clock]}.
	TenantAllow map[string][]string `yaml:"tenant_allow"`
	// CacheModules bounds the compiled modules kept in memory.
	CacheModules int `yaml:"cache_modules"`
	// MaxInstances bounds the module instances running at once on a node
	// (each may hold up to max_memory_pages of memory); tasks over it wait
	// for one to end. It keeps wasm's memory bounded when worker.concurrency
	// is set high for tasks that mostly wait (http, noop).
	MaxInstances int `yaml:"max_instances"`
	// CacheDir, when set, keeps wazero's compiled code on disk there, so
	// restarts skip compiling; "" keeps it in memory only.
	CacheDir string `yaml:"cache_dir"`
}

// HTTPExecutorConfig configures the http kind. Requests may only go to
// allowed hosts, and never to private, loopback or link-local addresses
// unless AllowPrivate.
type HTTPExecutorConfig struct {
	// AllowHosts are the hosts every tenant's tasks may call: exact names
	// or IP addresses, "*.example.com" for subdomains, each optionally
	// with ":port". Empty (and no tenant entry): the http kind refuses
	// every URL.
	AllowHosts []string `yaml:"allow_hosts"`
	// TenantAllowHosts adds hosts per tenant (moves to the tenant quota
	// later).
	TenantAllowHosts map[string][]string `yaml:"tenant_allow_hosts"`
	// AllowPrivate permits private, loopback and link-local addresses.
	AllowPrivate bool `yaml:"allow_private"`
	// MaxResponseBytes bounds a response body (the task's result).
	MaxResponseBytes int64 `yaml:"max_response_bytes"`
}

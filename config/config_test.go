package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// env is a lookupEnv over kv pairs.
func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// wantErr fails unless err is non-nil and its message contains every part.
func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

// effective is c.WriteEffective as a string.
func effective(t *testing.T, c *Config) string {
	t.Helper()
	var b bytes.Buffer
	if err := c.WriteEffective(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestDefaultIsValid(t *testing.T) {
	t.Parallel()
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := c.MetricsAddr(); got != "127.0.0.1:9090" {
		t.Errorf("MetricsAddr = %q", got)
	}
	if !c.Raft.Bootstrap || c.Node.Role != RoleBoth {
		t.Errorf("unexpected defaults: %+v", c.Raft)
	}
	// No file at all is the embedded default, plus environment overrides.
	d, err := Load("", env("GREY_NODE_ID", "n7"))
	if err != nil {
		t.Fatal(err)
	}
	if d.Node.ID != "n7" || d.HTTP.Addr != "127.0.0.1:8080" {
		t.Errorf("Load(\"\") = %+v", d.Node)
	}
}

const fullYAML = `
node:
  id: w-3
  data_dir: /var/lib/grey
  role: worker
  servers: [10.0.0.1:8080, "https://grey.example.com"]
  labels: {gpu: "true", zone: eu-1}
  credentials:
    token_file: /var/run/grey/token
    oauth2: {scopes: [grey]}
http:
  addr: 0.0.0.0:8443
  max_body_bytes: 16777216
  read_timeout: 10s
  shutdown_grace: 1m
  admin_token: ""
  advertise: https://w-3.grey:8443
raft:
  addr: 0.0.0.0:7100
  advertise: w-3.grey:7100
  bootstrap: false
  join: [s-1.grey:8080]
  snapshot_threshold: 100
  snapshot_interval: 30s
  snapshot_retain: 3
  heartbeat_timeout: 2s
  election_timeout: 3s
  leader_lease_timeout: 1s
  max_append_entries: 64
  dead_server_timeout: 1m
  backup:
    url: file:///var/backups/grey
    interval: 10m
    retain: 5
tasks:
  max_payload_bytes: 2097152
  data_url: file:///var/lib/grey/taskdata
  max_data_bytes: 1048576
  retention: 1h30m
  gc_interval: 10s
  default_timeout: 1m
  max_timeout: 2h
  lease_ttl: 15s
  max_depends_on: 10
  kinds: [resize]
  fair_share: false
  submit_slots_per_tenant: 3
  retry:
    max_retries: 0
    base_delay: 1s
    max_delay: 1s
worker:
  enabled: false
  concurrency: 8
  kinds: [noop, http]
  labels: {tee: sgx}
  lease_batch: 16
  shutdown_grace: 0s
monitoring:
  prometheus:
    enabled: false
    port: 9100
    host: ""
    path: /m
    buckets: [0.5, 1]
    include_tenant_labels: false
    pprof: false
  opentelemetry:
    endpoint: http://collector:4317
    protocol: grpc
    sample_rate: 1
log:
  level: debug
  format: json
tenants:
  auto_create: false
  enforce_quotas: false
  default_quota:
    weight: 2
    max_running: 10
    max_queued: 1000
    submit_rate: 50
    submit_burst: 100
    max_payload_bytes: 4096
    max_storage_bytes: 1000000
    allowed_kinds: [noop]
    max_task_timeout: 1m
  cost:
    environment: production
    tags: {project: grey, team: platform}
    prices: {cpu_second_usd: 0.00001, gpu_second_usd: 0.0005, gb_month_usd: 0.023, gb_moved_usd: 0.09, task_usd: 0.000001}
executors:
  wasm:
    module_url: file:///var/lib/grey/modules
    max_module_bytes: 1048576
    max_memory_pages: 64
    tenant_max_memory_pages: {acme: 512}
    max_output_bytes: 65536
    allow: [clock, random]
    tenant_allow: {acme: [clock]}
    cache_modules: 8
    max_instances: 8
    cache_dir: /var/cache/grey/wasm
  http:
    allow_hosts: [api.example.com, "*.hooks.example.com:8443"]
    tenant_allow_hosts: {acme: [api.acme.com]}
    allow_private: true
    max_response_bytes: 4096
ai:
  model_registry: s3://models
  max_model_bytes: 104857600
  inference_timeout: 45s
  runtimes:
    - name: torch
      url: python:///usr/bin/python3?device=auto
      frameworks: [pytorch]
    - name: triton
      url: oip+http://triton:8000
      frameworks: [pytorch, tensorflow]
  cache_bytes: 1073741824
  cache_dir: /var/cache/grey/models
  concurrency: 128
  batching:
    max_batch_size: 64
    max_queue_delay: 5ms
    models: {resnet: {max_batch_size: 16, max_queue_delay: 1ms}}
  tenant_models: {acme: [resnet]}
proofs:
  enabled: false
  key_file: /etc/grey/node.key
  attester: auto
database:
  postgres:
    url: postgres://grey@db.internal:5432/grey?sslmode=verify-full
    pool_size: 40
    quorum: one
    read_urls: [postgres://grey@replica.internal:5432/grey]
    migrate_url: postgres://grey_owner@db.internal:5432/grey
    migrate: true
archive:
  batch_size: 500
  max_backlog: 5000
  retention: 2160h
cloud:
  provider: gcp
  region: europe-west1
  project: grey-prod
  subscription_id: abc-123
  environment: prod-eu
  cost_tags: {project: grey, cost-center: "42"}
auth:
  mode: [oidc, apikey]
  insecure_none_beyond_loopback: true
  audit:
    sink: /var/log/grey/audit.log
  oidc:
    provider: keycloak
    issuer: https://sso.example.com/realms/grey
    audience: [grey]
    algorithms: [ES256]
    leeway: 10s
    jwks_refresh_interval: 30s
    jwks_max_age: 10m
    token_cache_size: 500
    ca_file: /etc/grey/idp-ca.pem
  saml:
    root_url: https://grey.example.com
    entity_id: grey
    idp_metadata: https://sso.example.com/realms/grey/protocol/saml/descriptor
    cert_file: /etc/grey/saml.crt
    key_file: /etc/grey/saml.key
    session_key_file: /etc/grey/session.key
    session_ttl: 1h
    cookie_name: grey_sso
  claims:
    permissions: perms
    tenant: tenant_id
    roles: roles
    username: email
    bindings:
      - {claim: groups, value: acme-*, tenant: acme, role: worker, kinds: [wasm]}
tls:
  cert_file: /etc/grey/tls/api.crt
  key_file: /etc/grey/tls/api.key
  ca_file: /etc/grey/tls/ca.crt
  require_client_cert: true
  node_cert_file: /etc/grey/tls/node.crt
  node_key_file: /etc/grey/tls/node.key
events:
  kafka:
    brokers: [kafka-1:9092, kafka-2:9092]
    group: grey-eu
    source: true
    sink: true
    transactional: true
    lifecycle: [all]
    compression: lz4
    topics_regex: ^grey\.tasks\.(acme|globex)$
    sasl:
      mechanism: SCRAM-SHA-512
      username: grey
      password: kafka-secret
    tls:
      enabled: true
      ca_file: /etc/grey/kafka-ca.pem
  rabbitmq:
    url: amqps://grey@rabbit:5671/grey
    source: true
    sink: true
    lifecycle: [running, retrying, terminal]
    confirm_timeout: 10s
    prefetch: 100
    queue_type: classic
    delivery_limit: 3
    max_priority: 10
    tls:
      ca_file: /etc/grey/rabbit-ca.pem
`

func TestFullFileRoundTrips(t *testing.T) {
	t.Parallel()
	c, err := LoadBytes([]byte(fullYAML), "grey.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"node.servers", c.Node.Servers, []string{"10.0.0.1:8080", "https://grey.example.com"}},
		{"node.labels", c.Node.Labels, map[string]string{"gpu": "true", "zone": "eu-1"}},
		{"tasks.retention", c.Tasks.Retention.Std(), 90 * time.Minute},
		{"proofs", c.Proofs, ProofsConfig{Enabled: false, KeyFile: "/etc/grey/node.key", Attester: "auto"}},
		{"worker.shutdown_grace", c.Worker.ShutdownGrace, Duration(0)},
		{"monitoring.prometheus.buckets", c.Monitoring.Prometheus.Buckets, []float64{0.5, 1}},
		{"monitoring.prometheus.include_tenant_labels", c.Monitoring.Prometheus.IncludeTenantLabels, false},
		{"metrics addr", c.MetricsAddr(), ":9100"},
		{"log.format", c.Log.Format, LogJSON},
	}
	for _, tc := range checks {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.name, tc.got, tc.want)
		}
	}
	// Every key in the file is a leaf the file changed from its default.
	leaves, def := leafValues(c), leafValues(Default())
	for key, v := range leaves {
		// One credential at a time: the others are checked in
		// TestNodeCredentials.
		other := strings.HasPrefix(key, "node.credentials.") && key != "node.credentials.token_file" && key != "node.credentials.oauth2.scopes"
		// One archive at a time: the other database blocks, the
		// composites and archive.url are checked in TestArchiveBlocks.
		other = other || strings.HasPrefix(key, "database.cassandra.") || strings.HasPrefix(key, "database.mongodb.") ||
			key == "database.postgres.replicas" || key == "database.postgres.shards" || key == "database.postgres.read_quorum" || key == "database.postgres.anti_entropy" || key == "database.postgres.anti_entropy_full" || key == "archive.url"
		if key != "http.admin_token" && !other && reflect.DeepEqual(v.Interface(), def[key].Interface()) {
			t.Errorf("%s: fullYAML leaves the default %v", key, v)
		}
	}
	out := effective(t, c)
	c2, err := LoadBytes([]byte(out), "effective.yaml", nil)
	if err != nil {
		t.Fatalf("reloading effective config: %v\n%s", err, out)
	}
	c.origins, c2.origins = nil, nil
	// The effective config masks secrets: that one cannot round-trip.
	if string(c2.Events.Kafka.SASL.Password) != mask {
		t.Errorf("events.kafka.sasl.password printed as %q, want it masked", c2.Events.Kafka.SASL.Password)
	}
	c2.Events.Kafka.SASL.Password = c.Events.Kafka.SASL.Password
	if !reflect.DeepEqual(c, c2) {
		t.Errorf("round trip changed the config:\n%+v\n%+v", c, c2)
	}
}

func TestExampleFileLoads(t *testing.T) {
	t.Parallel()
	c, err := Load("grey.example.yaml", env("GREY_ZONE", "eu-2"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.Labels["zone"] != "eu-2" {
		t.Errorf("zone = %q", c.Node.Labels["zone"])
	}
	// The example documents every key.
	data, err := os.ReadFile("grey.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		t.Fatal(err)
	}
	keys := newKeyIndex()
	ast.Walk(keys, f.Docs[0].Body)
	for key := range leafValues(c) {
		if keys.lines[key] == 0 {
			t.Errorf("grey.example.yaml lacks %s", key)
		}
	}
	// Apart from the labels it sets, the example is the default.
	c.Node.Labels, c.Worker.Labels = nil, nil
	if got, want := effective(t, c), effective(t, Default()); got != want {
		t.Errorf("example differs from Default:\n%s", got)
	}
}

func TestExpand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src string
		env       func(string) (string, bool)
		wantID    string
		wantErr   []string
	}{
		{"set", "node:\n  id: ${ID}\n", env("ID", "a-1"), "a-1", nil},
		{"inside text", "node:\n  id: n-${N}-x\n", env("N", "7"), "n-7-x", nil},
		{"default when unset", "node:\n  id: ${ID:-dflt}\n", nil, "dflt", nil},
		{"default when empty", "node:\n  id: ${ID:-dflt}\n", env("ID", ""), "dflt", nil},
		{"set wins over default", "node:\n  id: ${ID:-dflt}\n", env("ID", "real"), "real", nil},
		{"typed after expansion", "monitoring:\n  prometheus:\n    port: ${P}\n", env("P", "9191"), "node-1", nil},
		{"escaped", "node:\n  labels: {a: \"$${X}\"}\n", nil, "node-1", nil},
		{"comment line ignored", "# id: ${NOPE}\nnode:\n  # ${NOPE}\n  id: x\n", nil, "x", nil},
		{"unset", "node:\n  data_dir: /d\n  id: ${GREY_NODE_NAME}\n", nil, "", []string{"grey.yaml:3:7:", "GREY_NODE_NAME", "not set"}},
		{"unset in trailing comment", "node:\n  id: x # ${NOPE}\n", nil, "", []string{"grey.yaml:2:11:", "NOPE"}},
		{"two unset", "node:\n  id: ${A}\n  data_dir: ${B}\n", nil, "", []string{"grey.yaml:2:7:", "A is not set", "grey.yaml:3:13:", "B is not set"}},
		{"bad name", "node:\n  id: ${1X}\n", nil, "", []string{"grey.yaml:2:7:", `invalid environment variable name "1X"`}},
		{"unterminated", "node:\n  id: ${X\n", env("X", "x"), "", []string{"grey.yaml:2:7:", "unterminated"}},
		{"line break injected", "node:\n  id: ${X}\n", env("X", "a\nb: c"), "", []string{"grey.yaml:2:7:", "X contains a line break"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := LoadBytes([]byte(tc.src), "grey.yaml", tc.env)
			if tc.wantErr != nil {
				wantErr(t, err, tc.wantErr...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Node.ID != tc.wantID {
				t.Errorf("node.id = %q, want %q", c.Node.ID, tc.wantID)
			}
		})
	}
	c, err := LoadBytes([]byte("node:\n  labels: {a: \"$${X}\"}\nmonitoring:\n  prometheus:\n    port: ${P}\n"), "", env("P", "9191"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.Labels["a"] != "${X}" || c.Monitoring.Prometheus.Port != 9191 {
		t.Errorf("labels %v, port %d", c.Node.Labels, c.Monitoring.Prometheus.Port)
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src string
		want      []string
	}{
		{"unknown top-level key", "node:\n  id: a\nfoo: 1\n", []string{"grey.yaml:3:1:", `unknown field "foo"`}},
		{"unknown nested key", "tasks:\n  retry:\n    max_retrys: 3\n", []string{"grey.yaml:3:5:", "tasks.retry.max_retrys", `unknown field "max_retrys"`}},
		{"seed section not built", "database:\n  redis:\n    url: x\n", []string{"grey.yaml:2:3:", "database.redis", "not built yet"}},
		{"postgres url not a postgres URL", "database:\n  postgres:\n    url: x\n", []string{"database.postgres.url", "postgres:// URL"}},
		{"bad duration", "tasks:\n  retry:\n    base_delay: 5 seconds\n", []string{"grey.yaml:3:17:", "tasks.retry.base_delay", "duration"}},
		{"duration without unit", "http:\n  read_timeout: 30\n", []string{"grey.yaml:2:17:", "http.read_timeout", "missing unit"}},
		{"duration as list", "http:\n  read_timeout: [1s]\n", []string{"grey.yaml:2:17:", "http.read_timeout", "must be a duration"}},
		{"string for int", "worker:\n  concurrency: many\n", []string{"grey.yaml:2:16:", "worker.concurrency", "cannot use a string as an integer"}},
		{"string for bool", "monitoring:\n  prometheus:\n    include_tenant_labels: sometimes\n", []string{"grey.yaml:3:28:", "monitoring.prometheus.include_tenant_labels", "cannot use a string as a boolean"}},
		{"mapping for string", "http:\n  addr:\n    host: x\n", []string{"grey.yaml:3:", "http.addr", "cannot use a mapping as a string"}},
		{"list for section", "raft: [1]\n", []string{"grey.yaml:1:7:", "raft", "sequence was used where mapping is expected"}},
		{"overflow", "raft:\n  snapshot_threshold: -1\n", []string{"grey.yaml:2:23:", "raft.snapshot_threshold", "overflow"}},
		{"duplicate key", "node:\n  id: a\n  id: b\n", []string{"grey.yaml:3:3:", "already defined"}},
		{"syntax", "node:\n  id: [a\n", []string{"grey.yaml:2:"}},
		{"two documents", "node:\n  id: a\n---\nlog:\n  level: debug\n", []string{"grey.yaml:", "only one YAML document"}},
		{"empty tag", "monitoring:\n  prometheus:\n    buckets: ! \n", []string{"grey.yaml:3:14:", "monitoring.prometheus.buckets", "tags such as ! are not supported"}},
		{"tag", "worker:\n  kinds: !!str x\n", []string{"grey.yaml:2:10:", "worker.kinds", "tags such as !!str are not supported"}},
		{"not a mapping", "just text\n", []string{"grey.yaml:1:1:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadBytes([]byte(tc.src), "grey.yaml", nil)
			wantErr(t, err, tc.want...)
			var ce *Error
			if !errors.As(err, &ce) || ce.Line == 0 {
				t.Errorf("error %v is not an *Error with a line", err)
			}
		})
	}
}

func TestValidateNamesKeyAndLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src string
		key       string
		line      int
		want      string
	}{
		{"port", "monitoring:\n  prometheus:\n    port: 70000\n", "monitoring.prometheus.port", 3, "between 1 and 65535"},
		{"role", "node:\n  role: boss\n", "node.role", 2, `got "boss"`},
		{"worker without servers", "node:\n  role: worker\n", "node.servers", 0, "at least one server"},
		{"servers without worker", "node:\n  servers: [a:1]\n", "node.servers", 2, "only used"},
		{"bad server", "node:\n  role: worker\n  servers: [nohost]\n", "node.servers", 3, "host:port"},
		{"addr", "http:\n  addr: localhost\n", "http.addr", 2, "host:port"},
		{"addr port", "raft:\n  addr: localhost:0\n", "raft.addr", 2, "between 1 and 65535"},
		{"advertise wildcard", "raft:\n  addr: 0.0.0.0:7000\n", "raft.advertise", 0, "required"},
		{"join with bootstrap", "raft:\n  join: [a:8080]\n", "raft.join", 2, "bootstrap"},
		{"backup url", "raft:\n  backup:\n    url: file://backups\n", "raft.backup.url", 3, "absolute path"},
		{"backup retain", "raft:\n  backup:\n    retain: 0\n", "raft.backup.retain", 3, "between 1 and 100000"},
		{"retry delays", "tasks:\n  retry:\n    base_delay: 1m\n", "tasks.retry.base_delay", 3, "must be <= tasks.retry.max_delay"},
		{"negative duration", "tasks:\n  gc_interval: -1s\n", "tasks.gc_interval", 2, "positive"},
		{"lease timeout", "raft:\n  leader_lease_timeout: 2s\n", "raft.leader_lease_timeout", 2, "<= raft.heartbeat_timeout"},
		{"payload", "tasks:\n  max_payload_bytes: 0\n", "tasks.max_payload_bytes", 2, "between 1 and 67108864"},
		{"data bytes", "tasks:\n  max_data_bytes: 0\n", "tasks.max_data_bytes", 2, "between 1 and"},
		{"data url", "tasks:\n  data_url: taskdata\n", "tasks.data_url", 2, "must be a bucket URL"},
		{"payload over body", "tasks:\n  max_payload_bytes: 67108864\n", "http.max_body_bytes", 0, ">= tasks.max_payload_bytes"},
		{"concurrency", "worker:\n  concurrency: 10001\n", "worker.concurrency", 2, "between 1 and 10000"},
		{"sample rate", "monitoring:\n  opentelemetry:\n    sample_rate: 1.5\n", "monitoring.opentelemetry.sample_rate", 3, "between 0 and 1"},
		{"sample rate NaN", "monitoring:\n  opentelemetry:\n    sample_rate: .nan\n", "monitoring.opentelemetry.sample_rate", 0, "between 0 and 1"},
		{"endpoint", "monitoring:\n  opentelemetry:\n    endpoint: collector\n", "monitoring.opentelemetry.endpoint", 3, "URL"},
		{"otlp protocol", "monitoring:\n  opentelemetry:\n    protocol: thrift\n", "monitoring.opentelemetry.protocol", 3, "grpc, http"},
		{"buckets", "monitoring:\n  prometheus:\n    buckets: [1, 0.5]\n", "monitoring.prometheus.buckets", 3, "increasing"},
		{"path", "monitoring:\n  prometheus:\n    path: metrics\n", "monitoring.prometheus.path", 3, "starting with '/'"},
		{"log level", "log:\n  level: loud\n", "log.level", 2, "debug, info, warn, error"},
		{"log format", "log:\n  format: xml\n", "log.format", 2, "text, json"},
		{"node id", "node:\n  id: a b\n", "node.id", 2, "letters"},
		{"admin token", "http:\n  admin_token: short\n", "http.admin_token", 2, "16 characters"},
		{"duplicate kind", "worker:\n  kinds: [noop, noop]\n", "worker.kinds", 2, "twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadBytes([]byte(tc.src), "grey.yaml", nil)
			wantErr(t, err, "config grey.yaml: ", tc.key, tc.want)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("%v is not an *Error", err)
			}
			if ce.Key != tc.key || ce.Line != tc.line {
				t.Errorf("first error %q: key %q line %d, want %q line %d", ce, ce.Key, ce.Line, tc.key, tc.line)
			}
			if tc.line > 0 {
				wantErr(t, err, fmt.Sprintf("%s (line %d): ", tc.key, tc.line))
			}
		})
	}
}

func TestValidateJoinsAllErrors(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Node.Role, c.Log.Level, c.Worker.Concurrency = "boss", "loud", 0
	err := c.Validate()
	wantErr(t, err, "node.role: ", "log.level: ", "worker.concurrency: ")
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != 3 {
		t.Errorf("got %d errors, want 3: %v", n, err)
	}
}

func TestLineDroppedAfterFlagChange(t *testing.T) {
	t.Parallel()
	c, err := LoadBytes([]byte("log:\n  level: debug\n"), "grey.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Log.Level = "verbose" // as a --log-level flag would
	err = c.Validate()
	wantErr(t, err, `log.level: must be one of`)
	if strings.Contains(err.Error(), "line") {
		t.Errorf("error %q blames the file for a flag value", err)
	}
}

func TestEnvOverrides(t *testing.T) {
	t.Parallel()
	file := "monitoring:\n  prometheus:\n    port: 9300\nlog:\n  level: warn\n"
	tests := []struct {
		name    string
		env     func(string) (string, bool)
		check   func(*Config) bool
		wantErr []string
	}{
		{"file only", nil, func(c *Config) bool { return c.Monitoring.Prometheus.Port == 9300 && c.Log.Level == LogWarn }, nil},
		{"port", env("GREY_PROMETHEUS_PORT", "9400"), func(c *Config) bool { return c.Monitoring.Prometheus.Port == 9400 }, nil},
		{"otel", env("GREY_OTEL_ENDPOINT", "http://collector:4317"), func(c *Config) bool { return c.Monitoring.OpenTelemetry.Endpoint == "http://collector:4317" }, nil},
		{"strings", env("GREY_DATA_DIR", "/d", "GREY_HTTP_ADDR", "127.0.0.1:1", "GREY_NODE_ID", "n2", "GREY_RAFT_ADDR", "127.0.0.1:2", "GREY_LOG_LEVEL", "error", "GREY_LOG_FORMAT", "json"), func(c *Config) bool {
			return c.Node.DataDir == "/d" && c.HTTP.Addr == "127.0.0.1:1" && c.Node.ID == "n2" && c.Raft.Addr == "127.0.0.1:2" && c.Log.Level == LogError && c.Log.Format == LogJSON
		}, nil},
		{"metrics addr", env("GREY_METRICS_ADDR", "0.0.0.0:9500"), func(c *Config) bool { return c.MetricsAddr() == "0.0.0.0:9500" }, nil},
		{"port wins over metrics addr", env("GREY_METRICS_ADDR", "10.1.1.1:9500", "GREY_PROMETHEUS_PORT", "9600"), func(c *Config) bool { return c.MetricsAddr() == "10.1.1.1:9600" }, nil},
		{"bad port", env("GREY_PROMETHEUS_PORT", "abc"), nil, []string{"GREY_PROMETHEUS_PORT", `"abc"`, "monitoring.prometheus.port"}},
		{"port out of range", env("GREY_PROMETHEUS_PORT", "70000"), nil, []string{"monitoring.prometheus.port (from GREY_PROMETHEUS_PORT): must be between 1 and 65535"}},
		{"bad metrics addr", env("GREY_METRICS_ADDR", "nocolon"), nil, []string{"GREY_METRICS_ADDR", "host:port"}},
		{"bad log level", env("GREY_LOG_LEVEL", "LOUD"), nil, []string{"log.level (from GREY_LOG_LEVEL)"}},
		{"bad otel", env("GREY_OTEL_ENDPOINT", "collector:4317"), nil, []string{"monitoring.opentelemetry.endpoint (from GREY_OTEL_ENDPOINT)"}},
		{"otel protocol", env("GREY_OTEL_PROTOCOL", "http"), func(c *Config) bool { return c.Monitoring.OpenTelemetry.Protocol == "http" }, nil},
		{"bad otel protocol", env("GREY_OTEL_PROTOCOL", "udp"), nil, []string{"monitoring.opentelemetry.protocol (from GREY_OTEL_PROTOCOL)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := LoadBytes([]byte(file), "grey.yaml", tc.env)
			if tc.wantErr != nil {
				wantErr(t, err, tc.wantErr...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Errorf("override not applied:\n%s", effective(t, c))
			}
		})
	}
}

func TestSecretsAreMasked(t *testing.T) {
	t.Parallel()
	const token = "s3cr3t-t0ken-0123456789"
	c, err := LoadBytes([]byte("http:\n  admin_token: ${TOKEN}\n"), "grey.yaml", env("TOKEN", token))
	if err != nil {
		t.Fatal(err)
	}
	if string(c.HTTP.AdminToken) != token {
		t.Fatalf("admin_token = %q", string(c.HTTP.AdminToken))
	}
	out := effective(t, c)
	for _, s := range []string{out, fmt.Sprint(c.HTTP.AdminToken), fmt.Sprintf("%v %+v %#v", c.HTTP, c.HTTP, c.HTTP)} {
		if strings.Contains(s, token) {
			t.Errorf("secret leaked: %s", s)
		}
	}
	if !strings.Contains(out, `admin_token: "****"`) {
		t.Errorf("masked token missing:\n%s", out)
	}
	if Secret("").String() != "" {
		t.Error("empty secret should print empty")
	}
}

// A database URL's password never reaches --print-config, %v or %#v; the
// rest of the URL stays readable.
func TestDatabasePasswordMasked(t *testing.T) {
	t.Parallel()
	const pw = "pg-pa55w0rd-9876"
	c, err := LoadBytes([]byte("database:\n  postgres:\n    url: ${GREY_PG_URL}\n    read_urls: [\"postgres://r:"+pw+"@replica:5432/grey\"]\n"),
		"grey.yaml", env("GREY_PG_URL", "postgres://grey:"+pw+"@db:5432/grey"))
	if err != nil {
		t.Fatal(err)
	}
	if string(c.Database.Postgres.URL) != "postgres://grey:"+pw+"@db:5432/grey" {
		t.Fatalf("url = %q", string(c.Database.Postgres.URL))
	}
	out := effective(t, c)
	for _, s := range []string{out, fmt.Sprintf("%v %+v %#v", c.Database, c.Database, c.Database)} {
		if strings.Contains(s, pw) {
			t.Errorf("password leaked: %s", s)
		}
	}
	if !strings.Contains(out, "postgres://grey:xxxxx@db:5432/grey") {
		t.Errorf("masked URL missing:\n%s", out)
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(path, nil)
	wantErr(t, err, "config: open ", path, "no such file")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%v is not fs.ErrNotExist", err)
	}
}

func TestDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
		str  string
	}{
		{"100ms", 100 * time.Millisecond, "100ms"},
		{"2m", 2 * time.Minute, "2m"},
		{"1h30m", 90 * time.Minute, "1h30m"},
		{"24h", 24 * time.Hour, "24h"},
		{"1m30s", 90 * time.Second, "1m30s"},
		{"0", 0, "0s"},
	}
	for _, tc := range tests {
		var d Duration
		if err := d.Set(tc.in); err != nil {
			t.Fatal(err)
		}
		if d.Std() != tc.want || d.String() != tc.str {
			t.Errorf("%q: got %v %q, want %v %q", tc.in, d.Std(), d, tc.want, tc.str)
		}
	}
	var d Duration
	if err := d.Set("soon"); err == nil {
		t.Error("Set(soon) succeeded")
	}
}

// Each node keeps its own proof key: servers node.key in their data dir,
// worker-only nodes a file named after their id (they may share a data
// dir); proofs.key_file wins.
func TestKeyPath(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Node.DataDir = "/d"
	if got := c.KeyPath(); got != "/d/node.key" {
		t.Errorf("server: %s", got)
	}
	c.Node.Role, c.Node.ID = RoleWorker, "gpu-1"
	if got := c.KeyPath(); got != "/d/worker-gpu-1.key" {
		t.Errorf("worker: %s", got)
	}
	c.Proofs.KeyFile = "/etc/grey/k"
	if got := c.KeyPath(); got != "/etc/grey/k" {
		t.Errorf("key_file: %s", got)
	}
}

func TestNodeCredentials(t *testing.T) {
	t.Parallel()
	const key = "grey_aaaaaaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	worker := func(creds string) string {
		return "node:\n  id: w-1\n  data_dir: /d\n  role: worker\n  servers: [\"127.0.0.1:8080\"]\n  credentials: " + creds + "\n"
	}
	good := []struct{ name, creds string }{
		{"token file", "{token_file: /run/token}"},
		{"api key", "{api_key: " + key + "}"},
		{"api key file", "{api_key_file: /run/key}"},
		{"oauth2", "{oauth2: {client_id: w, client_secret: s3cret, token_url: \"https://sso/token\", scopes: [grey]}}"},
	}
	for _, tc := range good {
		c, err := LoadBytes([]byte(worker(tc.creds)), tc.name+".yaml", nil)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		out := effective(t, c)
		if strings.Contains(out, "s3cret") || strings.Contains(out, key) {
			t.Errorf("%s: --print-config shows a secret:\n%s", tc.name, out)
		}
	}
	bad := []struct{ name, creds, want string }{
		{"two credentials", "{token_file: /run/token, api_key_file: /run/key}", "give one credential"},
		{"not an api key", "{api_key: hunter2}", "node.credentials.api_key"},
		{"oauth2 without secret", "{oauth2: {client_id: w, token_url: \"https://sso/token\"}}", "client_secret"},
		{"oauth2 without client id", "{oauth2: {client_secret: s, token_url: \"https://sso/token\"}}", "client_id"},
		{"oauth2 bad token url", "{oauth2: {client_id: w, client_secret: s, token_url: sso/token}}", "token_url"},
	}
	for _, tc := range bad {
		_, err := LoadBytes([]byte(worker(tc.creds)), tc.name+".yaml", nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one naming %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error quotes the secret: %v", tc.name, err)
		}
	}
	// Only worker-role nodes use credentials.
	src := "node:\n  id: s-1\n  data_dir: /d\n  role: server\n  credentials: {token_file: /run/token}\n"
	if _, err := LoadBytes([]byte(src), "server.yaml", nil); err == nil || !strings.Contains(err.Error(), "node.credentials") {
		t.Errorf("server with credentials: err = %v", err)
	}
}

package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var seedEnv = env("GREY_PG_URL", "postgres://grey@db:5432/grey", "GREY_OTEL_ENDPOINT", "http://otel:4318")

// The seed's grey-integrations.yaml, quorum: majority over its one
// PostgreSQL, loads as it is: over one database every quorum level is that
// database.
func TestSeedIntegrationsFileQuorum(t *testing.T) {
	t.Parallel()
	c, err := Load("testdata/grey-integrations.yaml", seedEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Database.Driver() != "postgres" || string(c.Database.Postgres.URL) != "postgres://grey@db:5432/grey" || c.Database.Postgres.PoolSize != 20 || c.Database.Postgres.Quorum != QuorumMajority {
		t.Errorf("database = %+v", c.Database)
	}
	if u, key := c.ArchiveURL(); u != "postgres://grey@db:5432/grey" || key != "database.postgres.url" {
		t.Errorf("ArchiveURL = %q, %q", u, key)
	}
	// Without the variables the file references, expansion names them first.
	_, err = Load("testdata/grey-integrations.yaml", nil)
	wantErr(t, err, "GREY_PG_URL is not set")
}

// The seed's file without its database block loads alone, and its cloud
// block feeds the blob port.
func TestSeedIntegrationsFileLoads(t *testing.T) {
	t.Parallel()
	c, err := Load("testdata/grey-integrations-nodb.yaml", seedEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Cloud.Provider != ProviderAWS || c.Cloud.Region != "us-east-1" ||
		c.Cloud.CostTags["project"] != "grey" || c.Cloud.CostTags["team"] != "platform" {
		t.Errorf("cloud = %+v", c.Cloud)
	}
	if c.Monitoring.Prometheus.Port != 9090 || c.Monitoring.OpenTelemetry.Endpoint != "http://otel:4318" || c.Monitoring.OpenTelemetry.SampleRate != 0.1 {
		t.Errorf("monitoring = %+v", c.Monitoring)
	}
}

// greyd --config grey.yaml --integrations grey-integrations.yaml: the
// second file's keys join (and override) the first's; a bad value is
// reported with the file it came from.
func TestLoadFilesTogether(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	main := filepath.Join(dir, "grey.yaml")
	if err := os.WriteFile(main, []byte("node:\n  id: n7\nmonitoring:\n  prometheus:\n    port: 9191\n    host: 127.0.0.1\ntenants:\n  cost:\n    environment: staging\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadFiles([]string{main, "testdata/grey-integrations-nodb.yaml"}, seedEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.ID != "n7" || c.Cloud.Region != "us-east-1" || c.Tenants.Cost.Environment != "staging" {
		t.Errorf("merged: node %q cloud %+v env %q", c.Node.ID, c.Cloud, c.Tenants.Cost.Environment)
	}
	// The integrations file's port (9090) replaces grey.yaml's 9191; the
	// host it does not set stays.
	if c.Monitoring.Prometheus.Port != 9090 || c.Monitoring.Prometheus.Host != "127.0.0.1" || c.Monitoring.Prometheus.Path != "/metrics" {
		t.Errorf("prometheus = %+v", c.Monitoring.Prometheus)
	}
	bad := filepath.Join(dir, "bad-integrations.yaml")
	if err := os.WriteFile(bad, []byte("cloud:\n  provider: aws\n  region: us-east-1\n  cost_tags:\n    team: \"a,b\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadFiles([]string{main, bad}, nil)
	wantErr(t, err, "cloud.cost_tags ("+bad+" line 4)", "letters, digits")
	c, err = LoadFiles([]string{main, "testdata/grey-integrations.yaml"}, seedEnv)
	if err != nil || c.Database.Driver() != "postgres" || c.Node.ID != "n7" {
		t.Errorf("with the seed's database block: %v, %+v", err, c)
	}
}

func TestCloudBlock(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		yaml  string
		parts []string
	}{
		{"cloud:\n  provider: ibm\n", []string{"cloud.provider (line 2)", "ibm"}},
		{"cloud:\n  region: \"US East\"\n", []string{"cloud.region (line 2)"}},
		{"cloud:\n  cost_tags:\n    grey-tenant-id: x\n", []string{"cloud.cost_tags", "grey- prefix"}},
		{"cloud:\n  cost_tags:\n    team: \"" + strings.Repeat("v", 300) + "\"\n", []string{"cloud.cost_tags", "256"}},
		{"cloud:\n  cost_tags: {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8}\n", []string{"cloud.cost_tags", "at most 7"}},
		{"cloud:\n  bucket: s3://x\n", []string{"cloud.bucket", "unknown field"}},
		{"cloud:\n  cost_tags: [a, b]\n", []string{"cloud.cost_tags", "sequence was used where mapping is expected"}},
		{"database:\n  kafka: {}\n", []string{"database.kafka", "not built yet"}},
		{"database:\n  mongodb:\n    url: mongodb://m/\n  cassandra:\n    hosts: [c]\n", []string{"database.mongodb", "only one database driver", "database.cassandra"}},
	} {
		_, err := LoadBytes([]byte(tc.yaml), "cfg.yaml", nil)
		wantErr(t, err, tc.parts...)
	}
}

func TestCloudEnv(t *testing.T) {
	t.Parallel()
	c, err := LoadBytes([]byte("cloud:\n  provider: aws\n  region: eu-west-1\n"), "cfg.yaml",
		env("AWS_REGION", "us-east-1", "GOOGLE_PROJECT", "grey-prod", "AZURE_SUBSCRIPTION_ID", "abc-123"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Cloud.Region != "us-east-1" || c.Cloud.Project != "grey-prod" || c.Cloud.SubscriptionID != "abc-123" {
		t.Errorf("cloud from env = %+v", c.Cloud)
	}
	_, err = LoadBytes(nil, "cfg.yaml", env("AWS_REGION", "Not A Region"))
	wantErr(t, err, "cloud.region (from AWS_REGION)")
}

package config

import (
	"bytes"
	"os"
	"testing"
)

// FuzzLoad feeds arbitrary file contents to LoadBytes: it must not panic, a
// returned Config must validate, and its effective YAML must load back to
// the same effective YAML.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(fullYAML))
	f.Add([]byte("node:\n  id: ${ID:-n1}\n  labels: {a: \"$${X}\"}\n"))
	f.Add([]byte("tasks:\n  retry:\n    base_delay: 5x\n"))
	lookup := env("ID", "n9", "GREY_ZONE", "z", "EMPTY", "")
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := LoadBytes(data, "fuzz.yaml", lookup)
		if err != nil {
			if c != nil {
				t.Fatalf("LoadBytes returned a Config and an error: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("loaded config does not validate: %v", err)
		}
		if c.HTTP.AdminToken != "" {
			return // printed masked, so it does not load back
		}
		var out bytes.Buffer
		if err := c.WriteEffective(&out); err != nil {
			t.Fatalf("WriteEffective: %v", err)
		}
		c2, err := LoadBytes(out.Bytes(), "effective.yaml", nil)
		if err != nil {
			t.Fatalf("effective config does not load: %v\n%s", err, out.Bytes())
		}
		var out2 bytes.Buffer
		if err := c2.WriteEffective(&out2); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), out2.Bytes()) {
			t.Fatalf("effective config changed on reload:\n%s\n---\n%s", out.Bytes(), out2.Bytes())
		}
	})
}

// FuzzIntegrationsBlocks feeds a grey.yaml and an integrations file (the
// seed's layout: database, monitoring, cloud) to LoadDocuments: it must not
// panic; a database block of a driver this build lacks is always refused; an
// archive URL comes with the key it came from;
// a loaded config validates.
func FuzzIntegrationsBlocks(f *testing.F) {
	seed, err := os.ReadFile("testdata/grey-integrations-nodb.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("node:\n  id: n1\n"), seed)
	f.Add([]byte(""), []byte("database:\n  postgres:\n    url: x\n"))
	f.Add([]byte(""), []byte("database:\n  redis:\n    url: x\n"))
	f.Add([]byte(""), []byte("database:\n  cassandra:\n    hosts: [a, b:9042]\n"))
	f.Add([]byte(""), []byte("database:\n  postgres:\n    replicas: [postgres://a, postgres://b]\n"))
	f.Add([]byte("cloud:\n  region: eu-west-1\n"), []byte("cloud:\n  cost_tags: {a: b}\n"))
	f.Add([]byte("tenants:\n  cost:\n    environment: x\n"), []byte("cloud:\n  provider: azure\n  subscription_id: abc\n"))
	lookup := env("GREY_OTEL_ENDPOINT", "http://otel:4318", "GREY_PG_URL", "postgres://x")
	f.Fuzz(func(t *testing.T, main, integrations []byte) {
		c, err := LoadDocuments([]Document{{Name: "grey.yaml", Data: main}, {Name: "grey-integrations.yaml", Data: integrations}}, lookup)
		if err != nil {
			if c != nil {
				t.Fatal("a Config and an error")
			}
			return
		}
		if bytes.HasPrefix(bytes.TrimSpace(integrations), []byte("database:\n  redis:")) {
			t.Fatalf("a file starting with a block of a driver this build lacks loaded:\n%s", integrations)
		}
		if u, key := c.ArchiveURL(); (u == "") != (key == "") || (u != "" && c.Database.Driver() == "" && c.Archive.URL == "") {
			t.Fatalf("ArchiveURL = %q from %q for %+v", u, key, c.Database)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("loaded config does not validate: %v", err)
		}
	})
}

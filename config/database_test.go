package config

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// Each way of naming the archive builds the URL its driver opens, and
// survives --print-config with its passwords masked.
func TestArchiveBlocks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, yaml string
		env        []string
		key        string
		check      func(t *testing.T, u *url.URL)
	}{
		{"postgres url", "database:\n  postgres:\n    url: postgres://g:pw@db/grey\n", nil, "database.postgres.url", func(t *testing.T, u *url.URL) {
			if u.String() != "postgres://g:pw@db/grey" {
				t.Errorf("url %s", u)
			}
		}},
		{"quorum over replicas", "database:\n  postgres:\n    replicas: [postgres://g:pw@a/grey, postgres://g:pw@b/grey, postgres://g:pw@c/grey]\n    read_quorum: one\n    anti_entropy_full: 6h\n", nil, "database.postgres.replicas", func(t *testing.T, u *url.URL) {
			q := u.Query()
			if u.Scheme != "quorum" || !reflect.DeepEqual(q["replica"], []string{"postgres://g:pw@a/grey", "postgres://g:pw@b/grey", "postgres://g:pw@c/grey"}) || q.Get("write") != "majority" || q.Get("read") != "one" || q.Get("anti_entropy") != "10m0s" || q.Get("anti_entropy_full") != "6h0m0s" {
				t.Errorf("url %s", u)
			}
		}},
		{"shards", "database:\n  postgres:\n    shards: [postgres://a/grey, postgres://b/grey]\n", nil, "database.postgres.shards", func(t *testing.T, u *url.URL) {
			if u.Scheme != "sharded" || len(u.Query()["shard"]) != 2 {
				t.Errorf("url %s", u)
			}
		}},
		{"cassandra from env", "database:\n  cassandra:\n    keyspace: hist\n    consistency: quorum\n    local_dc: dc1\n    username: grey\n", []string{"GREY_CASSANDRA_HOSTS", "c1, c2:9142,c3", "GREY_CASSANDRA_PASSWORD", "s3cret"}, "database.cassandra.hosts", func(t *testing.T, u *url.URL) {
			q := u.Query()
			pw, _ := u.User.Password()
			if u.Scheme != "cassandra" || u.Host != "c1" || u.Path != "/hist" || q.Get("hosts") != "c2:9142,c3" || q.Get("consistency") != "quorum" || q.Get("local_dc") != "dc1" || u.User.Username() != "grey" || pw != "s3cret" {
				t.Errorf("url %s", u)
			}
		}},
		{"mongodb from env", "database:\n  mongodb:\n    database: hist\n    write_concern: \"2\"\n", []string{"GREY_MONGO_URL", "mongodb://g:pw@m1:27017/?readConcernLevel=local"}, "database.mongodb.url", func(t *testing.T, u *url.URL) {
			q := u.Query()
			if u.Scheme != "mongodb" || u.Path != "/hist" || q.Get("w") != "2" || q.Get("readConcernLevel") != "local" {
				t.Errorf("url %s", u)
			}
		}},
		{"archive.url", "archive:\n  url: sharded://?shard=mem%3A%2F%2F&shard=mem%3A%2F%2F\n", nil, "archive.url", func(t *testing.T, u *url.URL) {
			if u.Scheme != "sharded" || len(u.Query()["shard"]) != 2 {
				t.Errorf("url %s", u)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := LoadBytes([]byte(tc.yaml), "grey.yaml", env(tc.env...))
			if err != nil {
				t.Fatal(err)
			}
			raw, key := c.ArchiveURL()
			if key != tc.key {
				t.Errorf("key %q, want %q", key, tc.key)
			}
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatalf("ArchiveURL %q: %v", raw, err)
			}
			tc.check(t, u)
			out := effective(t, c)
			if strings.Contains(out, "pw@") || strings.Contains(out, "s3cret") {
				t.Errorf("a password is printed:\n%s", out)
			}
			if _, err := LoadBytes([]byte(out), "effective.yaml", nil); err != nil {
				t.Errorf("effective config does not load: %v\n%s", err, out)
			}
		})
	}
	c, _ := LoadBytes(nil, "empty.yaml", nil)
	if u, key := c.ArchiveURL(); u != "" || key != "" {
		t.Errorf("no archive configured: %q from %q", u, key)
	}
}

func TestArchiveBlocksRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		yaml  string
		env   []string
		parts []string
	}{
		{"database:\n  cassandra:\n    hosts: [c1, \"c2:port\"]\n", nil, []string{"database.cassandra.hosts", "entry 1", "c2:port"}},
		{"database:\n  cassandra:\n    hosts: [c1, \"\"]\n", nil, []string{"database.cassandra.hosts", "entry 1", "not a host"}},
		{"database:\n  cassandra:\n    hosts: [\"c1:99999\"]\n", nil, []string{"database.cassandra.hosts", "entry 0", "1 to 65535"}},
		{"database:\n  cassandra:\n    keyspace: grey\n", nil, []string{"database.cassandra.hosts", "GREY_CASSANDRA_HOSTS"}},
		{"database:\n  cassandra:\n    keyspace: grey\n", []string{"GREY_CASSANDRA_HOSTS", "a,b/c"}, []string{"database.cassandra.hosts", "entry 1", "GREY_CASSANDRA_HOSTS"}},
		{"database:\n  cassandra:\n    hosts: [c1]\n    keyspace: \"drop table\"\n", nil, []string{"database.cassandra.keyspace"}},
		{"database:\n  cassandra:\n    hosts: [c1]\n    consistency: most\n", nil, []string{"database.cassandra.consistency", "local_quorum"}},
		{"database:\n  mongodb:\n    url: postgres://x/\n", nil, []string{"database.mongodb.url", "mongodb://"}},
		{"database:\n  mongodb:\n    url: mongodb://m/\n    write_concern: some\n", nil, []string{"database.mongodb.write_concern"}},
		{"database:\n  postgres:\n    url: postgres://a/g\n  mongodb:\n    url: mongodb://m/\n", nil, []string{"database.mongodb", "only one database driver", "database.postgres"}},
		{"database:\n  postgres:\n    url: postgres://a/g\n    replicas: [postgres://b/g, postgres://c/g]\n", nil, []string{"database.postgres", "one of url, replicas and shards"}},
		{"database:\n  postgres:\n    replicas: [postgres://b/g]\n", nil, []string{"database.postgres", "use url"}},
		{"database:\n  postgres:\n    replicas: [postgres://b/g, mongodb://c/]\n", nil, []string{"database.postgres.replicas[1]", "postgres://"}},
		{"database:\n  postgres:\n    url: postgres://a/g\n    read_quorum: one\n", nil, []string{"database.postgres.read_quorum", "replicas"}},
		{"database:\n  postgres:\n    replicas: [postgres://b/g, postgres://c/g]\n    quorum: most\n", nil, []string{"database.postgres.quorum", "one, majority, all"}},
		{"database:\n  postgres:\n    url: postgres://a/g\narchive:\n  url: mem://\n", nil, []string{"archive.url", "database.postgres"}},
		{"archive:\n  url: nothing\n", nil, []string{"archive.url", "scheme"}},
	} {
		_, err := LoadBytes([]byte(tc.yaml), "grey.yaml", env(tc.env...))
		wantErr(t, err, tc.parts...)
	}
}

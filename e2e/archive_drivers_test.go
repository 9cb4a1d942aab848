package e2e

// TestArchiveDrivers configures each archive a user can choose in greyd —
// Cassandra, MongoDB, a quorum over three PostgreSQL databases and shards
// over three — runs tasks of two tenants until they pass their retention
// and leave Raft, and reads them back through greyctl from the archive.
//
//	GREY_E2E=1 go test -count=1 -run TestArchiveDrivers -v ./e2e/

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/pgarchive"
	"github.com/grey-distributed/grey/archive/pgarchive/pgtest"
	"github.com/grey-distributed/grey/archive/shardarchive"
	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/internal/testenv"
	"github.com/grey-distributed/grey/task"
)

func TestArchiveDrivers(t *testing.T) {
	requireE2E(t)
	suffix := func() string {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) (config string, env []string)
	}{
		{"cassandra", func(t *testing.T) (string, []string) {
			u, err := url.Parse(testenv.ServiceURL(t, "cassandra"))
			if err != nil {
				t.Fatal(err)
			}
			// The test Cassandra requires a password: the user name in
			// the config, the password from the environment, as the docs
			// tell operators to set them.
			pw, _ := u.User.Password()
			return "database:\n  cassandra:\n    keyspace: grey_e2e_" + suffix() + "\n    replication: SimpleStrategy:1\n    consistency: one\n    migrate: true\n    username: " + u.User.Username() + "\n",
				[]string{"GREY_CASSANDRA_HOSTS=" + u.Host, "GREY_CASSANDRA_PASSWORD=" + pw}
		}},
		{"mongodb", func(t *testing.T) (string, []string) {
			return "database:\n  mongodb:\n    database: grey_e2e_" + suffix() + "\n", []string{"GREY_MONGO_URL=" + testenv.ServiceURL(t, "mongodb")}
		}},
		{"postgres-quorum", func(t *testing.T) (string, []string) {
			return "database:\n  postgres:\n    replicas: " + yamlList(pgMembers(t)) + "\n    quorum: majority\n", nil
		}},
		{"postgres-shards", func(t *testing.T) (string, []string) {
			return "database:\n  postgres:\n    shards: " + yamlList(pgMembers(t)) + "\n", nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, env := tc.setup(t)
			g := newGreyd(t, "tasks:\n  retention: 1s\n  gc_interval: 200ms\n"+cfg)
			g.env = env
			g.Start()
			g.WaitReady(90 * time.Second)
			runArchivedTasks(t, g)
		})
	}
}

// runArchivedTasks submits tasks of three tenants to g, waits until they are
// archived and collected from Raft, and reads them back through greyctl.
func runArchivedTasks(t *testing.T, g *greyd) {
	t.Helper()
	tenants := []string{"acme", "globex", "initech"}
	ids := map[string][]task.ID{}
	for _, ten := range tenants {
		ids[ten] = runEchoes(t, g, ten, 10)
	}
	waitArchived(t, g)
	for _, ten := range tenants {
		id := string(ids[ten][7])
		if r := greyctl(t, g.URL(), 30*time.Second, "--tenant", ten, "task", "get", id, "-o", "json"); r.Code != 0 ||
			!jsonHas(r.Stdout, "status", `"completed"`) || !jsonHas(r.Stdout, "t", `"`+ten+`"`) {
			t.Fatalf("greyctl task get of %s's archived task: %+v", ten, r)
		}
		if r := greyctl(t, g.URL(), 30*time.Second, "--tenant", ten, "proof", "verify", id); r.Code != 0 {
			t.Fatalf("greyctl proof verify of %s's archived task: %+v", ten, r)
		}
		r := greyctl(t, g.URL(), 30*time.Second, "--tenant", ten, "task", "list", "--all", "-o", "json")
		if n := len(regexp.MustCompile(`"tenant_id":\s*"`+ten+`"`).FindAllString(r.Stdout, -1)); r.Code != 0 || n != 10 || strings.Contains(r.Stdout, `"tenant_id": "`+tenants[0]+`"`) && ten != tenants[0] {
			t.Fatalf("greyctl task list of %s from the archive: %d tasks, %+v", ten, n, r)
		}
	}
	// Another tenant cannot read acme's archived task.
	if r := greyctl(t, g.URL(), 30*time.Second, "--tenant", "globex", "task", "get", string(ids["acme"][3])); r.Code == 0 {
		t.Fatalf("globex read acme's archived task: %+v", r)
	}
}

// pgMembers makes a scratch database on each of the three PostgreSQL
// servers of scripts/services.sh, migrated, and returns their app URLs
// (Grey's role, without BYPASSRLS).
func pgMembers(t *testing.T) []string {
	t.Helper()
	var urls []string
	for _, svc := range []string{"postgres", "postgres2", "postgres3"} {
		db := pgtest.Scratch(t, testenv.ServiceURL(t, svc))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if _, _, err := pgarchive.Migrate(ctx, db.OwnerURL, db.AppURL); err != nil {
			cancel()
			t.Fatalf("migrate %s: %v", svc, err)
		}
		cancel()
		urls = append(urls, db.AppURL)
	}
	return urls
}

// yamlList is urls as a YAML flow sequence.
func yamlList(urls []string) string { return "[" + strings.Join(urls, ", ") + "]" }

// TestArchiveShardRetire removes one of three PostgreSQL shards from a
// greyd's archive the way docs/ARCHIVE.md says: tasks of tenants on every
// shard are archived and leave Raft; greyctl archive rebalance --retire
// empties the third shard into the other two; a greyd configured with
// the two alone answers every tenant's archived tasks, and the third
// shard holds none.
//
//	GREY_E2E=1 go test -count=1 -run TestArchiveShardRetire -v ./e2e/
func TestArchiveShardRetire(t *testing.T) {
	requireE2E(t)
	urls := pgMembers(t)
	shards, err := shardarchive.List(urls, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := shardarchive.IDs(shards)
	// Two tenants the third shard owns, two it does not.
	var onThird, elsewhere []string
	for i := 0; len(onThird) < 2 || len(elsewhere) < 2; i++ {
		ten := fmt.Sprintf("tenant-%d", i)
		if shardarchive.Owner(ids, ten) == 2 {
			if len(onThird) < 2 {
				onThird = append(onThird, ten)
			}
		} else if len(elsewhere) < 2 {
			elsewhere = append(elsewhere, ten)
		}
	}
	tenants := append(append([]string{}, onThird...), elsewhere...)
	const conf = "tasks:\n  retention: 1s\n  gc_interval: 200ms\ndatabase:\n  postgres:\n    shards: "

	g := newGreyd(t, conf+yamlList(urls)+"\n")
	g.Start()
	g.WaitReady(90 * time.Second)
	ids3 := map[string][]task.ID{}
	for _, ten := range tenants {
		ids3[ten] = runEchoes(t, g, ten, 5)
	}
	waitArchived(t, g)
	g.Kill()

	r := greyctl(t, g.URL(), time.Minute, "-o", "json", "archive", "rebalance", "--shards", urls[0]+","+urls[1], "--retire", urls[2])
	var res shardarchive.RebalanceResult
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &res) != nil {
		t.Fatalf("greyctl archive rebalance --retire: %+v", r)
	}
	if len(res.Moves) != len(onThird) || res.Records != int64(5*len(onThird)) {
		t.Errorf("rebalance moved %d tenants and %d records, want %d and %d: %+v", len(res.Moves), res.Records, len(onThird), 5*len(onThird), res)
	}

	g2 := newGreyd(t, conf+yamlList(urls[:2])+"\n")
	g2.Start()
	g2.WaitReady(90 * time.Second)
	for _, ten := range tenants {
		for _, id := range ids3[ten] {
			if r := greyctl(t, g2.URL(), 30*time.Second, "--tenant", ten, "task", "get", string(id), "-o", "json"); r.Code != 0 || !jsonHas(r.Stdout, "status", `"completed"`) {
				t.Fatalf("greyctl task get of %s's task %s from the two remaining shards: %+v", ten, id, r)
			}
		}
	}
	ctx := context.Background()
	third, err := pgarchive.Open(ctx, urls[2], archive.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if ts, err := third.Tenants(ctx); err != nil || len(ts) != 0 {
		t.Errorf("the retired shard still lists tenants %v (%v)", ts, err)
	}
}

// runEchoes submits n echo tasks of tenant to g, each with a payload naming
// its tenant, waits until they completed and returns their ids.
func runEchoes(t *testing.T, g *greyd, tenant string, n int) []task.ID {
	t.Helper()
	ctx := context.Background()
	c, err := client.New(g.URL(), client.WithTenant(tenant))
	if err != nil {
		t.Fatal(err)
	}
	var ids []task.ID
	for i := range n {
		tk, err := c.Submit(ctx, task.Spec{Kind: "echo", Payload: []byte(fmt.Sprintf(`{"n":%d,"t":"%s"}`, i, tenant))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tk.ID)
	}
	for _, id := range ids {
		if done, err := c.Wait(ctx, id); err != nil || done.Status != task.Completed {
			t.Fatalf("task %s: %+v, %v", id, done, err)
		}
	}
	return ids
}

// waitArchived waits until g archived every finished task and collected
// it from Raft (its retention must be short).
func waitArchived(t *testing.T, g *greyd) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for metricSum(g.MetricsAddr, "grey_tasks", `status="completed"`) != 0 || metric(g.MetricsAddr, "grey_archive_lag_tasks") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not archived and collected: completed in Raft %v, lag %v",
				metricSum(g.MetricsAddr, "grey_tasks", `status="completed"`), metric(g.MetricsAddr, "grey_archive_lag_tasks"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

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
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/archive/pgarchive"
	"github.com/grey-distributed/grey/archive/pgarchive/pgtest"
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
	// pgMembers makes a scratch database on each of the three PostgreSQL
	// services and migrates it, returning the runtime roles' URLs.
	pgMembers := func(t *testing.T) []string {
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
	list := func(urls []string) string { return "[" + strings.Join(urls, ", ") + "]" }
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) (config string, env []string)
	}{
		{"cassandra", func(t *testing.T) (string, []string) {
			u, err := url.Parse(testenv.ServiceURL(t, "cassandra"))
			if err != nil {
				t.Fatal(err)
			}
			return "database:\n  cassandra:\n    keyspace: grey_e2e_" + suffix() + "\n    replication: SimpleStrategy:1\n    consistency: one\n    migrate: true\n",
				[]string{"GREY_CASSANDRA_HOSTS=" + u.Host}
		}},
		{"mongodb", func(t *testing.T) (string, []string) {
			return "database:\n  mongodb:\n    database: grey_e2e_" + suffix() + "\n", []string{"GREY_MONGO_URL=" + testenv.ServiceURL(t, "mongodb")}
		}},
		{"postgres-quorum", func(t *testing.T) (string, []string) {
			return "database:\n  postgres:\n    replicas: " + list(pgMembers(t)) + "\n    quorum: majority\n", nil
		}},
		{"postgres-shards", func(t *testing.T) (string, []string) {
			return "database:\n  postgres:\n    shards: " + list(pgMembers(t)) + "\n", nil
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
	ctx := context.Background()
	tenants := []string{"acme", "globex", "initech"}
	ids := map[string][]task.ID{}
	for _, ten := range tenants {
		c, err := client.New(g.URL(), client.WithTenant(ten))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			tk, err := c.Submit(ctx, task.Spec{Kind: "echo", Payload: []byte(fmt.Sprintf(`{"n":%d,"t":"%s"}`, i, ten))})
			if err != nil {
				t.Fatal(err)
			}
			ids[ten] = append(ids[ten], tk.ID)
		}
		for _, id := range ids[ten] {
			if done, err := c.Wait(ctx, id); err != nil || done.Status != task.Completed {
				t.Fatalf("task %s: %+v, %v", id, done, err)
			}
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for metricSum(g.MetricsAddr, "grey_tasks", `status="completed"`) != 0 || metric(g.MetricsAddr, "grey_archive_lag_tasks") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not archived and collected: completed in Raft %v, lag %v",
				metricSum(g.MetricsAddr, "grey_tasks", `status="completed"`), metric(g.MetricsAddr, "grey_archive_lag_tasks"))
		}
		time.Sleep(200 * time.Millisecond)
	}
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

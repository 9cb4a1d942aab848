package e2e

// Archive tests against a private PostgreSQL (archive/pgarchive/pgtest):
//
//   - TestArchivePostgresCLI: one greyd with GREY_PG_URL; tasks finish,
//     pass their retention and leave Raft; greyctl task get, proof verify,
//     task list and cost report still answer, from PostgreSQL; a psql
//     session under another tenant's setting sees none of the rows.
//   - TestArchivePostgresFaults: three servers archive a stream of tasks
//     while PostgreSQL is SIGKILLed and restarted and the Grey leader is
//     SIGKILLed; afterwards every finished task is in the archive exactly
//     once and the lag is back to zero.
//
//	GREY_E2E=1 go test -count=1 -run TestArchive -v ./e2e/

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/grey-distributed/grey/archive/pgarchive/pgtest"
	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/task"
)

// migrateArchive runs `greyd archive migrate` as a user would: the app URL
// in GREY_PG_URL, the owner's in GREY_PG_MIGRATE_URL.
func migrateArchive(t *testing.T, pg *pgtest.Instance) {
	t.Helper()
	cmd := exec.Command(greydBin, "archive", "migrate")
	cmd.Env = append(cleanEnv(), "GREY_PG_URL="+pg.AppURL(), "GREY_PG_MIGRATE_URL="+pg.OwnerURL())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "archive schema") {
		t.Fatalf("greyd archive migrate: %v\n%s", err, out)
	}
	if strings.Contains(string(out), pg.AppURL()) {
		t.Fatalf("migrate printed a password:\n%s", out)
	}
	t.Logf("greyd archive migrate: %s", strings.TrimSpace(string(out)))
}

// metric reads one unlabelled sample from a metrics endpoint (-1 when
// absent or unreachable).
func metric(addr, name string) float64 {
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// metricSum sums the samples of a family whose labels contain label (-1
// when the endpoint does not answer).
func metricSum(addr, name, label string) float64 {
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	sum := 0.0
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name+"{") || !strings.Contains(line, label) {
			continue
		}
		if f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
			sum += f
		}
	}
	return sum
}

// archived counts the tenant's rows and distinct task ids in the archive,
// connected as Grey's role under the tenant's setting (row-level security
// shows no other tenant's rows).
func archived(t *testing.T, pg *pgtest.Instance, tenant string) (rows, distinct int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, pg.AppURL())
	if err != nil {
		return -1, -1
	}
	defer c.Close(ctx)
	tx, err := c.Begin(ctx)
	if err != nil {
		return -1, -1
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT set_config('grey.tenant_id', $1, true)`, tenant); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, `SELECT count(*), count(DISTINCT id) FROM grey_archive.tasks`).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	return rows, distinct
}

// jsonHas reports whether out holds "key": value (any spacing).
func jsonHas(out, key, value string) bool {
	return regexp.MustCompile(`"`+regexp.QuoteMeta(key)+`":\s*`+regexp.QuoteMeta(value)+`\b`).MatchString(out) ||
		regexp.MustCompile(`"`+regexp.QuoteMeta(key)+`":\s*`+regexp.QuoteMeta(value)).MatchString(out) && strings.HasSuffix(value, `"`)
}

func psql(t *testing.T, pg *pgtest.Instance, sql string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(pgtest.BinDir(), "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", pg.AppURL(), "-c", sql).CombinedOutput()
	if err != nil {
		t.Fatalf("psql %q: %v\n%s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestArchivePostgresCLI(t *testing.T) {
	requireE2E(t)
	pg := pgtest.Start(t)
	migrateArchive(t, pg)
	g := newGreyd(t, "tasks:\n  retention: 1s\n  gc_interval: 200ms\n")
	g.env = []string{"GREY_PG_URL=" + pg.AppURL()}
	g.Start()
	g.WaitReady(30 * time.Second)

	ids := runEchoes(t, g, "acme", 20)
	// Archived, past retention, collected from Raft (the state's task
	// gauge counts no completed task any more).
	deadline := time.Now().Add(30 * time.Second)
	for {
		rows, _ := archived(t, pg, "acme")
		if rows == 20 && metricSum(g.MetricsAddr, "grey_tasks", `status="completed"`) == 0 && metric(g.MetricsAddr, "grey_archive_lag_tasks") == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not archived and collected: %d rows, completed in Raft %v, lag %v", rows,
				metricSum(g.MetricsAddr, "grey_tasks", `status="completed"`), metric(g.MetricsAddr, "grey_archive_lag_tasks"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	id := string(ids[7])
	if r := greyctl(t, g.URL(), 30*time.Second, "--tenant", "acme", "task", "get", id, "-o", "json"); r.Code != 0 ||
		!jsonHas(r.Stdout, "status", `"completed"`) || !jsonHas(r.Stdout, "n", "7") {
		t.Fatalf("greyctl task get of an archived task: %+v", r)
	}
	if r := greyctl(t, g.URL(), 30*time.Second, "--tenant", "acme", "proof", "verify", id); r.Code != 0 {
		t.Fatalf("greyctl proof verify of an archived task: %+v", r)
	}
	if r := greyctl(t, g.URL(), 30*time.Second, "--tenant", "acme", "task", "list", "--all", "-o", "json"); r.Code != 0 || len(regexp.MustCompile(`"tenant_id":\s*"acme"`).FindAllString(r.Stdout, -1)) != 20 {
		t.Fatalf("greyctl task list from the archive: %+v", r)
	}
	if r := greyctl(t, g.URL(), 30*time.Second, "cost", "report", "--tenant", "acme", "-o", "json"); r.Code != 0 || !jsonHas(r.Stdout, "tasks_completed", "20") {
		t.Fatalf("greyctl cost report after archiving: %+v", r)
	}
	// Another tenant sees nothing: through Grey, and in a psql session
	// under its setting.
	if r := greyctl(t, g.URL(), 30*time.Second, "--tenant", "other", "task", "get", id); r.Code == 0 {
		t.Fatalf("other tenant read acme's archived task: %+v", r)
	}
	// psql -A -t prints BEGIN, the setting, the count and COMMIT, a line each.
	if got := strings.Split(psql(t, pg, "BEGIN; SELECT set_config('grey.tenant_id', 'other', true); SELECT count(*) FROM grey_archive.tasks; COMMIT;"), "\n"); !slices.Equal(got, []string{"BEGIN", "other", "0", "COMMIT"}) {
		t.Fatalf("psql as tenant other: %q, want a count of 0", got)
	}
	if got := psql(t, pg, "SELECT count(*) FROM grey_archive.tasks;"); got != "0" {
		t.Fatalf("psql without a tenant: %q, want 0 (policies fail closed)", got)
	}
	if got := strings.Split(psql(t, pg, "BEGIN; SELECT set_config('grey.tenant_id', 'acme', true); SELECT count(*) FROM grey_archive.tasks; COMMIT;"), "\n"); !slices.Equal(got, []string{"BEGIN", "acme", "20", "COMMIT"}) {
		t.Fatalf("psql as tenant acme: %q, want a count of 20", got)
	}
}

func TestArchivePostgresFaults(t *testing.T) {
	requireE2E(t)
	pg := pgtest.Start(t)
	migrateArchive(t, pg)
	cfg := clusterServerConfig + "database:\n  postgres:\n    url: " + pg.AppURL() + "\narchive:\n  batch_size: 200\n"
	cfg = strings.Replace(cfg, "tasks:\n", "tasks:\n  retention: 1s\n  gc_interval: 250ms\n", 1)
	c := startClusterWith(t, nil, 1, cfg)
	cl := c.Client("acme")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	const total = 3000
	var mu sync.Mutex
	var ids []task.ID
	submitted := make(chan struct{})
	go func() {
		defer close(submitted)
		for i := 0; i < total; i += 100 {
			specs := make([]task.Spec, 100)
			for j := range specs {
				specs[j] = task.Spec{Kind: "echo", Payload: []byte(fmt.Sprintf(`{"n":%d}`, i+j)), IdempotencyKey: fmt.Sprintf("k-%d", i+j)}
			}
			for {
				ts, err := cl.SubmitBatch(ctx, specs)
				if err == nil {
					mu.Lock()
					for _, tk := range ts {
						ids = append(ids, tk.ID)
					}
					mu.Unlock()
					break
				}
				if ctx.Err() != nil {
					t.Errorf("submit: %v", err)
					return
				}
				time.Sleep(200 * time.Millisecond) // leader change: retry (idempotency keys)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(ids) }
	for count() < total/4 {
		time.Sleep(50 * time.Millisecond)
	}
	pg.Kill()
	t.Logf("SIGKILLed PostgreSQL after %d submits", count())
	time.Sleep(3 * time.Second)
	leader := c.waitLeader(c.Servers, 10*time.Second)
	lag := metric(leader.Metrics, "grey_archive_lag_tasks")
	if lag <= 0 {
		t.Errorf("archive lag while PostgreSQL is down: %v, want > 0", lag)
	}
	leader.Kill()
	t.Logf("SIGKILLed Grey leader %s (archive lag %v)", leader.ID, lag)
	next := c.waitLeader(c.others(leader), 15*time.Second)
	t.Logf("new leader %s", next.ID)
	pg.Restart()
	t.Log("PostgreSQL restarted")
	leader.Start()
	c.waitReady(leader, 30*time.Second)
	<-submitted
	if t.Failed() {
		t.FailNow()
	}
	if n := count(); n != total {
		t.Fatalf("%d submits acknowledged, want %d", n, total)
	}
	// Every task finishes, reaches the archive exactly once, and leaves
	// Raft; the lag returns to zero on every server.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		rows, distinct := archived(t, pg, "acme")
		l := c.waitLeader(c.Servers, 10*time.Second)
		lagNow := metric(l.Metrics, "grey_archive_lag_tasks")
		if rows == total && distinct == total && lagNow == 0 {
			t.Logf("archive holds %d rows of %d distinct tasks; lag 0", rows, distinct)
			break
		}
		if rows > distinct {
			t.Fatalf("archive holds %d rows for %d tasks: a task archived twice", rows, distinct)
		}
		if time.Now().After(deadline) {
			t.Fatalf("archive holds %d rows (%d distinct) of %d tasks; lag %v", rows, distinct, total, lagNow)
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, s := range c.Servers {
		deadline := time.Now().Add(30 * time.Second)
		for metric(s.Metrics, "grey_archive_lag_tasks") != 0 || metric(s.Metrics, "grey_archive_lag_seconds") != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: lag %v tasks, %v s", s.ID, metric(s.Metrics, "grey_archive_lag_tasks"), metric(s.Metrics, "grey_archive_lag_seconds"))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	// Every acknowledged task answers, completed, from Raft or the archive.
	for i, id := range ids {
		if i%100 != 0 {
			continue
		}
		tk, err := cl.Get(ctx, id)
		if err != nil || tk.Status != task.Completed {
			t.Fatalf("task %s: %+v, %v", id, tk, err)
		}
	}
}

// A wrong password or an unreachable database does not stop greyd: it
// starts, runs tasks, reports the archive degraded in /readyz and the lag
// in its metrics, and retries; restarted with the right URL it archives
// everything that waited.
func TestArchiveUnavailableAtStart(t *testing.T) {
	requireE2E(t)
	pg := pgtest.Start(t)
	migrateArchive(t, pg)
	wrong := strings.Replace(pg.AppURL(), "@", "x@", 1) // the password with an extra character
	if wrong == pg.AppURL() {
		t.Fatal("could not make a wrong password")
	}
	closed := fmt.Sprintf("postgres://grey:pw@127.0.0.1:%d/grey?connect_timeout=2", freePorts(t, 1)[0])
	ctx := context.Background()
	for _, tc := range []struct{ name, url, want string }{
		{"wrong password", wrong, "password"},
		{"unreachable", closed, "unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGreyd(t, "")
			g.env = []string{"GREY_PG_URL=" + tc.url}
			g.Start()
			g.WaitReady(30 * time.Second)
			c, err := client.New(g.URL(), client.WithTenant("acme"))
			if err != nil {
				t.Fatal(err)
			}
			tk, err := c.Submit(ctx, task.Spec{Kind: "echo", Payload: []byte(`{"a":1}`)})
			if err != nil {
				t.Fatal(err)
			}
			if done, err := c.Wait(ctx, tk.ID); err != nil || done.Status != task.Completed {
				t.Fatalf("task with the archive down: %+v, %v", done, err)
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				r, err := c.Readiness(ctx)
				if err == nil && r.Status == "degraded" && strings.Contains(strings.ToLower(r.Degraded["archive"]), tc.want) &&
					metric(g.MetricsAddr, "grey_archive_lag_tasks") == 1 {
					if strings.Contains(r.Degraded["archive"], pg.AppURL()) || strings.Contains(r.Degraded["archive"], wrong) {
						t.Fatalf("readyz shows a password: %s", r.Degraded["archive"])
					}
					t.Logf("readyz: %s", r.Degraded["archive"])
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("readyz %+v, %v; lag %v", r, err, metric(g.MetricsAddr, "grey_archive_lag_tasks"))
				}
				time.Sleep(200 * time.Millisecond)
			}
			if errs := metricSum(g.MetricsAddr, "grey_archive_delivery_errors_total", `step="deliver"`); errs < 1 {
				t.Fatalf("delivery errors %v", errs)
			}
			// Restarted with the right URL, the waiting task is archived.
			g.Signal(syscall.SIGTERM)
			if code, ok := g.WaitExit(30 * time.Second); !ok || code != 0 {
				t.Fatalf("greyd exit %d (%v)", code, ok)
			}
			g.env = []string{"GREY_PG_URL=" + pg.AppURL()}
			g.Start()
			g.WaitReady(30 * time.Second)
			deadline = time.Now().Add(20 * time.Second)
			for metric(g.MetricsAddr, "grey_archive_lag_tasks") != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("lag after the fix: %v", metric(g.MetricsAddr, "grey_archive_lag_tasks"))
				}
				time.Sleep(200 * time.Millisecond)
			}
			if rows, _ := archived(t, pg, "acme"); rows < 1 {
				t.Fatalf("archive rows %d", rows)
			}
		})
	}
}

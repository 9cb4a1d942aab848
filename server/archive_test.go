package server

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/memarchive"
	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/task"
)

// startArchiveServer runs a greyd whose finished tasks go to an in-memory
// archive and leave Raft soon after (retention 100 ms, GC every 100 ms).
func startArchiveServer(t *testing.T, mutate ...func(*config.Config)) (*Server, *memarchive.Driver, func(string) *client.Client) {
	t.Helper()
	drv := memarchive.NewDriver()
	st, err := archive.New(drv, archive.Options{Retry: archive.RetryOptions{MaxTries: 1}})
	if err != nil {
		t.Fatal(err)
	}
	s, mk := startServerWith(t, "", 0, []Option{WithArchive(st)}, append([]func(*config.Config){func(cfg *config.Config) {
		cfg.Tasks.Retention = config.Duration(100 * time.Millisecond)
		cfg.Tasks.GCInterval = config.Duration(100 * time.Millisecond)
		cfg.Monitoring.Prometheus.Enabled = true
		cfg.Monitoring.Prometheus.Host = "127.0.0.1"
		cfg.Monitoring.Prometheus.Port = 0
	}}, mutate...)...)
	return s, drv, mk
}

// gauge reads a metric without labels from the server's registry.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

func submitN(t *testing.T, c *client.Client, n int, kind string) []*task.Task {
	t.Helper()
	ctx := context.Background()
	out := make([]*task.Task, n)
	for i := range out {
		tk, err := c.Submit(ctx, task.Spec{Kind: kind, Payload: []byte(`{"n":` + itoa(i) + `}`)})
		if err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
		out[i] = tk
	}
	return out
}

// Finished tasks move to the archive and leave Raft; get, list (merged,
// paged, tenant-scoped), proof and replay answer from the archive as they
// did from Raft; the cost report still counts them.
func TestArchivedTasksStillAnswer(t *testing.T) {
	s, drv, mk := startArchiveServer(t)
	ctx := context.Background()
	acme, other := mk("acme"), mk("other")
	tasks := submitN(t, acme, 12, "echo")
	submitN(t, other, 3, "echo")
	for _, tk := range tasks {
		if _, err := acme.Wait(ctx, tk.ID); err != nil {
			t.Fatal(err)
		}
	}
	greytest.Eventually(t, 15*time.Second, func() bool { return drv.Len() == 15 && s.store.Lookup(string(tasks[0].ID)) == nil })
	greytest.Eventually(t, 15*time.Second, func() bool {
		for _, tk := range tasks {
			if s.store.Lookup(string(tk.ID)) != nil {
				return false
			}
		}
		return true
	})
	got, err := acme.Get(ctx, tasks[3].ID)
	if err != nil {
		t.Fatalf("get an archived task: %v", err)
	}
	if got.Status != task.Completed || string(got.Result) != `{"n":3}` || got.CostTags["grey-tenant-id"] != "acme" || got.CostUSD == nil || len(got.Attempts) != 1 {
		t.Fatalf("archived task: %+v", got)
	}
	// Another tenant does not see it.
	if _, err := other.Get(ctx, tasks[3].ID); greyerr.CodeOf(err) != greyerr.NotFound {
		t.Fatalf("other tenant's get of an archived task: %v", err)
	}
	// The proof is served and verifies from the archived envelope.
	rec, err := acme.Proof(ctx, tasks[3].ID)
	if err != nil || !rec.Verified {
		t.Fatalf("proof of an archived task: %+v, %v", rec, err)
	}
	rp, err := acme.Replay(ctx, tasks[3].ID)
	if err != nil || !rp.Match {
		t.Fatalf("replay of an archived task: %+v, %v", rp, err)
	}
	// The list pages through the archive, newest first, without
	// duplicates; the other tenant's tasks never appear.
	var ids []task.ID
	opts := client.ListOptions{Limit: 5}
	for tk, err := range acme.ListAll(ctx, opts) {
		if err != nil {
			t.Fatal(err)
		}
		if tk.TenantID != "acme" {
			t.Fatalf("acme listed %s of %s", tk.ID, tk.TenantID)
		}
		ids = append(ids, tk.ID)
	}
	want := make([]task.ID, len(tasks))
	for i, tk := range tasks {
		want[len(tasks)-1-i] = tk.ID
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("listed %v\nwant %v", ids, want)
	}
	// Filters apply to archived tasks too.
	p, err := acme.List(ctx, client.ListOptions{Status: []task.Status{task.Failed}})
	if err != nil || len(p.Tasks) != 0 {
		t.Fatalf("failed filter: %+v, %v", p, err)
	}
	p, err = acme.List(ctx, client.ListOptions{FinishedFrom: time.Now().Add(-time.Hour), Kind: "echo", Limit: 1000})
	if err != nil || len(p.Tasks) != 12 {
		t.Fatalf("finished-range filter: %d tasks, %v", len(p.Tasks), err)
	}
	// A cursor of one tenant is refused for the other.
	first, err := acme.List(ctx, client.ListOptions{Limit: 2})
	if err != nil || first.NextCursor == "" {
		t.Fatalf("first page: %+v, %v", first, err)
	}
	if _, err := other.List(ctx, client.ListOptions{Limit: 2, Cursor: first.NextCursor}); greyerr.CodeOf(err) != greyerr.InvalidArgument {
		t.Fatalf("acme's cursor for other: %v", err)
	}
	// The cost report counts the archived tasks (the ledger outlives them).
	if u := tenantUsage(t, acme, "acme"); u.Usage.TasksSubmitted != 12 || u.Usage.TasksCompleted != 12 {
		t.Fatalf("usage after archiving: %+v", u.Usage)
	}
}

// While the archive is down, tasks keep running and wait in Raft; /readyz
// says why and the lag metrics show it; past archive.max_backlog
// submissions are refused with the reason; when the archive is back every
// task reaches it exactly once and the lag returns to zero.
func TestArchiveOutageHoldsTasksInRaft(t *testing.T) {
	s, drv, mk := startArchiveServer(t, func(cfg *config.Config) { cfg.Archive.MaxBacklog = 8 })
	ctx := context.Background()
	c := mk("acme")
	before := submitN(t, c, 3, "echo")
	greytest.Eventually(t, 15*time.Second, func() bool { return drv.Len() == 3 })

	drv.SetUnavailable(errors.New("connection refused"))
	during := submitN(t, c, 8, "echo")
	for _, tk := range during {
		if done, err := c.Wait(ctx, tk.ID); err != nil || done.Status != task.Completed {
			t.Fatalf("task during the outage: %+v, %v", done, err)
		}
	}
	// Held in Raft past their retention.
	time.Sleep(500 * time.Millisecond)
	for _, tk := range during {
		if s.store.Lookup(string(tk.ID)) == nil {
			t.Fatalf("task %s left Raft while the archive was down", tk.ID)
		}
	}
	if lag := gauge(t, s.registry, "grey_archive_lag_tasks"); lag != 8 {
		t.Fatalf("grey_archive_lag_tasks = %v, want 8", lag)
	}
	if lag := gauge(t, s.registry, "grey_archive_lag_seconds"); lag <= 0 {
		t.Fatalf("grey_archive_lag_seconds = %v", lag)
	}
	// The backlog is at its bound: submissions are refused, readyz is 503
	// and names the archive.
	_, err := c.Submit(ctx, task.Spec{Kind: "echo"})
	var ge *greyerr.Error
	if !errors.As(err, &ge) || ge.Code != greyerr.ResourceExhausted || ge.Reason != "archive_backlog" {
		t.Fatalf("submit over the archive backlog: %v", err)
	}
	if err := c.Ready(ctx); greyerr.CodeOf(err) != greyerr.Unavailable || !containsAll(err.Error(), "archive backlog full", "connection refused") {
		t.Fatalf("readyz at the bound: %v", err)
	}
	// Below the bound the node is ready but degraded, saying why.
	drv.SetUnavailable(nil)
	greytest.Eventually(t, 20*time.Second, func() bool {
		return drv.Len() == 11 && gauge(t, s.registry, "grey_archive_lag_tasks") == 0
	})
	greytest.Eventually(t, 10*time.Second, func() bool {
		r, err := c.Readiness(ctx)
		return err == nil && r.Status == "ready"
	})
	greytest.Eventually(t, 10*time.Second, func() bool { return s.store.Lookup(string(during[7].ID)) == nil })
	if gauge(t, s.registry, "grey_archive_lag_seconds") != 0 {
		t.Fatal("lag seconds not back to 0")
	}
	for _, tk := range append(before, during...) {
		if _, err := c.Get(ctx, tk.ID); err != nil {
			t.Fatalf("task %s after the outage: %v", tk.ID, err)
		}
	}
	// A short outage below the bound: ready but degraded.
	drv.SetUnavailable(errors.New("admin shutdown"))
	tk := submitN(t, c, 1, "echo")[0]
	if _, err := c.Wait(ctx, tk.ID); err != nil {
		t.Fatal(err)
	}
	greytest.Eventually(t, 10*time.Second, func() bool {
		r, err := c.Readiness(ctx)
		return err == nil && r.Status == "degraded" && containsAll(r.Degraded["archive"], "archive unavailable", "admin shutdown")
	})
	drv.SetUnavailable(nil)
	greytest.Eventually(t, 20*time.Second, func() bool { return drv.Len() == 12 })
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

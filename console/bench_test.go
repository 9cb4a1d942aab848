package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/task"
)

// fill submits n tasks to tenant in batches (no workers run them).
func fill(tb testing.TB, g *greyd, tenant string, n int) {
	tb.Helper()
	ctx := context.Background()
	c := g.client(tb, tenant, "")
	for done := 0; done < n; {
		k := min(engine.MaxBatch, n-done)
		specs := make([]task.Spec, k)
		for i := range specs {
			specs[i] = task.Spec{Kind: "echo", Payload: json.RawMessage(fmt.Sprintf(`{"image":{"format":"png","n":%d}}`, done+i)),
				Constraints: &task.Constraints{Labels: map[string]string{"zone": "eu"}}}
		}
		if _, err := c.SubmitBatch(ctx, specs); err != nil {
			tb.Fatal(err)
		}
		done += k
	}
}

// firstLoad fetches what a browser fetches on a first visit of path (the
// page, its style sheet and script) and returns the bytes.
func firstLoad(tb testing.TB, hc *http.Client, base, path string) int {
	tb.Helper()
	total := 0
	for _, p := range []string{path, "/ui/static/console.css", "/ui/static/console.js"} {
		resp, err := hc.Get(base + p)
		if err != nil {
			tb.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			tb.Fatalf("GET %s: %d", p, resp.StatusCode)
		}
		total += int(n)
	}
	return total
}

// BenchmarkTasksPage100k is the first load of the tasks page (page, CSS,
// script over a fresh connection each time) with 100,000 tasks of the
// tenant in the store: the issue asks for at most 1 s; it reports the
// time per load and the bytes transferred. The page is the server's
// first page of 50 (the list API pages by cursor), so its cost does not
// grow with the store.
//
//	go test -run '^$' -bench TasksPage100k -benchtime 20x ./console
func BenchmarkTasksPage100k(b *testing.B) {
	g := startGreyd(b, func(cfg *config.Config) {
		cfg.Worker.Enabled = false
		cfg.Tasks.MaxPayloadBytes = 1 << 20
		cfg.Tenants.DefaultQuota.MaxQueued = 0
	})
	start := time.Now()
	fill(b, g, "default", 100_000)
	info, err := g.client(b, "default", "").Cluster(context.Background())
	if err != nil || info.Tasks[task.Pending] != 100_000 {
		b.Fatalf("store holds %v (%v), want 100000 pending", info.Tasks, err)
	}
	b.Logf("stored 100,000 tasks in %s", time.Since(start).Round(time.Millisecond))
	for _, pg := range []struct{ name, path string }{
		{"tasks", "/ui/tasks"},
		{"tasks-filtered", "/ui/tasks?status=pending&kind=echo&label=zone%3Deu"},
		{"overview", "/ui/"},
	} {
		b.Run(pg.name, func(b *testing.B) {
			var bytes int
			for b.Loop() {
				hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
				bytes = firstLoad(b, hc, g.base, pg.path)
			}
			b.ReportMetric(float64(bytes), "bytes/load")
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/load")
		})
	}
}

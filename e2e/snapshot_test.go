package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/task"
)

// TestSnapshotRestoreWholeCluster loses a one-server cluster and rebuilds
// it from its periodic backup, as docs/OPERATIONS.md describes: greyd
// writes backups to a file:// bucket; it is SIGKILLed; a brand-new greyd
// bootstraps on an empty data dir; `greyctl snapshot restore` loads the
// newest backup; the tasks are back, and the new cluster runs work. It also
// drives `greyctl snapshot save` and the refusal of a damaged file.
func TestSnapshotRestoreWholeCluster(t *testing.T) {
	requireE2E(t)
	backups := t.TempDir()
	cfg := fmt.Sprintf("raft:\n  bootstrap: true\n  backup:\n    url: file://%s\n    interval: 200ms\n    retain: 5\ntasks:\n  kinds: [manual]\n", filepath.ToSlash(backups))
	old := newGreyd(t, cfg)
	old.Start()
	old.WaitReady(30 * time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.New(old.URL(), client.WithTenant("snap"))
	if err != nil {
		t.Fatal(err)
	}
	// Completed tasks with results, and pending ones no worker runs.
	want := map[task.ID]*task.Task{}
	for i := range 5 {
		tk, err := c.Submit(ctx, task.Spec{Kind: "echo", Payload: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))})
		if err != nil {
			t.Fatal(err)
		}
		if tk, err = c.Wait(ctx, tk.ID); err != nil || tk.Status != task.Completed {
			t.Fatalf("echo %d: %+v, %v", i, tk, err)
		}
		want[tk.ID] = tk
	}
	for range 2 {
		tk, err := c.Submit(ctx, task.Spec{Kind: "manual", Payload: json.RawMessage(`"later"`)})
		if err != nil {
			t.Fatal(err)
		}
		want[tk.ID] = tk
	}
	cid := clusterID(t, old.URL())
	// Wait for a backup taken after the last write.
	after := time.Now().UTC().Format("20060102T150405.000Z")
	var newest string
	deadline := time.Now().Add(30 * time.Second)
	for newest == "" || newest < "grey-snapshot-"+after {
		if time.Now().After(deadline) {
			t.Fatalf("no backup after %s in %s (newest %q)", after, backups, newest)
		}
		time.Sleep(50 * time.Millisecond)
		newest = newestBackup(t, backups)
	}
	old.Kill()
	if n := len(backupFiles(t, backups)); n == 0 || n > 5 {
		t.Errorf("%d backup files kept, want 1 to 5 (retain 5)", n)
	}

	// A brand-new server on an empty data dir, then the restore.
	fresh := newGreyd(t, "raft:\n  bootstrap: true\ntasks:\n  kinds: [manual]\n")
	fresh.Start()
	fresh.WaitReady(30 * time.Second)
	r := greyctl(t, fresh.URL(), time.Minute, "snapshot", "restore", filepath.Join(backups, newest))
	if r.Code != 0 {
		t.Fatalf("greyctl snapshot restore: exit %d; stdout %s; stderr %s", r.Code, r.Stdout, r.Stderr)
	}
	if !strings.Contains(r.Stdout, "restored snapshot of cluster "+cid) || !strings.Contains(r.Stdout, "7 tasks") {
		t.Errorf("greyctl snapshot restore printed %q", r.Stdout)
	}
	fc, err := client.New(fresh.URL(), client.WithTenant("snap"))
	if err != nil {
		t.Fatal(err)
	}
	checkTasks(ctx, t, fc, want)
	fci, err := fc.Cluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := clusterID(t, fresh.URL()); got != cid || len(fci.Members) != 1 || fci.Members[0].APIAddr != fresh.URL() {
		t.Errorf("rebuilt cluster: id %s (want %s), members %+v", got, cid, fci.Members)
	}
	// The rebuilt cluster runs new work.
	tk, err := fc.Submit(ctx, task.Spec{Kind: "echo", Payload: json.RawMessage(`"new"`)})
	if err != nil {
		t.Fatal(err)
	}
	if tk, err = fc.Wait(ctx, tk.ID); err != nil || tk.Status != task.Completed {
		t.Fatalf("new task on the rebuilt cluster: %+v, %v", tk, err)
	}

	// save → a damaged copy is refused, state unchanged → the save restores.
	saved := filepath.Join(t.TempDir(), "saved.snap")
	r = greyctl(t, fresh.URL(), time.Minute, "snapshot", "save", saved)
	if r.Code != 0 || !strings.Contains(r.Stdout, "saved snapshot of cluster "+cid) {
		t.Fatalf("greyctl snapshot save: exit %d; stdout %s; stderr %s", r.Code, r.Stdout, r.Stderr)
	}
	b, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	damaged := filepath.Join(t.TempDir(), "damaged.snap")
	if err := os.WriteFile(damaged, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := fc.Submit(ctx, task.Spec{Kind: "manual"}); err != nil {
		t.Fatal(err)
	}
	r = greyctl(t, fresh.URL(), time.Minute, "snapshot", "restore", damaged)
	if r.Code != 1 || !strings.Contains(r.Stderr, "corrupt snapshot") {
		t.Errorf("restore of a damaged file: exit %d, stderr %q; want 1 and corrupt snapshot", r.Code, r.Stderr)
	}
	if n := countTasks(ctx, t, fc); n != 9 {
		t.Errorf("after the refused restore %d tasks, want 9", n)
	}
	r = greyctl(t, fresh.URL(), time.Minute, "snapshot", "restore", saved+".nope")
	if r.Code == 0 {
		t.Errorf("restore of a missing file: exit 0")
	}
	r = greyctl(t, fresh.URL(), time.Minute, "snapshot", "restore", saved)
	if r.Code != 0 || !strings.Contains(r.Stdout, "8 tasks") {
		t.Errorf("restore of the save: exit %d; stdout %s; stderr %s", r.Code, r.Stdout, r.Stderr)
	}
	if n := countTasks(ctx, t, fc); n != 8 {
		t.Errorf("after restoring the save %d tasks, want 8", n)
	}
}

// clusterID returns the cluster id a server reports.
func clusterID(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/cluster")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ci struct {
		ClusterID string `json:"cluster_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ci); err != nil || ci.ClusterID == "" {
		t.Fatalf("GET %s/api/v1/cluster: cluster id %q, %v", base, ci.ClusterID, err)
	}
	return ci.ClusterID
}

// checkTasks requires the tenant's tasks to be exactly want, each with its
// status and result.
func checkTasks(ctx context.Context, t *testing.T, c *client.Client, want map[task.ID]*task.Task) {
	t.Helper()
	page, err := c.List(ctx, client.ListOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	got := map[task.ID]*task.Task{}
	for _, tk := range page.Tasks {
		got[tk.ID] = tk
	}
	if len(got) != len(want) {
		t.Errorf("%d tasks, want %d", len(got), len(want))
	}
	for id, w := range want {
		g, err := c.Get(ctx, id)
		if err != nil {
			t.Errorf("task %s: %v", id, err)
			continue
		}
		if g.Status != w.Status || string(g.Result) != string(w.Result) || g.Kind != w.Kind {
			t.Errorf("task %s: %s %s %s, want %s %s %s", id, g.Kind, g.Status, g.Result, w.Kind, w.Status, w.Result)
		}
	}
}

func countTasks(ctx context.Context, t *testing.T, c *client.Client) int {
	t.Helper()
	page, err := c.List(ctx, client.ListOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(page.Tasks)
}

// backupFiles lists the backup files in dir, oldest first.
func backupFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, "grey-snapshot-") && strings.HasSuffix(n, ".snap") {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

func newestBackup(t *testing.T, dir string) string {
	t.Helper()
	fs := backupFiles(t, dir)
	if len(fs) == 0 {
		return ""
	}
	return fs[len(fs)-1]
}

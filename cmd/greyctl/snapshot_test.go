package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grey-distributed/grey/api"
	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/task"
)

// TestSnapshotCommands saves and restores through the real API of a
// single-node engine.
func TestSnapshotCommands(t *testing.T) {
	t.Parallel()
	const token = "snapshot-token-0123456789"
	n := greytest.NewNode(t, engine.Config{Kinds: []string{"manual"}})
	srv := httptest.NewServer(api.New(n.Engine, api.Options{AdminToken: token, Logger: greytest.Logger(t)}))
	t.Cleanup(srv.Close)
	env := map[string]string{"GREY_SERVER": srv.URL, "GREY_TOKEN": token}
	ctx := context.Background()
	submit := func() {
		t.Helper()
		if _, err := n.Engine.Submit(ctx, "acme", []task.Spec{{Kind: "manual"}}, false); err != nil {
			t.Fatal(err)
		}
	}
	submit()
	submit()

	dir := t.TempDir()
	file := filepath.Join(dir, "grey.snap")
	if r := greyctl(t, map[string]string{"GREY_SERVER": srv.URL}, "snapshot", "save", file); r.code != 1 || !strings.Contains(r.stderr, "unauthenticated") {
		t.Errorf("save without the token: %+v", r)
	}
	r := greyctl(t, env, "snapshot", "save", file)
	if r.code != 0 || !strings.Contains(r.stdout, "saved snapshot of cluster "+n.Store.ClusterID()) {
		t.Fatalf("save: %+v", r)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("save left %d files in the directory, want 1", len(entries))
	}
	r = greyctl(t, env, "-o", "json", "snapshot", "save", "-")
	if r.code != 0 || !strings.HasPrefix(r.stdout, `{"grey_snapshot":1,`) || !strings.Contains(r.stderr, `"cluster_id"`) {
		t.Errorf("save -: code %d, stdout %.60q, stderr %q", r.code, r.stdout, r.stderr)
	}

	submit()
	if n.Store.Len() != 3 {
		t.Fatalf("store holds %d tasks", n.Store.Len())
	}
	r = greyctl(t, env, "-o", "json", "snapshot", "restore", file)
	var info struct {
		ClusterID string `json:"cluster_id"`
		Tasks     int    `json:"tasks"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &info) != nil || info.Tasks != 2 || info.ClusterID != n.Store.ClusterID() {
		t.Fatalf("restore: %+v", r)
	}
	if n.Store.Len() != 2 {
		t.Errorf("after restore the store holds %d tasks, want 2", n.Store.Len())
	}

	// Damaged files and usage errors.
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.snap")
	if err := os.WriteFile(bad, b[:len(b)-3], 0o600); err != nil {
		t.Fatal(err)
	}
	submit()
	if r := greyctl(t, env, "snapshot", "restore", bad); r.code != 1 || !strings.Contains(r.stderr, "truncated snapshot") {
		t.Errorf("restore of a cut file: %+v", r)
	}
	if r := greyctl(t, env, "snapshot", "restore", filepath.Join(dir, "missing.snap")); r.code != 1 {
		t.Errorf("restore of a missing file: %+v", r)
	}
	if r := greyctl(t, env, "snapshot", "restore"); r.code != 2 {
		t.Errorf("restore without a file: %+v", r)
	}
	if r := greyctl(t, env, "snapshot", "save", filepath.Join(dir, "no", "such", "dir.snap")); r.code != 1 {
		t.Errorf("save into a missing directory: %+v", r)
	}
	if n.Store.Len() != 3 {
		t.Errorf("refused restores changed the store: %d tasks, want 3", n.Store.Len())
	}
}

package api_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/grey-distributed/grey/api"
	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/worker"
)

// The tests below cover GET and POST /api/v1/cluster/snapshot: save, restore
// (state replaced, scheduler rebuilt) and the refusal of bad files.

// snapshotInfo mirrors the restore answer's JSON.
type snapshotInfo struct {
	ClusterID string    `json:"cluster_id"`
	NodeID    string    `json:"node_id"`
	Index     uint64    `json:"index"`
	Term      uint64    `json:"term"`
	Size      int64     `json:"size"`
	CreatedAt time.Time `json:"created_at"`
	Tasks     int       `json:"tasks"`
	Tenants   int       `json:"tenants"`
	Forced    bool      `json:"forced"`
}

// saveSnapshot downloads a snapshot and checks the response's headers.
func (e *env) saveSnapshot(t *testing.T) []byte {
	t.Helper()
	r := e.do(t, call{method: "GET", path: "/api/v1/cluster/snapshot"})
	if r.status != http.StatusOK {
		t.Fatalf("GET snapshot: status %d: %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("GET snapshot: Content-Type %q", ct)
	}
	if cl := r.header.Get("Content-Length"); cl != strconv.Itoa(len(r.body)) {
		t.Errorf("GET snapshot: Content-Length %q for %d bytes", cl, len(r.body))
	}
	var ci engine.ClusterInfo
	e.ok(t, call{method: "GET", path: "/api/v1/cluster"}, http.StatusOK, &ci)
	if got := r.header.Get(api.ClusterIDHeader); got == "" || got != ci.ClusterID {
		t.Errorf("GET snapshot: %s %q, cluster id %q", api.ClusterIDHeader, got, ci.ClusterID)
	}
	idx, err := strconv.ParseUint(r.header.Get(api.SnapshotIndexHeader), 10, 64)
	if err != nil || idx == 0 || idx > ci.AppliedIndex {
		t.Errorf("GET snapshot: %s %q (applied index %d)", api.SnapshotIndexHeader, r.header.Get(api.SnapshotIndexHeader), ci.AppliedIndex)
	}
	if term, err := strconv.ParseUint(r.header.Get(api.SnapshotTermHeader), 10, 64); err != nil || term == 0 {
		t.Errorf("GET snapshot: %s %q", api.SnapshotTermHeader, r.header.Get(api.SnapshotTermHeader))
	}
	var hdr map[string]any
	line, _, _ := bytes.Cut(r.body, []byte("\n"))
	if err := json.Unmarshal(line, &hdr); err != nil || hdr["grey_snapshot"] != 1.0 || hdr["cluster_id"] != ci.ClusterID {
		t.Errorf("GET snapshot: header line %s (%v)", line, err)
	}
	return r.body
}

func (e *env) restoreSnapshot(t *testing.T, file []byte, query string) snapshotInfo {
	t.Helper()
	var info snapshotInfo
	e.ok(t, call{method: "POST", path: "/api/v1/cluster/snapshot" + query, body: file, contentType: "application/octet-stream"}, http.StatusOK, &info)
	return info
}

// taskIDs returns the ids of every task in the store, sorted.
func (e *env) taskIDs() []string {
	var out []string
	e.node.Store.Each(func(t *task.Task) { out = append(out, t.ID) })
	slices.Sort(out)
	return out
}

func (e *env) lease(t *testing.T, workerID, kind, wait string) worker.LeaseResponse {
	t.Helper()
	var lr worker.LeaseResponse
	e.ok(t, call{method: "POST", path: "/api/v1/workers/lease",
		body: map[string]any{"worker_id": workerID, "kinds": []string{kind}, "max": 5, "wait": wait, "labels": map[string]string{}, "platform": "software"}},
		http.StatusOK, &lr)
	return lr
}

func (e *env) complete(t *testing.T, workerID string, a worker.Assignment, result string) {
	t.Helper()
	var cr worker.CompleteResponse
	e.ok(t, call{method: "POST", path: "/api/v1/workers/complete", body: worker.CompleteRequest{WorkerID: workerID, Reports: []worker.Report{
		{TaskID: a.TaskID, Attempt: a.Attempt, Status: task.Completed, Result: json.RawMessage(result), At: time.Now().UTC()},
	}}}, http.StatusOK, &cr)
	if len(cr.Results) != 1 || !cr.Results[0].Accepted {
		t.Fatalf("complete %s: %+v", a.TaskID, cr.Results)
	}
}

// leaseOne leases kind and requires exactly the task id.
func (e *env) leaseOne(t *testing.T, workerID, kind, id string) worker.Assignment {
	t.Helper()
	lr := e.lease(t, workerID, kind, "5s")
	if len(lr.Tasks) != 1 || lr.Tasks[0].TaskID != id {
		t.Fatalf("lease %s = %+v, want only %s", kind, lr.Tasks, id)
	}
	return lr.Tasks[0]
}

// TestSnapshotSaveAndRestore saves, changes the state, restores, and checks
// that the saved tasks are back with their status, the later ones gone, and
// that the scheduler serves the restored pending task again.
func TestSnapshotSaveAndRestore(t *testing.T) {
	t.Parallel()
	e := newEnv(t, engine.Config{Kinds: []string{"manual", "other"}}, api.Options{})

	// Saved: a1 pending, b1 completed.
	a1 := e.submit(t, "acme", map[string]any{"kind": "manual", "payload": "a1"})
	b1 := e.submit(t, "beta", map[string]any{"kind": "other", "payload": "b1"})
	e.complete(t, "w-1", e.leaseOne(t, "w-1", "other", b1.ID), `"done b1"`)
	var ci engine.ClusterInfo
	e.ok(t, call{method: "GET", path: "/api/v1/cluster"}, http.StatusOK, &ci)
	snap := e.saveSnapshot(t)
	saved := e.taskIDs()

	// After the save: a1 dispatched and completed, a2 pending, g1 of a new tenant.
	e.complete(t, "w-1", e.leaseOne(t, "w-1", "manual", a1.ID), `"done a1"`)
	if lr := e.lease(t, "w-1", "manual", "10ms"); len(lr.Tasks) != 0 {
		t.Fatalf("lease = %+v, want nothing left", lr.Tasks)
	}
	a2 := e.submit(t, "acme", map[string]any{"kind": "other", "payload": "a2"})
	g1 := e.submit(t, "gamma", map[string]any{"kind": "other", "payload": "g1"})
	if n := e.node.Store.Len(); n != 4 {
		t.Fatalf("store holds %d tasks before the restore, want 4", n)
	}

	info := e.restoreSnapshot(t, snap, "")
	if info.ClusterID != ci.ClusterID || info.Tasks != 2 || info.Tenants != 2 || info.Forced || info.Index == 0 || info.Size <= 0 {
		t.Errorf("restore answer %+v, want cluster %s, 2 tasks, 2 tenants", info, ci.ClusterID)
	}
	if got := e.taskIDs(); !slices.Equal(got, saved) {
		t.Fatalf("after restore the store holds %v, want the saved %v", got, saved)
	}
	e.fail(t, call{method: "GET", path: "/api/v1/tasks/" + a2.ID, tenant: "acme"}, http.StatusNotFound, greyerr.NotFound, "")
	e.fail(t, call{method: "GET", path: "/api/v1/tasks/" + g1.ID, tenant: "gamma"}, http.StatusNotFound, greyerr.NotFound, "")
	if g := e.get(t, "beta", b1.ID); g.Status != task.Completed || string(g.Result) != `"done b1"` {
		t.Errorf("b1 after restore: %+v", g)
	}
	if g := e.get(t, "acme", a1.ID); g.Status != task.Pending || g.Result != nil || g.Attempt != 0 {
		t.Errorf("a1 after restore: status %s attempt %d result %s, want pending, never run", g.Status, g.Attempt, g.Result)
	}
	var after engine.ClusterInfo
	e.ok(t, call{method: "GET", path: "/api/v1/cluster"}, http.StatusOK, &after)
	if after.ClusterID != ci.ClusterID || len(after.Members) != 1 || after.Members[0].ID != "test-1" || after.Tasks[task.Pending] != 1 {
		t.Errorf("cluster after restore: id %s members %+v tasks %v", after.ClusterID, after.Members, after.Tasks)
	}

	// The scheduler was rebuilt from the restored store: a1, dispatched
	// before the restore, is leased again (attempt 1 of the restored task).
	a := e.leaseOne(t, "w-2", "manual", a1.ID)
	if a.Attempt != 1 {
		t.Errorf("a1 leased again with attempt %d, want 1", a.Attempt)
	}
	e.complete(t, "w-2", a, `"done a1 again"`)
	if g := e.get(t, "acme", a1.ID); g.Status != task.Completed || string(g.Result) != `"done a1 again"` {
		t.Errorf("a1 after completion: %+v", g)
	}
}

func TestSnapshotRestoreRefusesBadFiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t, engine.Config{}, api.Options{})
	for i := range 20 {
		e.submit(t, "acme", map[string]any{"kind": "noop", "payload": map[string]int{"i": i}})
	}
	snap := e.saveSnapshot(t)
	// Change the state so a wrong restore would show.
	e.submit(t, "acme", map[string]any{"kind": "noop"})
	e.submit(t, "other", map[string]any{"kind": "noop"})
	before := e.taskIDs()
	if len(before) != 22 {
		t.Fatalf("store holds %d tasks, want 22", len(before))
	}

	hdrEnd := bytes.IndexByte(snap, '\n') + 1
	trailerStart := bytes.LastIndexByte(snap[:len(snap)-1], '\n') + 1
	flip := func(i int) []byte {
		b := bytes.Clone(snap)
		b[i] ^= 0x20
		return b
	}
	random := make([]byte, 4096)
	_, _ = rand.Read(random)
	other := newEnv(t, engine.Config{}, api.Options{})
	other.submit(t, "acme", map[string]any{"kind": "noop"})
	foreign := other.saveSnapshot(t)

	tests := []struct {
		name  string
		body  []byte
		field string
	}{
		{"flipped payload byte", flip((hdrEnd + trailerStart) / 2), "body"},
		{"flipped header byte", flip(hdrEnd / 2), "body"},
		{"flipped checksum byte", flip(trailerStart + 20), "body"},
		{"truncated in the payload", snap[:len(snap)/2], "body"},
		{"truncated before the checksum", snap[:trailerStart], "body"},
		{"last byte missing", snap[:len(snap)-1], "body"},
		{"header only", snap[:hdrEnd], "body"},
		{"trailing data", append(bytes.Clone(snap), "x\n"...), "body"},
		{"two snapshots", append(bytes.Clone(snap), snap...), "body"},
		{"random bytes", random, "body"},
		{"a JSON document", []byte(`{"tasks":[]}` + "\n"), "body"},
		{"a text file", []byte("hello\nworld\n"), "body"},
		{"another cluster's snapshot", foreign, "force"},
	}
	for _, tc := range tests {
		eb := e.fail(t, call{method: "POST", path: "/api/v1/cluster/snapshot", body: tc.body, contentType: "application/octet-stream"},
			http.StatusBadRequest, greyerr.InvalidArgument, tc.field)
		t.Logf("%s: %s", tc.name, eb.Message)
		if got := e.taskIDs(); !slices.Equal(got, before) {
			t.Fatalf("%s: the refused restore changed the store: %d tasks, want %d", tc.name, len(got), len(before))
		}
	}
	e.fail(t, call{method: "POST", path: "/api/v1/cluster/snapshot?force=maybe", body: snap, contentType: "application/octet-stream", bad: true},
		http.StatusBadRequest, greyerr.InvalidArgument, "force")
	e.fail(t, call{method: "POST", path: "/api/v1/cluster/snapshot", body: snap, contentType: "application/json", bad: true},
		http.StatusBadRequest, greyerr.InvalidArgument, "Content-Type")
	e.fail(t, call{method: "POST", path: "/api/v1/cluster/snapshot", bad: true},
		http.StatusBadRequest, greyerr.InvalidArgument, "body")
	if got := e.taskIDs(); !slices.Equal(got, before) {
		t.Fatalf("the refused restores changed the store")
	}

	// The good file still restores; then force takes another cluster's.
	if info := e.restoreSnapshot(t, snap, ""); info.Tasks != 20 {
		t.Errorf("restore: %+v, want 20 tasks", info)
	}
	info := e.restoreSnapshot(t, foreign, "?force=true")
	if !info.Forced || info.Tasks != 1 || e.node.Store.Len() != 1 {
		t.Errorf("forced restore: %+v, store %d tasks; want 1 task, forced", info, e.node.Store.Len())
	}
	var ci engine.ClusterInfo
	e.ok(t, call{method: "GET", path: "/api/v1/cluster"}, http.StatusOK, &ci)
	if ci.ClusterID != info.ClusterID {
		t.Errorf("cluster id after forced restore %s, want the snapshot's %s", ci.ClusterID, info.ClusterID)
	}
}

// TestSnapshotRestoreIntoEmptyCluster restores another cluster's snapshot
// into a fresh one without force (rebuilding from a backup).
func TestSnapshotRestoreIntoEmptyCluster(t *testing.T) {
	t.Parallel()
	src := newEnv(t, engine.Config{}, api.Options{})
	tk := src.submit(t, "acme", map[string]any{"kind": "noop"})
	snap := src.saveSnapshot(t)

	dst := newEnv(t, engine.Config{}, api.Options{})
	info := dst.restoreSnapshot(t, snap, "")
	if info.Forced || info.Tasks != 1 {
		t.Errorf("restore into an empty cluster: %+v", info)
	}
	if g := dst.get(t, "acme", tk.ID); g.ID != tk.ID {
		t.Errorf("restored task %+v", g)
	}
}

func TestSnapshotRoutesNeedAdminToken(t *testing.T) {
	t.Parallel()
	const token = "snapshot-admin-token-0123"
	e := newEnv(t, engine.Config{}, api.Options{AdminToken: token})
	e.fail(t, call{method: "GET", path: "/api/v1/cluster/snapshot"}, http.StatusUnauthorized, greyerr.Unauthenticated, "")
	e.fail(t, call{method: "POST", path: "/api/v1/cluster/snapshot", body: []byte("x"), contentType: "application/octet-stream"}, http.StatusUnauthorized, greyerr.Unauthenticated, "")
	r := e.do(t, call{method: "GET", path: "/api/v1/cluster/snapshot", header: map[string]string{"Authorization": "Bearer " + token}})
	if r.status != http.StatusOK {
		t.Fatalf("GET snapshot with the token: %d %s", r.status, r.body)
	}
	var info snapshotInfo
	e.ok(t, call{method: "POST", path: "/api/v1/cluster/snapshot", body: r.body, contentType: "application/octet-stream",
		header: map[string]string{"Authorization": "Bearer " + token}}, http.StatusOK, &info)
}

package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/worker"
)

const testID = "01927f6e-3c1a-7d2b-8e4f-0a1b2c3d4e5f"

func newValidator(t *testing.T) *Validator {
	t.Helper()
	v, err := NewValidator()
	if err != nil {
		t.Fatalf("NewValidator: %v", err)
	}
	return v
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jsonHeader() http.Header {
	return http.Header{"Content-Type": []string{"application/json; charset=utf-8"}}
}

// fullTask is a task with every field set, marshalled by the real Go types,
// so the test also pins the spec to the task package.
func fullTask() *task.Task {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	prio, retries, proof := 7, 3, true
	return &task.Task{
		ID:       testID,
		TenantID: "acme",
		Spec: task.Spec{
			Kind:           "echo",
			Type:           task.Stateful,
			Payload:        json.RawMessage(`{"msg":"hi"}`),
			Priority:       &prio,
			IdempotencyKey: "order-42",
			StateKey:       "account-1",
			DependsOn:      []string{"01927f6e-3c1a-7d2b-8e4f-0a1b2c3d4e60"},
			Constraints:    &task.Constraints{Labels: map[string]string{"gpu": "true"}, CPU: 0.5, MemoryMB: 256},
			Timeout:        task.Duration(1500 * time.Millisecond),
			Retry:          &task.RetryPolicy{MaxRetries: &retries, BaseDelay: task.Duration(100 * time.Millisecond), MaxDelay: task.Duration(30 * time.Second)},
			RequireProof:   &proof,
			RunAt:          &now,
			Headers:        map[string]string{"traceparent": "00-abc-def-01"},
		},
		Status:  task.Running,
		Attempt: 2,
		Lease:   &task.Lease{WorkerID: "w1", Attempt: 2, Deadline: now},
		Result:  json.RawMessage(`[1,2]`),
		Error:   &task.Error{Message: "boom", Retryable: true, Code: "executor"},
		Attempts: []task.Attempt{
			{N: 1, WorkerID: "w1", LeasedAt: now, StartedAt: &now, FinishedAt: &now, Error: &task.Error{Message: "boom", Retryable: true}},
			{N: 2, WorkerID: "w1", LeasedAt: now},
		},
		CreatedAt:     now,
		UpdatedAt:     now,
		StartedAt:     &now,
		NextAttemptAt: &now,
		WaitingReason: "state_key",
		Index:         42,
	}
}

func TestSpecLoadsAndValidates(t *testing.T) {
	t.Parallel()
	if !bytes.HasPrefix(Spec(), []byte("openapi: 3.0.3")) {
		t.Fatalf("Spec() does not start with the OpenAPI version: %.40q", Spec())
	}
	v := newValidator(t)
	if err := v.doc.Validate(t.Context()); err != nil {
		t.Fatalf("doc.Validate: %v", err)
	}
}

// TestSpecRoutes pins the list of routes of the HTTP contract.
func TestSpecRoutes(t *testing.T) {
	t.Parallel()
	v := newValidator(t)
	routes := []string{
		"POST /api/v1/tasks",
		"GET /api/v1/tasks",
		"POST /api/v1/tasks/batch",
		"GET /api/v1/tasks/watch",
		"GET /api/v1/tasks/" + testID,
		"DELETE /api/v1/tasks/" + testID,
		"GET /api/v1/tasks/" + testID + "/wait",
		"GET /api/v1/cluster",
		"GET /api/v1/cluster/nodes",
		"GET /healthz",
		"GET /readyz",
		"POST /api/v1/workers/lease",
		"POST /api/v1/workers/heartbeat",
		"POST /api/v1/workers/complete",
		"GET /api/v1/openapi.yaml",
		"POST /api/v1/apikeys",
		"GET /api/v1/apikeys",
		"DELETE /api/v1/apikeys/abcdefghijklmnop",
		"GET /api/v1/cluster/self",
		"POST /api/v1/cluster/join",
		"DELETE /api/v1/cluster/nodes/w1",
	}
	for _, r := range routes {
		method, path, _ := strings.Cut(r, " ")
		req := httptest.NewRequest(method, "http://grey.test"+path, nil)
		route, _, err := v.router.FindRoute(req)
		if err != nil {
			t.Errorf("%s: %v", r, err)
			continue
		}
		if route.Operation == nil || route.Operation.OperationID == "" {
			t.Errorf("%s: no operation id", r)
		}
	}
	// /tasks/watch must not be taken for /tasks/{id}.
	route, _, err := v.router.FindRoute(httptest.NewRequest("GET", "/api/v1/tasks/watch", nil))
	if err != nil || route.Operation.OperationID != "watchTasks" {
		t.Errorf("GET /api/v1/tasks/watch routed to %v (%v), want watchTasks", route, err)
	}
}

func TestValidateResponse(t *testing.T) {
	t.Parallel()
	v := newValidator(t)

	wrongStatus := fullTask()
	wrongStatus.Status = "done"
	noID := fullTask()
	noID.ID = ""
	badPrio := fullTask()
	p := 11
	badPrio.Priority = &p
	lastContact := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	leaseResp := worker.LeaseResponse{
		Tasks: []worker.Assignment{{
			TaskID: testID, TenantID: "acme", Kind: "echo", Payload: json.RawMessage(`"x"`),
			Attempt: 1, Timeout: task.Duration(30 * time.Second), LeaseDeadline: lastContact,
		}},
		LeaseTTL: task.Duration(10 * time.Second),
	}

	tests := []struct {
		name    string
		method  string
		path    string
		status  int
		header  http.Header
		body    []byte
		wantErr bool
	}{
		{"get task", "GET", "/api/v1/tasks/" + testID, 200, jsonHeader(), mustJSON(t, fullTask()), false},
		{"submit created", "POST", "/api/v1/tasks", 201, jsonHeader(), mustJSON(t, fullTask()), false},
		{"submit existing", "POST", "/api/v1/tasks", 200, jsonHeader(), mustJSON(t, fullTask()), false},
		{"unknown status value", "GET", "/api/v1/tasks/" + testID, 200, jsonHeader(), mustJSON(t, wrongStatus), true},
		{"missing id", "GET", "/api/v1/tasks/" + testID, 200, jsonHeader(), mustJSON(t, noID), true},
		{"priority out of range", "GET", "/api/v1/tasks/" + testID, 200, jsonHeader(), mustJSON(t, badPrio), true},
		{"undocumented status", "GET", "/api/v1/tasks/" + testID, 202, jsonHeader(), mustJSON(t, fullTask()), true},
		{"not found", "GET", "/api/v1/tasks/" + testID, 404, jsonHeader(),
			mustJSON(t, greyerr.New(greyerr.NotFound, "task %s not found", testID)), false},
		{"error with unknown code", "GET", "/api/v1/tasks/" + testID, 404, jsonHeader(),
			[]byte(`{"code":"gone","message":"x"}`), true},
		{"quota with retry-after", "POST", "/api/v1/tasks/batch", 429,
			http.Header{"Content-Type": {"application/json"}, "Retry-After": {"3"}},
			[]byte(`{"code":"resource_exhausted","message":"queued quota","reason":"max_queued"}`), false},
		{"list", "GET", "/api/v1/tasks?status=pending,running&limit=10", 200, jsonHeader(),
			mustJSON(t, map[string]any{"tasks": []*task.Task{fullTask()}, "next_cursor": "abc"}), false},
		{"list without tasks", "GET", "/api/v1/tasks", 200, jsonHeader(), []byte(`{"next_cursor":""}`), true},
		{"cluster", "GET", "/api/v1/cluster", 200, jsonHeader(), []byte(`{
			"node_id":"n1","state":"leader","leader_id":"n1","leader_addr":"127.0.0.1:8080",
			"term":3,"commit_index":10,"applied_index":10,"last_snapshot_index":0,"quorum_size":2,
			"members":[{"id":"n1","raft_addr":"127.0.0.1:7000","api_addr":"127.0.0.1:8080","role":"server",
			"suffrage":"voter","state":"leader","last_contact":null,"labels":{}}],
			"tasks":{"pending":1,"leased":0}}`), false},
		{"cluster bad state", "GET", "/api/v1/cluster", 200, jsonHeader(), []byte(`{
			"node_id":"n1","state":"Leader","term":3,"commit_index":10,"applied_index":10,
			"last_snapshot_index":0,"quorum_size":2,"members":[],"tasks":{}}`), true},
		{"nodes", "GET", "/api/v1/cluster/nodes", 200, jsonHeader(), mustJSON(t, map[string]any{"nodes": []map[string]any{
			{"id": "w1", "role": "worker", "state": "unknown", "last_contact": lastContact, "labels": map[string]string{"gpu": "true"}},
		}}), false},
		{"healthz", "GET", "/healthz", 200, jsonHeader(), []byte(`{"status":"ok"}`), false},
		{"readyz unavailable", "GET", "/readyz", 503, http.Header{"Content-Type": {"application/json"}, "Retry-After": {"1"}},
			[]byte(`{"code":"unavailable","message":"no leader"}`), false},
		{"lease", "POST", "/api/v1/workers/lease", 200, jsonHeader(), mustJSON(t, leaseResp), false},
		{"lease null tasks", "POST", "/api/v1/workers/lease", 200, jsonHeader(), mustJSON(t, worker.LeaseResponse{}), true},
		{"heartbeat", "POST", "/api/v1/workers/heartbeat", 200, jsonHeader(), mustJSON(t, worker.HeartbeatResponse{
			Lost: []worker.LostLease{{LeaseRef: worker.LeaseRef{TaskID: testID, Attempt: 1}, Reason: "expired"}},
		}), false},
		{"complete", "POST", "/api/v1/workers/complete", 200, jsonHeader(), mustJSON(t, worker.CompleteResponse{
			Results: []worker.ReportResult{{TaskID: testID, Accepted: false, Reason: "stale_attempt"}},
		}), false},
		{"watch stream", "GET", "/api/v1/tasks/watch?status=completed", 200,
			http.Header{"Content-Type": {"text/event-stream"}}, []byte(": ping\n\n"), false},
		{"spec", "GET", "/api/v1/openapi.yaml", 200, http.Header{"Content-Type": {"application/yaml"}}, Spec(), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(tc.method, "http://grey.test"+tc.path, nil)
			err := v.ValidateResponse(req, tc.status, tc.header, tc.body)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ValidateResponse = %v, want error %v", err, tc.wantErr)
			}
			if err != nil && greyerr.CodeOf(err) != greyerr.Internal {
				t.Errorf("code = %s, want internal", greyerr.CodeOf(err))
			}
		})
	}
}

func TestValidateRequest(t *testing.T) {
	t.Parallel()
	v := newValidator(t)

	spec := fullTask().Spec
	tests := []struct {
		name      string
		method    string
		path      string
		body      string
		wantCode  greyerr.Code
		wantField string
	}{
		{"submit", "POST", "/api/v1/tasks", string(mustJSON(t, spec)), "", ""},
		{"submit minimal", "POST", "/api/v1/tasks", `{"kind":"noop"}`, "", ""},
		{"submit without kind", "POST", "/api/v1/tasks", `{"payload":1}`, greyerr.InvalidArgument, ""},
		{"submit bad priority", "POST", "/api/v1/tasks", `{"kind":"noop","priority":11}`, greyerr.InvalidArgument, "priority"},
		{"submit bad duration", "POST", "/api/v1/tasks", `{"kind":"noop","timeout":"soon"}`, greyerr.InvalidArgument, "timeout"},
		{"batch", "POST", "/api/v1/tasks/batch", `{"tasks":[{"kind":"a"},{"kind":"b"}]}`, "", ""},
		{"batch bad item", "POST", "/api/v1/tasks/batch", `{"tasks":[{"kind":"a"},{"kind":"B!"}]}`, greyerr.InvalidArgument, "tasks[1].kind"},
		{"batch empty", "POST", "/api/v1/tasks/batch", `{"tasks":[]}`, greyerr.InvalidArgument, "tasks"},
		{"list", "GET", "/api/v1/tasks?status=pending,running&kind=echo&limit=100&cursor=x", "", "", ""},
		{"list bad status", "GET", "/api/v1/tasks?status=pending,done", "", greyerr.InvalidArgument, "status"},
		{"list bad limit", "GET", "/api/v1/tasks?limit=0", "", greyerr.InvalidArgument, "limit"},
		{"wait", "GET", "/api/v1/tasks/" + testID + "/wait?timeout=1m30s", "", "", ""},
		{"wait bad timeout", "GET", "/api/v1/tasks/" + testID + "/wait?timeout=30", "", greyerr.InvalidArgument, "timeout"},
		{"lease", "POST", "/api/v1/workers/lease", string(mustJSON(t, worker.LeaseRequest{
			WorkerID: "w1", Kinds: []string{"echo"}, Max: 10, Wait: task.Duration(20 * time.Second)})), "", ""},
		{"lease no kinds", "POST", "/api/v1/workers/lease", `{"worker_id":"w1","kinds":[],"max":1}`, greyerr.InvalidArgument, "kinds"},
		{"complete", "POST", "/api/v1/workers/complete", string(mustJSON(t, worker.CompleteRequest{
			WorkerID: "w1", Reports: []worker.Report{{TaskID: testID, Attempt: 1, Status: task.Completed, Result: json.RawMessage(`{}`), At: time.Now()}}})), "", ""},
		{"unknown route", "GET", "/api/v1/nope", "", greyerr.NotFound, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(tc.method, "http://grey.test"+tc.path, nil)
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			req.Header.Set("X-Grey-Tenant", "acme")
			err := v.ValidateRequest(req, []byte(tc.body))
			if got := greyerr.CodeOf(err); got != tc.wantCode {
				t.Fatalf("ValidateRequest = %v (code %q), want code %q", err, got, tc.wantCode)
			}
			if tc.wantField != "" {
				ge, _ := err.(*greyerr.Error)
				if ge == nil || ge.Field != tc.wantField {
					t.Errorf("field = %q, want %q (%v)", ge.Field, tc.wantField, err)
				}
			}
		})
	}
}

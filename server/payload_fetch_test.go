package server

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/taskdata"
	"github.com/grey-distributed/grey/worker"
)

// A remote worker leasing an inference task whose payload is a binary
// body gets a lease that names the object (PayloadFetch, its size and
// SHA-256) and no bytes, and fetches the raw bytes over HTTP (GET
// /api/v1/workers/tasks/{id}/payload) with their length and digest.
// Another worker, another attempt, an expired lease and a principal
// without the worker role on the task's tenant are refused (409, 409,
// 409, 404); so is an unknown task (404).
func TestWorkerFetchesPayloadObject(t *testing.T) {
	s, mk := startDataServer(t, "", 0, func(c *config.Config) {
		c.Tasks.LeaseTTL = config.Duration(time.Second)
		c.Tasks.Kinds = []string{ai.Kind}
	})
	c := mk("acme")
	ctx := context.Background()
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	for _, n := range []string{"m/data.pkl", "m/constants.pkl", "m/code/__torch__/m.py"} {
		w, _ := zw.Create(n)
		_, _ = w.Write([]byte(n))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PushModel(ctx, client.PushModelSpec{Name: "mlp", Version: "1", Framework: ai.PyTorch, Size: int64(zb.Len())}, &zb); err != nil {
		t.Fatalf("push: %v", err)
	}
	raw := make([]byte, 4*64)
	for i := range raw {
		raw[i] = byte(i)
	}
	hdr, _ := json.Marshal(map[string]any{"model": "mlp:1", "inputs": []any{map[string]any{"name": "x", "datatype": "FP32", "shape": []int64{1, 64},
		"parameters": map[string]any{ai.BinaryDataSize: len(raw)}}}})
	body := ai.AppendBinaryBody(nil, hdr, raw)
	ref, err := c.UploadPayload(ctx, body)
	if err != nil {
		t.Fatal(err)
	}
	lease := func(w string) worker.Assignment {
		t.Helper()
		tk, err := c.Submit(ctx, task.Spec{Kind: ai.Kind, PayloadRef: ref})
		if err != nil {
			t.Fatalf("submit: %v", err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			lr, err := c.Lease(ctx, &worker.LeaseRequest{WorkerID: w, Kinds: []string{ai.Kind}, Labels: map[string]string{ai.FrameworkLabel(ai.PyTorch): "true"}, Max: 1, Wait: task.Duration(time.Second)})
			if err != nil {
				t.Fatal(err)
			}
			if len(lr.Tasks) == 1 {
				if lr.Tasks[0].TaskID != tk.ID {
					t.Fatalf("leased %s, want %s", lr.Tasks[0].TaskID, tk.ID)
				}
				return lr.Tasks[0]
			}
		}
		t.Fatal("nothing leased")
		return worker.Assignment{}
	}
	fetch := func(a worker.Assignment, w string, attempt int) ([]byte, error) {
		rc, err := c.FetchPayload(ctx, &worker.PayloadRequest{TaskID: a.TaskID, Attempt: attempt, WorkerID: w})
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}

	a := lease("w1")
	if !a.PayloadFetch || a.PayloadObject == nil || len(a.PayloadBinary) > 0 || len(a.Payload) > 0 {
		t.Fatalf("lease %+v: want the object named, not inlined", a)
	}
	if a.PayloadObject.Size != int64(len(body)) || a.PayloadObject.SHA256 != taskdata.Digest(body) {
		t.Fatalf("lease names %+v, want %d bytes, sha256 %s", a.PayloadObject, len(body), taskdata.Digest(body))
	}
	got, err := fetch(a, "w1", a.Attempt)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("fetch: %v (%d bytes, want %d)", err, len(got), len(body))
	}
	if _, err := fetch(a, "w2", a.Attempt); greyerr.CodeOf(err) != greyerr.FailedPrecondition {
		t.Errorf("another worker: %v, want failed_precondition (409)", err)
	}
	if _, err := fetch(a, "w1", a.Attempt+1); greyerr.CodeOf(err) != greyerr.FailedPrecondition {
		t.Errorf("another attempt: %v, want failed_precondition (409)", err)
	}
	unknown, _ := task.NewID()
	if _, err := fetch(worker.Assignment{TaskID: unknown}, "w1", 1); greyerr.CodeOf(err) != greyerr.NotFound {
		t.Errorf("unknown task: %v, want not_found", err)
	}

	// A principal holding the worker role on another tenant only: as an
	// unknown task. The principal that took the lease (its subject), with
	// the role on acme: served; another principal of acme: 409.
	other := auth.WithPrincipal(ctx, &auth.Principal{Subject: "apikey:other", Grants: []auth.Grant{{Tenant: "globex", Role: auth.RoleWorker}}})
	if _, err := s.Engine().FetchPayload(other, &worker.PayloadRequest{TaskID: a.TaskID, Attempt: a.Attempt, WorkerID: "w1"}); greyerr.CodeOf(err) != greyerr.NotFound {
		t.Errorf("another tenant's worker: %v, want not_found", err)
	}
	if a.Principal != "" {
		thief := auth.WithPrincipal(ctx, &auth.Principal{Subject: a.Principal + "-other", Grants: []auth.Grant{{Tenant: "acme", Role: auth.RoleWorker}}})
		if _, err := s.Engine().FetchPayload(thief, &worker.PayloadRequest{TaskID: a.TaskID, Attempt: a.Attempt, WorkerID: "w1"}); greyerr.CodeOf(err) != greyerr.FailedPrecondition {
			t.Errorf("another principal of acme: %v, want failed_precondition", err)
		}
	}
	mine := auth.WithPrincipal(ctx, &auth.Principal{Subject: a.Principal, Grants: []auth.Grant{{Tenant: "acme", Role: auth.RoleWorker}}})
	if rc, err := s.Engine().FetchPayload(mine, &worker.PayloadRequest{TaskID: a.TaskID, Attempt: a.Attempt, WorkerID: "w1"}); err != nil {
		t.Errorf("acme's worker: %v", err)
	} else {
		rc.Close()
	}

	// The lease lapses (lease_ttl 1s, no heartbeat): refused.
	time.Sleep(1500 * time.Millisecond)
	if _, err := fetch(a, "w1", a.Attempt); greyerr.CodeOf(err) != greyerr.FailedPrecondition {
		t.Errorf("expired lease: %v, want failed_precondition (409)", err)
	}

	// A remote worker pool (the Go client's worker, over HTTP) runs the
	// next one: its handler sees the body's bytes, fetched and checked.
	// (The expired task is retried too; both complete.)
	tk, err := c.Submit(ctx, task.Spec{Kind: ai.Kind, PayloadRef: ref})
	if err != nil {
		t.Fatal(err)
	}
	pool := c.NewWorker(worker.Options{WorkerID: "remote", Labels: map[string]string{ai.FrameworkLabel(ai.PyTorch): "true"}})
	pool.HandleFunc(ai.Kind, func(_ context.Context, j *worker.Job) (any, error) {
		return map[string]any{"sha256": taskdata.Digest(j.PayloadBinary), "json": len(j.Payload)}, nil
	})
	pctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- pool.Run(pctx) }()
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	got2, err := c.Wait(wctx, tk.ID)
	wcancel()
	stop()
	<-done
	if err != nil || got2.Status != task.Completed {
		t.Fatalf("remote worker: %v %+v", err, got2)
	}
	var out struct {
		SHA256 string `json:"sha256"`
		JSON   int    `json:"json"`
	}
	if err := json.Unmarshal(got2.Result, &out); err != nil || out.SHA256 != taskdata.Digest(body) || out.JSON != 0 {
		t.Fatalf("the handler saw %s (%v), want the body's bytes as PayloadBinary", got2.Result, err)
	}
}

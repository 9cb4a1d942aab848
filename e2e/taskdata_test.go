package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/internal/blobtest"
	"github.com/grey-distributed/grey/proof"
	"github.com/grey-distributed/grey/task"
)

// greyctl submits a 20 MiB payload by upload URL to a real greyd; the
// result (over the inline limit) lands in the task data bucket with its
// cost tags; `greyctl proof verify --fetch` downloads and hashes both
// objects; `task result --url` serves it; an object changed afterwards
// makes verify fail naming the digest. On the default file:// bucket.
func TestLargeTaskDataFile(t *testing.T) {
	requireE2E(t)
	testLargeTaskData(t, "")
}

// The same with the bucket on moto (GREY_TEST_S3_URL; CI fails without it).
func TestLargeTaskDataS3(t *testing.T) {
	requireE2E(t)
	testLargeTaskData(t, blobtest.NewBucket(t, "s3"))
}

func testLargeTaskData(t *testing.T, dataURL string) {
	cfg := "tenants:\n  cost:\n    environment: e2e\n"
	if dataURL != "" {
		cfg += "tasks:\n  data_url: \"" + dataURL + "\"\n"
	}
	g := newGreyd(t, cfg)
	g.Start()
	g.WaitReady(30 * time.Second)
	srv := g.URL()
	if dataURL == "" {
		abs, err := filepath.Abs(filepath.Join(g.DataDir, "taskdata"))
		if err != nil {
			t.Fatal(err)
		}
		dataURL = (&url.URL{Scheme: "file", Path: abs}).String()
	}

	payload := bytes.Repeat([]byte("p"), 20<<20)
	payload[0], payload[len(payload)-1] = '"', '"'
	file := filepath.Join(t.TempDir(), "big.json")
	if err := os.WriteFile(file, payload, 0o600); err != nil {
		t.Fatal(err)
	}
	r := greyctl(t, srv, 2*time.Minute, "task", "submit", "--kind", "echo", "--payload-file", file, "--wait", "-o", "json")
	if r.Code != 0 {
		t.Fatalf("submit --payload-file: exit %d, stderr: %s", r.Code, r.Stderr)
	}
	var tk task.Task
	if err := json.Unmarshal([]byte(r.Stdout), &tk); err != nil {
		t.Fatalf("submit -o json: %v", err)
	}
	if tk.Status != task.Completed || tk.PayloadObject == nil || !strings.HasPrefix(tk.PayloadRef, task.UploadsArea) ||
		tk.ResultRef == nil || !bytes.Equal(tk.Result, payload) {
		t.Fatalf("task: status %s payload_ref %q object %+v result_ref %+v result %d bytes", tk.Status, tk.PayloadRef, tk.PayloadObject, tk.ResultRef, len(tk.Result))
	}

	// The result in the bucket, with its tags, read back from the service.
	ctx := context.Background()
	b, err := blobtest.Registry(t).Open(ctx, dataURL, blobstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	view, err := b.Tenant("default")
	if err != nil {
		t.Fatal(err)
	}
	stored, err := view.Get(ctx, tk.ResultRef.Ref, 0)
	if err != nil || !bytes.Equal(stored, payload) {
		t.Fatalf("stored result: %d bytes, %v", len(stored), err)
	}
	tags, err := view.ReadTags(ctx, tk.ResultRef.Ref)
	if err != nil || tags[blobstore.TagTenant] != "default" || tags[blobstore.TagTask] != tk.ID || tags[blobstore.TagEnvironment] != "e2e" {
		t.Fatalf("result tags %v, %v", tags, err)
	}
	if tags, err = view.ReadTags(ctx, tk.PayloadRef); err != nil || tags[blobstore.TagTenant] != "default" {
		t.Fatalf("payload tags %v, %v", tags, err)
	}

	// verify --fetch hashes both objects.
	r = greyctl(t, srv, time.Minute, "proof", "verify", tk.ID, "--fetch")
	if r.Code != 0 || !strings.Contains(r.Stdout, "stored object "+tk.ResultRef.Ref) || !strings.Contains(r.Stdout, "stored object "+tk.PayloadRef) {
		t.Fatalf("proof verify --fetch: exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}

	// task result prints it; --url gives a signed GET URL that serves it.
	r = greyctl(t, srv, time.Minute, "task", "result", tk.ID)
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != string(payload) {
		t.Fatalf("task result: exit %d, %d bytes, stderr %s", r.Code, len(r.Stdout), r.Stderr)
	}
	r = greyctl(t, srv, time.Minute, "task", "result", tk.ID, "--url", "-o", "json")
	var su struct {
		URL       string    `json:"url"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &su) != nil || su.ExpiresAt.Before(time.Now()) {
		t.Fatalf("task result --url: exit %d stdout %s stderr %s", r.Code, r.Stdout, r.Stderr)
	}
	resp, err := http.Get(su.URL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, payload) {
		t.Fatalf("GET the signed URL: %s, %d bytes", resp.Status, len(got))
	}

	// Changed after its proof: verify --fetch fails naming the digest.
	changed := bytes.Repeat([]byte("c"), 20<<20)
	changed[0], changed[len(changed)-1] = '"', '"'
	if err := view.Put(ctx, tk.ResultRef.Ref, changed, &blobstore.WriteOptions{TaskID: tk.ID}); err != nil {
		t.Fatal(err)
	}
	r = greyctl(t, srv, time.Minute, "proof", "verify", tk.ID, "--fetch")
	if r.Code == 0 || !strings.Contains(r.Stderr, proof.Digest(changed)) || !strings.Contains(r.Stderr, tk.ResultRef.SHA256) {
		t.Fatalf("verify --fetch after the change: exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
}

// A worker-only node leases a task whose payload is by reference (the
// lease carries the bytes) and reports a result over the inline limit (the
// server stores it); the worker's own proof names both objects and
// verifies with --fetch.
func TestLargeTaskDataRemoteWorker(t *testing.T) {
	requireE2E(t)
	g := newGreyd(t, "worker:\n  enabled: false\n")
	g.Start()
	g.WaitReady(30 * time.Second)
	wdir := t.TempDir()
	metrics := fmt.Sprintf("127.0.0.1:%d", freePortOn(t, "127.0.0.1"))
	w := newNodeProc(t, wdir, "w1", "", "--role", "worker", "--node-id", "w1", "--data-dir", filepath.Join(wdir, "w1"),
		"--metrics-addr", metrics, "--servers", g.URL())
	w.Start()

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c, err := client.New(g.URL(), client.WithTenant("acme"))
	if err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("w"), 3<<20)
	payload[0], payload[len(payload)-1] = '"', '"'
	tk, err := c.Submit(ctx, task.Spec{Kind: "echo", Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	done, err := c.Wait(ctx, tk.ID)
	if err != nil || done.Status != task.Completed || done.ResultRef == nil || !bytes.Equal(done.Result, payload) {
		t.Fatalf("task %+v, %v (worker stderr:\n%s)", done, err, tail([]byte(w.Stderr()), 4000))
	}
	if a := done.Attempts[len(done.Attempts)-1]; a.WorkerID != "w1" {
		t.Fatalf("ran on %s, want the worker node", a.WorkerID)
	}
	r := greyctl(t, g.URL(), time.Minute, "--tenant", "acme", "proof", "verify", tk.ID, "--fetch")
	if r.Code != 0 || !strings.Contains(r.Stdout, "stored object "+done.ResultRef.Ref) || !strings.Contains(r.Stdout, "stored object "+done.PayloadRef) {
		t.Fatalf("proof verify --fetch: exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
}

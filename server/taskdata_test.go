package server

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/blobtest"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/proof"
	"github.com/grey-distributed/grey/task"
)

// startDataServer runs a single greyd whose task data bucket is dataURL
// ("" = the default file:// under the data dir), tenants auto-created with
// a max_storage_bytes of quota (0: none).
func startDataServer(t testing.TB, dataURL string, quota int64, mutate ...func(*config.Config)) (*Server, func(tenant string) *client.Client) {
	t.Helper()
	return startServerWith(t, dataURL, quota, nil, mutate...)
}

// startServerWith is startDataServer with server options.
func startServerWith(t testing.TB, dataURL string, quota int64, opts []Option, mutate ...func(*config.Config)) (*Server, func(tenant string) *client.Client) {
	t.Helper()
	cfg := config.Default()
	cfg.Node.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Raft.Addr = "127.0.0.1:0"
	cfg.Monitoring.Prometheus.Enabled = false
	cfg.Raft.HeartbeatTimeout = config.Duration(200 * time.Millisecond)
	cfg.Raft.ElectionTimeout = config.Duration(200 * time.Millisecond)
	cfg.Raft.LeaderLeaseTimeout = config.Duration(100 * time.Millisecond)
	cfg.Tasks.DataURL = dataURL
	cfg.Tasks.MaxDataBytes = 32 << 20
	cfg.HTTP.MaxBodyBytes = 64 << 20
	cfg.Tenants.Cost.Environment = "test"
	cfg.Tenants.AutoCreate = true
	cfg.Tenants.EnforceQuotas = quota > 0
	cfg.Tenants.DefaultQuota.MaxStorageBytes = quota
	for _, m := range mutate {
		m(cfg)
	}
	s, err := New(cfg, greytest.Logger(t), append([]Option{WithBlobRegistry(blobtest.Registry(t))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-runErr; err != nil {
			t.Error(err)
		}
	})
	mk := func(tenant string) *client.Client {
		c, err := client.New("http://"+s.HTTPAddr(), client.WithTenant(tenant))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := mk("acme")
	greytest.Eventually(t, 10*time.Second, func() bool { return c.Ready(ctx) == nil })
	return s, mk
}

// bigJSON is a JSON string of about n bytes.
func bigJSON(n int, fill byte) []byte {
	b := bytes.Repeat([]byte{fill}, n)
	b[0], b[n-1] = '"', '"'
	return b
}

func wantCode(t *testing.T, what string, err error, code greyerr.Code, status int) {
	t.Helper()
	if greyerr.CodeOf(err) != code || greyerr.HTTPStatus(code) != status {
		t.Fatalf("%s: err %v, want %s (%d)", what, err, code, status)
	}
}

// A payload over the inline limit goes up through the signed URL Grey
// serves for file://, runs, and its result (over the limit too) lands in
// the bucket, tagged, referenced by the task, fetched transparently by
// the client, named with the payload in the task's proof; a changed
// object is then caught by the client and by verify.
func TestTaskDataRoundTripFile(t *testing.T) { testTaskDataRoundTrip(t, "") }

// The same against moto (S3, whose presigned URLs the client PUTs to
// directly) when GREY_TEST_S3_URL is set; CI fails without it.
func TestTaskDataRoundTripS3(t *testing.T) { testTaskDataRoundTrip(t, blobtest.NewBucket(t, "s3")) }

// The same against fake-gcs-server and Azurite (GREY_TEST_GCS_URL,
// GREY_TEST_AZBLOB_URL). Azurite checks SAS signatures, so a tampered
// result URL is refused by the emulator itself.
func TestTaskDataRoundTripGCS(t *testing.T) { testTaskDataRoundTrip(t, blobtest.NewBucket(t, "gs")) }

// See TestTaskDataRoundTripGCS.
func TestTaskDataRoundTripAzblob(t *testing.T) {
	testTaskDataRoundTrip(t, blobtest.NewBucket(t, "azblob"))
}

func testTaskDataRoundTrip(t *testing.T, dataURL string) {
	s, mk := startDataServer(t, dataURL, 0)
	ctx := context.Background()
	c := mk("acme")
	payload := bigJSON(3<<20, 'p')
	tk, err := c.Submit(ctx, task.Spec{Kind: "echo", Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	if tk.PayloadObject == nil || !strings.HasPrefix(tk.PayloadRef, task.UploadsArea) || len(tk.Payload) != 0 ||
		tk.PayloadObject.Size != int64(len(payload)) || tk.PayloadObject.SHA256 != proof.Digest(payload) {
		t.Fatalf("submitted task: ref %q object %+v payload %d bytes", tk.PayloadRef, tk.PayloadObject, len(tk.Payload))
	}
	done, err := c.Wait(ctx, tk.ID)
	if err != nil || done.Status != task.Completed {
		t.Fatalf("wait: %+v, %v", done, err)
	}
	if done.ResultRef == nil || done.ResultRef.Ref != task.ResultKey(tk.ID) || !bytes.Equal(done.Result, payload) {
		t.Fatalf("result ref %+v, result %d bytes (want the %d-byte payload fetched)", done.ResultRef, len(done.Result), len(payload))
	}
	got, err := c.Get(ctx, tk.ID)
	if err != nil || !bytes.Equal(got.Result, payload) {
		t.Fatalf("get: %d bytes, %v", len(got.Result), err)
	}
	// Tags, read back from the service.
	view, err := s.data.Bucket().Tenant("acme")
	if err != nil {
		t.Fatal(err)
	}
	tags, err := view.ReadTags(ctx, done.ResultRef.Ref)
	if err != nil {
		t.Fatal(err)
	}
	if tags[blobstore.TagTenant] != "acme" || tags[blobstore.TagTask] != tk.ID || tags[blobstore.TagEnvironment] != "test" {
		t.Fatalf("result object tags %v", tags)
	}
	if tags, err = view.ReadTags(ctx, tk.PayloadRef); err != nil || tags[blobstore.TagTenant] != "acme" || tags[blobstore.TagEnvironment] != "test" {
		t.Fatalf("payload object tags %v, %v", tags, err)
	}
	// The signed GET URL of the result.
	su, err := c.ResultURL(ctx, tk.ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if b := httpGet(t, su.URL, http.StatusOK); !bytes.Equal(b, payload) {
		t.Fatalf("signed GET: %d bytes", len(b))
	}
	// Tampered: Grey's own URLs (file://, gs:// without a signing key)
	// and Azurite's SAS check the signature; moto does not (see
	// docs/TESTING.md).
	if !strings.HasPrefix(dataURL, "s3:") {
		bad := strings.Replace(su.URL, "sig=", "sig=00", 1)
		if bad == su.URL {
			t.Fatalf("signed URL %s has no sig parameter", su.URL)
		}
		httpGet(t, bad, http.StatusForbidden)
	}
	// The proof names both objects; their bytes hash to what it says.
	rec, err := c.Proof(ctx, tk.ID)
	if err != nil || !rec.Verified {
		t.Fatalf("proof %+v, %v", rec, err)
	}
	st, err := proof.DecodeStatement(rec.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	ex, _, ok := st.Find(tk.ID)
	if !ok || len(ex.Objects) != 2 || ex.Objects[0].Name != tk.PayloadRef || ex.Objects[0].Role != proof.ObjectPayload ||
		ex.Objects[1].Name != done.ResultRef.Ref || ex.Objects[1].Digest["sha256"] != done.ResultRef.SHA256 {
		t.Fatalf("statement objects %+v", ex)
	}
	if _, err := c.VerifyObjects(ctx, ex.Objects); err != nil {
		t.Fatalf("verify objects: %v", err)
	}
	// Another tenant sees none of it.
	other := mk("other")
	if _, err := other.Object(ctx, done.ResultRef.Ref); greyerr.CodeOf(err) != greyerr.NotFound {
		t.Fatalf("other tenant reading acme's result: %v", err)
	}
	_, err = other.Submit(ctx, task.Spec{Kind: "echo", PayloadRef: tk.PayloadRef})
	wantCode(t, "other tenant naming acme's upload", err, greyerr.NotFound, 404)
	_, err = other.Submit(ctx, task.Spec{Kind: "echo", PayloadRef: "tenants/acme/" + tk.PayloadRef})
	wantCode(t, "other tenant naming acme's prefix", err, greyerr.PermissionDenied, 403)
	// The result object changed after its proof: the client's fetch and
	// verify name the digests.
	changed := bigJSON(3<<20, 'x')
	if err := view.Put(ctx, done.ResultRef.Ref, changed, &blobstore.WriteOptions{TaskID: tk.ID}); err != nil {
		t.Fatal(err)
	}
	_, err = c.VerifyObjects(ctx, ex.Objects)
	if err == nil || !strings.Contains(err.Error(), proof.Digest(changed)) || !strings.Contains(err.Error(), done.ResultRef.SHA256) {
		t.Fatalf("verify after the change: %v, want both digests named", err)
	}
	if _, err := c.Get(ctx, tk.ID); greyerr.CodeOf(err) != greyerr.FailedPrecondition {
		t.Fatalf("get after the change: %v, want failed_precondition", err)
	}
}

func httpGet(t *testing.T, u string, want int) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %s %s, want %d", u, resp.Status, b.String(), want)
	}
	return b.Bytes()
}

func httpPut(t *testing.T, u string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, u, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// Every bad input of large task data, on the default file:// bucket.
func TestTaskDataBadInput(t *testing.T) {
	s, mk := startDataServer(t, "", 6<<20)
	ctx := context.Background()
	c := mk("acme")
	sub := func(ref string) error {
		_, err := c.Submit(ctx, task.Spec{Kind: "echo", PayloadRef: ref})
		return err
	}
	wantCode(t, "ref in another tenant's prefix", sub("tenants/other/uploads/x"), greyerr.PermissionDenied, 403)
	wantCode(t, "ref with ..", sub("uploads/../../other/uploads/x"), greyerr.PermissionDenied, 403)
	wantCode(t, "ref as a URL", sub("s3://bucket/tenants/acme/uploads/x"), greyerr.PermissionDenied, 403)
	wantCode(t, "absolute ref", sub("/etc/passwd"), greyerr.PermissionDenied, 403)
	wantCode(t, "ref with NUL", sub("uploads/a\x00b"), greyerr.InvalidArgument, 400)
	wantCode(t, "2 KB ref", sub("uploads/"+strings.Repeat("k", 2048)), greyerr.InvalidArgument, 400)
	wantCode(t, "missing object", sub("uploads/0190a1b2-0000-7000-8000-000000000000"), greyerr.NotFound, 404)
	_, err := c.Submit(ctx, task.Spec{Kind: "echo", Payload: []byte(`1`), PayloadRef: "uploads/x"})
	wantCode(t, "payload and payload_ref", err, greyerr.InvalidArgument, 400)

	// Not JSON.
	up, err := c.CreateUpload(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := httpPut(t, up.URL, []byte("not json")); code != 200 {
		t.Fatalf("upload: %d %s", code, body)
	}
	wantCode(t, "payload not JSON", sub(up.PayloadRef), greyerr.InvalidArgument, 400)

	// Over the storage quota: a declared size, an upload, a ref.
	_, err = c.CreateUpload(ctx, 7<<20, 0)
	wantCode(t, "declared size over quota", err, greyerr.TooLarge, 413)
	up, err = c.CreateUpload(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := httpPut(t, up.URL, bigJSON(7<<20, 'q')); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("upload over quota: %d %s, want 413", code, body)
	}
	// An object a client put straight into the bucket (a cloud's signed
	// URL: untagged, not counted yet) is counted when first submitted.
	if err := s.data.Bucket().Put(ctx, "tenants/acme/uploads/big", bigJSON(7<<20, 'q'), nil); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "ref over quota", sub("uploads/big"), greyerr.TooLarge, 413)
	if err := s.data.Bucket().Delete(ctx, "tenants/acme/uploads/big"); err != nil {
		t.Fatal(err)
	}

	// Tampered and expired signed URLs.
	up, err = c.CreateUpload(ctx, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Another key: the id's last character changed (to one it is not).
	last := "0"
	if strings.HasSuffix(up.ID, "0") {
		last = "1"
	}
	tampered := []string{
		strings.Replace(up.URL, up.ID, up.ID[:len(up.ID)-1]+last, 1), // another key
		strings.Replace(up.URL, "/acme/", "/other/", 1),              // another tenant
		strings.Replace(up.URL, "sig=", "sig=00", 1),                 // the signature
		strings.Replace(up.URL, "expires=", "expires=9", 1),          // the expiry
	}
	for _, u := range tampered {
		if code, body := httpPut(t, u, []byte(`"x"`)); code != http.StatusForbidden || !strings.Contains(body, "signature") {
			t.Errorf("tampered PUT %s: %d %s, want 403 naming the signature", u, code, body)
		}
	}
	// A signed PUT URL does not grant GET.
	httpGet(t, up.URL, http.StatusForbidden)
	short, err := c.CreateUpload(ctx, 10, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond)
	if code, body := httpPut(t, short.URL, []byte(`"x"`)); code != http.StatusForbidden || !strings.Contains(body, "expired") {
		t.Fatalf("expired PUT: %d %s, want 403 expired", code, body)
	}
	// A result URL for an inline result is refused.
	tk, err := c.Submit(ctx, task.Spec{Kind: "echo", Payload: []byte(`"small"`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, tk.ID); err != nil {
		t.Fatal(err)
	}
	_, err = c.ResultURL(ctx, tk.ID, 0)
	wantCode(t, "result URL of an inline result", err, greyerr.FailedPrecondition, 409)
	if b, err := c.Result(ctx, tk.ID); err != nil || string(b) != `"small"` {
		t.Fatalf("inline result: %q, %v", b, err)
	}
	// Object keys that leave the prefix.
	if _, err := c.Object(ctx, "modules/x"); greyerr.CodeOf(err) != greyerr.PermissionDenied {
		t.Fatalf("object outside the areas: %v", err)
	}
}

// A stored result goes when its task is collected (tasks.retention).
func TestStoredResultCollected(t *testing.T) {
	s, mk := startDataServer(t, "", 0, func(cfg *config.Config) {
		cfg.Tasks.Retention = config.Duration(2 * time.Second)
		cfg.Tasks.GCInterval = config.Duration(200 * time.Millisecond)
	})
	ctx := context.Background()
	c := mk("acme")
	tk, err := c.Submit(ctx, task.Spec{Kind: "echo", Payload: bigJSON(2<<20, 'r')})
	if err != nil {
		t.Fatal(err)
	}
	done, err := c.Wait(ctx, tk.ID)
	if err != nil || done.ResultRef == nil {
		if done != nil && done.Error != nil {
			t.Fatalf("wait: the task %s: %+v", done.Status, *done.Error)
		}
		t.Fatalf("wait: %+v, %v", done, err)
	}
	view, _ := s.data.Bucket().Tenant("acme")
	if ok, err := view.Exists(ctx, done.ResultRef.Ref); !ok || err != nil {
		t.Fatalf("stored result missing: %v", err)
	}
	// The upload and the result count in the tenant's stored bytes until
	// the result is collected.
	load := func() client.TenantLoad {
		r, err := c.Usage(ctx, client.UsageOptions{Tenant: "acme"})
		if err != nil || len(r.Tenants) != 1 {
			t.Fatalf("usage: %+v, %v", r, err)
		}
		return r.Tenants[0].Load
	}
	// (Read before the object is seen to exist: a result is counted
	// before it is written and uncounted after it is deleted.)
	got, want := load().BlobBytes, done.ResultRef.Size+done.PayloadObject.Size
	if ok, _ := view.Exists(ctx, done.ResultRef.Ref); ok && got != want {
		t.Fatalf("blob bytes %d, want the upload's and the result's %d", got, want)
	}
	greytest.Eventually(t, 15*time.Second, func() bool {
		ok, err := view.Exists(ctx, done.ResultRef.Ref)
		return err == nil && !ok
	})
	greytest.Eventually(t, 5*time.Second, func() bool { return load().BlobBytes == done.PayloadObject.Size })
	if _, err := c.Get(ctx, tk.ID); greyerr.CodeOf(err) != greyerr.NotFound {
		t.Fatalf("collected task: %v", err)
	}
	// The upload stays (it may be submitted again).
	if ok, _ := view.Exists(ctx, done.PayloadRef); !ok {
		t.Fatal("the upload went with the task")
	}
}

// SubmitBatch uploads the payloads over the inline limit and leaves the
// rest inline.
func TestTaskDataBatch(t *testing.T) {
	_, mk := startDataServer(t, "", 0)
	ctx := context.Background()
	c := mk("acme")
	big := bigJSON(2<<20, 'b')
	specs := []task.Spec{{Kind: "echo", Payload: []byte(`"small"`)}, {Kind: "echo", Payload: big}}
	ts, err := c.SubmitBatch(ctx, specs)
	if err != nil {
		t.Fatal(err)
	}
	if len(specs[1].Payload) != len(big) || specs[1].PayloadRef != "" {
		t.Fatal("SubmitBatch changed the caller's specs")
	}
	if ts[0].PayloadRef != "" || ts[1].PayloadObject == nil {
		t.Fatalf("batch: %q %+v", ts[0].PayloadRef, ts[1].PayloadObject)
	}
	for i, want := range [][]byte{[]byte(`"small"`), big} {
		done, err := c.Wait(ctx, ts[i].ID)
		if err != nil || !bytes.Equal(done.Result, want) {
			t.Fatalf("task %d: %d bytes, %v", i, len(done.Result), err)
		}
	}
}

package taskdata_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/blobstore/memblob"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/taskdata"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newStore(t *testing.T, quota int64, clk *clock) *taskdata.Store {
	t.Helper()
	b, err := memblob.Open(blobstore.Options{Environment: "test", CostTags: map[string]string{"team": "data"}})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := taskdata.NewSigner(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	opts := taskdata.Options{MaxObjectBytes: 1 << 20, InlineMax: 16, Signer: signer, Now: clk.now}
	if quota > 0 {
		opts.Quota = func(context.Context, string) (int64, int64, error) { return quota, 100, nil }
	}
	s, err := taskdata.New(b, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// parts splits a Grey-signed path into what the route hands CheckSigned.
func parts(t *testing.T, u string) (tenant, key, expires, sig string) {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	rest := strings.TrimPrefix(p.Path, taskdata.SignedPathPrefix)
	tenant, key, _ = strings.Cut(rest, "/")
	return tenant, key, p.Query().Get("expires"), p.Query().Get("sig")
}

func TestSignedURLs(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	s := newStore(t, 0, clk)
	ctx := context.Background()
	up, err := s.NewUpload(ctx, "acme", 0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(up.URL, taskdata.SignedPathPrefix+"acme/uploads/") || up.PayloadRef != "uploads/"+up.ID {
		t.Fatalf("upload %+v", up)
	}
	ten, key, exp, sig := parts(t, up.URL)
	if k, err := s.CheckSigned(http.MethodPut, ten, key, exp, sig); err != nil || k != up.PayloadRef {
		t.Fatalf("check: %q, %v", k, err)
	}
	for name, c := range map[string][5]string{
		"method":  {http.MethodGet, ten, key, exp, sig},
		"tenant":  {http.MethodPut, "other", key, exp, sig},
		"key":     {http.MethodPut, ten, key + "x", exp, sig},
		"expiry":  {http.MethodPut, ten, key, exp + "0", sig},
		"sig":     {http.MethodPut, ten, key, exp, strings.Repeat("0", len(sig))},
		"not hex": {http.MethodPut, ten, key, exp, "zz"},
	} {
		if _, err := s.CheckSigned(c[0], c[1], c[2], c[3], c[4]); greyerr.CodeOf(err) != greyerr.PermissionDenied {
			t.Errorf("tampered %s: %v, want permission_denied", name, err)
		}
	}
	clk.t = clk.t.Add(61 * time.Second)
	if _, err := s.CheckSigned(http.MethodPut, ten, key, exp, sig); greyerr.CodeOf(err) != greyerr.PermissionDenied || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired: %v", err)
	}
	if _, err := s.NewUpload(ctx, "acme", 0, 25*time.Hour); greyerr.CodeOf(err) != greyerr.InvalidArgument {
		t.Fatalf("expiry over the limit: %v", err)
	}
}

func TestPayloadAndResult(t *testing.T) {
	clk := &clock{t: time.Now()}
	s := newStore(t, 1000, clk)
	ctx := context.Background()
	view, _ := s.Bucket().Tenant("acme")
	// An object put straight into the bucket (as a cloud signed URL
	// would) lacks Grey's tags until a task names it.
	raw, _ := s.Bucket().Prefixed("tenants/acme")
	if err := raw.Put(ctx, "uploads/u1", []byte(`{"a":1}`), nil); err != nil {
		t.Fatal(err)
	}
	ref, err := s.ResolvePayload(ctx, "payload_ref", "acme", "uploads/u1")
	if err != nil || ref.Size != 7 || ref.SHA256 != taskdata.Digest([]byte(`{"a":1}`)) {
		t.Fatalf("resolve: %+v, %v", ref, err)
	}
	tags, err := view.ReadTags(ctx, "uploads/u1")
	if err != nil || tags[blobstore.TagTenant] != "acme" || tags[blobstore.TagEnvironment] != "test" || tags["team"] != "data" {
		t.Fatalf("tags after resolve: %v, %v", tags, err)
	}
	if b, err := s.Read(ctx, "acme", ref); err != nil || string(b) != `{"a":1}` {
		t.Fatalf("read: %q, %v", b, err)
	}
	// Changed after it was recorded.
	if err := view.Put(ctx, "uploads/u1", []byte(`{"a":2}`), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(ctx, "acme", ref); greyerr.CodeOf(err) != greyerr.FailedPrecondition || !strings.Contains(err.Error(), ref.SHA256) {
		t.Fatalf("read after a change: %v", err)
	}
	// Results carry the task tag.
	rr, err := s.StoreResult(ctx, "acme", "0190a1b2-0000-7000-8000-000000000001", []byte(`"result"`))
	if err != nil || rr.Ref != task.ResultKey("0190a1b2-0000-7000-8000-000000000001") {
		t.Fatalf("store result: %+v, %v", rr, err)
	}
	if tags, _ := view.ReadTags(ctx, rr.Ref); tags[blobstore.TagTask] != "0190a1b2-0000-7000-8000-000000000001" {
		t.Fatalf("result tags %v", tags)
	}
	// Quota: 1000 bytes, 100 elsewhere.
	if _, err := s.NewUpload(ctx, "acme", 900, 0); greyerr.CodeOf(err) != greyerr.TooLarge {
		t.Fatalf("upload over quota: %v", err)
	}
	if _, err := s.PutUpload(ctx, "acme", "uploads/u2", bytes.NewReader(make([]byte, 900))); greyerr.CodeOf(err) != greyerr.TooLarge {
		t.Fatalf("put over quota: %v", err)
	}
	if _, err := s.PutUpload(ctx, "acme", "results/x", bytes.NewReader([]byte(`1`))); greyerr.CodeOf(err) != greyerr.PermissionDenied {
		t.Fatalf("put outside uploads/: %v", err)
	}
	if _, err := s.StoreResult(ctx, "acme", "x", make([]byte, 2<<20)); greyerr.CodeOf(err) != greyerr.TooLarge {
		t.Fatalf("result over max: %v", err)
	}
}

// A payload object in the binary form (task.IsBinaryPayload) resolves like
// a JSON one and is tagged with its own content type; bytes that are
// neither are refused; another tenant's upload, named by its id, is no
// object of this tenant's (404); a body over the object limit is 413.
func TestResolveBinaryPayload(t *testing.T) {
	s := newStore(t, 0, &clock{t: time.Unix(1_800_000_000, 0)})
	ctx := context.Background()
	put := func(tenant, key string, b []byte) {
		raw, _ := s.Bucket().Prefixed("tenants/" + tenant)
		if err := raw.Put(ctx, key, b, nil); err != nil {
			t.Fatal(err)
		}
	}
	body := []byte(task.BinaryPayloadPrefix + "2\n{}\x00\x01\x02")
	put("acme", "uploads/bin", body)
	ref, data, err := s.ResolvePayloadData(ctx, "payload_ref", "acme", "uploads/bin")
	if err != nil || !bytes.Equal(data, body) || ref.SHA256 != taskdata.Digest(body) {
		t.Fatalf("resolve binary: %+v %v", ref, err)
	}
	view, _ := s.Bucket().Tenant("acme")
	if a, err := view.Attributes(ctx, "uploads/bin"); err != nil || a.ContentType != taskdata.BinaryContentType {
		t.Fatalf("attributes %+v %v", a, err)
	}
	put("acme", "uploads/junk", []byte("\x00\x01 not json"))
	if _, err := s.ResolvePayload(ctx, "payload_ref", "acme", "uploads/junk"); greyerr.CodeOf(err) != greyerr.InvalidArgument {
		t.Fatalf("junk: %v", err)
	}
	put("globex", "uploads/theirs", body)
	var ge *greyerr.Error
	if _, err := s.ResolvePayload(ctx, "payload_ref", "acme", "uploads/theirs"); !errors.As(err, &ge) || ge.Code != greyerr.NotFound || ge.Field != "payload_ref" {
		t.Fatalf("another tenant's upload: %v", err)
	}
	if _, err := s.ResolvePayload(ctx, "payload_ref", "acme", "tenants/globex/uploads/theirs"); greyerr.CodeOf(err) != greyerr.PermissionDenied {
		t.Fatalf("another tenant's prefix: %v", err)
	}
	put("acme", "uploads/big", append([]byte(task.BinaryPayloadPrefix+"2\n{}"), make([]byte, 1<<20)...))
	if _, err := s.ResolvePayload(ctx, "payload_ref", "acme", "uploads/big"); greyerr.CodeOf(err) != greyerr.TooLarge {
		t.Fatalf("over the object limit: %v", err)
	}
}

// Package blobstoretest is the conformance suite of the blob port: the
// behaviours every blobstore driver must have, run through the portable
// Bucket. memblob and fileblob run it on every go test; s3blob, gcsblob
// and azblob run it against moto, fake-gcs-server and Azurite.
package blobstoretest

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/greyerr"
)

// Options tune the suite to what a driver's service can prove.
type Options struct {
	// FetchSignedURLs fetches signed URLs over HTTP (the service serves them).
	FetchSignedURLs bool
	// SignatureEnforced: the service refuses a signed URL edited to name
	// another object (emulators may not check signatures).
	SignatureEnforced bool
	// ExpiryEnforced: the service refuses an expired signed URL (emulators
	// often do not check).
	ExpiryEnforced bool
	// AsTargets are pointers the bucket's As must fill (native clients).
	AsTargets []any
}

// Environment and CostTags are the tags the suite expects on every object:
// open passes them in blobstore.Options.
const Environment = "conformance"

// CostTags are the configured cost tags the suite expects back.
var CostTags = map[string]string{"project": "grey", "team": "platform"}

// BucketOptions are the blobstore.Options open should use.
func BucketOptions() blobstore.Options {
	return blobstore.Options{Name: "conformance", Environment: Environment, CostTags: CostTags}
}

// Run runs the suite. open returns a fresh, empty bucket opened with
// BucketOptions (it closes it in t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) *blobstore.Bucket, opts Options) {
	t.Run("PutGetAttributes", func(t *testing.T) { testPutGet(t, open(t)) })
	t.Run("MissingKeyNotFound", func(t *testing.T) { testMissing(t, open(t)) })
	t.Run("ListPrefixPagination", func(t *testing.T) { testList(t, open(t)) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, open(t)) })
	t.Run("TagsReadBack", func(t *testing.T) { testTags(t, open(t)) })
	t.Run("TenantEscapeRefused", func(t *testing.T) { testTenant(t, open(t)) })
	t.Run("Size", func(t *testing.T) { testSize(t, open(t)) })
	t.Run("SignedURL", func(t *testing.T) { testSigned(t, open(t), opts) })
	t.Run("As", func(t *testing.T) {
		b := open(t)
		for _, target := range opts.AsTargets {
			if !b.As(target) {
				t.Errorf("As(%T) = false", target)
			}
		}
		var wrong *struct{ X int }
		if b.As(&wrong) {
			t.Error("As accepted an unrelated type")
		}
	})
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func wantCode(t *testing.T, what string, err error, code greyerr.Code) {
	t.Helper()
	if !greyerr.Is(err, code) {
		t.Errorf("%s: got %v (code %q), want code %q", what, err, greyerr.CodeOf(err), code)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func testPutGet(t *testing.T, b *blobstore.Bucket) {
	c := ctx(t)
	data := []byte("hello, grey")
	if err := b.Put(c, "dir/obj.txt", data, &blobstore.WriteOptions{ContentType: "text/plain", Metadata: map[string]string{"Digest": "d1"}}); err != nil {
		t.Fatalf("put: %v", err)
	}
	got, err := b.Get(c, "dir/obj.txt", 0)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get = %q, %v; want %q", got, err, data)
	}
	a, err := b.Attributes(c, "dir/obj.txt")
	if err != nil {
		t.Fatalf("attributes: %v", err)
	}
	if a.Size != int64(len(data)) || !strings.HasPrefix(a.ContentType, "text/plain") || a.Metadata["digest"] != "d1" {
		t.Errorf("attributes = %+v, want size %d, text/plain, metadata digest=d1", a, len(data))
	}
	if ok, err := b.Exists(c, "dir/obj.txt"); !ok || err != nil {
		t.Errorf("exists = %v, %v", ok, err)
	}
	// Overwrite replaces.
	if err := b.Put(c, "dir/obj.txt", []byte("v2"), nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Get(c, "dir/obj.txt", 0); string(got) != "v2" {
		t.Errorf("after overwrite get = %q, want v2", got)
	}
	r, err := b.NewReader(c, "dir/obj.txt")
	if err != nil {
		t.Fatal(err)
	}
	all, _ := io.ReadAll(r)
	r.Close()
	if string(all) != "v2" {
		t.Errorf("reader = %q", all)
	}
	n, err := b.Upload(c, "dir/stream", strings.NewReader("streamed"), nil)
	if err != nil || n != 8 {
		t.Fatalf("upload = %d, %v", n, err)
	}
	if got, _ := b.Get(c, "dir/stream", 0); string(got) != "streamed" {
		t.Errorf("uploaded = %q", got)
	}
}

func testMissing(t *testing.T, b *blobstore.Bucket) {
	c := ctx(t)
	_, err := b.Get(c, "no/such/key", 0)
	wantCode(t, "get", err, greyerr.NotFound)
	_, err = b.NewReader(c, "no/such/key")
	wantCode(t, "reader", err, greyerr.NotFound)
	_, err = b.Attributes(c, "no/such/key")
	wantCode(t, "attributes", err, greyerr.NotFound)
	_, err = b.ReadTags(c, "no/such/key")
	wantCode(t, "tags", err, greyerr.NotFound)
	if ok, err := b.Exists(c, "no/such/key"); ok || err != nil {
		t.Errorf("exists = %v, %v", ok, err)
	}
}

func testList(t *testing.T, b *blobstore.Bucket) {
	c := ctx(t)
	var want []string
	for i := range 7 {
		k := fmt.Sprintf("list/k%02d", i)
		want = append(want, k)
		if err := b.Put(c, k, []byte{byte(i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"lis", "other/x", "listing"} {
		if err := b.Put(c, k, []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	token, pages := "", 0
	for {
		objs, next, err := b.List(c, "list/", 3, token)
		if err != nil {
			t.Fatalf("list page %d: %v", pages, err)
		}
		pages++
		if len(objs) > 3 {
			t.Fatalf("page of %d objects, asked for 3", len(objs))
		}
		for _, o := range objs {
			got = append(got, o.Key)
			if o.Size != 1 {
				t.Errorf("%s: size %d, want 1", o.Key, o.Size)
			}
		}
		if next == "" {
			break
		}
		if pages > 10 {
			t.Fatal("list does not end")
		}
		token = next
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("listed %v, want %v", got, want)
	}
	if pages < 3 {
		t.Errorf("7 objects in pages of 3 came in %d pages", pages)
	}
	_, _, err := b.List(c, "list/", 3, "not-a-token!")
	wantCode(t, "list with a bogus token", err, greyerr.InvalidArgument)
	_, _, err = b.List(c, "../", 3, "")
	wantCode(t, "list ../", err, greyerr.InvalidArgument)
	n := 0
	if err := b.Walk(c, "", func(blobstore.Object) error { n++; return nil }); err != nil || n != 10 {
		t.Errorf("walk saw %d objects (%v), want 10", n, err)
	}
}

func testDelete(t *testing.T, b *blobstore.Bucket) {
	c := ctx(t)
	if err := b.Put(c, "del/x", []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(c, "del/x"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	_, err := b.Get(c, "del/x", 0)
	wantCode(t, "get after delete", err, greyerr.NotFound)
	wantCode(t, "delete again", b.Delete(c, "del/x"), greyerr.NotFound)
}

func testTags(t *testing.T, b *blobstore.Bucket) {
	c := ctx(t)
	tb, err := b.Tenant("acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.Put(c, "results/r1", []byte("result"), &blobstore.WriteOptions{TaskID: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"}); err != nil {
		t.Fatalf("put: %v", err)
	}
	tags, err := tb.ReadTags(c, "results/r1")
	if err != nil {
		t.Fatalf("read tags: %v", err)
	}
	want := map[string]string{
		blobstore.TagTenant:      "acme",
		blobstore.TagTask:        "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
		blobstore.TagEnvironment: Environment,
	}
	for k, v := range CostTags {
		want[k] = v
	}
	for k, v := range want {
		if tags[k] != v {
			t.Errorf("tag %s = %q, want %q (all: %v)", k, tags[k], v, tags)
		}
	}
	// An object without a task carries no task tag.
	if err := tb.Put(c, "modules/m1", []byte("m"), nil); err != nil {
		t.Fatal(err)
	}
	tags, err = tb.ReadTags(c, "modules/m1")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tags[blobstore.TagTask]; ok || tags[blobstore.TagTenant] != "acme" {
		t.Errorf("tags of a task-less object: %v", tags)
	}
	// A task id that is not a valid tag value is refused, not dropped.
	err = tb.Put(c, "x", []byte("x"), &blobstore.WriteOptions{TaskID: "a\x00b"})
	wantCode(t, "put with a bad task tag", err, greyerr.InvalidArgument)
}

func testTenant(t *testing.T, b *blobstore.Bucket) {
	c := ctx(t)
	acme, err := b.Tenant("acme")
	if err != nil {
		t.Fatal(err)
	}
	other, err := b.Tenant("other")
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Put(c, "secret", []byte("other's"), nil); err != nil {
		t.Fatal(err)
	}
	if err := acme.Put(c, "mine", []byte("acme's"), nil); err != nil {
		t.Fatal(err)
	}
	bad := []string{
		"", "../other/secret", "a/../../other/secret", "..", ".", "./x", "a/./b", "a//b", "a/",
		"/tenants/other/secret", "a\x00b", "a\nb", "a\x7fb", "a\\..\\b",
		strings.Repeat("k", 1025), strings.Repeat("k", 2048), "\xff\xfe",
	}
	for _, k := range bad {
		wantCode(t, fmt.Sprintf("put %q", blobstoreShort(k)), acme.Put(c, k, []byte("x"), nil), greyerr.InvalidArgument)
		_, err := acme.Get(c, k, 0)
		wantCode(t, fmt.Sprintf("get %q", blobstoreShort(k)), err, greyerr.InvalidArgument)
		wantCode(t, fmt.Sprintf("delete %q", blobstoreShort(k)), acme.Delete(c, k), greyerr.InvalidArgument)
	}
	_, err = acme.Get(c, "secret", 0)
	wantCode(t, "another tenant's key", err, greyerr.NotFound)
	objs, _, err := acme.List(c, "", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].Key != "mine" {
		t.Errorf("acme lists %v, want only mine", objs)
	}
	if _, err := b.Tenant("../other"); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Errorf("Tenant(../other): %v", err)
	}
	if _, err := acme.Tenant("other"); err == nil {
		t.Error("a tenant view gave another tenant's view")
	}
	// The whole bucket sees the tenant's object under its prefix.
	if got, err := b.Get(c, "tenants/acme/mine", 0); err != nil || string(got) != "acme's" {
		t.Errorf("bucket view of tenants/acme/mine = %q, %v", got, err)
	}
}

func blobstoreShort(k string) string {
	if len(k) > 20 {
		return k[:20] + "..."
	}
	return k
}

func testSize(t *testing.T, b *blobstore.Bucket) {
	c := ctx(t)
	data := randomBytes(1<<20 + 17)
	if err := b.Put(c, "big", data, nil); err != nil {
		t.Fatal(err)
	}
	a, err := b.Attributes(c, "big")
	if err != nil || a.Size != int64(len(data)) {
		t.Fatalf("attributes = %+v, %v", a, err)
	}
	got, err := b.Get(c, "big", int64(len(data)))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get: %d bytes, %v", len(got), err)
	}
	_, err = b.Get(c, "big", 1<<20)
	wantCode(t, "get over max", err, greyerr.TooLarge)
	if err := b.Put(c, "empty", nil, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Get(c, "empty", 0); err != nil || len(got) != 0 {
		t.Errorf("empty = %q, %v", got, err)
	}
}

func testSigned(t *testing.T, b *blobstore.Bucket, opts Options) {
	c := ctx(t)
	if err := b.Put(c, "signed/obj", []byte("signed bytes"), nil); err != nil {
		t.Fatal(err)
	}
	_, err := b.SignedURL(c, "signed/obj", http.MethodGet, 0, "")
	wantCode(t, "zero expiry", err, greyerr.InvalidArgument)
	_, err = b.SignedURL(c, "signed/obj", http.MethodDelete, time.Minute, "")
	wantCode(t, "DELETE", err, greyerr.InvalidArgument)
	u, err := b.SignedURL(c, "signed/obj", http.MethodGet, time.Minute, "")
	if !b.Capabilities().SignedURL {
		wantCode(t, "signed URL on a driver without them", err, greyerr.Unimplemented)
		return
	}
	if err != nil {
		t.Fatalf("signed GET: %v", err)
	}
	if !opts.FetchSignedURLs {
		return
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "signed bytes" {
		t.Errorf("GET signed URL: %s %q", resp.Status, body)
	}
	if opts.SignatureEnforced {
		// A URL signed for one key and edited to name another existing
		// object is refused.
		if err := b.Put(c, "signed/other", []byte("other"), nil); err != nil {
			t.Fatal(err)
		}
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		pu.Path = strings.Replace(pu.Path, "signed/obj", "signed/other", 1)
		pu.RawPath = ""
		if pu.String() == u {
			t.Fatalf("could not tamper with %s", u)
		}
		resp, err := http.Get(pu.String())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("tampered signed URL answered 200")
		}
	}
	pu, err := b.SignedURL(c, "signed/put", http.MethodPut, time.Minute, "application/octet-stream")
	if err != nil {
		t.Fatalf("signed PUT: %v", err)
	}
	req, _ := http.NewRequestWithContext(c, http.MethodPut, pu, strings.NewReader("uploaded"))
	req.Header.Set("Content-Type", "application/octet-stream")
	if strings.Contains(pu, "blob.core") || strings.Contains(pu, "devstoreaccount1") {
		req.Header.Set("x-ms-blob-type", "BlockBlob")
	}
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("PUT signed URL: %s %s", resp.Status, body)
	}
	if got, err := b.Get(c, "signed/put", 0); err != nil || string(got) != "uploaded" {
		t.Errorf("after signed PUT get = %q, %v", got, err)
	}
	if !opts.ExpiryEnforced {
		return
	}
	eu, err := b.SignedURL(c, "signed/obj", http.MethodGet, time.Second, "")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	resp, err = http.Get(eu)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Errorf("expired signed URL answered 200")
	}
}

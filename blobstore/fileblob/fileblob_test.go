package fileblob_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob"

	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/blobstore/blobstoretest"
	"github.com/grey-distributed/grey/blobstore/fileblob"
	"github.com/grey-distributed/grey/greyerr"
)

func registry(t *testing.T) *blobstore.Registry {
	reg := blobstore.NewRegistry()
	if err := fileblob.Register(reg); err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestConformance(t *testing.T) {
	var gb *blob.Bucket
	blobstoretest.Run(t, func(t *testing.T) *blobstore.Bucket {
		u, err := fileblob.URL(filepath.Join(t.TempDir(), "bucket"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := registry(t).Open(t.Context(), u, blobstoretest.BucketOptions())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}, blobstoretest.Options{AsTargets: []any{&gb}})
}

// TestSignedURLs signs with gocloud's HMAC signer when the URL asks for it.
func TestSignedURLs(t *testing.T) {
	dir := t.TempDir()
	u, _ := fileblob.URL(filepath.Join(dir, "b"))
	u += "?base_url=" + "http://127.0.0.1:1/blob" + "&secret_key_path=" + filepath.Join(dir, "key")
	if err := os.WriteFile(filepath.Join(dir, "key"), []byte("0123456789abcdef0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := registry(t).Open(t.Context(), u, blobstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !b.Capabilities().SignedURL {
		t.Fatal("capabilities do not declare signed URLs")
	}
	s, err := b.SignedURL(t.Context(), "k", http.MethodGet, time.Minute, "")
	if err != nil || !strings.HasPrefix(s, "http://127.0.0.1:1/blob") {
		t.Fatalf("signed URL %q, %v", s, err)
	}
}

func TestBadURLs(t *testing.T) {
	reg := registry(t)
	for _, u := range []string{
		"file://host/abs",             // a host
		"file:///tmp/x?metadata=skip", // would drop tags
		"nosuch:///x",                 // unknown scheme
		"/just/a/path",                // no scheme
	} {
		_, err := reg.Open(t.Context(), u, blobstore.Options{})
		if !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Errorf("Open(%q) = %v, want InvalidArgument", u, err)
		}
	}
	_, err := reg.Open(t.Context(), "nosuch:///x", blobstore.Options{})
	if err == nil || !strings.Contains(err.Error(), `"nosuch"`) || !strings.Contains(err.Error(), "file") {
		t.Errorf("unknown scheme error does not name it and the known ones: %v", err)
	}
}

// TestWriteInProgressNotListed: with no_tmp_dir (how greyd opens its task
// data and module buckets) a write under way is a <key>.<hex>.tmp file next
// to the object; the listing leaves it out, so a sweep walking the bucket
// can neither count nor delete it, and the write completes.
func TestWriteInProgressNotListed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "b")
	u, _ := fileblob.URL(dir)
	b, err := registry(t).Open(t.Context(), u+"?no_tmp_dir=1", blobstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := b.Upload(t.Context(), "results/r1", pr, &blobstore.WriteOptions{ContentType: "application/json"})
		done <- err
	}()
	if _, err := pw.Write([]byte(`{"half":`)); err != nil {
		t.Fatal(err)
	}
	// The temporary file exists: this is the case under test.
	var tmp []string
	for deadline := time.Now().Add(10 * time.Second); len(tmp) == 0 && time.Now().Before(deadline); {
		tmp, _ = filepath.Glob(filepath.Join(dir, "results", "r1.*.tmp"))
		time.Sleep(5 * time.Millisecond)
	}
	if len(tmp) == 0 {
		t.Fatal("no temporary file while the upload is open")
	}
	var keys []string
	if err := b.Walk(t.Context(), "", func(o blobstore.Object) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Fatalf("the listing shows a write under way: %v", keys)
	}
	_, _ = pw.Write([]byte(`1}`))
	_ = pw.Close()
	if err := <-done; err != nil {
		t.Fatalf("upload: %v", err)
	}
	keys = nil
	if err := b.Walk(t.Context(), "", func(o blobstore.Object) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "results/r1" {
		t.Fatalf("after the upload, listed %v", keys)
	}
	// An object whose name merely ends in .tmp is still an object.
	if err := b.Put(t.Context(), "notes.tmp", []byte(`1`), nil); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.Exists(t.Context(), "notes.tmp"); !ok || err != nil {
		t.Fatalf("notes.tmp: %v %v", ok, err)
	}
	n := 0
	_ = b.Walk(t.Context(), "notes", func(blobstore.Object) error { n++; return nil })
	if n != 1 {
		t.Fatalf("notes.tmp listed %d times", n)
	}
}

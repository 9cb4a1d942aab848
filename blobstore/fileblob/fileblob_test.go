package fileblob_test

import (
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

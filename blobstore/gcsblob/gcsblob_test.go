package gcsblob_test

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"cloud.google.com/go/storage"
	"gocloud.dev/blob"

	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/blobstore/blobstoretest"
	"github.com/grey-distributed/grey/blobstore/gcsblob"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/testenv"
)

func uniq() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func setup(t *testing.T) (*blobstore.Registry, string) {
	endpoint := strings.TrimRight(testenv.ServiceURL(t, "gcs"), "/")
	reg := blobstore.NewRegistry()
	if err := gcsblob.Register(reg); err != nil {
		t.Fatal(err)
	}
	return reg, endpoint
}

func bucketURL(endpoint, name string) string {
	return "gs://" + name + "?" + url.Values{"endpoint": {endpoint}}.Encode()
}

// createBucket creates name on fake-gcs-server through its JSON API.
func createBucket(t *testing.T, endpoint, name string) {
	resp, err := http.Post(endpoint+"/storage/v1/b?project=grey-test", "application/json", strings.NewReader(`{"name":"`+name+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create bucket: %s", resp.Status)
	}
}

// TestConformance runs the suite on fake-gcs-server. It signs no URLs:
// signing needs a service account key, and the emulator checks none.
func TestConformance(t *testing.T) {
	reg, endpoint := setup(t)
	var client *storage.Client
	var gb *blob.Bucket
	blobstoretest.Run(t, func(t *testing.T) *blobstore.Bucket {
		name := "grey-conf-" + uniq()
		createBucket(t, endpoint, name)
		b, err := reg.Open(t.Context(), bucketURL(endpoint, name), blobstoretest.BucketOptions())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}, blobstoretest.Options{AsTargets: []any{&client, &gb}})
}

func TestMissingBucket(t *testing.T) {
	reg, endpoint := setup(t)
	_, err := reg.Open(t.Context(), bucketURL(endpoint, "grey-no-such-"+uniq()), blobstore.Options{})
	if !greyerr.Is(err, greyerr.NotFound) || !strings.Contains(err.Error(), "grey-no-such-") {
		t.Fatalf("open of a missing bucket: %v, want NotFound naming it", err)
	}
}

// Package blobtest gives tests fresh buckets on every blob service the
// environment offers: a directory (file://) always, and moto (s3://),
// fake-gcs-server (gs://) and Azurite (azblob://) when
// GREY_TEST_S3_URL, GREY_TEST_GCS_URL and GREY_TEST_AZBLOB_URL are set
// (scripts/services.sh). It links the cloud drivers and their SDKs, so
// only tests import it (internal/depcheck keeps it out of the core).
package blobtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	sdkazblob "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/blobstore/azblob"
	"github.com/grey-distributed/grey/blobstore/fileblob"
	"github.com/grey-distributed/grey/blobstore/gcsblob"
	"github.com/grey-distributed/grey/blobstore/memblob"
	"github.com/grey-distributed/grey/blobstore/s3blob"
	"github.com/grey-distributed/grey/internal/testenv"
)

// Azurite's well-known development account (public, in Azure's docs).
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Registry returns a registry with every driver greyd links.
func Registry(t testing.TB) *blobstore.Registry {
	reg := blobstore.NewRegistry()
	for _, r := range []func(*blobstore.Registry) error{fileblob.Register, memblob.Register, s3blob.Register, gcsblob.Register, azblob.Register} {
		if err := r(reg); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

// Uniq is a short random name part.
func Uniq() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Each runs f in a subtest per scheme (file, s3, gs, azblob) with the URL of
// a new, empty bucket there. A cloud subtest skips (fails in CI) when its
// emulator is not configured.
func Each(t *testing.T, f func(t *testing.T, reg *blobstore.Registry, bucketURL string)) {
	for _, scheme := range []string{"file", "s3", "gs", "azblob"} {
		t.Run(scheme, func(t *testing.T) {
			f(t, Registry(t), NewBucket(t, scheme))
		})
	}
}

// NewBucket creates a bucket on scheme's service and returns its URL,
// setting the credentials the driver reads from the environment.
func NewBucket(t testing.TB, scheme string) string {
	t.Helper()
	ctx := context.Background()
	name := "grey-test-" + Uniq()
	switch scheme {
	case "file":
		u, err := fileblob.URL(filepath.Join(t.TempDir(), name))
		if err != nil {
			t.Fatal(err)
		}
		return u
	case "s3":
		endpoint := strings.TrimRight(testenv.ServiceURL(t, "s3"), "/")
		t.Setenv("AWS_ACCESS_KEY_ID", "grey-test") // moto accepts any
		t.Setenv("AWS_SECRET_ACCESS_KEY", "grey-test")
		client := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider("grey-test", "grey-test", "")})
		if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
			t.Fatalf("create s3 bucket: %v", err)
		}
		return "s3://" + name + "?" + url.Values{"endpoint": {endpoint}, "use_path_style": {"true"}, "region": {"us-east-1"}}.Encode()
	case "gs":
		endpoint := strings.TrimRight(testenv.ServiceURL(t, "gcs"), "/")
		resp, err := http.Post(endpoint+"/storage/v1/b?project=grey-test", "application/json", strings.NewReader(`{"name":"`+name+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("create gcs bucket: %s", resp.Status)
		}
		return "gs://" + name + "?" + url.Values{"endpoint": {endpoint}}.Encode()
	case "azblob":
		endpoint := strings.TrimRight(testenv.ServiceURL(t, "azblob"), "/")
		t.Setenv("AZURE_STORAGE_ACCOUNT", AzuriteAccount)
		t.Setenv("AZURE_STORAGE_KEY", AzuriteKey)
		cred, err := sdkazblob.NewSharedKeyCredential(AzuriteAccount, AzuriteKey)
		if err != nil {
			t.Fatal(err)
		}
		cc, err := container.NewClientWithSharedKeyCredential(endpoint+"/"+name, cred, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cc.Create(ctx, nil); err != nil {
			t.Fatalf("create azure container: %v", err)
		}
		return "azblob://" + name + "?" + url.Values{"endpoint": {endpoint}}.Encode()
	}
	t.Fatalf("blobtest: unknown scheme %q", scheme)
	return ""
}

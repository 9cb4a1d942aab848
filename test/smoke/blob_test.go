package smoke

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
	"gocloud.dev/blob/azureblob"
	"gocloud.dev/blob/gcsblob"
	"gocloud.dev/blob/s3blob"
	"gocloud.dev/gcp"

	"github.com/grey-distributed/grey/internal/testenv"
)

func putGet(ctx context.Context, t *testing.T, b *blob.Bucket) {
	t.Helper()
	key := "tenants/t1/artifacts/" + uniq() + ".bin"
	want := []byte("grey artifact " + uniq())
	if err := b.WriteAll(ctx, key, want, &blob.WriterOptions{ContentType: "application/octet-stream"}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	got, err := b.ReadAll(ctx, key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	attrs, err := b.Attributes(ctx, key)
	if err != nil || attrs.Size != int64(len(want)) {
		t.Fatalf("attributes: %+v, %v", attrs, err)
	}
	if err := b.Delete(ctx, key); err != nil {
		t.Fatalf("delete: %v", err)
	}
}

// TestS3 runs against moto's server (an S3 emulator).
func TestS3(t *testing.T) {
	endpoint := testenv.ServiceURL(t, "s3")
	ctx := ctxFor(t, 30*time.Second)
	client := s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("grey-test", "grey-test", ""),
	})
	bucket := "grey-smoke-" + uniq()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	b, err := s3blob.OpenBucket(ctx, client, bucket, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	putGet(ctx, t, b)
}

// TestGCS runs against fake-gcs-server (a GCS emulator).
func TestGCS(t *testing.T) {
	endpoint := testenv.ServiceURL(t, "gcs")
	ctx := ctxFor(t, 30*time.Second)
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	// The Google client library talks to an emulator named by this variable.
	t.Setenv("STORAGE_EMULATOR_HOST", u.Host)
	bucket := "grey-smoke-" + uniq()
	resp, err := http.Post(endpoint+"/storage/v1/b?project=grey-test", "application/json",
		strings.NewReader(`{"name":"`+bucket+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create bucket: %s", resp.Status)
	}
	client := gcp.NewAnonymousHTTPClient(gcp.DefaultTransport())
	b, err := gcsblob.OpenBucket(ctx, client, bucket, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	putGet(ctx, t, b)
}

// Azurite's well-known development account.
const (
	azuriteAccount = "devstoreaccount1"
	azuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// TestAzureBlob runs against Azurite (an Azure Storage emulator).
func TestAzureBlob(t *testing.T) {
	serviceURL := strings.TrimSuffix(testenv.ServiceURL(t, "azblob"), "/")
	ctx := ctxFor(t, 30*time.Second)
	cred, err := azblob.NewSharedKeyCredential(azuriteAccount, azuriteKey)
	if err != nil {
		t.Fatal(err)
	}
	name := "grey-smoke-" + uniq()
	cc, err := container.NewClientWithSharedKeyCredential(serviceURL+"/"+name, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cc.Create(ctx, nil); err != nil {
		t.Fatalf("create container: %v", err)
	}
	defer cc.Delete(context.Background(), nil)
	b, err := azureblob.OpenBucket(ctx, cc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	putGet(ctx, t, b)
}

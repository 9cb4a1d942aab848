package s3blob_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"gocloud.dev/blob"

	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/blobstore/blobstoretest"
	"github.com/grey-distributed/grey/blobstore/s3blob"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/testenv"
)

func uniq() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// bucketURL is the s3:// URL of bucket on moto at endpoint.
func bucketURL(endpoint, bucket string) string {
	return "s3://" + bucket + "?" + url.Values{"endpoint": {endpoint}, "use_path_style": {"true"}, "region": {"us-east-1"}}.Encode()
}

func setup(t *testing.T) (*blobstore.Registry, string) {
	endpoint := strings.TrimRight(testenv.ServiceURL(t, "s3"), "/")
	// moto accepts any credentials (see scripts/services.sh); it checks neither
	// signed URLs' signatures nor their expiry, so those checks stay off.
	t.Setenv("AWS_ACCESS_KEY_ID", "grey-test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "grey-test")
	reg := blobstore.NewRegistry()
	if err := s3blob.Register(reg); err != nil {
		t.Fatal(err)
	}
	return reg, endpoint
}

// createBucket creates name on moto with a plain SDK client.
func createBucket(t *testing.T, endpoint, name string) {
	client := s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("grey-test", "grey-test", ""),
	})
	if _, err := client.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
}

func TestConformance(t *testing.T) {
	reg, endpoint := setup(t)
	var client *s3.Client
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
	}, blobstoretest.Options{FetchSignedURLs: true, AsTargets: []any{&client, &gb}})
}

func TestMissingBucket(t *testing.T) {
	reg, endpoint := setup(t)
	_, err := reg.Open(t.Context(), bucketURL(endpoint, "grey-no-such-bucket-"+uniq()), blobstore.Options{})
	if !greyerr.Is(err, greyerr.NotFound) || !strings.Contains(err.Error(), "grey-no-such-bucket-") {
		t.Fatalf("open of a missing bucket: %v, want NotFound naming it", err)
	}
}

func TestCredentialErrorsAreNotRetried(t *testing.T) {
	if got := s3blob.Code(fmt.Errorf("operation error S3: ListObjectsV2, get identity: get credentials: no EC2 IMDS role found")); got != greyerr.PermissionDenied {
		t.Errorf("missing credentials: %q", got)
	}
	for code, want := range map[string]greyerr.Code{
		"InvalidAccessKeyId":    greyerr.PermissionDenied,
		"SignatureDoesNotMatch": greyerr.PermissionDenied,
		"AccessDenied":          greyerr.PermissionDenied,
		"SlowDown":              greyerr.Unavailable,
		"NoSuchKey":             greyerr.NotFound,
	} {
		if got := s3blob.Code(&smithy.GenericAPIError{Code: code}); got != want {
			t.Errorf("Code(%s) = %q, want %q", code, got, want)
		}
	}
}

func TestTagging(t *testing.T) {
	got := s3blob.Tagging(map[string]string{"grey-tenant-id": "acme", "team": "plat form"})
	if got != "grey-tenant-id=acme&team=plat+form" {
		t.Errorf("Tagging = %q", got)
	}
}

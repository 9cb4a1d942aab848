// Package s3blob is the blobstore driver for Amazon S3 and S3-compatible
// services (s3://bucket), over gocloud.dev/blob/s3blob and the AWS SDK v2.
//
// URL parameters are gocloud's: region (default cloud.region, else
// AWS_REGION), endpoint (an S3-compatible service such as moto or MinIO),
// use_path_style=true (needed by most of them), disable_https, profile,
// anonymous, ssetype, kmskeyid. Credentials come from the AWS default chain
// (AWS_ACCESS_KEY_ID..., shared files, instance roles).
//
// Cost tags are S3 object tags (the x-amz-tagging header on upload; at most
// 10 per object), read back with GetObjectTagging. Signed URLs are SigV4
// presigned URLs. As reaches **s3.Client and **blob.Bucket.
package s3blob

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"

	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/blobstore/gocloudblob"
	"github.com/grey-distributed/grey/greyerr"
)

// Scheme is the URL scheme of S3 buckets.
const Scheme = "s3"

// MaxTags is S3's limit of tags per object.
const MaxTags = 10

// Register registers the s3:// driver in r.
func Register(r *blobstore.Registry) error {
	return r.Register(Scheme, blobstore.OpenerFunc(open))
}

func open(ctx context.Context, u *url.URL, env blobstore.Env) (blobstore.Driver, error) {
	q := u.Query()
	if q.Get("region") == "" && env.Region != "" {
		q.Set("region", env.Region)
	}
	c := *u
	c.RawQuery = q.Encode()
	b, err := (&s3blob.URLOpener{}).OpenBucketURL(ctx, &c)
	if err != nil {
		return nil, fmt.Errorf("s3 bucket %s: %w", u.Host, err)
	}
	bucket := u.Host
	return gocloudblob.New(b, blobstore.Capabilities{Scheme: Scheme, Tags: blobstore.TagsNative, MaxTags: MaxTags, SignedURL: true}, gocloudblob.Hooks{
		BeforeWrite: func(asFunc func(any) bool, tags map[string]string) error {
			var in *transfermanager.UploadObjectInput
			if !asFunc(&in) {
				return greyerr.New(greyerr.Internal, "s3: the upload request is not reachable to tag it")
			}
			in.Tagging = aws.String(Tagging(tags))
			return nil
		},
		ReadTags: func(ctx context.Context, b *blob.Bucket, key string) (map[string]string, error) {
			var client *s3.Client
			if !b.As(&client) {
				return nil, greyerr.New(greyerr.Internal, "s3: no native client")
			}
			out, err := client.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				return nil, err
			}
			tags := make(map[string]string, len(out.TagSet))
			for _, t := range out.TagSet {
				tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			return tags, nil
		},
		Code:                   Code,
		SignWithoutContentType: true,
	}), nil
}

// Tagging encodes tags as the x-amz-tagging header value (URL query form).
func Tagging(tags map[string]string) string {
	v := url.Values{}
	for k, t := range tags {
		v.Set(k, t)
	}
	return v.Encode()
}

// Code maps S3 error codes gocloud leaves Unknown: refused credentials are
// PermissionDenied (not retried), throttling and 5xx Unavailable.
func Code(err error) greyerr.Code {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		// No credentials found: the SDK reports it only as text
		// (fmt.Errorf("get identity: %w") around the provider's error).
		if strings.Contains(err.Error(), "get identity: ") {
			return greyerr.PermissionDenied
		}
		return ""
	}
	switch ae.ErrorCode() {
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "AccessDenied", "Forbidden", "AllAccessDisabled":
		return greyerr.PermissionDenied
	case "NoSuchKey", "NoSuchBucket", "NotFound", "NoSuchTagSet":
		return greyerr.NotFound
	case "SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "Throttling", "RequestTimeTooSkewed":
		return greyerr.Unavailable
	case "InvalidTag", "InvalidArgument", "KeyTooLongError", "EntityTooLarge":
		return greyerr.InvalidArgument
	}
	return ""
}

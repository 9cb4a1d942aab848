// Package gcsblob is the blobstore driver for Google Cloud Storage
// (gs://bucket), over gocloud.dev/blob/gcsblob.
//
// URL parameters: endpoint (an emulator such as fake-gcs-server,
// http://host:port; STORAGE_EMULATOR_HOST=host:port does the same) talks
// without credentials; otherwise Application Default Credentials are used
// and gocloud's parameters apply (access_id and private_key_path enable
// signed URLs). GOOGLE_PROJECT (blobstore.Env.Project) is the project
// billed for requests where one is needed.
//
// Cost tags are object metadata (the "labels" GCS keeps per object; GCS has
// no object tags), read back with the object's attributes. As reaches
// **storage.Client and **blob.Bucket.
package gcsblob

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"cloud.google.com/go/storage"
	"gocloud.dev/blob"
	"gocloud.dev/blob/gcsblob"
	"google.golang.org/api/option"

	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/blobstore/gocloudblob"
)

// Scheme is the URL scheme of GCS buckets.
const Scheme = "gs"

// Register registers the gs:// driver in r.
func Register(r *blobstore.Registry) error {
	return r.Register(Scheme, blobstore.OpenerFunc(open))
}

func open(ctx context.Context, u *url.URL, env blobstore.Env) (blobstore.Driver, error) {
	q := u.Query()
	endpoint := q.Get("endpoint")
	if endpoint == "" && os.Getenv("STORAGE_EMULATOR_HOST") != "" {
		endpoint = "http://" + strings.TrimPrefix(os.Getenv("STORAGE_EMULATOR_HOST"), "http://")
	}
	caps := blobstore.Capabilities{Scheme: Scheme, Tags: blobstore.TagsAsMetadata}
	var b *blob.Bucket
	if endpoint != "" {
		client, err := storage.NewClient(ctx,
			option.WithoutAuthentication(),
			option.WithEndpoint(strings.TrimRight(endpoint, "/")+"/storage/v1/"),
			option.WithHTTPClient(http.DefaultClient))
		if err != nil {
			return nil, fmt.Errorf("gcs client for %s: %w", endpoint, err)
		}
		if b, err = gcsblob.OpenBucket(ctx, nil, u.Host, &gcsblob.Options{Client: client}); err != nil {
			_ = client.Close()
			return nil, fmt.Errorf("gcs bucket %s: %w", u.Host, err)
		}
	} else {
		caps.SignedURL = q.Get("access_id") != "" && q.Get("private_key_path") != ""
		var err error
		// gocloud's own opener finds Application Default Credentials.
		if b, err = blob.DefaultURLMux().OpenBucketURL(ctx, u); err != nil {
			return nil, fmt.Errorf("gcs bucket %s: %w", u.Host, err)
		}
	}
	_ = env.Project // requests on an existing bucket need no project
	return gocloudblob.New(b, caps, gocloudblob.Hooks{}), nil
}

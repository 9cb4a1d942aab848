// Package azblob is the blobstore driver for Azure Blob Storage
// (azblob://container), over gocloud.dev/blob/azureblob and the Azure SDK.
//
// URL parameters: endpoint is the account's blob service URL (Azurite:
// http://127.0.0.1:10000/devstoreaccount1), with the account's shared key
// in AZURE_STORAGE_KEY and its name in account (default
// AZURE_STORAGE_ACCOUNT, else the endpoint's last path segment). Without
// endpoint, gocloud's own parameters and environment apply
// (AZURE_STORAGE_ACCOUNT, a connection string, or the default Azure
// credential chain); AZURE_SUBSCRIPTION_ID is not needed for data access.
//
// Cost tags are blob index tags (at most 10 per blob), read back with Get
// Blob Tags. Signed URLs are service SAS URLs and need the shared key. As
// reaches **container.Client and **blob.Bucket.
package azblob

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	sdkblob "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"gocloud.dev/blob"
	"gocloud.dev/blob/azureblob"

	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/blobstore/gocloudblob"
	"github.com/grey-distributed/grey/greyerr"
)

// Scheme is the URL scheme of Azure containers.
const Scheme = "azblob"

// MaxTags is Azure's limit of index tags per blob.
const MaxTags = 10

// Register registers the azblob:// driver in r.
func Register(r *blobstore.Registry) error {
	return r.Register(Scheme, blobstore.OpenerFunc(open))
}

func open(ctx context.Context, u *url.URL, _ blobstore.Env) (blobstore.Driver, error) {
	q := u.Query()
	caps := blobstore.Capabilities{Scheme: Scheme, Tags: blobstore.TagsNative, MaxTags: MaxTags}
	var b *blob.Bucket
	if endpoint := strings.TrimRight(q.Get("endpoint"), "/"); endpoint != "" {
		account := q.Get("account")
		if account == "" {
			account = os.Getenv("AZURE_STORAGE_ACCOUNT")
		}
		if account == "" {
			account = path.Base(endpoint)
		}
		key := os.Getenv("AZURE_STORAGE_KEY")
		if key == "" {
			return nil, greyerr.Invalid("url", "azblob://%s?endpoint=...: set AZURE_STORAGE_KEY to the account's shared key", u.Host)
		}
		cred, err := sdkblob.NewSharedKeyCredential(account, key)
		if err != nil {
			return nil, fmt.Errorf("azure shared key for %s: %w", account, err)
		}
		cc, err := container.NewClientWithSharedKeyCredential(endpoint+"/"+u.Host, cred, nil)
		if err != nil {
			return nil, fmt.Errorf("azure container %s: %w", u.Host, err)
		}
		if b, err = azureblob.OpenBucket(ctx, cc, nil); err != nil {
			return nil, fmt.Errorf("azure container %s: %w", u.Host, err)
		}
		caps.SignedURL = true
	} else {
		var err error
		// gocloud's own opener reads the AZURE_STORAGE_* environment.
		if b, err = blob.DefaultURLMux().OpenBucketURL(ctx, u); err != nil {
			return nil, fmt.Errorf("azure container %s: %w", u.Host, err)
		}
		caps.SignedURL = os.Getenv("AZURE_STORAGE_KEY") != ""
	}
	return gocloudblob.New(b, caps, gocloudblob.Hooks{
		BeforeWrite: func(asFunc func(any) bool, tags map[string]string) error {
			var o *sdkblob.UploadStreamOptions
			if !asFunc(&o) {
				return greyerr.New(greyerr.Internal, "azblob: the upload options are not reachable to tag the blob")
			}
			o.Tags = tags
			return nil
		},
		ReadTags: func(ctx context.Context, b *blob.Bucket, key string) (map[string]string, error) {
			var cc *container.Client
			if !b.As(&cc) {
				return nil, greyerr.New(greyerr.Internal, "azblob: no native client")
			}
			resp, err := cc.NewBlobClient(key).GetTags(ctx, nil)
			if err != nil {
				return nil, err
			}
			tags := map[string]string{}
			for _, t := range resp.BlobTagSet {
				tags[deref(t.Key)] = deref(t.Value)
			}
			return tags, nil
		},
		SignWithoutContentType: true,
		Code:                   Code,
	}), nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Code maps Azure errors gocloud leaves Unknown: 401 and 403 (a wrong key,
// an expired SAS) are PermissionDenied, not retried; 429 and 5xx are
// Unavailable.
func Code(err error) greyerr.Code {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return ""
	}
	switch {
	case re.StatusCode == 401 || re.StatusCode == 403:
		return greyerr.PermissionDenied
	case re.StatusCode == 404:
		return greyerr.NotFound
	case re.StatusCode == 429 || re.StatusCode >= 500:
		return greyerr.Unavailable
	}
	return ""
}

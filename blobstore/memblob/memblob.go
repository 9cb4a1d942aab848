// Package memblob is the in-memory blobstore driver (mem://), the
// reference driver that runs the conformance suite on every go test. Each
// mem:// URL opens a new, empty bucket. Tags are kept as metadata; signed
// URLs are not supported (Unimplemented). As reaches **blob.Bucket.
package memblob

import (
	"context"
	"net/url"

	"gocloud.dev/blob/memblob"

	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/blobstore/gocloudblob"
)

// Scheme is the URL scheme of in-memory buckets.
const Scheme = "mem"

// Register registers the mem:// driver in r.
func Register(r *blobstore.Registry) error {
	return r.Register(Scheme, blobstore.OpenerFunc(func(ctx context.Context, u *url.URL, _ blobstore.Env) (blobstore.Driver, error) {
		return NewDriver(), nil
	}))
}

// NewDriver returns a driver over a new, empty in-memory bucket.
func NewDriver() blobstore.Driver {
	return gocloudblob.New(memblob.OpenBucket(nil), blobstore.Capabilities{Scheme: Scheme, Tags: blobstore.TagsAsMetadata}, gocloudblob.Hooks{})
}

// Open returns a Bucket over a new, empty in-memory bucket.
func Open(opts blobstore.Options) (*blobstore.Bucket, error) {
	return blobstore.New(NewDriver(), opts)
}

package blobstore

import (
	"context"
	"io"
	"time"
)

// Driver is what a blob storage driver implements. The portable Bucket
// validates keys, adds tenant prefixes and tags, retries and measures before
// calling it, so a driver only moves bytes. Keys given to a driver are
// already valid (see ValidateKey) and already carry any prefix.
//
// Errors: every method returns errors that greyerr.CodeOf classifies:
// NotFound for a missing object, PermissionDenied for refused credentials or
// a denied operation, InvalidArgument for a request the service rejects as
// malformed, Unimplemented for an operation the driver cannot do, and
// Unavailable for a failure worth retrying (network, throttling, 5xx). Any
// other error counts as permanent.
type Driver interface {
	// Put writes r's bytes to key, replacing any object there. A reader sees
	// the old object or the whole new one, never a part. opts.Tags are
	// stored the way Capabilities.Tags says (native tags, or metadata);
	// a driver that cannot store them fails with Unimplemented rather than
	// dropping them. When ctx ends before Put returns, no object is written.
	Put(ctx context.Context, key string, r io.Reader, opts PutOptions) error

	// NewReader opens key for reading from its first byte. A missing key is
	// NotFound. The caller closes the reader.
	NewReader(ctx context.Context, key string) (io.ReadCloser, error)

	// Attributes describes key (NotFound if missing). Metadata holds what
	// Put stored in PutOptions.Metadata, with keys lower-cased.
	Attributes(ctx context.Context, key string) (Attributes, error)

	// Tags reads back key's tags from the service as stored (NotFound if
	// missing). Drivers whose Capabilities.Tags is TagsAsMetadata return the
	// object's metadata, tags included.
	Tags(ctx context.Context, key string) (map[string]string, error)

	// List returns, in lexical key order, up to pageSize (>= 1) objects
	// whose keys start with prefix, after the page that token ended ("" for
	// the first page), and the token of the next page ("" after the last).
	// Keys are flat: "a/b" is listed under prefix "a/" (no directories). A
	// token the driver did not issue is InvalidArgument.
	List(ctx context.Context, prefix string, pageSize int, token string) ([]Object, string, error)

	// Delete removes key. A missing key is NotFound.
	Delete(ctx context.Context, key string) error

	// SignedURL returns a URL that lets its bearer do opts.Method on key
	// until opts.Expiry has passed, without credentials. A driver without
	// Capabilities.SignedURL returns Unimplemented.
	SignedURL(ctx context.Context, key string, opts SignedURLOptions) (string, error)

	// Capabilities says what the driver supports; it does not change after
	// the driver is opened.
	Capabilities() Capabilities

	// As sets i to the driver's native client when i is a pointer to its
	// type (documented per driver) and reports whether it did.
	As(i any) bool

	// Close releases the driver's resources. No method is called after it.
	Close() error
}

// PutOptions are a Put's options, already completed by the portable type.
type PutOptions struct {
	// ContentType is the object's media type ("" lets the driver choose).
	ContentType string
	// Metadata are user metadata, stored with the object.
	Metadata map[string]string
	// Tags are the object's cost tags: grey-tenant-id, grey-task-id,
	// grey-environment and the configured cloud.cost_tags.
	Tags map[string]string
}

// Attributes describe a stored object.
type Attributes struct {
	// Size is the object's length in bytes.
	Size int64
	// ContentType is the object's media type.
	ContentType string
	// ModTime is when the object was last written (zero if unknown).
	ModTime time.Time
	// ETag is the service's version tag of the object ("" if none).
	ETag string
	// Metadata are the object's user metadata (keys lower-cased).
	Metadata map[string]string
}

// Object is one entry of a List.
type Object struct {
	// Key is the object's key (relative to the Bucket's prefix when it
	// comes from Bucket.List).
	Key string
	// Size is the object's length in bytes.
	Size int64
	// ModTime is when the object was last written (zero if unknown).
	ModTime time.Time
}

// SignedURLOptions configure a signed URL.
type SignedURLOptions struct {
	// Method is http.MethodGet or http.MethodPut.
	Method string
	// Expiry is how long the URL is valid.
	Expiry time.Duration
	// ContentType, for a PUT, is the content type the upload must carry.
	ContentType string
}

// TagSupport says how a driver stores cost tags.
type TagSupport int

// How a driver stores tags.
const (
	// TagsNone: the driver cannot store tags; a Put with tags fails with
	// greyerr.Unimplemented.
	TagsNone TagSupport = iota
	// TagsNative: the service's own object tags (S3 object tags, Azure blob
	// index tags), visible to its billing and lifecycle tools.
	TagsNative
	// TagsAsMetadata: tags are stored as object metadata (GCS, file, mem),
	// the place a cost report of that service reads them from.
	TagsAsMetadata
)

// String names the tag support.
func (t TagSupport) String() string {
	switch t {
	case TagsNative:
		return "native"
	case TagsAsMetadata:
		return "metadata"
	}
	return "none"
}

// Capabilities are what a driver supports.
type Capabilities struct {
	// Scheme is the URL scheme the driver was opened with.
	Scheme string
	// Tags says how cost tags are stored.
	Tags TagSupport
	// MaxTags bounds the tags of one object (0 = no limit); S3 allows 10.
	MaxTags int
	// SignedURL: SignedURL works (keys and signer configured).
	SignedURL bool
}

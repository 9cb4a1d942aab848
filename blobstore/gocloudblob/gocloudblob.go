// Package gocloudblob adapts a gocloud.dev/blob bucket to the
// blobstore.Driver contract. The file, mem, s3, gs and azblob drivers are
// this adapter plus, where the service has native object tags, the hooks
// that write and read them. It imports only gocloud.dev's portable blob
// package, no cloud SDK.
package gocloudblob

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"maps"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/greyerr"
)

// Hooks are what a driver adds to the adapter.
type Hooks struct {
	// BeforeWrite, for TagsNative drivers, puts tags on the write request
	// through gocloud's As hook (asFunc reaches the SDK's request type).
	BeforeWrite func(asFunc func(any) bool, tags map[string]string) error
	// ReadTags, for TagsNative drivers, reads key's tags from the service.
	ReadTags func(ctx context.Context, b *blob.Bucket, key string) (map[string]string, error)
	// SignWithoutContentType: the service cannot bind a PUT's content type
	// into the signature (Azure SAS); the content type is left out.
	SignWithoutContentType bool
	// Code maps a service error to a greyerr code where gcerrors says
	// Unknown (e.g. refused credentials); "" leaves it to the adapter.
	Code func(err error) greyerr.Code
	// Hidden reports keys that are the driver's own files rather than
	// objects (fileblob's in-progress writes): List leaves them out, so
	// nothing that walks the bucket reads or deletes a write under way.
	Hidden func(key string) bool
}

// Driver is a blobstore.Driver over a gocloud.dev/blob bucket.
type Driver struct {
	b     *blob.Bucket
	caps  blobstore.Capabilities
	hooks Hooks
}

// New returns a driver over b with caps; caps.Tags TagsNative needs
// hooks.BeforeWrite and hooks.ReadTags.
func New(b *blob.Bucket, caps blobstore.Capabilities, hooks Hooks) *Driver {
	return &Driver{b: b, caps: caps, hooks: hooks}
}

// Put implements blobstore.Driver.
func (d *Driver) Put(ctx context.Context, key string, r io.Reader, opts blobstore.PutOptions) error {
	md := maps.Clone(opts.Metadata)
	if md == nil {
		md = map[string]string{}
	}
	wo := &blob.WriterOptions{ContentType: opts.ContentType, Metadata: md}
	switch d.caps.Tags {
	case blobstore.TagsAsMetadata:
		maps.Copy(md, opts.Tags)
	case blobstore.TagsNative:
		if len(opts.Tags) > 0 {
			tags := opts.Tags
			wo.BeforeWrite = func(asFunc func(any) bool) error { return d.hooks.BeforeWrite(asFunc, tags) }
		}
	default:
		if len(opts.Tags) > 0 {
			return greyerr.New(greyerr.Unimplemented, "%s: tags are not supported", d.caps.Scheme)
		}
	}
	if opts.ContentType == "" {
		wo.ContentType = "application/octet-stream"
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := d.b.NewWriter(wctx, key, wo)
	if err != nil {
		return d.err(err, "put")
	}
	if _, err := io.Copy(w, r); err != nil {
		cancel() // a cancelled writer discards the object
		_ = w.Close()
		return d.err(err, "put")
	}
	if err := w.Close(); err != nil {
		return d.err(err, "put")
	}
	return nil
}

// NewReader implements blobstore.Driver.
func (d *Driver) NewReader(ctx context.Context, key string) (io.ReadCloser, error) {
	r, err := d.b.NewReader(ctx, key, nil)
	if err != nil {
		return nil, d.err(err, "read")
	}
	return r, nil
}

// Attributes implements blobstore.Driver.
func (d *Driver) Attributes(ctx context.Context, key string) (blobstore.Attributes, error) {
	a, err := d.b.Attributes(ctx, key)
	if err != nil {
		return blobstore.Attributes{}, d.err(err, "attributes")
	}
	return blobstore.Attributes{Size: a.Size, ContentType: a.ContentType, ModTime: a.ModTime, ETag: a.ETag, Metadata: a.Metadata}, nil
}

// Tags implements blobstore.Driver.
func (d *Driver) Tags(ctx context.Context, key string) (map[string]string, error) {
	switch d.caps.Tags {
	case blobstore.TagsNative:
		t, err := d.hooks.ReadTags(ctx, d.b, key)
		if err != nil {
			return nil, d.err(err, "tags")
		}
		return t, nil
	case blobstore.TagsAsMetadata:
		a, err := d.b.Attributes(ctx, key)
		if err != nil {
			return nil, d.err(err, "tags")
		}
		return a.Metadata, nil
	}
	return nil, greyerr.New(greyerr.Unimplemented, "%s: tags are not supported", d.caps.Scheme)
}

// List implements blobstore.Driver.
func (d *Driver) List(ctx context.Context, prefix string, pageSize int, token string) ([]blobstore.Object, string, error) {
	var tok []byte
	if token != "" {
		var err error
		if tok, err = base64.RawURLEncoding.DecodeString(token); err != nil {
			return nil, "", greyerr.Invalid("page_token", "is not a token this bucket issued")
		}
	} else {
		tok = blob.FirstPageToken
	}
	objs, next, err := d.b.ListPage(ctx, tok, pageSize, &blob.ListOptions{Prefix: prefix})
	if err != nil {
		if gcerrors.Code(err) == gcerrors.InvalidArgument && token != "" {
			return nil, "", greyerr.Invalid("page_token", "is not a token this bucket issued")
		}
		return nil, "", d.err(err, "list")
	}
	out := make([]blobstore.Object, 0, len(objs))
	for _, o := range objs {
		if o.IsDir || (d.hooks.Hidden != nil && d.hooks.Hidden(o.Key)) {
			continue
		}
		out = append(out, blobstore.Object{Key: o.Key, Size: o.Size, ModTime: o.ModTime})
	}
	if len(next) == 0 {
		return out, "", nil
	}
	return out, base64.RawURLEncoding.EncodeToString(next), nil
}

// Delete implements blobstore.Driver.
func (d *Driver) Delete(ctx context.Context, key string) error {
	if err := d.b.Delete(ctx, key); err != nil {
		return d.err(err, "delete")
	}
	return nil
}

// SignedURL implements blobstore.Driver.
func (d *Driver) SignedURL(ctx context.Context, key string, opts blobstore.SignedURLOptions) (string, error) {
	if !d.caps.SignedURL {
		return "", greyerr.New(greyerr.Unimplemented, "%s: signed URLs are not configured", d.caps.Scheme)
	}
	so := &blob.SignedURLOptions{Expiry: opts.Expiry, Method: opts.Method, ContentType: opts.ContentType}
	if d.hooks.SignWithoutContentType {
		so.ContentType = ""
	}
	u, err := d.b.SignedURL(ctx, key, so)
	if err != nil {
		return "", d.err(err, "sign")
	}
	return u, nil
}

// Capabilities implements blobstore.Driver.
func (d *Driver) Capabilities() blobstore.Capabilities { return d.caps }

// As implements blobstore.Driver: **blob.Bucket reaches the gocloud
// bucket, and anything its driver's As accepts reaches the native client.
func (d *Driver) As(i any) bool {
	if p, ok := i.(**blob.Bucket); ok {
		*p = d.b
		return true
	}
	return d.b.As(i)
}

// Check reports whether the bucket exists and the credentials reach it.
func (d *Driver) Check(ctx context.Context) error {
	ok, err := d.b.IsAccessible(ctx)
	if err != nil {
		return d.err(err, "check")
	}
	if !ok {
		return greyerr.New(greyerr.NotFound, "%s: bucket not found", d.caps.Scheme)
	}
	return nil
}

// Close implements blobstore.Driver.
func (d *Driver) Close() error { return d.b.Close() }

// err codes a gocloud error.
func (d *Driver) err(err error, op string) error {
	return greyerr.Wrap(d.Code(err), err, "%s %s", d.caps.Scheme, op)
}

// Code maps a gocloud error to Grey's code (exported for drivers' hooks).
func (d *Driver) Code(err error) greyerr.Code {
	if errors.Is(err, context.Canceled) {
		return greyerr.Canceled
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return greyerr.DeadlineExceeded
	}
	if d.hooks.Code != nil {
		if c := d.hooks.Code(err); c != "" {
			return c
		}
	}
	return Code(err)
}

// Code maps a gocloud error code to Grey's: throttling and outages are
// Unavailable (retried), refused credentials PermissionDenied.
func Code(err error) greyerr.Code {
	var ge *greyerr.Error
	if errors.As(err, &ge) {
		return ge.Code
	}
	switch gcerrors.Code(err) {
	case gcerrors.OK:
		return ""
	case gcerrors.NotFound:
		return greyerr.NotFound
	case gcerrors.AlreadyExists:
		return greyerr.AlreadyExists
	case gcerrors.InvalidArgument:
		return greyerr.InvalidArgument
	case gcerrors.FailedPrecondition:
		return greyerr.FailedPrecondition
	case gcerrors.PermissionDenied:
		return greyerr.PermissionDenied
	case gcerrors.Unimplemented:
		return greyerr.Unimplemented
	case gcerrors.ResourceExhausted, gcerrors.Internal:
		return greyerr.Unavailable
	case gcerrors.Canceled:
		return greyerr.Canceled
	case gcerrors.DeadlineExceeded:
		return greyerr.DeadlineExceeded
	}
	return greyerr.Unavailable
}

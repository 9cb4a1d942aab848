// Package taskdata is the node's store of large task data (docs/TASKS.md):
// payloads a task names by payload_ref instead of carrying inline, and
// results over the inline limit. It holds one blobstore bucket
// (tasks.data_url, default file://<node.data_dir>/taskdata); every tenant
// sees only its own prefix (tenants/<id>/) through the bucket's tenant view,
// and every object written carries the cost tags (grey-tenant-id,
// grey-task-id where a task owns it, grey-environment, cloud.cost_tags).
//
// Uploads go straight to the bucket through a signed PUT URL: the driver's
// own (S3, GCS, Azure) or, for a bucket that cannot sign (file://, mem://),
// a URL Grey serves itself under /api/v1/signed/, authorised by an HMAC of
// the method, tenant, key and expiry (see Signer).
package taskdata

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// QuotaFunc returns the tenant's max_storage_bytes (0: no limit) and the
// bytes it stores outside the task data (tasks in the state, modules).
type QuotaFunc func(ctx context.Context, tenant string) (max, elsewhere int64, err error)

// StorageFunc records that tenant's task data gained delta bytes
// (negative: lost them). With enforce set, a positive delta is a
// reservation made before the write: it fails (TooLarge, 413) when it
// takes the tenant past its max_storage_bytes, and is given back with
// -delta when the write fails.
type StorageFunc func(ctx context.Context, tenant string, delta int64, enforce bool) error

// Defaults of Options.
const (
	// DefaultMaxObjectBytes bounds one payload or result object.
	DefaultMaxObjectBytes = 64 << 20
	// DefaultURLExpiry is how long a signed URL lasts when no expiry is asked.
	DefaultURLExpiry = 15 * time.Minute
	// MaxURLExpiry bounds a signed URL's life.
	MaxURLExpiry = 24 * time.Hour
)

// Options configure a Store.
type Options struct {
	// MaxObjectBytes bounds one object (default DefaultMaxObjectBytes).
	MaxObjectBytes int64
	// InlineMax is the largest result kept inline in the task; larger ones
	// are stored (0: every result over 1 MiB).
	InlineMax int
	// Quota is the tenant's storage quota; nil: no limit.
	Quota QuotaFunc
	// Storage, when set, counts task data in the tenant's replicated
	// stored bytes: writes reserve through it and collected results give
	// their bytes back. Quota's elsewhere then already includes the task
	// data, and the tenant's objects are no longer listed to check it.
	Storage StorageFunc
	// Signer signs the URLs Grey serves for a bucket that cannot sign;
	// nil: such a bucket answers Unimplemented for signed URLs.
	Signer *Signer
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Store is the task data store. It is safe for concurrent use.
type Store struct {
	bucket *blobstore.Bucket
	opts   Options
	// tagging serializes counting an untagged object with tagging it, so
	// that two submits naming one signed-URL upload do not both count it.
	tagging sync.Mutex
}

// New returns a store over bucket, the whole bucket (not a tenant view).
func New(bucket *blobstore.Bucket, opts Options) (*Store, error) {
	if bucket == nil {
		return nil, errors.New("taskdata: nil bucket")
	}
	if bucket.Prefix() != "" {
		return nil, errors.New("taskdata: the bucket must not be a view")
	}
	if opts.MaxObjectBytes <= 0 {
		opts.MaxObjectBytes = DefaultMaxObjectBytes
	}
	if opts.InlineMax <= 0 {
		opts.InlineMax = 1 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{bucket: bucket, opts: opts}, nil
}

// SetStorage sets the byte counter (call before use).
func (s *Store) SetStorage(f StorageFunc) { s.opts.Storage = f }

// count records delta bytes of tenant's task data (no-op without Storage).
func (s *Store) count(ctx context.Context, tenant string, delta int64, enforce bool) error {
	if s.opts.Storage == nil || delta == 0 {
		return nil
	}
	return s.opts.Storage(ctx, tenant, delta, enforce)
}

// release gives back n reserved bytes of a write that failed, with a
// context of its own (the request's may be what ended the write).
func (s *Store) release(tenant string, n int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.count(ctx, tenant, -n, false) // best effort: the write's error is the one to report
}

// mine is the tenant's task data bytes a quota check adds to Quota's
// elsewhere: listed, unless Storage counts them there already.
func (s *Store) mine(ctx context.Context, tenant string) (int64, error) {
	if s.opts.Storage != nil {
		return 0, nil
	}
	return s.Usage(ctx, tenant)
}

// Bucket is the whole bucket (tests read tags back through it).
func (s *Store) Bucket() *blobstore.Bucket { return s.bucket }

// InlineMax is the largest result kept inline.
func (s *Store) InlineMax() int { return s.opts.InlineMax }

// MaxObjectBytes bounds one object.
func (s *Store) MaxObjectBytes() int64 { return s.opts.MaxObjectBytes }

// Close closes the bucket.
func (s *Store) Close() error { return s.bucket.Close() }

func (s *Store) view(tenant string) (*blobstore.Bucket, error) { return s.bucket.Tenant(tenant) }

// Usage sums the bytes of the tenant's task data.
func (s *Store) Usage(ctx context.Context, tenant string) (int64, error) {
	v, err := s.view(tenant)
	if err != nil {
		return 0, err
	}
	var n int64
	err = v.Walk(ctx, "", func(o blobstore.Object) error { n += o.Size; return nil })
	return n, err
}

// checkQuota refuses when the tenant's stored bytes plus more exceed its
// max_storage_bytes (TooLarge, answered 413).
func (s *Store) checkQuota(ctx context.Context, tenant string, more int64) error {
	if s.opts.Quota == nil {
		return nil
	}
	max, elsewhere, err := s.opts.Quota(ctx, tenant)
	if err != nil || max <= 0 {
		return err
	}
	mine, err := s.mine(ctx, tenant)
	if err != nil {
		return err
	}
	if used := elsewhere + mine; used+more > max {
		e := greyerr.New(greyerr.TooLarge, "tenant %s stores %d bytes (%d in task data); %d more exceed max_storage_bytes %d", tenant, used, mine, more, max)
		e.Reason = "storage_quota"
		return e
	}
	return nil
}

// remaining is how many more bytes the tenant may store (-1: no limit).
func (s *Store) remaining(ctx context.Context, tenant string) (int64, error) {
	if s.opts.Quota == nil {
		return -1, nil
	}
	max, elsewhere, err := s.opts.Quota(ctx, tenant)
	if err != nil || max <= 0 {
		return -1, err
	}
	mine, err := s.mine(ctx, tenant)
	if err != nil {
		return 0, err
	}
	return max - elsewhere - mine, nil
}

// Digest is the lower-case hex SHA-256 of b.
func Digest(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// ResolvePayload checks the payload_ref a task of tenant names (field
// names it in errors) and reads the object: a ref outside the tenant's
// prefix is PermissionDenied (403), a malformed one or a missing object
// InvalidArgument (400), an object over MaxObjectBytes or one that takes
// the tenant past max_storage_bytes TooLarge (413), bytes that are not
// JSON InvalidArgument. It returns the object's key, size and SHA-256. An
// object uploaded by a driver's signed URL carries no tags yet: it is
// rewritten with them.
func (s *Store) ResolvePayload(ctx context.Context, field, tenant, ref string) (*task.DataRef, error) {
	r, _, err := s.ResolvePayloadData(ctx, field, tenant, ref)
	return r, err
}

// ResolvePayloadData is ResolvePayload that also returns the object's
// bytes (the engine hands them to the kind's submit hook).
func (s *Store) ResolvePayloadData(ctx context.Context, field, tenant, ref string) (*task.DataRef, []byte, error) {
	key, err := task.ParseRef(field, tenant, ref)
	if err != nil {
		return nil, nil, err
	}
	v, err := s.view(tenant)
	if err != nil {
		return nil, nil, err
	}
	data, err := v.Get(ctx, key, s.opts.MaxObjectBytes)
	switch {
	case greyerr.Is(err, greyerr.NotFound):
		// NotFound, as for any other resource of the tenant: another
		// tenant's upload id names nothing in this tenant's prefix.
		e := greyerr.New(greyerr.NotFound, "no object %q in your task data: upload it first (POST /api/v1/uploads, then PUT to the URL it returns)", key)
		e.Field = field
		return nil, nil, e
	case greyerr.Is(err, greyerr.TooLarge):
		e := greyerr.New(greyerr.TooLarge, "object %q is larger than tasks.max_data_bytes (%d)", key, s.opts.MaxObjectBytes)
		e.Field = field
		return nil, nil, e
	case err != nil:
		return nil, nil, err
	}
	if err := s.checkQuota(ctx, tenant, 0); err != nil {
		return nil, nil, err
	}
	if !task.IsBinaryPayload(data) && !json.Valid(data) {
		return nil, nil, greyerr.Invalid(field, "object %q is not a JSON value (a payload_ref names the payload's JSON bytes, as an inline payload would be, or an inference body in the binary form, which starts with %q)", key, task.BinaryPayloadPrefix)
	}
	if err := s.ensureTags(ctx, tenant, v, key, data); err != nil {
		return nil, nil, err
	}
	return &task.DataRef{Ref: key, Size: int64(len(data)), SHA256: Digest(data)}, data, nil
}

// ensureTags rewrites key with the view's tags when it lacks them (an
// object a client uploaded straight to the service through a signed URL).
// That is when Grey first sees the object, so its bytes are counted then:
// reserved against the tenant's quota (TooLarge over it) before the
// rewrite, which tags it as counted. An object Grey wrote carries the
// tags and was counted when written.
func (s *Store) ensureTags(ctx context.Context, tenant string, v *blobstore.Bucket, key string, data []byte) error {
	tags, err := v.ReadTags(ctx, key)
	if err != nil {
		return err
	}
	if tags[blobstore.TagTenant] != "" {
		return nil
	}
	s.tagging.Lock()
	defer s.tagging.Unlock()
	if tags, err = v.ReadTags(ctx, key); err != nil {
		return err
	}
	if tags[blobstore.TagTenant] != "" {
		return nil // a concurrent submit counted and tagged it meanwhile
	}
	if err := s.count(ctx, tenant, int64(len(data)), true); err != nil {
		return err
	}
	if err := v.Put(ctx, key, data, &blobstore.WriteOptions{ContentType: contentType(data)}); err != nil {
		s.release(tenant, int64(len(data)))
		return err
	}
	return nil
}

// contentType is the media type of a payload or result object's bytes.
func contentType(b []byte) string {
	if task.IsBinaryPayload(b) {
		return BinaryContentType
	}
	return "application/json"
}

// BinaryContentType is the media type Grey stores objects in the binary
// form with (task.IsBinaryPayload).
const BinaryContentType = "application/vnd.grey.oip-binary"

// replaced is the size of the object at key that a write replaces (0: none).
func replaced(ctx context.Context, v *blobstore.Bucket, key string) (int64, error) {
	a, err := v.Attributes(ctx, key)
	if greyerr.Is(err, greyerr.NotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return a.Size, nil
}

// Read returns the bytes of ref in tenant's task data, checked against the
// size and SHA-256 Grey recorded (FailedPrecondition naming both digests
// when the object changed since).
func (s *Store) Read(ctx context.Context, tenant string, ref *task.DataRef) ([]byte, error) {
	v, err := s.view(tenant)
	if err != nil {
		return nil, err
	}
	data, err := v.Get(ctx, ref.Ref, s.opts.MaxObjectBytes)
	if err != nil {
		return nil, err
	}
	if d := Digest(data); d != ref.SHA256 || int64(len(data)) != ref.Size {
		e := greyerr.New(greyerr.FailedPrecondition, "object %q changed after Grey recorded it: sha256 %s (%d bytes), recorded %s (%d bytes)", ref.Ref, d, len(data), ref.SHA256, ref.Size)
		e.Reason = "object_changed"
		return nil, e
	}
	return data, nil
}

// StoreResult stores a task's result at task.ResultKey(taskID), tagged
// with the task, and returns its reference. A result over MaxObjectBytes
// is TooLarge.
func (s *Store) StoreResult(ctx context.Context, tenant string, taskID task.ID, result []byte) (*task.DataRef, error) {
	if int64(len(result)) > s.opts.MaxObjectBytes {
		return nil, greyerr.New(greyerr.TooLarge, "result is %d bytes, more than tasks.max_data_bytes (%d)", len(result), s.opts.MaxObjectBytes)
	}
	v, err := s.view(tenant)
	if err != nil {
		return nil, err
	}
	key := task.ResultKey(taskID)
	// A result is not refused over quota (the work is done); it counts.
	var old int64
	if s.opts.Storage != nil {
		if old, err = replaced(ctx, v, key); err != nil {
			return nil, err
		}
	}
	delta := int64(len(result)) - old
	if err := s.count(ctx, tenant, delta, false); err != nil {
		return nil, err
	}
	if err := v.Put(ctx, key, result, &blobstore.WriteOptions{ContentType: contentType(result), TaskID: taskID}); err != nil {
		s.release(tenant, delta)
		return nil, err
	}
	return &task.DataRef{Ref: key, Size: int64(len(result)), SHA256: Digest(result)}, nil
}

// Open opens key of tenant's task data (a key relative to its prefix, in
// the uploads/ or results/ area) and returns its size.
func (s *Store) Open(ctx context.Context, tenant, key string) (io.ReadCloser, int64, error) {
	key, err := task.ParseRef("key", tenant, key)
	if err != nil {
		return nil, 0, err
	}
	v, err := s.view(tenant)
	if err != nil {
		return nil, 0, err
	}
	a, err := v.Attributes(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	r, err := v.NewReader(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	return r, a.Size, nil
}

// Upload is the answer to POST /api/v1/uploads.
type Upload struct {
	// ID names the upload.
	ID string `json:"id"`
	// PayloadRef is the payload_ref of a task that uses the upload.
	PayloadRef string `json:"payload_ref"`
	// Method is the HTTP method to send the bytes with (PUT).
	Method string `json:"method"`
	// URL is the signed URL. A URL Grey serves itself is a path
	// (/api/v1/signed/...), relative to the API's base URL.
	URL string `json:"url"`
	// Headers are headers the upload must carry.
	Headers map[string]string `json:"headers,omitempty"`
	// ExpiresAt is when the URL stops working.
	ExpiresAt time.Time `json:"expires_at"`
}

// NewUpload reserves an upload of size bytes (0: unknown) for tenant and
// returns where to PUT it. A size over MaxObjectBytes, or one that takes
// the tenant past max_storage_bytes, is TooLarge.
func (s *Store) NewUpload(ctx context.Context, tenant string, size int64, expiry time.Duration) (*Upload, error) {
	if !task.ValidTenant(tenant) {
		return nil, greyerr.Invalid("tenant", "%q is not a valid tenant id", tenant)
	}
	if size < 0 {
		return nil, greyerr.Invalid("size", "must not be negative")
	}
	if size > s.opts.MaxObjectBytes {
		e := greyerr.New(greyerr.TooLarge, "upload of %d bytes is larger than tasks.max_data_bytes (%d)", size, s.opts.MaxObjectBytes)
		e.Field = "size"
		return nil, e
	}
	if err := s.checkQuota(ctx, tenant, size); err != nil {
		return nil, err
	}
	id, err := task.NewID()
	if err != nil {
		return nil, greyerr.Wrap(greyerr.Internal, err, "upload id")
	}
	key := task.UploadsArea + id
	u, exp, err := s.SignURL(ctx, tenant, key, http.MethodPut, expiry)
	if err != nil {
		return nil, err
	}
	up := &Upload{ID: id, PayloadRef: key, Method: http.MethodPut, URL: u, ExpiresAt: exp, Headers: map[string]string{"Content-Type": "application/json"}}
	if s.bucket.Capabilities().SignedURL && s.bucket.Capabilities().Scheme == "azblob" {
		// Azure's Put Blob names the blob type; a SAS URL cannot carry it.
		up.Headers["x-ms-blob-type"] = "BlockBlob"
	}
	return up, nil
}

// SignURL returns a URL that grants method (GET or PUT) on key of tenant's
// task data until the returned time: the driver's signed URL, or, for a
// bucket that cannot sign, a path under /api/v1/signed/ that Grey serves.
func (s *Store) SignURL(ctx context.Context, tenant, key, method string, expiry time.Duration) (string, time.Time, error) {
	if expiry <= 0 {
		expiry = DefaultURLExpiry
	}
	if expiry < time.Second || expiry > MaxURLExpiry {
		return "", time.Time{}, greyerr.Invalid("expiry", "must be between 1s and %s, got %s", MaxURLExpiry, expiry)
	}
	key, err := task.ParseRef("key", tenant, key)
	if err != nil {
		return "", time.Time{}, err
	}
	exp := s.opts.Now().Add(expiry).UTC().Truncate(time.Second)
	if s.bucket.Capabilities().SignedURL {
		v, err := s.view(tenant)
		if err != nil {
			return "", time.Time{}, err
		}
		ct := ""
		if method == http.MethodPut {
			ct = "application/json"
		}
		u, err := v.SignedURL(ctx, key, method, expiry, ct)
		return u, exp, err
	}
	if s.opts.Signer == nil {
		return "", time.Time{}, greyerr.New(greyerr.Unimplemented, "the %s task data bucket cannot sign URLs and this server has no signing key", s.bucket.Capabilities().Scheme)
	}
	return s.opts.Signer.Path(method, tenant, key, exp), exp, nil
}

// CheckSigned checks a URL of Signer.Path for method: an expired or
// tampered URL is PermissionDenied (403), as a cloud's would be. It
// returns the key, relative to the tenant's prefix.
func (s *Store) CheckSigned(method, tenant, key, expires, sig string) (string, error) {
	if s.opts.Signer == nil {
		return "", greyerr.New(greyerr.Unimplemented, "this server serves no signed URLs")
	}
	if err := s.opts.Signer.Check(method, tenant, key, expires, sig, s.opts.Now()); err != nil {
		return "", err
	}
	if !task.ValidTenant(tenant) {
		return "", greyerr.Invalid("tenant", "%q is not a valid tenant id", tenant)
	}
	return task.ParseRef("key", tenant, key)
}

// PutUpload stores body at key (an uploads/ key) of tenant's task data,
// tagged, refusing more than MaxObjectBytes or the tenant's storage quota
// allows (TooLarge, 413).
func (s *Store) PutUpload(ctx context.Context, tenant, key string, body io.Reader) (int64, error) {
	if !strings.HasPrefix(key, task.UploadsArea) {
		return 0, greyerr.New(greyerr.PermissionDenied, "only uploads/ keys may be written through a signed URL")
	}
	v, err := s.view(tenant)
	if err != nil {
		return 0, err
	}
	limit := s.opts.MaxObjectBytes
	left, err := s.remaining(ctx, tenant)
	if err != nil {
		return 0, err
	}
	quota := left >= 0 && left < limit
	if quota {
		limit = max(left, 0)
	}
	data, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return 0, greyerr.Wrap(greyerr.InvalidArgument, err, "read upload")
	}
	if int64(len(data)) > limit {
		e := greyerr.New(greyerr.TooLarge, "upload exceeds tasks.max_data_bytes (%d)", s.opts.MaxObjectBytes)
		if quota {
			e = greyerr.New(greyerr.TooLarge, "upload exceeds tenant %s's max_storage_bytes: %d bytes left", tenant, limit)
			e.Reason = "storage_quota"
		}
		return 0, e
	}
	// Reserve before writing: of two uploads racing for the last bytes
	// of the quota, the replicated counter lets one through.
	var old int64
	if s.opts.Storage != nil {
		if old, err = replaced(ctx, v, key); err != nil {
			return 0, err
		}
	}
	delta := int64(len(data)) - old
	if err := s.count(ctx, tenant, delta, true); err != nil {
		return 0, err
	}
	if err := v.Put(ctx, key, data, &blobstore.WriteOptions{ContentType: contentType(data)}); err != nil {
		s.release(tenant, delta)
		return 0, err
	}
	return int64(len(data)), nil
}

// SweepResults deletes every stored result whose task is gone (collected
// after tasks.retention and, with an archive, gone from it too): live
// reports whether a tenant's task id still exists. It
// walks the bucket's results/ areas and returns how many objects went.
// Uploads are left alone: a tenant may submit an upload more than once.
func (s *Store) SweepResults(ctx context.Context, live func(tenant, taskID string) bool) (int, error) {
	var gone []blobstore.Object
	err := s.bucket.Walk(ctx, "tenants/", func(o blobstore.Object) error {
		parts := strings.Split(o.Key, "/")
		// Only a result named by a task id is a task's: anything else
		// under results/ is not this sweep's to delete.
		if len(parts) == 4 && parts[2]+"/" == task.ResultsArea && task.ValidID(parts[3]) && !live(parts[1], parts[3]) {
			gone = append(gone, o)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range gone {
		err := s.bucket.Delete(ctx, o.Key)
		if err != nil && !greyerr.Is(err, greyerr.NotFound) {
			return n, err
		}
		n++
		if err == nil {
			tenant := strings.Split(o.Key, "/")[1]
			if err := s.count(ctx, tenant, -o.Size, false); err != nil {
				return n, fmt.Errorf("result %s deleted, but recording its %d bytes gone failed: %w", o.Key, o.Size, err)
			}
		}
	}
	return n, nil
}

// Package artifact is Grey's content-addressed, tenant-scoped artifact
// store on the blob port: immutable byte blobs (wasm modules today, AI
// models next) named by the SHA-256 of their bytes ("sha256:<hex>") and
// kept per tenant under tenants/<tenant>/<kind>/<hex> in a
// blobstore.Bucket, each object carrying the tenant's cost tags.
//
// A tenant only ever sees its own artifacts: another tenant's digest is
// NotFound, whatever the bytes. Storing the same bytes again is a no-op
// answering the existing artifact; reads check the digest, so a damaged or
// tampered blob is refused rather than used. Stored bytes count against
// the tenant's storage quota through Options.Quota.
package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// DigestPrefix starts every artifact digest.
const DigestPrefix = "sha256:"

// Artifact describes one stored artifact.
type Artifact struct {
	// Digest is "sha256:" and the hex SHA-256 of the bytes.
	Digest string `json:"digest"`
	// Size is the length in bytes.
	Size int64 `json:"size"`
	// TenantID owns this copy.
	TenantID string `json:"tenant_id"`
	// CreatedAt is when it was stored (zero where the bucket keeps no time).
	CreatedAt time.Time `json:"created_at"`
}

// QuotaFunc reports a tenant's storage limit in bytes (0: none) and the
// bytes it holds outside this store (task payloads and results).
type QuotaFunc func(ctx context.Context, tenant string) (max, usedElsewhere int64, err error)

// StorageFunc records that tenant's stored objects gained delta bytes
// (negative: lost them). With enforce set, a positive delta is a
// reservation made before the write: it fails (TooLarge, 413) when it
// takes the tenant past its max_storage_bytes, and is given back with
// -delta when the write fails.
type StorageFunc func(ctx context.Context, tenant string, delta int64, enforce bool) error

// Options configure a Store.
type Options struct {
	// Kind names the artifacts ("modules", "models"): their key segment.
	Kind string
	// ContentType is the media type of stored objects.
	ContentType string
	// MaxBytes bounds one artifact (required).
	MaxBytes int64
	// LimitKey names the setting behind MaxBytes in errors.
	LimitKey string
	// Quota, when set, is checked before a new artifact is stored by
	// listing the tenant's artifacts; Storage replaces it.
	Quota QuotaFunc
	// Storage, when set, counts the tenant's artifact bytes (replicated
	// counters): a new artifact reserves its bytes before it is written, a
	// deleted one gives them back.
	Storage StorageFunc
}

// Store keeps artifacts of one kind. It is safe for concurrent use.
type Store struct {
	bucket *blobstore.Bucket
	opts   Options
	// counted serializes the write of a new counted artifact with the
	// check that it is new, so that two pushes of one module do not both
	// count it.
	counted sync.Mutex
}

// New returns a store of opts.Kind artifacts in bucket (the whole bucket,
// not a tenant view; Close closes it).
func New(bucket *blobstore.Bucket, opts Options) (*Store, error) {
	if err := blobstore.ValidateKey(opts.Kind); err != nil || strings.Contains(opts.Kind, "/") {
		return nil, greyerr.Invalid("kind", "%q is not a single key segment", opts.Kind)
	}
	if opts.MaxBytes <= 0 {
		return nil, greyerr.Invalid("max_bytes", "must be positive")
	}
	if opts.ContentType == "" {
		opts.ContentType = "application/octet-stream"
	}
	return &Store{bucket: bucket, opts: opts}, nil
}

// SetQuota sets the quota check (call before use).
func (s *Store) SetQuota(q QuotaFunc) { s.opts.Quota = q }

// SetStorage sets the byte counter (call before use); it replaces the
// Quota check.
func (s *Store) SetStorage(f StorageFunc) { s.opts.Storage = f }

// MaxBytes is the largest artifact the store accepts.
func (s *Store) MaxBytes() int64 { return s.opts.MaxBytes }

// Bucket is the store's bucket.
func (s *Store) Bucket() *blobstore.Bucket { return s.bucket }

// Close closes the bucket.
func (s *Store) Close() error { return s.bucket.Close() }

// Digest returns the digest of data: "sha256:<hex>".
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return DigestPrefix + hex.EncodeToString(sum[:])
}

// ParseDigest checks a digest and returns it normalized ("sha256:<64 lower
// hex>") with its hex part. A bare 64-digit hex string is accepted too.
func ParseDigest(field, d string) (digest, hexPart string, err error) {
	return parseDigest("", field, d)
}

// parseDigest is ParseDigest naming noun ("module") in its error.
func parseDigest(noun, field, d string) (digest, hexPart string, err error) {
	if noun != "" {
		noun += " "
	}
	h := strings.TrimPrefix(d, DigestPrefix)
	if len(h) != 2*sha256.Size {
		return "", "", greyerr.Invalid(field, "must be a %sdigest \"sha256:<64 hex digits>\", got %q", noun, d)
	}
	h = strings.ToLower(h)
	if _, err := hex.DecodeString(h); err != nil {
		return "", "", greyerr.Invalid(field, "must be a %sdigest \"sha256:<64 hex digits>\", got %q", noun, d)
	}
	return DigestPrefix + h, h, nil
}

// noun names one artifact of the store ("module" for "modules").
func (s *Store) noun() string { return strings.TrimSuffix(s.opts.Kind, "s") }

// ParseDigest is the package's ParseDigest naming the store's kind.
func (s *Store) ParseDigest(field, d string) (digest, hexPart string, err error) {
	return parseDigest(s.noun(), field, d)
}

// ParseDigestOf is ParseDigest naming noun ("module") in its error.
func ParseDigestOf(noun, field, d string) (digest, hexPart string, err error) {
	return parseDigest(noun, field, d)
}

// view is the tenant's part of the bucket.
func (s *Store) view(tenant string) (*blobstore.Bucket, error) {
	if !task.ValidTenant(tenant) {
		return nil, greyerr.Invalid("tenant", "%q is not a valid tenant id", tenant)
	}
	return s.bucket.Tenant(tenant)
}

func (s *Store) key(h string) string { return s.opts.Kind + "/" + h }

// locate checks tenant and digest and returns the tenant's view of the
// bucket, the digest as the store writes it and the artifact's key.
func (s *Store) locate(tenant, digest string) (v *blobstore.Bucket, canon, key string, err error) {
	if v, err = s.view(tenant); err != nil {
		return nil, "", "", err
	}
	canon, h, err := s.ParseDigest("digest", digest)
	if err != nil {
		return nil, "", "", err
	}
	return v, canon, s.key(h), nil
}

// missing is err, or the store's NotFound naming digest when err is a
// NotFound of its blob.
func (s *Store) missing(digest string, err error) error {
	if greyerr.Is(err, greyerr.NotFound) {
		return s.notFound(digest)
	}
	return err
}

func (s *Store) notFound(digest string) error {
	return greyerr.New(greyerr.NotFound, "%s %s not found", s.noun(), digest)
}

// Put stores data for tenant unless it has it already (created false).
// check, when not nil, runs before a new artifact is stored.
func (s *Store) Put(ctx context.Context, tenant string, data []byte, check func() error) (a *Artifact, created bool, err error) {
	return s.put(ctx, tenant, Digest(data), int64(len(data)), check, func(v *blobstore.Bucket, key string, wo *blobstore.WriteOptions) error {
		return v.Put(ctx, key, data, wo)
	})
}

// PutReader is Put for an artifact too large to hold in memory: the size
// bytes of r, whose digest the caller computed (for example while spooling
// an upload to a file). The bytes are hashed again as they are written;
// when they do not match digest and size, the object is removed and the
// error is Internal.
func (s *Store) PutReader(ctx context.Context, tenant, digest string, size int64, r io.Reader, check func() error) (a *Artifact, created bool, err error) {
	digest, _, err = s.ParseDigest("digest", digest)
	if err != nil {
		return nil, false, err
	}
	return s.put(ctx, tenant, digest, size, check, func(v *blobstore.Bucket, key string, wo *blobstore.WriteOptions) error {
		h := sha256.New()
		n, err := v.Upload(ctx, key, io.TeeReader(io.LimitReader(r, size+1), h), wo)
		if err != nil {
			return err
		}
		if got := DigestPrefix + hex.EncodeToString(h.Sum(nil)); n != size || got != digest {
			_ = v.Delete(ctx, key)
			return greyerr.New(greyerr.Internal, "%s: %d bytes written with digest %s, not the %d bytes announced", digest, n, got, size)
		}
		return nil
	})
}

// put is Put and PutReader: write stores the bytes under key of the
// tenant's view.
func (s *Store) put(ctx context.Context, tenant, digest string, size int64, check func() error, write func(v *blobstore.Bucket, key string, wo *blobstore.WriteOptions) error) (a *Artifact, created bool, err error) {
	v, err := s.view(tenant)
	if err != nil {
		return nil, false, err
	}
	if size == 0 {
		return nil, false, greyerr.Invalid("body", "is empty")
	}
	if size > s.opts.MaxBytes {
		e := greyerr.New(greyerr.TooLarge, "%d bytes exceed the limit of %d bytes (%s)", size, s.opts.MaxBytes, s.opts.LimitKey)
		e.Field = "body"
		return nil, false, e
	}
	if a, err := s.Stat(ctx, tenant, digest); err == nil {
		return a, false, nil
	} else if !greyerr.Is(err, greyerr.NotFound) {
		return nil, false, err
	}
	if s.opts.Quota != nil && s.opts.Storage == nil {
		if err := s.checkQuota(ctx, tenant, size); err != nil {
			return nil, false, err
		}
	}
	if check != nil {
		if err := check(); err != nil {
			return nil, false, err
		}
	}
	if s.opts.Storage != nil {
		s.counted.Lock()
		defer s.counted.Unlock()
		if a, err := s.Stat(ctx, tenant, digest); err == nil {
			return a, false, nil // a concurrent push stored it meanwhile
		} else if !greyerr.Is(err, greyerr.NotFound) {
			return nil, false, err
		}
		if err := s.opts.Storage(ctx, tenant, size, true); err != nil {
			return nil, false, err
		}
	}
	h := strings.TrimPrefix(digest, DigestPrefix)
	if err := write(v, s.key(h), &blobstore.WriteOptions{ContentType: s.opts.ContentType, Metadata: map[string]string{"digest": digest}}); err != nil {
		if s.opts.Storage != nil {
			s.release(tenant, size)
		}
		return nil, false, err
	}
	a, err = s.Stat(ctx, tenant, digest)
	if err != nil {
		return nil, false, err
	}
	return a, true, nil
}

// checkQuota refuses n more bytes that would take the tenant past its
// storage quota (TooLarge, answered 413).
func (s *Store) checkQuota(ctx context.Context, tenant string, n int64) error {
	max, elsewhere, err := s.opts.Quota(ctx, tenant)
	if err != nil || max <= 0 {
		return err
	}
	mine, _, err := s.Usage(ctx, tenant)
	if err != nil {
		return err
	}
	if used := elsewhere + mine; used+n > max {
		e := greyerr.New(greyerr.TooLarge, "tenant %s stores %d bytes (%d in %s); %d more exceed max_storage_bytes %d", tenant, used, mine, s.opts.Kind, n, max)
		e.Reason = "storage_quota"
		return e
	}
	return nil
}

// Stat describes tenant's artifact digest (NotFound if the tenant has none).
func (s *Store) Stat(ctx context.Context, tenant, digest string) (*Artifact, error) {
	v, digest, key, err := s.locate(tenant, digest)
	if err != nil {
		return nil, err
	}
	a, err := v.Attributes(ctx, key)
	if err != nil {
		return nil, s.missing(digest, err)
	}
	return &Artifact{Digest: digest, Size: a.Size, TenantID: tenant, CreatedAt: a.ModTime.UTC()}, nil
}

// MaxList bounds the artifacts List returns.
const MaxList = 10000

// List describes the tenant's artifacts, by digest (at most MaxList).
func (s *Store) List(ctx context.Context, tenant string) ([]Artifact, error) {
	v, err := s.view(tenant)
	if err != nil {
		return nil, err
	}
	out := []Artifact{}
	errFull := greyerr.New(greyerr.ResourceExhausted, "full")
	err = v.Walk(ctx, s.opts.Kind+"/", func(o blobstore.Object) error {
		digest, _, err := ParseDigest("digest", strings.TrimPrefix(o.Key, s.opts.Kind+"/"))
		if err != nil {
			return nil // not an artifact
		}
		out = append(out, Artifact{Digest: digest, Size: o.Size, TenantID: tenant, CreatedAt: o.ModTime.UTC()})
		if len(out) >= MaxList {
			return errFull
		}
		return nil
	})
	if err != nil && err != errFull {
		return nil, err
	}
	return out, nil // keys are hex digests in order: sorted by digest
}

// Usage sums the tenant's artifacts: bytes and count.
func (s *Store) Usage(ctx context.Context, tenant string) (bytes int64, count int, err error) {
	v, err := s.view(tenant)
	if err != nil {
		return 0, 0, err
	}
	err = v.Walk(ctx, s.opts.Kind+"/", func(o blobstore.Object) error {
		bytes += o.Size
		count++
		return nil
	})
	return bytes, count, err
}

// Get returns the bytes of tenant's artifact digest, checked against the
// digest (Internal when they differ: a damaged or altered blob).
func (s *Store) Get(ctx context.Context, tenant, digest string) ([]byte, error) {
	v, digest, key, err := s.locate(tenant, digest)
	if err != nil {
		return nil, err
	}
	b, err := v.Get(ctx, key, s.opts.MaxBytes)
	if err != nil {
		if greyerr.Is(err, greyerr.NotFound) {
			return nil, s.notFound(digest)
		}
		if greyerr.Is(err, greyerr.TooLarge) {
			return nil, greyerr.New(greyerr.Internal, "%s: stored bytes do not match the digest (damaged blob)", digest)
		}
		return nil, err
	}
	if Digest(b) != digest {
		return nil, greyerr.New(greyerr.Internal, "%s: stored bytes do not match the digest (damaged blob)", digest)
	}
	return b, nil
}

// Open streams the bytes of tenant's artifact digest. The reader checks
// them against the digest as they are read: instead of io.EOF, bytes that
// do not match end with an Internal error (a damaged or altered blob), so
// a caller that reads to the end never uses them unknowingly.
func (s *Store) Open(ctx context.Context, tenant, digest string) (io.ReadCloser, error) {
	v, digest, key, err := s.locate(tenant, digest)
	if err != nil {
		return nil, err
	}
	r, err := v.NewReader(ctx, key)
	if err != nil {
		return nil, s.missing(digest, err)
	}
	return &checkedReader{rc: r, r: io.LimitReader(r, s.opts.MaxBytes+1), h: sha256.New(), digest: digest}, nil
}

// checkedReader hashes what it reads and checks the digest at the end.
type checkedReader struct {
	rc     io.ReadCloser
	r      io.Reader
	h      hash.Hash
	digest string
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	if err == io.EOF {
		if got := DigestPrefix + hex.EncodeToString(c.h.Sum(nil)); got != c.digest {
			return n, greyerr.New(greyerr.Internal, "%s: stored bytes do not match the digest (damaged blob)", c.digest)
		}
	}
	return n, err
}

func (c *checkedReader) Close() error { return c.rc.Close() }

// Delete removes tenant's artifact digest (NotFound if it has none).
func (s *Store) Delete(ctx context.Context, tenant, digest string) error {
	v, digest, key, err := s.locate(tenant, digest)
	if err != nil {
		return err
	}
	var size int64
	if s.opts.Storage != nil {
		a, err := v.Attributes(ctx, key)
		if err != nil {
			return s.missing(digest, err)
		}
		size = a.Size
	}
	if err := v.Delete(ctx, key); err != nil {
		return s.missing(digest, err)
	}
	if s.opts.Storage != nil {
		if err := s.opts.Storage(ctx, tenant, -size, false); err != nil {
			return fmt.Errorf("%s %s deleted, but recording its %d bytes gone failed: %w", s.noun(), digest, size, err)
		}
	}
	return nil
}

// release gives back n reserved bytes of a write that failed. It uses a
// context of its own: the request's may be what ended the write.
func (s *Store) release(tenant string, n int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.opts.Storage(ctx, tenant, -n, false) // best effort: the write's error is the one to report
}

// DefaultURL is the bucket URL of a store kept under dataDir/sub:
// file://<abs data dir>/<sub>, created on first use (mode 0700). what
// names the store in the error.
func DefaultURL(dataDir, sub, what string) (string, error) {
	abs, err := filepath.Abs(filepath.Join(dataDir, sub))
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: "create_dir=1&no_tmp_dir=1&dir_file_mode=0700"}
	return u.String(), nil
}

// OpenBucket opens the bucket at bucketURL through reg (bopts names it,
// kind when it names none) and builds the store over it with newStore,
// closing the bucket when that fails. what names the store in the error.
func OpenBucket[S any](ctx context.Context, reg *blobstore.Registry, bucketURL string, bopts blobstore.Options, kind, what string, newStore func(*blobstore.Bucket) (S, error)) (S, error) {
	if bopts.Name == "" {
		bopts.Name = kind
	}
	b, err := reg.Open(ctx, bucketURL, bopts)
	if err != nil {
		var zero S
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	s, err := newStore(b)
	if err != nil {
		_ = b.Close()
		var zero S
		return zero, err
	}
	return s, nil
}

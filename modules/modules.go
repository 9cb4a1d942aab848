// Package modules is Grey's content-addressed module store: WebAssembly
// modules uploaded by tenants (POST /api/v1/modules) for tasks of the wasm
// kind. A module is named by the SHA-256 of its bytes ("sha256:<hex>") and
// stored per tenant under the key <tenant>/<hex> in a gocloud.dev/blob
// bucket (by default file://<data-dir>/modules). A tenant only ever sees its
// own modules: another tenant's digest is "not found", whatever the bytes.
//
// Modules are immutable: uploading the same bytes again is a no-op that
// answers the existing module. Reads check the digest, so a damaged or
// tampered blob is refused rather than run.
package modules

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file:// buckets
	"gocloud.dev/gcerrors"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// DigestPrefix starts every module digest.
const DigestPrefix = "sha256:"

// DefaultMaxBytes bounds a module when Options.MaxBytes is 0 (32 MiB).
const DefaultMaxBytes = 32 << 20

// ContentType is the media type of stored modules.
const ContentType = "application/wasm"

// Module describes one stored module.
type Module struct {
	// Digest is "sha256:" and the hex SHA-256 of the module's bytes.
	Digest string `json:"digest"`
	// Size is the module's length in bytes.
	Size int64 `json:"size"`
	// TenantID owns this copy of the module.
	TenantID string `json:"tenant_id"`
	// CreatedAt is when the module was first stored (the blob's
	// modification time; zero where the bucket does not keep one).
	CreatedAt time.Time `json:"created_at"`
}

// ValidateFunc checks a module before it is stored (the wasm executor
// compiles it). A returned error is the reason the upload is refused.
type ValidateFunc func(ctx context.Context, tenant, digest string, wasm []byte) error

// Options configure a Store.
type Options struct {
	// MaxBytes bounds one module (default DefaultMaxBytes).
	MaxBytes int64
	// Validate, when set, checks every new module before it is stored.
	Validate ValidateFunc
}

// Store keeps modules in a blob bucket. It is safe for concurrent use.
type Store struct {
	bucket *blob.Bucket
	opts   Options
}

// DefaultURL is the bucket URL of the module store under dataDir:
// file://<abs data dir>/modules, created on first use (mode 0700).
func DefaultURL(dataDir string) (string, error) {
	abs, err := filepath.Abs(filepath.Join(dataDir, "modules"))
	if err != nil {
		return "", fmt.Errorf("module store: %w", err)
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: "create_dir=1&no_tmp_dir=1&dir_file_mode=0700"}
	return u.String(), nil
}

// Open opens the bucket at bucketURL (a gocloud.dev blob URL; this build
// links the file:// driver).
func Open(ctx context.Context, bucketURL string, opts Options) (*Store, error) {
	b, err := blob.OpenBucket(ctx, bucketURL)
	if err != nil {
		return nil, fmt.Errorf("module store %s: %w", bucketURL, err)
	}
	return New(b, opts), nil
}

// New returns a store over an open bucket; Close closes the bucket.
func New(b *blob.Bucket, opts Options) *Store {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	return &Store{bucket: b, opts: opts}
}

// SetValidator sets the check applied to new modules (call before use).
func (s *Store) SetValidator(f ValidateFunc) { s.opts.Validate = f }

// MaxBytes is the largest module the store accepts.
func (s *Store) MaxBytes() int64 { return s.opts.MaxBytes }

// Close closes the bucket.
func (s *Store) Close() error { return s.bucket.Close() }

// Digest returns the digest of wasm: "sha256:<hex>".
func Digest(wasm []byte) string {
	sum := sha256.Sum256(wasm)
	return DigestPrefix + hex.EncodeToString(sum[:])
}

// ParseDigest checks a digest and returns it normalized ("sha256:<64 lower
// hex>") with its hex part. A bare 64-digit hex string is accepted too.
func ParseDigest(field, d string) (digest, hexPart string, err error) {
	h := strings.TrimPrefix(d, DigestPrefix)
	if len(h) != 2*sha256.Size {
		return "", "", greyerr.Invalid(field, "must be a module digest \"sha256:<64 hex digits>\", got %q", d)
	}
	h = strings.ToLower(h)
	if _, err := hex.DecodeString(h); err != nil {
		return "", "", greyerr.Invalid(field, "must be a module digest \"sha256:<64 hex digits>\", got %q", d)
	}
	return DigestPrefix + h, h, nil
}

func key(tenant, hexPart string) string { return tenant + "/" + hexPart }

func checkTenant(tenant string) error {
	if !task.ValidTenant(tenant) {
		return greyerr.Invalid("tenant", "%q is not a valid tenant id", tenant)
	}
	return nil
}

func notFound(digest string) error {
	return greyerr.New(greyerr.NotFound, "module %s not found", digest)
}

// Put stores wasm for tenant, after Options.Validate accepts it. created is
// false when the tenant already had the module (nothing is written).
func (s *Store) Put(ctx context.Context, tenant string, wasm []byte) (m *Module, created bool, err error) {
	if err := checkTenant(tenant); err != nil {
		return nil, false, err
	}
	if len(wasm) == 0 {
		return nil, false, greyerr.Invalid("body", "is empty; send the module's .wasm bytes")
	}
	if int64(len(wasm)) > s.opts.MaxBytes {
		e := greyerr.New(greyerr.TooLarge, "module of %d bytes exceeds the limit of %d bytes (executors.wasm.max_module_bytes)", len(wasm), s.opts.MaxBytes)
		e.Field = "body"
		return nil, false, e
	}
	digest := Digest(wasm)
	h := strings.TrimPrefix(digest, DigestPrefix)
	if m, err := s.Stat(ctx, tenant, digest); err == nil {
		return m, false, nil
	} else if !greyerr.Is(err, greyerr.NotFound) {
		return nil, false, err
	}
	if s.opts.Validate != nil {
		if err := s.opts.Validate(ctx, tenant, digest, wasm); err != nil {
			return nil, false, err
		}
	}
	err = s.bucket.WriteAll(ctx, key(tenant, h), wasm, &blob.WriterOptions{
		ContentType: ContentType,
		Metadata:    map[string]string{"tenant": tenant, "digest": digest},
	})
	if err != nil {
		return nil, false, storeError(err, "write module %s", digest)
	}
	m, err = s.Stat(ctx, tenant, digest)
	if err != nil {
		return nil, false, err
	}
	return m, true, nil
}

// Stat describes tenant's module digest (NotFound if the tenant has none).
func (s *Store) Stat(ctx context.Context, tenant, digest string) (*Module, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, err
	}
	digest, h, err := ParseDigest("digest", digest)
	if err != nil {
		return nil, err
	}
	a, err := s.bucket.Attributes(ctx, key(tenant, h))
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, notFound(digest)
		}
		return nil, storeError(err, "stat module %s", digest)
	}
	return &Module{Digest: digest, Size: a.Size, TenantID: tenant, CreatedAt: a.ModTime.UTC()}, nil
}

// MaxList bounds the modules List returns.
const MaxList = 10000

// List describes the tenant's modules, by digest (at most MaxList).
func (s *Store) List(ctx context.Context, tenant string) ([]Module, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, err
	}
	out := []Module{}
	it := s.bucket.List(&blob.ListOptions{Prefix: tenant + "/"})
	for len(out) < MaxList {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, storeError(err, "list modules")
		}
		h := strings.TrimPrefix(obj.Key, tenant+"/")
		digest, _, err := ParseDigest("digest", h)
		if err != nil || obj.IsDir {
			continue // not a module blob
		}
		out = append(out, Module{Digest: digest, Size: obj.Size, TenantID: tenant, CreatedAt: obj.ModTime.UTC()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Digest < out[j].Digest })
	return out, nil
}

// Get returns the bytes of tenant's module digest, checked against the
// digest. It implements the wasm executor's module source.
func (s *Store) Get(ctx context.Context, tenant, digest string) ([]byte, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, err
	}
	digest, h, err := ParseDigest("digest", digest)
	if err != nil {
		return nil, err
	}
	r, err := s.bucket.NewReader(ctx, key(tenant, h), nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, notFound(digest)
		}
		return nil, storeError(err, "read module %s", digest)
	}
	defer r.Close()
	var buf bytes.Buffer
	if sz := r.Size(); sz > 0 && sz <= s.opts.MaxBytes {
		buf.Grow(int(sz))
	}
	if _, err := io.Copy(&buf, io.LimitReader(r, s.opts.MaxBytes+1)); err != nil {
		return nil, storeError(err, "read module %s", digest)
	}
	b := buf.Bytes()
	if int64(len(b)) > s.opts.MaxBytes || Digest(b) != digest {
		return nil, greyerr.New(greyerr.Internal, "module %s: stored bytes do not match the digest (damaged blob)", digest)
	}
	return b, nil
}

// storeError wraps a bucket error: Unavailable (worth retrying) unless the
// bucket says otherwise.
func storeError(err error, format string, args ...any) error {
	code := greyerr.Unavailable
	switch gcerrors.Code(err) {
	case gcerrors.NotFound:
		code = greyerr.NotFound
	case gcerrors.PermissionDenied:
		code = greyerr.PermissionDenied
	case gcerrors.Canceled:
		code = greyerr.Canceled
	case gcerrors.DeadlineExceeded:
		code = greyerr.DeadlineExceeded
	}
	return greyerr.Wrap(code, err, "module store: "+format, args...)
}

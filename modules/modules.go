// Package modules is Grey's store of WebAssembly modules uploaded by
// tenants (POST /api/v1/modules) for tasks of the wasm kind: the artifact
// store (package artifact) of kind "modules", on the blob port. A module
// is named by the SHA-256 of its bytes ("sha256:<hex>") and stored under
// tenants/<tenant>/modules/<hex> of the bucket executors.wasm.module_url
// (by default file://<data-dir>/modules), with the tenant's cost tags. A
// tenant only ever sees its own modules: another tenant's digest is "not
// found", whatever the bytes.
//
// Modules are immutable: uploading the same bytes again is a no-op that
// answers the existing module. Reads check the digest, so a damaged or
// tampered blob is refused rather than run. Modules count against the
// tenant's max_storage_bytes and can be deleted.
package modules

import (
	"context"
	"fmt"
	"strings"

	"github.com/grey-distributed/grey/artifact"
	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/task"
)

// DigestPrefix starts every module digest.
const DigestPrefix = artifact.DigestPrefix

// DefaultMaxBytes bounds a module when Options.MaxBytes is 0 (32 MiB).
const DefaultMaxBytes = 32 << 20

// ContentType is the media type of stored modules.
const ContentType = "application/wasm"

// Kind is the artifact kind (key segment) of modules.
const Kind = "modules"

// Module describes one stored module.
type Module = artifact.Artifact

// ValidateFunc checks a module before it is stored (the wasm executor
// compiles it). A returned error is the reason the upload is refused.
type ValidateFunc func(ctx context.Context, tenant, digest string, wasm []byte) error

// Options configure a Store.
type Options struct {
	// MaxBytes bounds one module (default DefaultMaxBytes).
	MaxBytes int64
	// Validate, when set, checks every new module before it is stored.
	Validate ValidateFunc
	// Quota, when set, counts modules against the tenant's storage quota.
	Quota artifact.QuotaFunc
	// Storage, when set, counts module bytes in the tenant's replicated
	// stored bytes (and replaces Quota): see artifact.StorageFunc.
	Storage artifact.StorageFunc
}

// Store keeps modules in a blob bucket. It is safe for concurrent use.
type Store struct {
	*artifact.Store
	validate ValidateFunc
}

// DefaultURL is the bucket URL of the module store under dataDir:
// file://<abs data dir>/modules, created on first use (mode 0700).
func DefaultURL(dataDir string) (string, error) {
	return artifact.DefaultURL(dataDir, "modules", "module store")
}

// Open opens the bucket at bucketURL through reg (bopts names it, tags and
// measures it) and returns a store over it.
func Open(ctx context.Context, reg *blobstore.Registry, bucketURL string, opts Options, bopts blobstore.Options) (*Store, error) {
	return artifact.OpenBucket(ctx, reg, bucketURL, bopts, Kind, "module store", func(b *blobstore.Bucket) (*Store, error) {
		s, err := New(b, opts)
		if err != nil {
			return nil, err
		}
		// Before the blob port, module stores were file:// buckets keyed
		// <tenant>/<hex>: move those to the artifact layout once.
		if strings.HasPrefix(bucketURL, "file:") {
			if err := s.migrateLegacy(ctx); err != nil {
				return nil, fmt.Errorf("module store: move modules to tenants/<tenant>/modules/: %w", err)
			}
		}
		return s, nil
	})
}

// migrateLegacy moves modules stored as <tenant>/<hex> (the layout before
// the artifact store) to tenants/<tenant>/modules/<hex>, tagging them on
// the way, after checking their bytes against the digest. A blob whose
// bytes do not match is left where it is.
func (s *Store) migrateLegacy(ctx context.Context) error {
	b := s.Bucket()
	var legacy []string
	err := b.Walk(ctx, "", func(o blobstore.Object) error {
		tenant, h, ok := strings.Cut(o.Key, "/")
		if ok && tenant != "tenants" && task.ValidTenant(tenant) && !strings.Contains(h, "/") {
			if _, _, err := artifact.ParseDigest("digest", h); err == nil {
				legacy = append(legacy, o.Key)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, key := range legacy {
		tenant, h, _ := strings.Cut(key, "/")
		data, err := b.Get(ctx, key, s.MaxBytes())
		if err != nil {
			return err
		}
		if Digest(data) != DigestPrefix+h {
			continue // damaged: leave it for an operator to look at
		}
		if _, _, err := s.Store.Put(ctx, tenant, data, nil); err != nil {
			return err
		}
		if err := b.Delete(ctx, key); err != nil {
			return err
		}
	}
	return nil
}

// New returns a store over an open bucket; Close closes the bucket.
func New(b *blobstore.Bucket, opts Options) (*Store, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	a, err := artifact.New(b, artifact.Options{
		Kind:        Kind,
		ContentType: ContentType,
		MaxBytes:    opts.MaxBytes,
		LimitKey:    "executors.wasm.max_module_bytes",
		Quota:       opts.Quota,
		Storage:     opts.Storage,
	})
	if err != nil {
		return nil, err
	}
	return &Store{Store: a, validate: opts.Validate}, nil
}

// SetValidator sets the check applied to new modules (call before use).
func (s *Store) SetValidator(f ValidateFunc) { s.validate = f }

// Digest returns the digest of wasm: "sha256:<hex>".
func Digest(wasm []byte) string { return artifact.Digest(wasm) }

// ParseDigest checks a digest and returns it normalized ("sha256:<64 lower
// hex>") with its hex part. A bare 64-digit hex string is accepted too.
func ParseDigest(field, d string) (digest, hexPart string, err error) {
	return artifact.ParseDigestOf("module", field, d)
}

// Put stores wasm for tenant, after the validator accepts it and within
// the tenant's storage quota (TooLarge beyond it). created is false when
// the tenant already had the module (nothing is written).
func (s *Store) Put(ctx context.Context, tenant string, wasm []byte) (m *Module, created bool, err error) {
	var check func() error
	if s.validate != nil {
		check = func() error { return s.validate(ctx, tenant, Digest(wasm), wasm) }
	}
	return s.Store.Put(ctx, tenant, wasm, check)
}

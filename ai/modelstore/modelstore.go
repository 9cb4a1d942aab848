// Package modelstore is Grey's model registry: the models tenants push for
// tasks of the inference kind, on the blob port.
//
// A model version's artifact (a TorchScript file, or the uncompressed tar
// of a SavedModel directory) is stored through package artifact (kind
// "models": content-addressed, tenant-scoped, tagged with the tenant's cost
// tags, counted against its max_storage_bytes) in the bucket
// ai.model_registry (GREY_MODEL_REGISTRY; by default
// file://<data_dir>/models). Beside it, under the tenant's prefix, the
// registry keeps one manifest per version and one object per alias:
//
//	tenants/<t>/models/<hex>                                 the artifact
//	tenants/<t>/model-index/<name>/versions/<version>.json  ai.Model
//	tenants/<t>/model-index/<name>/aliases/<alias>          {"version": …}
//
// Versions are immutable: pushing a version again with the same bytes
// answers the stored version, with other bytes AlreadyExists. A push moves
// the managed alias "latest" to the version pushed; user aliases
// ("stable") are set, moved and deleted explicitly. A version that a user
// alias names cannot be deleted (FailedPrecondition naming the alias: move
// or delete the alias first); deleting the version "latest" names moves
// "latest" to the most recently pushed version left. Two versions with the
// same bytes share one artifact, removed with the last of them.
//
// A tenant only ever sees its own models: another tenant's name, version
// or digest is NotFound, always. Reads check the artifact's digest, so a
// damaged or altered blob is refused rather than loaded.
//
// Writes of one Store are serialized. Servers of a cluster share the
// bucket, and the API forwards writes to the leader, so one process writes
// at a time.
package modelstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/artifact"
	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// Kind is the artifact kind (key segment) of model artifacts.
const Kind = "models"

// indexPrefix starts the keys of manifests and aliases in a tenant's view.
const indexPrefix = "model-index/"

// ContentType is the media type of stored artifacts and of downloads.
const ContentType = "application/octet-stream"

// DefaultMaxBytes bounds a model when Options.MaxBytes is 0 (2 GiB, the
// default of ai.max_model_bytes).
const DefaultMaxBytes = 2 << 30

// MaxManifestBytes bounds a manifest or alias object read back.
const MaxManifestBytes = 64 << 10

// Options configure a Store.
type Options struct {
	// MaxBytes bounds one artifact (ai.max_model_bytes).
	MaxBytes int64
	// TenantModels is ai.tenant_models: for a listed tenant, the model
	// names its inference tasks may name (Allowed).
	TenantModels map[string][]string
	// TempDir holds pushes while they are checked ("" = os.TempDir()).
	TempDir string
	// Quota, when set, counts artifacts against the tenant's storage quota.
	Quota artifact.QuotaFunc
	// Storage, when set, counts artifact bytes in the tenant's replicated
	// stored bytes (and replaces Quota): see artifact.StorageFunc.
	Storage artifact.StorageFunc
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// ResolveTTL is how long Resolve keeps an answer (default 2s; negative:
	// none). Writes through this Store forget every kept answer at once; an
	// alias moved by another server sharing the bucket is seen within it.
	ResolveTTL time.Duration
	// Check replaces the structural check of pushes (nil: Check). Tests
	// whose runtime serves other artifacts (the mem runtime's JSON models)
	// set it; greyd always uses Check.
	Check func(f ai.Framework, r io.ReaderAt, size int64) error
}

// Store is the model registry. It is safe for concurrent use and
// implements ai.ModelSource.
type Store struct {
	art    *artifact.Store
	bucket *blobstore.Bucket
	opts   Options
	// mu serializes writes: the check that a version is new with its
	// manifest, the alias moves with the versions they name.
	mu sync.Mutex

	// Resolve's answers: each submit and each task of the inference kind
	// resolves its model, and reading the aliases and the manifest from
	// the bucket every time cost half of greyd's CPU per inference task.
	cacheMu sync.Mutex
	gen     uint64 // bumped by every write; an answer read under an older gen is not kept
	cache   map[string]resolved
}

// resolved is a kept Resolve answer.
type resolved struct {
	m       ai.Model
	expires time.Time
}

// maxResolved bounds the kept answers (the cache is emptied past it).
const maxResolved = 10000

// forget drops every kept Resolve answer; writes call it when they end.
func (s *Store) forget() {
	s.cacheMu.Lock()
	s.gen++
	clear(s.cache)
	s.cacheMu.Unlock()
}

var _ ai.ModelSource = (*Store)(nil)

// DefaultURL is the bucket URL of the registry under dataDir:
// file://<abs data dir>/models, created on first use (mode 0700).
func DefaultURL(dataDir string) (string, error) {
	return artifact.DefaultURL(dataDir, "models", "model registry")
}

// Open opens the bucket at bucketURL through reg (bopts names it, tags and
// measures it) and returns the registry over it.
func Open(ctx context.Context, reg *blobstore.Registry, bucketURL string, opts Options, bopts blobstore.Options) (*Store, error) {
	return artifact.OpenBucket(ctx, reg, bucketURL, bopts, Kind, "model registry", func(b *blobstore.Bucket) (*Store, error) {
		return New(b, opts)
	})
}

// New returns the registry over an open bucket; Close closes the bucket.
func New(b *blobstore.Bucket, opts Options) (*Store, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	switch {
	case opts.ResolveTTL == 0:
		opts.ResolveTTL = 2 * time.Second
	case opts.ResolveTTL < 0:
		opts.ResolveTTL = 0
	}
	if opts.Check == nil {
		opts.Check = Check
	}
	for tenant, names := range opts.TenantModels {
		for _, n := range names {
			if err := ai.ValidName("ai.tenant_models."+tenant, n); err != nil {
				return nil, err
			}
		}
	}
	a, err := artifact.New(b, artifact.Options{
		Kind:        Kind,
		ContentType: ContentType,
		MaxBytes:    opts.MaxBytes,
		LimitKey:    "ai.max_model_bytes",
		Quota:       opts.Quota,
		Storage:     opts.Storage,
	})
	if err != nil {
		return nil, err
	}
	return &Store{art: a, bucket: b, opts: opts}, nil
}

// SetStorage sets the byte counter (call before use); see
// artifact.Store.SetStorage.
func (s *Store) SetStorage(f artifact.StorageFunc) { s.art.SetStorage(f) }

// SetQuota sets the quota check (call before use).
func (s *Store) SetQuota(q artifact.QuotaFunc) { s.art.SetQuota(q) }

// MaxBytes is the largest artifact the registry accepts.
func (s *Store) MaxBytes() int64 { return s.opts.MaxBytes }

// Bucket is the registry's bucket.
func (s *Store) Bucket() *blobstore.Bucket { return s.bucket }

// Close closes the bucket.
func (s *Store) Close() error { return s.art.Close() }

// Usage sums the tenant's model artifacts: bytes and count.
func (s *Store) Usage(ctx context.Context, tenant string) (bytes int64, count int, err error) {
	return s.art.Usage(ctx, tenant)
}

// Allowed says whether tenant's inference tasks may name model name:
// nil, or PermissionDenied naming the setting ai.tenant_models when the
// tenant is listed there without name.
func (s *Store) Allowed(tenant, name string) error {
	names, listed := s.opts.TenantModels[tenant]
	if !listed || slices.Contains(names, name) {
		return nil
	}
	return greyerr.New(greyerr.PermissionDenied, "tenant %s may not use model %s (ai.tenant_models)", tenant, name)
}

// view is the tenant's part of the bucket.
func (s *Store) view(tenant string) (*blobstore.Bucket, error) {
	if !task.ValidTenant(tenant) {
		return nil, greyerr.Invalid("tenant", "%q is not a valid tenant id", tenant)
	}
	return s.bucket.Tenant(tenant)
}

func versionKey(name, version string) string {
	return indexPrefix + name + "/versions/" + version + ".json"
}

func aliasKey(name, alias string) string { return indexPrefix + name + "/aliases/" + alias }

// aliasObject is the body of an alias object.
type aliasObject struct {
	Version string `json:"version"`
}

func modelNotFound(name string) error {
	return greyerr.New(greyerr.NotFound, "model %s not found", name)
}

func versionNotFound(name, version string) error {
	return greyerr.New(greyerr.NotFound, "model %s:%s not found", name, version)
}

// PushSpec names the version a push creates.
type PushSpec struct {
	// Name of the model.
	Name string
	// Version to create.
	Version string
	// Framework the artifact is for.
	Framework ai.Framework
}

// Validate checks the names and the framework.
func (p PushSpec) Validate() error {
	if err := ai.ValidName("name", p.Name); err != nil {
		return err
	}
	if err := ai.ValidName("version", p.Version); err != nil {
		return err
	}
	if !p.Framework.Valid() {
		return greyerr.Invalid("framework", "must be pytorch or tensorflow, got %q", p.Framework)
	}
	return nil
}

// Push stores r's bytes as version spec.Version of tenant's model
// spec.Name and points "latest" at it. r is spooled to a temporary file
// (at most MaxBytes: TooLarge beyond), hashed, and checked by Check for
// the framework (InvalidArgument "not a TorchScript model" / "not a
// TensorFlow SavedModel"). created is false when the version existed with
// these very bytes (nothing changes); with other bytes the push is
// AlreadyExists.
func (s *Store) Push(ctx context.Context, tenant string, spec PushSpec, r io.Reader) (m *ai.Model, created bool, err error) {
	v, err := s.view(tenant)
	if err != nil {
		return nil, false, err
	}
	if err := spec.Validate(); err != nil {
		return nil, false, err
	}
	f, err := os.CreateTemp(s.opts.TempDir, "grey-model-push-*")
	if err != nil {
		return nil, false, greyerr.Wrap(greyerr.Unavailable, err, "spool model")
	}
	defer func() {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}()
	h := sha256.New()
	size, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, s.opts.MaxBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		var ge *greyerr.Error
		if errors.As(err, &ge) {
			return nil, false, err
		}
		return nil, false, greyerr.Wrap(greyerr.InvalidArgument, err, "read model")
	}
	if size > s.opts.MaxBytes {
		e := greyerr.New(greyerr.TooLarge, "model exceeds %d bytes (ai.max_model_bytes)", s.opts.MaxBytes)
		e.Field = "body"
		return nil, false, e
	}
	if size == 0 {
		return nil, false, greyerr.Invalid("body", "is empty")
	}
	digest := artifact.DigestPrefix + hex.EncodeToString(h.Sum(nil))
	if err := s.opts.Check(spec.Framework, f, size); err != nil {
		return nil, false, err
	}

	// The artifact is stored without holding the write lock (it may take
	// minutes); the version is checked before and again after.
	s.mu.Lock()
	old, exists, err := s.existingVersion(ctx, v, tenant, spec, digest)
	s.mu.Unlock()
	if exists || err != nil {
		return old, false, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, false, greyerr.Wrap(greyerr.Internal, err, "spool model")
	}
	a, stored, err := s.art.PutReader(ctx, tenant, digest, size, f, nil)
	if err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.forget()
	if old, exists, err := s.existingVersion(ctx, v, tenant, spec, digest); exists || err != nil {
		// A concurrent push of this version won: drop the bytes stored
		// here if no version has them.
		if stored {
			if used, uerr := s.digestInUse(ctx, v, digest); uerr == nil && !used {
				_ = s.art.Delete(ctx, tenant, digest)
			}
		}
		return old, false, err
	}
	// A concurrent delete of another version with these bytes may have
	// removed the artifact meanwhile: store it again.
	if _, err := s.art.Stat(ctx, tenant, digest); greyerr.Is(err, greyerr.NotFound) {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, false, greyerr.Wrap(greyerr.Internal, err, "spool model")
		}
		if a, _, err = s.art.PutReader(ctx, tenant, digest, size, f, nil); err != nil {
			return nil, false, err
		}
	} else if err != nil {
		return nil, false, err
	}
	m = &ai.Model{TenantID: tenant, Name: spec.Name, Version: spec.Version, Framework: spec.Framework, Digest: a.Digest, Size: a.Size, CreatedAt: s.opts.Now().UTC().Truncate(time.Millisecond)}
	if err := s.writeJSON(ctx, v, versionKey(spec.Name, spec.Version), m); err != nil {
		return nil, false, err
	}
	if err := s.writeJSON(ctx, v, aliasKey(spec.Name, ai.LatestAlias), aliasObject{Version: spec.Version}); err != nil {
		return nil, false, err
	}
	aliases, err := s.readAliases(ctx, v, spec.Name)
	if err != nil {
		return nil, false, err
	}
	m.Aliases = aliasesOf(aliases, m.Version)
	return m, true, nil
}

// existingVersion looks for spec's version: exists is false when there is
// none; else it answers the stored version when it has these bytes, and
// AlreadyExists when it has others. The caller holds s.mu.
func (s *Store) existingVersion(ctx context.Context, v *blobstore.Bucket, tenant string, spec PushSpec, digest string) (m *ai.Model, exists bool, err error) {
	old, err := s.readVersion(ctx, v, spec.Name, spec.Version)
	if greyerr.Is(err, greyerr.NotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, err
	}
	if old.Digest != digest || old.Framework != spec.Framework {
		return nil, true, greyerr.New(greyerr.AlreadyExists, "model %s:%s exists with other bytes (%s); versions are immutable: push a new version", spec.Name, spec.Version, old.Digest)
	}
	aliases, err := s.readAliases(ctx, v, spec.Name)
	if err != nil {
		return nil, true, err
	}
	old.TenantID = tenant
	old.Aliases = aliasesOf(aliases, old.Version)
	return old, true, nil
}

func (s *Store) writeJSON(ctx context.Context, v *blobstore.Bucket, key string, x any) error {
	b, err := json.Marshal(x)
	if err != nil {
		return greyerr.Wrap(greyerr.Internal, err, "encode %s", key)
	}
	return v.Put(ctx, key, b, &blobstore.WriteOptions{ContentType: "application/json"})
}

// readVersion reads a version's manifest (NotFound when there is none).
func (s *Store) readVersion(ctx context.Context, v *blobstore.Bucket, name, version string) (*ai.Model, error) {
	b, err := v.Get(ctx, versionKey(name, version), MaxManifestBytes)
	if err != nil {
		if greyerr.Is(err, greyerr.NotFound) {
			return nil, versionNotFound(name, version)
		}
		return nil, err
	}
	m, err := ParseManifest(b)
	if err != nil {
		return nil, fmt.Errorf("model %s:%s: %w", name, version, err)
	}
	if m.Name != name || m.Version != version {
		return nil, greyerr.New(greyerr.Internal, "model %s:%s: the manifest names %s:%s", name, version, m.Name, m.Version)
	}
	return m, nil
}

// ParseManifest decodes and checks a stored version manifest (ai.Model
// JSON): names, framework and digest must be valid. A manifest that is not
// is Internal (the registry wrote it).
func ParseManifest(b []byte) (*ai.Model, error) {
	var m ai.Model
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, greyerr.New(greyerr.Internal, "damaged manifest: %v", err)
	}
	bad := func(err error) error { return greyerr.New(greyerr.Internal, "damaged manifest: %v", err) }
	if err := ai.ValidName("name", m.Name); err != nil {
		return nil, bad(err)
	}
	if err := ai.ValidName("version", m.Version); err != nil {
		return nil, bad(err)
	}
	if !m.Framework.Valid() {
		return nil, bad(fmt.Errorf("framework %q", m.Framework))
	}
	if _, _, err := artifact.ParseDigest("digest", m.Digest); err != nil {
		return nil, bad(err)
	}
	if m.Size <= 0 {
		return nil, bad(fmt.Errorf("size %d", m.Size))
	}
	m.Aliases = nil
	return &m, nil
}

// readAliases reads the aliases of a model: alias → version.
func (s *Store) readAliases(ctx context.Context, v *blobstore.Bucket, name string) (map[string]string, error) {
	out := map[string]string{}
	prefix := indexPrefix + name + "/aliases/"
	var keys []string
	if err := v.Walk(ctx, prefix, func(o blobstore.Object) error {
		keys = append(keys, o.Key)
		return nil
	}); err != nil {
		return nil, err
	}
	for _, k := range keys {
		alias := strings.TrimPrefix(k, prefix)
		if ai.ValidName("alias", alias) != nil {
			continue
		}
		version, err := s.readAlias(ctx, v, k)
		if err != nil {
			if greyerr.Is(err, greyerr.NotFound) {
				continue // deleted meanwhile
			}
			return nil, err
		}
		out[alias] = version
	}
	return out, nil
}

func (s *Store) readAlias(ctx context.Context, v *blobstore.Bucket, key string) (string, error) {
	b, err := v.Get(ctx, key, MaxManifestBytes)
	if err != nil {
		return "", err
	}
	var a aliasObject
	if err := json.Unmarshal(b, &a); err != nil || ai.ValidName("version", a.Version) != nil {
		return "", greyerr.New(greyerr.Internal, "damaged alias %s", key)
	}
	return a.Version, nil
}

// aliasesOf lists, sorted, the aliases naming version.
func aliasesOf(aliases map[string]string, version string) []string {
	var out []string
	for a, v := range aliases {
		if v == version {
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out
}

// Get returns the version ref names, with its aliases: an alias is
// resolved. Another tenant's model is NotFound.
func (s *Store) Get(ctx context.Context, tenant string, ref ai.ModelRef) (*ai.Model, error) {
	v, err := s.view(tenant)
	if err != nil {
		return nil, err
	}
	if err := validRef(ref); err != nil {
		return nil, err
	}
	aliases, err := s.readAliases(ctx, v, ref.Name)
	if err != nil {
		return nil, err
	}
	version := ref.Version
	if version == "" {
		version = aliases[ref.Alias]
		if version == "" {
			if len(aliases) == 0 {
				return nil, modelNotFound(ref.Name)
			}
			return nil, greyerr.New(greyerr.NotFound, "model %s has no alias %s", ref.Name, ref.Alias)
		}
	}
	m, err := s.readVersion(ctx, v, ref.Name, version)
	if err != nil {
		return nil, err
	}
	m.TenantID = tenant
	m.Aliases = aliasesOf(aliases, version)
	return m, nil
}

func validRef(ref ai.ModelRef) error {
	if err := ai.ValidName("model", ref.Name); err != nil {
		return err
	}
	if (ref.Version == "") == (ref.Alias == "") {
		return greyerr.Invalid("model", "a reference names a version or an alias, not %q", ref.String())
	}
	if ref.Version != "" {
		return ai.ValidName("version", ref.Version)
	}
	return ai.ValidName("alias", ref.Alias)
}

// Resolve implements ai.ModelSource: Get, after Allowed (PermissionDenied
// when ai.tenant_models does not list the model for the tenant).
func (s *Store) Resolve(ctx context.Context, tenant string, ref ai.ModelRef) (ai.Model, error) {
	if err := s.Allowed(tenant, ref.Name); err != nil {
		return ai.Model{}, err
	}
	key := tenant + "\x00" + ref.String()
	now := s.opts.Now()
	s.cacheMu.Lock()
	r, ok := s.cache[key]
	gen := s.gen
	s.cacheMu.Unlock()
	if ok && now.Before(r.expires) {
		return r.m, nil
	}
	m, err := s.Get(ctx, tenant, ref)
	if err != nil {
		return ai.Model{}, err
	}
	if s.opts.ResolveTTL > 0 {
		s.cacheMu.Lock()
		if s.gen == gen {
			if s.cache == nil || len(s.cache) >= maxResolved {
				s.cache = make(map[string]resolved)
			}
			c := *m
			c.Aliases = slices.Clone(m.Aliases)
			s.cache[key] = resolved{m: c, expires: now.Add(s.opts.ResolveTTL)}
		}
		s.cacheMu.Unlock()
	}
	return *m, nil
}

// Fetch implements ai.ModelSource: the artifact's bytes, checked against
// the digest as they are read (the reader ends with an Internal error
// instead of io.EOF when they do not match).
func (s *Store) Fetch(ctx context.Context, tenant, digest string) (io.ReadCloser, error) {
	return s.art.Open(ctx, tenant, digest)
}

// Stat describes tenant's artifact digest (NotFound when it has none).
func (s *Store) Stat(ctx context.Context, tenant, digest string) (*artifact.Artifact, error) {
	return s.art.Stat(ctx, tenant, digest)
}

// Info is a model: its versions, oldest first, and aliases.
type Info struct {
	// Name of the model.
	Name string `json:"name"`
	// Versions of the model, by push time (oldest first), each with its
	// aliases.
	Versions []ai.Model `json:"versions"`
	// Aliases map each alias to the version it names.
	Aliases map[string]string `json:"aliases"`
}

// Describe returns tenant's model name: its versions and aliases.
func (s *Store) Describe(ctx context.Context, tenant, name string) (*Info, error) {
	v, err := s.view(tenant)
	if err != nil {
		return nil, err
	}
	if err := ai.ValidName("name", name); err != nil {
		return nil, err
	}
	versions, err := s.versions(ctx, v, tenant, name)
	if err != nil {
		return nil, err
	}
	if len(versions) == 0 {
		return nil, modelNotFound(name)
	}
	aliases, err := s.readAliases(ctx, v, name)
	if err != nil {
		return nil, err
	}
	for i := range versions {
		versions[i].Aliases = aliasesOf(aliases, versions[i].Version)
	}
	return &Info{Name: name, Versions: versions, Aliases: aliases}, nil
}

// versions reads every version manifest of a model, oldest first.
func (s *Store) versions(ctx context.Context, v *blobstore.Bucket, tenant, name string) ([]ai.Model, error) {
	prefix := indexPrefix + name + "/versions/"
	var keys []string
	if err := v.Walk(ctx, prefix, func(o blobstore.Object) error {
		keys = append(keys, o.Key)
		return nil
	}); err != nil {
		return nil, err
	}
	out := []ai.Model{}
	for _, k := range keys {
		version, ok := strings.CutSuffix(strings.TrimPrefix(k, prefix), ".json")
		if !ok || ai.ValidName("version", version) != nil {
			continue
		}
		m, err := s.readVersion(ctx, v, name, version)
		if err != nil {
			if greyerr.Is(err, greyerr.NotFound) {
				continue // deleted meanwhile
			}
			return nil, err
		}
		m.TenantID = tenant
		out = append(out, *m)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].Version < out[j].Version
	})
	return out, nil
}

// ListOptions select the versions List returns.
type ListOptions struct {
	// Name, when set, keeps the models whose name starts with it.
	Name string
	// Cursor continues a listing: the Next of the page before.
	Cursor string
	// Limit bounds the versions returned (default and at most MaxList).
	Limit int
}

// MaxList bounds one page of List.
const MaxList = 1000

// List returns a page of tenant's model versions, ordered by name then
// version, each with its aliases, and the cursor of the next page ("" at
// the end).
func (s *Store) List(ctx context.Context, tenant string, o ListOptions) (models []ai.Model, next string, err error) {
	v, err := s.view(tenant)
	if err != nil {
		return nil, "", err
	}
	if o.Name != "" && ai.ValidName("name", o.Name) != nil {
		return nil, "", greyerr.Invalid("name", "%q is not a model name or the start of one", o.Name)
	}
	if o.Limit <= 0 || o.Limit > MaxList {
		o.Limit = MaxList
	}
	var after ai.ModelRef
	if o.Cursor != "" {
		r, err := ai.ParseModelRef(o.Cursor)
		if err != nil || r.Version == "" {
			return nil, "", greyerr.Invalid("cursor", "%q is not a cursor this listing returned", o.Cursor)
		}
		after = r
	}
	type item struct{ name, version string }
	var items []item
	err = v.Walk(ctx, indexPrefix+o.Name, func(obj blobstore.Object) error {
		rest := strings.TrimPrefix(obj.Key, indexPrefix)
		name, file, ok := strings.Cut(rest, "/versions/")
		if !ok || strings.Contains(name, "/") {
			return nil
		}
		version, ok := strings.CutSuffix(file, ".json")
		if !ok || ai.ValidName("version", version) != nil || ai.ValidName("name", name) != nil {
			return nil
		}
		items = append(items, item{name, version})
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	sort.Slice(items, func(i, j int) bool {
		if items[i].name != items[j].name {
			return items[i].name < items[j].name
		}
		return items[i].version < items[j].version
	})
	models = []ai.Model{}
	aliasCache := map[string]map[string]string{}
	for _, it := range items {
		if after.Name != "" && (it.name < after.Name || it.name == after.Name && it.version <= after.Version) {
			continue
		}
		if len(models) == o.Limit {
			last := models[len(models)-1]
			return models, last.Name + ":" + last.Version, nil
		}
		m, err := s.readVersion(ctx, v, it.name, it.version)
		if err != nil {
			if greyerr.Is(err, greyerr.NotFound) {
				continue
			}
			return nil, "", err
		}
		aliases, ok := aliasCache[it.name]
		if !ok {
			if aliases, err = s.readAliases(ctx, v, it.name); err != nil {
				return nil, "", err
			}
			aliasCache[it.name] = aliases
		}
		m.TenantID = tenant
		m.Aliases = aliasesOf(aliases, m.Version)
		models = append(models, *m)
	}
	return models, "", nil
}

// SetAlias points tenant's alias of model name at version (creating or
// moving it) and returns that version. "latest" is managed by pushes and
// cannot be set (InvalidArgument).
func (s *Store) SetAlias(ctx context.Context, tenant, name, alias, version string) (*ai.Model, error) {
	v, err := s.view(tenant)
	if err != nil {
		return nil, err
	}
	if err := ai.ValidName("name", name); err != nil {
		return nil, err
	}
	if err := ai.ValidName("alias", alias); err != nil {
		return nil, err
	}
	if err := ai.ValidName("version", version); err != nil {
		return nil, err
	}
	if alias == ai.LatestAlias {
		return nil, greyerr.Invalid("alias", "latest is managed by the registry (it names the version pushed last)")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.forget()
	if _, err := s.readVersion(ctx, v, name, version); err != nil {
		return nil, err
	}
	if err := s.writeJSON(ctx, v, aliasKey(name, alias), aliasObject{Version: version}); err != nil {
		return nil, err
	}
	return s.Get(ctx, tenant, ai.ModelRef{Name: name, Version: version})
}

// DeleteAlias removes tenant's alias of model name (NotFound when there
// is none; "latest" cannot be deleted: InvalidArgument).
func (s *Store) DeleteAlias(ctx context.Context, tenant, name, alias string) error {
	v, err := s.view(tenant)
	if err != nil {
		return err
	}
	if err := ai.ValidName("name", name); err != nil {
		return err
	}
	if err := ai.ValidName("alias", alias); err != nil {
		return err
	}
	if alias == ai.LatestAlias {
		return greyerr.Invalid("alias", "latest is managed by the registry and cannot be deleted")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.forget()
	if err := v.Delete(ctx, aliasKey(name, alias)); err != nil {
		if greyerr.Is(err, greyerr.NotFound) {
			return greyerr.New(greyerr.NotFound, "model %s has no alias %s", name, alias)
		}
		return err
	}
	return nil
}

// Delete removes version of tenant's model name. It is refused
// (FailedPrecondition) while a user alias names the version; when
// "latest" names it, "latest" moves to the most recently pushed version
// left (and goes with the last one). The artifact goes when no other
// version of the tenant's models has the same bytes, giving back its
// storage quota.
func (s *Store) Delete(ctx context.Context, tenant, name, version string) error {
	v, err := s.view(tenant)
	if err != nil {
		return err
	}
	if err := ai.ValidName("name", name); err != nil {
		return err
	}
	if err := ai.ValidName("version", version); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.forget()
	m, err := s.readVersion(ctx, v, name, version)
	if err != nil {
		return err
	}
	aliases, err := s.readAliases(ctx, v, name)
	if err != nil {
		return err
	}
	for _, a := range aliasesOf(aliases, version) {
		if a != ai.LatestAlias {
			return greyerr.New(greyerr.FailedPrecondition, "model %s:%s is named by alias %s: move or delete the alias first", name, version, a)
		}
	}
	if err := v.Delete(ctx, versionKey(name, version)); err != nil {
		if greyerr.Is(err, greyerr.NotFound) {
			return versionNotFound(name, version)
		}
		return err
	}
	if aliases[ai.LatestAlias] == version {
		left, err := s.versions(ctx, v, tenant, name)
		if err != nil {
			return err
		}
		if len(left) == 0 {
			if err := v.Delete(ctx, aliasKey(name, ai.LatestAlias)); err != nil && !greyerr.Is(err, greyerr.NotFound) {
				return err
			}
		} else if err := s.writeJSON(ctx, v, aliasKey(name, ai.LatestAlias), aliasObject{Version: left[len(left)-1].Version}); err != nil {
			return err
		}
	}
	shared, err := s.digestInUse(ctx, v, m.Digest)
	if err != nil || shared {
		return err
	}
	if err := s.art.Delete(ctx, tenant, m.Digest); err != nil && !greyerr.Is(err, greyerr.NotFound) {
		return err
	}
	return nil
}

// digestInUse reports whether a version manifest of the tenant names digest.
func (s *Store) digestInUse(ctx context.Context, v *blobstore.Bucket, digest string) (bool, error) {
	errFound := errors.New("found")
	err := v.Walk(ctx, indexPrefix, func(o blobstore.Object) error {
		if !strings.Contains(o.Key, "/versions/") || !strings.HasSuffix(o.Key, ".json") {
			return nil
		}
		b, err := v.Get(ctx, o.Key, MaxManifestBytes)
		if err != nil {
			if greyerr.Is(err, greyerr.NotFound) {
				return nil
			}
			return err
		}
		if m, err := ParseManifest(b); err == nil && m.Digest == digest {
			return errFound
		}
		return nil
	})
	if err == errFound {
		return true, nil
	}
	return false, err
}

package modules_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/blobstore/fileblob"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/blobtest"
	"github.com/grey-distributed/grey/modules"
)

func registry(t *testing.T) *blobstore.Registry {
	reg := blobstore.NewRegistry()
	if err := fileblob.Register(reg); err != nil {
		t.Fatal(err)
	}
	return reg
}

func newStore(t *testing.T, opts modules.Options) (*modules.Store, string) {
	t.Helper()
	dir := t.TempDir()
	u, err := fileblob.URL(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := modules.Open(t.Context(), registry(t), u, opts, blobstore.Options{Environment: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, dir
}

func TestPutStatGet(t *testing.T) {
	t.Parallel()
	var validated int
	s, dir := newStore(t, modules.Options{MaxBytes: 100, Validate: func(_ context.Context, tenant, digest string, b []byte) error {
		validated++
		if strings.HasPrefix(string(b), "bad") {
			return greyerr.Invalid("body", "not a module")
		}
		return nil
	}})
	ctx := t.Context()
	data := []byte("\x00asm module bytes")
	m, created, err := s.Put(ctx, "acme", data)
	if err != nil || !created {
		t.Fatalf("Put: %v %v", created, err)
	}
	if m.Digest != modules.Digest(data) || m.Size != int64(len(data)) || m.TenantID != "acme" || m.CreatedAt.IsZero() {
		t.Errorf("Put = %+v", m)
	}
	// Content-addressed under tenants/<tenant>/modules/<hex>.
	if _, err := os.Stat(filepath.Join(dir, "tenants", "acme", "modules", strings.TrimPrefix(m.Digest, "sha256:"))); err != nil {
		t.Errorf("blob key: %v", err)
	}
	// Same bytes again: not created, not validated again.
	if _, created, err := s.Put(ctx, "acme", data); err != nil || created || validated != 1 {
		t.Errorf("second Put: created %v err %v validated %d", created, err, validated)
	}
	// Upper-case and bare hex digests are accepted.
	if _, err := s.Stat(ctx, "acme", strings.ToUpper(strings.TrimPrefix(m.Digest, "sha256:"))); err != nil {
		t.Errorf("bare upper-case digest: %v", err)
	}
	got, err := s.Get(ctx, "acme", m.Digest)
	if err != nil || string(got) != string(data) {
		t.Fatalf("Get: %q %v", got, err)
	}
	// Another tenant has nothing.
	if _, err := s.Get(ctx, "other", m.Digest); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("other tenant Get: %v", err)
	}
	if _, err := s.Stat(ctx, "other", m.Digest); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("other tenant Stat: %v", err)
	}
	// Refusals.
	if _, _, err := s.Put(ctx, "acme", []byte("bad module")); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Errorf("invalid module: %v", err)
	}
	if _, _, err := s.Put(ctx, "acme", make([]byte, 101)); !greyerr.Is(err, greyerr.TooLarge) {
		t.Errorf("large module: %v", err)
	}
	if _, _, err := s.Put(ctx, "acme", nil); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Errorf("empty module: %v", err)
	}
	if _, _, err := s.Put(ctx, "Not A Tenant", data); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Errorf("bad tenant: %v", err)
	}
	for _, d := range []string{"", "sha256:", "sha256:xyz", "md5:" + strings.Repeat("0", 64), strings.Repeat("g", 64)} {
		if _, err := s.Get(ctx, "acme", d); !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Errorf("digest %q: %v", d, err)
		}
	}
	// A damaged blob is refused, not served.
	p := filepath.Join(dir, "tenants", "acme", "modules", strings.TrimPrefix(m.Digest, "sha256:"))
	if err := os.WriteFile(p, []byte("tampered"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "acme", m.Digest); !greyerr.Is(err, greyerr.Internal) || !strings.Contains(err.Error(), "do not match") {
		t.Errorf("damaged blob: %v", err)
	}
}

func TestDefaultURL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	u, err := modules.DefaultURL(filepath.Join(dir, "data dir"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := modules.Open(t.Context(), registry(t), u, modules.Options{}, blobstore.Options{})
	if err != nil {
		t.Fatalf("Open(%s): %v", u, err)
	}
	defer s.Close()
	if _, _, err := s.Put(t.Context(), "acme", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data dir", "modules", "tenants", "acme", "modules")); err != nil {
		t.Errorf("module not under <data dir>/modules: %v", err)
	}
	if _, err := modules.Open(t.Context(), registry(t), "nosuch://bucket", modules.Options{}, blobstore.Options{}); err == nil {
		t.Errorf("unknown scheme opened")
	}
}

// List shows the tenant's modules and nobody else's, even a tenant whose id
// starts with another's.
func TestList(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, modules.Options{MaxBytes: 100})
	ctx := t.Context()
	a1, _, _ := s.Put(ctx, "acme", []byte("\x00asm one"))
	a2, _, _ := s.Put(ctx, "acme", []byte("\x00asm two"))
	if _, _, err := s.Put(ctx, "acme2", []byte("\x00asm three")); err != nil {
		t.Fatal(err)
	}
	got, err := s.List(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{a1.Digest, a2.Digest}
	if a2.Digest < a1.Digest {
		want = []string{a2.Digest, a1.Digest}
	}
	if len(got) != 2 || got[0].Digest != want[0] || got[1].Digest != want[1] || got[0].Size != 8 || got[0].TenantID != "acme" {
		t.Fatalf("List(acme) = %+v, want %v", got, want)
	}
	if got, err := s.List(ctx, "nobody"); err != nil || len(got) != 0 {
		t.Fatalf("List(nobody) = %+v, %v", got, err)
	}
	if _, err := s.List(ctx, "Not A Tenant"); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Fatalf("bad tenant: %v", err)
	}
}

// Modules count against the tenant's storage quota (TooLarge, 413) and can
// be deleted, which frees the quota.
func TestQuotaAndDelete(t *testing.T) {
	t.Parallel()
	elsewhere := int64(10)
	s, _ := newStore(t, modules.Options{MaxBytes: 100, Quota: func(_ context.Context, tenant string) (int64, int64, error) {
		if tenant == "free" {
			return 0, 0, nil
		}
		return 40, elsewhere, nil
	}})
	ctx := t.Context()
	m1, _, err := s.Put(ctx, "acme", []byte(strings.Repeat("a", 20)))
	if err != nil {
		t.Fatal(err)
	}
	// 10 elsewhere + 20 stored + 20 new > 40.
	_, _, err = s.Put(ctx, "acme", []byte(strings.Repeat("b", 20)))
	if !greyerr.Is(err, greyerr.TooLarge) || !strings.Contains(err.Error(), "max_storage_bytes") {
		t.Fatalf("over quota: %v, want TooLarge naming max_storage_bytes", err)
	}
	// The same bytes again are no new storage.
	if _, created, err := s.Put(ctx, "acme", []byte(strings.Repeat("a", 20))); err != nil || created {
		t.Errorf("re-upload: %v %v", created, err)
	}
	if n, c, err := s.Usage(ctx, "acme"); n != 20 || c != 1 || err != nil {
		t.Errorf("usage = %d bytes %d modules, %v", n, c, err)
	}
	if _, _, err := s.Put(ctx, "free", make([]byte, 90)); err != nil {
		t.Errorf("tenant without a quota: %v", err)
	}
	if err := s.Delete(ctx, "other", m1.Digest); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("another tenant deletes: %v", err)
	}
	if err := s.Delete(ctx, "acme", m1.Digest); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "acme", m1.Digest); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("second delete: %v", err)
	}
	if _, err := s.Get(ctx, "acme", m1.Digest); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("get after delete: %v", err)
	}
	if _, _, err := s.Put(ctx, "acme", []byte(strings.Repeat("b", 20))); err != nil {
		t.Errorf("after delete the quota has room: %v", err)
	}
	if err := s.Delete(ctx, "acme", "sha256:nothex"); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Errorf("bad digest: %v", err)
	}
}

// Every module carries the tenant's cost tags.
func TestModulesAreTagged(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, modules.Options{})
	m, _, err := s.Put(t.Context(), "acme", []byte("\x00asm tagged"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Bucket().Tenant("acme")
	if err != nil {
		t.Fatal(err)
	}
	tags, err := v.ReadTags(t.Context(), "modules/"+strings.TrimPrefix(m.Digest, "sha256:"))
	if err != nil {
		t.Fatal(err)
	}
	if tags[blobstore.TagTenant] != "acme" || tags[blobstore.TagEnvironment] != "test" {
		t.Errorf("tags = %v", tags)
	}
}

// TestModulesOnEachService stores, lists, reads and deletes a module on a
// directory and on each emulator the environment offers, and reads its
// tenant tag back from the service.
func TestModulesOnEachService(t *testing.T) {
	blobtest.Each(t, func(t *testing.T, reg *blobstore.Registry, u string) {
		s, err := modules.Open(t.Context(), reg, u, modules.Options{MaxBytes: 1 << 20}, blobstore.Options{Environment: "test", CostTags: map[string]string{"team": "platform"}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ctx := t.Context()
		data := []byte("\x00asm module on " + u)
		m, created, err := s.Put(ctx, "acme", data)
		if err != nil || !created {
			t.Fatalf("put: %v %v", created, err)
		}
		if got, err := s.Get(ctx, "acme", m.Digest); err != nil || string(got) != string(data) {
			t.Fatalf("get: %q %v", got, err)
		}
		if _, err := s.Get(ctx, "other", m.Digest); !greyerr.Is(err, greyerr.NotFound) {
			t.Errorf("other tenant: %v", err)
		}
		if l, err := s.List(ctx, "acme"); err != nil || len(l) != 1 || l[0].Digest != m.Digest {
			t.Errorf("list: %+v %v", l, err)
		}
		v, _ := s.Bucket().Tenant("acme")
		tags, err := v.ReadTags(ctx, "modules/"+strings.TrimPrefix(m.Digest, "sha256:"))
		if err != nil || tags[blobstore.TagTenant] != "acme" || tags["team"] != "platform" || tags[blobstore.TagEnvironment] != "test" {
			t.Errorf("tags = %v, %v", tags, err)
		}
		if err := s.Delete(ctx, "acme", m.Digest); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Stat(ctx, "acme", m.Digest); !greyerr.Is(err, greyerr.NotFound) {
			t.Errorf("stat after delete: %v", err)
		}
	})
}

// A module store written before the artifact layout (<tenant>/<hex> at the
// bucket root) is moved to tenants/<tenant>/modules/<hex> when opened; a
// damaged legacy blob stays where it is.
func TestLegacyLayoutMoves(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := []byte("\x00asm legacy module")
	h := strings.TrimPrefix(modules.Digest(good), "sha256:")
	bad := strings.Repeat("0", 64)
	for p, data := range map[string][]byte{
		filepath.Join(dir, "acme", h):   good,
		filepath.Join(dir, "acme", bad): []byte("damaged"),
		filepath.Join(dir, "notes.txt"): []byte("not a module"),
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	u, _ := fileblob.URL(dir)
	s, err := modules.Open(t.Context(), registry(t), u, modules.Options{}, blobstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Get(t.Context(), "acme", modules.Digest(good))
	if err != nil || string(got) != string(good) {
		t.Fatalf("legacy module after the move: %q %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "acme", h)); !os.IsNotExist(err) {
		t.Errorf("legacy copy still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "acme", bad)); err != nil {
		t.Errorf("damaged legacy blob was moved or deleted: %v", err)
	}
	if l, _ := s.List(t.Context(), "acme"); len(l) != 1 {
		t.Errorf("list after the move: %v", l)
	}
}

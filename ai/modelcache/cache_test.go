package modelcache_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/modelcache"
	"github.com/grey-distributed/grey/greyerr"
)

// source serves artifacts by digest for one tenant; tamper replaces the
// bytes it sends; gate, when set, holds every fetch until closed.
type source struct {
	tenant string
	blobs  map[string][]byte
	tamper bool
	gate   chan struct{}
	calls  atomic.Int64
}

func newSource(tenant string) *source { return &source{tenant: tenant, blobs: map[string][]byte{}} }

func (s *source) add(name string, fw ai.Framework, b []byte) ai.Model {
	sum := sha256.Sum256(b)
	d := "sha256:" + hex.EncodeToString(sum[:])
	s.blobs[d] = b
	return ai.Model{TenantID: s.tenant, Name: name, Version: "1", Framework: fw, Digest: d, Size: int64(len(b))}
}

func (s *source) Resolve(context.Context, string, ai.ModelRef) (ai.Model, error) {
	return ai.Model{}, errors.New("not used")
}

func (s *source) Fetch(ctx context.Context, tenant, digest string) (io.ReadCloser, error) {
	s.calls.Add(1)
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	b, ok := s.blobs[digest]
	if !ok || tenant != s.tenant {
		return nil, greyerr.New(greyerr.NotFound, "model %s not found", digest)
	}
	if s.tamper {
		b = append([]byte("evil"), b[4:]...)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func open(t *testing.T, src ai.ModelSource, max int64, dir string, onEvict func(string)) *modelcache.Cache {
	t.Helper()
	c, err := modelcache.Open(modelcache.Options{Dir: dir, MaxBytes: max, Source: src, OnEvict: onEvict})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFetchVerifyAndHit(t *testing.T) {
	src := newSource("acme")
	m := src.add("mlp", ai.PyTorch, []byte("torchscript bytes"))
	c := open(t, src, 1<<20, t.TempDir(), nil)
	h, err := c.Acquire(context.Background(), "acme", m)
	if err != nil {
		t.Fatal(err)
	}
	if h.Hit {
		t.Error("first acquire says hit")
	}
	b, err := os.ReadFile(h.Path)
	if err != nil || string(b) != "torchscript bytes" {
		t.Fatalf("local copy %q, %v", b, err)
	}
	h.Release()
	h2, err := c.Acquire(context.Background(), "acme", m)
	if err != nil || !h2.Hit || h2.Path != h.Path {
		t.Fatalf("second acquire: %+v, %v", h2, err)
	}
	h2.Release()
	if s := c.Stats(); s.Hits != 1 || s.Misses != 1 || s.Entries != 1 || s.Bytes != int64(len("torchscript bytes")) {
		t.Fatalf("stats %+v", s)
	}
	if src.calls.Load() != 1 {
		t.Fatalf("%d fetches, want 1", src.calls.Load())
	}
	if w := c.Warm(); !slices.Equal(w, []string{m.Digest}) {
		t.Fatalf("warm %v", w)
	}
}

// TestDigestMismatch: bytes that do not hash to the model's digest are
// refused, and nothing is cached or left on disk.
func TestDigestMismatch(t *testing.T) {
	src := newSource("acme")
	m := src.add("mlp", ai.PyTorch, []byte("the real model bytes"))
	src.tamper = true
	dir := t.TempDir()
	c := open(t, src, 1<<20, dir, nil)
	_, err := c.Acquire(context.Background(), "acme", m)
	if err == nil || !strings.Contains(err.Error(), "digest mismatch") || !strings.Contains(err.Error(), m.Digest) {
		t.Fatalf("got %v, want a digest mismatch naming %s", err, m.Digest)
	}
	if len(c.Warm()) != 0 {
		t.Fatal("a tampered artifact was cached")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left on disk: %v", ents)
	}
	src.tamper = false
	if _, err := c.Acquire(context.Background(), "acme", m); err != nil {
		t.Fatalf("after the source is fixed: %v", err)
	}
}

func TestSourceErrorsPassThrough(t *testing.T) {
	src := newSource("acme")
	m := src.add("mlp", ai.PyTorch, []byte("x"))
	c := open(t, src, 1<<20, t.TempDir(), nil)
	if _, err := c.Acquire(context.Background(), "other", m); !greyerr.Is(err, greyerr.NotFound) {
		t.Fatalf("another tenant's fetch: %v, want NotFound", err)
	}
	bad := m
	bad.Digest = "sha256:xyz"
	if _, err := c.Acquire(context.Background(), "acme", bad); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Fatalf("bad digest: %v", err)
	}
	big := m
	big.Size = 2 << 20
	if _, err := c.Acquire(context.Background(), "acme", big); !greyerr.Is(err, greyerr.ResourceExhausted) {
		t.Fatalf("model larger than the cache: %v", err)
	}
}

func TestEvictLeastRecentlyUsedNotInUse(t *testing.T) {
	src := newSource("acme")
	a := src.add("a", ai.PyTorch, bytes.Repeat([]byte("a"), 100))
	b := src.add("b", ai.PyTorch, bytes.Repeat([]byte("b"), 100))
	cm := src.add("c", ai.PyTorch, bytes.Repeat([]byte("c"), 100))
	var mu sync.Mutex
	var evicted []string
	c := open(t, src, 250, t.TempDir(), func(d string) { mu.Lock(); evicted = append(evicted, d); mu.Unlock() })
	ctx := context.Background()
	ha, err := c.Acquire(ctx, "acme", a) // held: in use all along
	if err != nil {
		t.Fatal(err)
	}
	hb, err := c.Acquire(ctx, "acme", b)
	if err != nil {
		t.Fatal(err)
	}
	hb.Release()
	// a is the least recently used, but in use: b goes.
	hc, err := c.Acquire(ctx, "acme", cm)
	if err != nil {
		t.Fatal(err)
	}
	hc.Release()
	if w := c.Warm(); slices.Contains(w, b.Digest) || !slices.Contains(w, a.Digest) || !slices.Contains(w, cm.Digest) {
		t.Fatalf("warm %v: want a (in use) and c, not b", w)
	}
	if _, err := os.Stat(hb.Path); !os.IsNotExist(err) {
		t.Fatalf("b's file is still there: %v", err)
	}
	mu.Lock()
	if !slices.Equal(evicted, []string{b.Digest}) {
		t.Fatalf("OnEvict got %v, want b", evicted)
	}
	mu.Unlock()
	ha.Release()
	if s := c.Stats(); s.Bytes != 200 {
		t.Fatalf("bytes %d, want 200", s.Bytes)
	}
}

func TestSingleFlight(t *testing.T) {
	src := newSource("acme")
	m := src.add("mlp", ai.PyTorch, []byte("model"))
	src.gate = make(chan struct{})
	c := open(t, src, 1<<20, t.TempDir(), nil)
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := c.Acquire(context.Background(), "acme", m)
			if err != nil {
				t.Error(err)
				return
			}
			h.Release()
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(src.gate)
	wg.Wait()
	if n := src.calls.Load(); n != 1 {
		t.Fatalf("%d fetches for 10 concurrent acquires, want 1", n)
	}
}

func TestReopenKeepsEntries(t *testing.T) {
	src := newSource("acme")
	m := src.add("mlp", ai.PyTorch, []byte("model"))
	tf := src.add("tf", ai.TensorFlow, tarOf(t, map[string]string{"saved_model.pb": "pb", "variables/variables.index": "idx"}, false))
	dir := t.TempDir()
	c := open(t, src, 1<<20, dir, nil)
	for _, x := range []ai.Model{m, tf} {
		h, err := c.Acquire(context.Background(), "acme", x)
		if err != nil {
			t.Fatal(err)
		}
		h.Release()
	}
	_ = os.WriteFile(filepath.Join(dir, "tmp-leftover"), []byte("x"), 0o600)
	c2 := open(t, src, 1<<20, dir, nil)
	if w := c2.Warm(); len(w) != 2 {
		t.Fatalf("warm after reopen: %v", w)
	}
	h, err := c2.Acquire(context.Background(), "acme", tf)
	if err != nil || !h.Hit {
		t.Fatalf("%+v %v", h, err)
	}
	if _, err := os.Stat(filepath.Join(h.Path, "saved_model.pb")); err != nil {
		t.Fatal(err)
	}
	if src.calls.Load() != 2 {
		t.Fatalf("%d fetches, want 2 (none after reopen)", src.calls.Load())
	}
	if _, err := os.Stat(filepath.Join(dir, "tmp-leftover")); !os.IsNotExist(err) {
		t.Fatal("an unfinished entry was not cleaned up")
	}
}

func TestTensorFlowUnpacked(t *testing.T) {
	for name, gz := range map[string]bool{"plain": false, "gzip": true} {
		t.Run(name, func(t *testing.T) {
			src := newSource("acme")
			files := map[string]string{"model/saved_model.pb": "pb", "model/variables/variables.data-00000-of-00001": "data"}
			m := src.add("tf", ai.TensorFlow, tarOf(t, files, gz))
			c := open(t, src, 1<<20, t.TempDir(), nil)
			h, err := c.Acquire(context.Background(), "acme", m)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Release()
			// A tar of the directory by name: the path is the SavedModel root.
			b, err := os.ReadFile(filepath.Join(h.Path, "variables", "variables.data-00000-of-00001"))
			if err != nil || string(b) != "data" {
				t.Fatalf("%q %v (path %s)", b, err, h.Path)
			}
		})
	}
}

func TestTensorFlowNotATar(t *testing.T) {
	src := newSource("acme")
	m := src.add("tf", ai.TensorFlow, []byte("this is not a tar, it is a TorchScript file maybe"))
	dir := t.TempDir()
	c := open(t, src, 1<<20, dir, nil)
	if _, err := c.Acquire(context.Background(), "acme", m); !greyerr.Is(err, greyerr.FailedPrecondition) {
		t.Fatalf("got %v, want FailedPrecondition", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left on disk: %v", ents)
	}
}

type tarEntry struct {
	hdr  tar.Header
	body string
}

func rawTar(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if e.body != "" {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func tarOf(t testing.TB, files map[string]string, gz bool) []byte {
	t.Helper()
	var es []tarEntry
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		es = append(es, tarEntry{tar.Header{Name: n, Typeflag: tar.TypeReg}, files[n]})
	}
	b := rawTar(t, es...)
	if !gz {
		return b
	}
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return out.Bytes()
}

func TestUnpackRefuses(t *testing.T) {
	reg := func(name, body string) tarEntry { return tarEntry{tar.Header{Name: name, Typeflag: tar.TypeReg}, body} }
	cases := map[string][]byte{
		"absolute":      rawTar(t, reg("/etc/evil", "x")),
		"dot-dot":       rawTar(t, reg("a/../../evil", "x")),
		"dot-dot first": rawTar(t, reg("../evil", "x")),
		"symlink":       rawTar(t, tarEntry{tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/etc"}, ""}),
		"inner symlink": rawTar(t, tarEntry{tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "saved_model.pb"}, ""}),
		"hard link":     rawTar(t, reg("a", "x"), tarEntry{tar.Header{Name: "b", Typeflag: tar.TypeLink, Linkname: "a"}, ""}),
		"device":        rawTar(t, tarEntry{tar.Header{Name: "dev", Typeflag: tar.TypeChar}, ""}),
		"fifo":          rawTar(t, tarEntry{tar.Header{Name: "fifo", Typeflag: tar.TypeFifo}, ""}),
		"twice":         rawTar(t, reg("a", "x"), reg("./a", "y")),
		"too big":       rawTar(t, reg("a", strings.Repeat("x", 2000))),
		"empty":         rawTar(t),
		"not a tar":     []byte("hello"),
		"bad gzip":      {0x1f, 0x8b, 0, 0, 1, 2, 3},
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			out := filepath.Join(root, "out")
			if err := os.Mkdir(out, 0o700); err != nil {
				t.Fatal(err)
			}
			err := modelcache.Unpack(bytes.NewReader(b), out, 1000)
			if !greyerr.Is(err, greyerr.FailedPrecondition) {
				t.Fatalf("got %v, want FailedPrecondition", err)
			}
			checkConfined(t, root, out)
		})
	}
}

// checkConfined fails when anything under root lies outside out or is
// not a plain file or directory.
func checkConfined(t testing.TB, root, out string) {
	t.Helper()
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		if p != out && !strings.HasPrefix(p, out+string(filepath.Separator)) {
			t.Fatalf("%s was written outside the directory", p)
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			t.Fatalf("%s is not a plain file (%v)", p, d.Type())
		}
		return nil
	})
}

func FuzzUnpack(f *testing.F) {
	reg := func(name, body string) tarEntry { return tarEntry{tar.Header{Name: name, Typeflag: tar.TypeReg}, body} }
	f.Add(tarOf(f, map[string]string{"saved_model.pb": "pb", "variables/variables.index": "i"}, false))
	f.Add(tarOf(f, map[string]string{"m/saved_model.pb": "pb"}, true))
	f.Add(rawTar(f, reg("../x", "x")))
	f.Add(rawTar(f, tarEntry{tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "../../x"}, ""}, reg("l/y", "y")))
	f.Add(rawTar(f, tarEntry{tar.Header{Name: "d", Typeflag: tar.TypeDir}, ""}, reg("d/f", "f")))
	f.Fuzz(func(t *testing.T, b []byte) {
		root := t.TempDir()
		out := filepath.Join(root, "out")
		if err := os.Mkdir(out, 0o700); err != nil {
			t.Fatal(err)
		}
		_ = modelcache.Unpack(bytes.NewReader(b), out, 1<<16)
		checkConfined(t, root, out)
	})
}

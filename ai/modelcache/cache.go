// Package modelcache keeps a node's local copies of model artifacts: a
// least-recently-used cache bounded by bytes, filled through an
// ai.ModelSource.
//
// An artifact is written to a temporary file while it is hashed, and
// becomes visible (renamed into place) only once its SHA-256 matches the
// model's digest; a mismatch is an error naming both digests and leaves
// nothing behind. A TensorFlow artifact (the tar of a SavedModel directory,
// plain or gzipped) is unpacked into a directory by Unpack, which refuses
// absolute paths, "..", links and special files: the tar is outside input.
//
// Entries are reference counted: one in use (a model being loaded or run)
// is never evicted. Concurrent requests for one digest fetch it once.
// Entries are named by digest, so a restart finds them again.
package modelcache

import (
	"container/list"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/greyerr"
)

// ErrDigestMismatch is wrapped by the error of an artifact whose bytes do
// not hash to its model's digest.
var ErrDigestMismatch = errors.New("digest mismatch")

// Options configure a Cache.
type Options struct {
	// Dir holds the entries (created if missing).
	Dir string
	// MaxBytes bounds the bytes of the entries (a TensorFlow model counts
	// its unpacked files). A model larger than MaxBytes is refused.
	MaxBytes int64
	// Source serves the artifacts.
	Source ai.ModelSource
	// OnEvict, if set, is called with the digest of every entry that left
	// the cache (not under the cache's lock), so that runtimes can unload
	// the model.
	OnEvict func(digest string)
	// Logger receives the cache's warnings (nil: discarded).
	Logger *slog.Logger
}

// Stats are a cache's counters.
type Stats struct {
	// Hits and Misses count Acquire calls that found the entry or had to
	// fetch it.
	Hits, Misses uint64
	// Entries and Bytes are what the cache holds now.
	Entries int
	Bytes   int64
}

// Cache is a bounded LRU of model artifacts on local disk. It is safe for
// concurrent use.
type Cache struct {
	opts Options

	mu      sync.Mutex
	items   map[string]*list.Element // digest → *entry
	order   *list.List               // front = most recently used
	bytes   int64
	flights map[string]*flight
	hits    uint64
	misses  uint64
}

// entry is one cached artifact.
type entry struct {
	digest string
	file   string // the entry's file or directory under Dir
	path   string // what runtimes load (the SavedModel root for a directory)
	size   int64
	refs   int
}

// flight is a fetch in progress.
type flight struct {
	done chan struct{}
	err  error
}

// Handle is an acquired cache entry; Release it when the model no longer
// needs the local copy (it was loaded, or the run ended).
type Handle struct {
	// Path is the local copy: the TorchScript file, or the SavedModel
	// directory.
	Path string
	// Hit says whether the entry was cached before this Acquire.
	Hit bool

	once sync.Once
	c    *Cache
	e    *entry
}

// Release gives the entry back; it may be evicted from then on.
func (h *Handle) Release() {
	h.once.Do(func() {
		h.c.mu.Lock()
		h.e.refs--
		evicted := h.c.evictLocked()
		h.c.mu.Unlock()
		h.c.evicted(evicted)
	})
}

// Open returns a cache over o.Dir, keeping the entries a previous run left
// there (least recently modified first out) and removing unfinished ones.
func Open(o Options) (*Cache, error) {
	if o.Dir == "" {
		return nil, greyerr.Invalid("ai.cache_dir", "the model cache needs a directory")
	}
	if o.MaxBytes <= 0 {
		return nil, greyerr.Invalid("ai.cache_bytes", "must be positive, got %d", o.MaxBytes)
	}
	if o.Source == nil {
		return nil, errors.New("model cache: no model source")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("model cache %s: %w", o.Dir, err)
	}
	c := &Cache{opts: o, items: map[string]*list.Element{}, order: list.New(), flights: map[string]*flight{}}
	ents, err := os.ReadDir(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("model cache %s: %w", o.Dir, err)
	}
	type found struct {
		e   *entry
		mod time.Time
	}
	var all []found
	for _, de := range ents {
		name := de.Name()
		full := filepath.Join(o.Dir, name)
		if strings.HasPrefix(name, tmpPrefix) {
			_ = os.RemoveAll(full) // an unfinished fetch or eviction
			continue
		}
		hexd, isDir := strings.CutSuffix(name, dirSuffix)
		if !validHex(hexd) || isDir != de.IsDir() {
			continue
		}
		info, err := de.Info()
		if err != nil {
			continue
		}
		e := &entry{digest: "sha256:" + hexd, file: full, path: full, size: info.Size()}
		if isDir {
			if e.size, err = treeSize(full); err != nil {
				continue
			}
			e.path = savedModelRoot(full)
		}
		all = append(all, found{e, info.ModTime()})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].mod.After(all[j].mod) })
	for _, f := range all {
		c.items[f.e.digest] = c.order.PushBack(f.e)
		c.bytes += f.e.size
	}
	c.evicted(c.evictLocked())
	return c, nil
}

const (
	tmpPrefix = "tmp-"
	dirSuffix = ".d"
)

func validHex(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// hexOf returns the hex part of a "sha256:<hex>" digest.
func hexOf(digest string) (string, error) {
	h, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || !validHex(h) {
		return "", greyerr.Invalid("digest", "%q is not a sha256:<64 lower-case hex> digest", digest)
	}
	return h, nil
}

// Acquire returns m's local copy, fetching it as tenant through the source
// when it is not cached, and holds it until the Handle is released.
func (c *Cache) Acquire(ctx context.Context, tenant string, m ai.Model) (*Handle, error) {
	hexd, err := hexOf(m.Digest)
	if err != nil {
		return nil, err
	}
	if m.Size > c.opts.MaxBytes {
		return nil, greyerr.New(greyerr.ResourceExhausted, "model %s:%s has %d bytes, more than the model cache holds (ai.cache_bytes %d)", m.Name, m.Version, m.Size, c.opts.MaxBytes)
	}
	missed := false
	for {
		c.mu.Lock()
		if el := c.items[m.Digest]; el != nil {
			e := el.Value.(*entry)
			e.refs++
			c.order.MoveToFront(el)
			if !missed {
				c.hits++
			}
			c.mu.Unlock()
			if !missed {
				now := time.Now()
				_ = os.Chtimes(e.file, now, now) // the order a restart finds
			}
			return &Handle{Path: e.path, Hit: !missed, c: c, e: e}, nil
		}
		if !missed {
			missed = true
			c.misses++
		}
		f := c.flights[m.Digest]
		if f == nil {
			f = &flight{done: make(chan struct{})}
			c.flights[m.Digest] = f
			c.mu.Unlock()
			f.err = c.fetch(ctx, tenant, m, hexd)
			c.mu.Lock()
			delete(c.flights, m.Digest)
			close(f.done)
			c.mu.Unlock()
			if f.err != nil {
				return nil, f.err
			}
			continue
		}
		c.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if f.err != nil && ctx.Err() == nil && (errors.Is(f.err, context.Canceled) || errors.Is(f.err, context.DeadlineExceeded)) {
			continue // the fetching caller gave up; this one has time left
		}
		if f.err != nil {
			return nil, f.err
		}
	}
}

// fetch downloads m, checks its digest and puts it in place.
func (c *Cache) fetch(ctx context.Context, tenant string, m ai.Model, hexd string) error {
	rc, err := c.opts.Source.Fetch(ctx, tenant, m.Digest)
	if err != nil {
		return fmt.Errorf("fetch model %s:%s: %w", m.Name, m.Version, err)
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(c.opts.Dir, tmpPrefix+"*")
	if err != nil {
		return greyerr.Wrap(greyerr.Internal, err, "model cache")
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(rc, c.opts.MaxBytes+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return greyerr.Wrap(greyerr.Unavailable, err, "fetch model %s:%s", m.Name, m.Version)
	}
	if n > c.opts.MaxBytes {
		return greyerr.New(greyerr.ResourceExhausted, "model %s:%s has more bytes than the model cache holds (ai.cache_bytes %d)", m.Name, m.Version, c.opts.MaxBytes)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != hexd {
		return &greyerr.Error{Code: greyerr.FailedPrecondition, Err: ErrDigestMismatch,
			Message: fmt.Sprintf("model %s:%s: the registry names %s, the fetched bytes are sha256:%s", m.Name, m.Version, m.Digest, got)}
	}
	e := &entry{digest: m.Digest, size: n}
	if m.Framework == ai.TensorFlow {
		stage, err := os.MkdirTemp(c.opts.Dir, tmpPrefix+"*")
		if err != nil {
			return greyerr.Wrap(greyerr.Internal, err, "model cache")
		}
		defer os.RemoveAll(stage)
		f, err := os.Open(tmp.Name())
		if err != nil {
			return greyerr.Wrap(greyerr.Internal, err, "model cache")
		}
		err = Unpack(f, stage, c.opts.MaxBytes)
		f.Close()
		if err != nil {
			return fmt.Errorf("model %s:%s: %w", m.Name, m.Version, err)
		}
		if e.size, err = treeSize(stage); err != nil {
			return greyerr.Wrap(greyerr.Internal, err, "model cache")
		}
		e.file = filepath.Join(c.opts.Dir, hexd+dirSuffix)
		if err := os.Rename(stage, e.file); err != nil {
			return greyerr.Wrap(greyerr.Internal, err, "model cache")
		}
		e.path = savedModelRoot(e.file)
	} else {
		e.file = filepath.Join(c.opts.Dir, hexd)
		e.path = e.file
		if err := os.Rename(tmp.Name(), e.file); err != nil {
			return greyerr.Wrap(greyerr.Internal, err, "model cache")
		}
	}
	c.mu.Lock()
	c.items[e.digest] = c.order.PushFront(e)
	c.bytes += e.size
	// The new entry is taken by the caller right after (Acquire's loop);
	// hold it so it is not the one evicted to make room.
	e.refs++
	evicted := c.evictLocked()
	e.refs--
	c.mu.Unlock()
	c.evicted(evicted)
	return nil
}

// evictLocked removes least recently used entries not in use until the
// cache fits, and returns their digests. Call with c.mu held.
func (c *Cache) evictLocked() []string {
	var out []string
	for el := c.order.Back(); el != nil && c.bytes > c.opts.MaxBytes; {
		prev := el.Prev()
		e := el.Value.(*entry)
		if e.refs == 0 {
			c.order.Remove(el)
			delete(c.items, e.digest)
			c.bytes -= e.size
			c.remove(e)
			out = append(out, e.digest)
		}
		el = prev
	}
	return out
}

// remove deletes an entry's files: renamed aside first, so that a crash
// half way never leaves a partial entry under its name.
func (c *Cache) remove(e *entry) {
	aside := filepath.Join(c.opts.Dir, tmpPrefix+"evict-"+randomSuffix())
	if err := os.Rename(e.file, aside); err != nil {
		c.opts.Logger.Warn("model cache: cannot remove an evicted entry", "path", e.file, "err", err)
		return
	}
	if err := os.RemoveAll(aside); err != nil {
		c.opts.Logger.Warn("model cache: cannot remove an evicted entry", "path", aside, "err", err)
	}
}

func randomSuffix() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (c *Cache) evicted(digests []string) {
	if c.opts.OnEvict == nil {
		return
	}
	for _, d := range digests {
		c.opts.OnEvict(d)
	}
}

// Warm returns the digests of the cached models, sorted.
func (c *Cache) Warm() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.items))
	for d := range c.items {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Hits: c.hits, Misses: c.misses, Entries: len(c.items), Bytes: c.bytes}
}

// treeSize sums the sizes of the regular files under dir.
func treeSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}

// savedModelRoot is the SavedModel directory of an unpacked tar: dir
// itself when it holds saved_model.pb (or .pbtxt), else its only
// subdirectory when dir holds nothing else (a tar of the directory by
// name), else dir (the runtime says what is wrong).
func savedModelRoot(dir string) string {
	for _, f := range []string{"saved_model.pb", "saved_model.pbtxt"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return dir
		}
	}
	ents, err := os.ReadDir(dir)
	if err == nil && len(ents) == 1 && ents[0].IsDir() {
		return filepath.Join(dir, ents[0].Name())
	}
	return dir
}

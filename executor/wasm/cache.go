package wasmexec

import (
	"container/list"
	"context"
	"sync"

	"github.com/tetratelabs/wazero"
)

// moduleCache is a bounded LRU of compiled modules by tenant/digest.
// Entries are reference counted: an evicted module is closed once no task
// is still instantiating it.
type moduleCache struct {
	max int

	mu    sync.Mutex
	items map[string]*list.Element // of *cacheEntry
	order *list.List               // front = most recently used
	hits  uint64
	miss  uint64
}

type cacheEntry struct {
	key string
	cm  wazero.CompiledModule
	// mems are the module's exported memories and their initial sizes,
	// read once rather than per task.
	mems    []memoryMin
	refs    int
	evicted bool
}

// memoryMin is an exported memory's name and initial size in pages.
type memoryMin struct {
	name  string
	pages uint32
}

// newCacheEntry returns an entry for cm holding one reference.
func newCacheEntry(key string, cm wazero.CompiledModule) *cacheEntry {
	e := &cacheEntry{key: key, cm: cm, refs: 1}
	for name, m := range cm.ExportedMemories() {
		e.mems = append(e.mems, memoryMin{name: name, pages: m.Min()})
	}
	return e
}

func newModuleCache(max int) *moduleCache {
	if max <= 0 {
		max = 1
	}
	return &moduleCache{max: max, items: make(map[string]*list.Element), order: list.New()}
}

// acquire returns the cached module for key, holding a reference the
// caller gives back with release, or nil.
func (c *moduleCache) acquire(key string) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	el := c.items[key]
	if el == nil {
		c.miss++
		return nil
	}
	c.hits++
	c.order.MoveToFront(el)
	e := el.Value.(*cacheEntry)
	e.refs++
	return e
}

// add caches cm under key and returns it acquired. If key is already
// cached (a concurrent compile won), cm is closed and the cached entry is
// returned instead.
func (c *moduleCache) add(key string, cm wazero.CompiledModule) *cacheEntry {
	c.mu.Lock()
	if el := c.items[key]; el != nil {
		c.order.MoveToFront(el)
		e := el.Value.(*cacheEntry)
		e.refs++
		c.mu.Unlock()
		_ = cm.Close(context.Background())
		return e
	}
	e := newCacheEntry(key, cm)
	c.items[key] = c.order.PushFront(e)
	var closing []wazero.CompiledModule
	for c.order.Len() > c.max {
		old := c.order.Back().Value.(*cacheEntry)
		c.order.Remove(c.order.Back())
		delete(c.items, old.key)
		old.evicted = true
		if old.refs == 0 {
			closing = append(closing, old.cm)
		}
	}
	c.mu.Unlock()
	for _, m := range closing {
		_ = m.Close(context.Background())
	}
	return e
}

// release gives back a reference taken by acquire or add.
func (c *moduleCache) release(e *cacheEntry) {
	c.mu.Lock()
	e.refs--
	closeIt := e.evicted && e.refs == 0
	c.mu.Unlock()
	if closeIt {
		_ = e.cm.Close(context.Background())
	}
}

// stats returns the cache's size, hits and misses.
func (c *moduleCache) stats() (size int, hits, misses uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len(), c.hits, c.miss
}

// closeAll closes every cached module not in use (on shutdown).
func (c *moduleCache) closeAll() {
	c.mu.Lock()
	var closing []wazero.CompiledModule
	for c.order.Len() > 0 {
		e := c.order.Back().Value.(*cacheEntry)
		c.order.Remove(c.order.Back())
		delete(c.items, e.key)
		e.evicted = true
		if e.refs == 0 {
			closing = append(closing, e.cm)
		}
	}
	c.mu.Unlock()
	for _, m := range closing {
		_ = m.Close(context.Background())
	}
}

package wasmexec

import (
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero/experimental"
)

// pageSize is the size of one WebAssembly memory page.
const pageSize = 65536

// Linear memories of up to 1 << maxPoolShift pages (1 MiB) at start are
// taken from and given back to memoryPools: a small module's instance then
// allocates no memory of its own, which keeps the garbage collector (and
// its scans of the whole heap) out of the per-task cost.
const maxPoolShift = 4

// memoryPools are pools of zeroed buffers, one per power-of-two number of
// pages: pools[k] holds buffers of capacity pageSize << k. Every buffer in
// a pool is zero from 0 to its capacity, so an instance that gets one sees
// fresh memory, never a previous task's.
type memoryPools struct {
	pools [maxPoolShift + 1]sync.Pool
	// off stops pooling for good. Closing the runtime frees the memories
	// of instances that may still be running on other goroutines; such a
	// buffer must not be handed to another instance.
	off atomic.Bool
}

// poolClass returns the pool index for a memory of capacity bytes, and
// false when it is too large to pool.
func poolClass(capacity uint64) (int, bool) {
	pages := max((capacity+pageSize-1)/pageSize, 1)
	k := bits.Len64(pages - 1) // smallest k with 1<<k >= pages
	return k, k <= maxPoolShift
}

// get returns a zeroed buffer of length 0 and capacity pageSize << k.
func (p *memoryPools) get(k int) []byte {
	if b, ok := p.pools[k].Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, pageSize<<k)
}

// put zeroes b up to its capacity and pools it, if its capacity is one of
// the pooled sizes and pooling is on.
func (p *memoryPools) put(b []byte) {
	c := uint64(cap(b))
	k, ok := poolClass(c)
	if !ok || c != pageSize<<k || p.off.Load() {
		return
	}
	b = b[:c]
	clear(b)
	b = b[:0]
	p.pools[k].Put(&b)
}

// memoryLimiter is a wazero memory allocator (experimental API) that caps
// one instance's linear memory at limit bytes and records whether the
// module asked for more. The runtime's WithMemoryLimitPages is the hard
// cap of every instance; the limiter applies the (possibly lower) limit of
// the task's tenant and payload, and makes an over-limit grow observable so
// that the failure is reported as wasm_oom whatever the module's toolchain
// prints.
type memoryLimiter struct {
	limit   uint64
	refused atomic.Bool
	// peak is the largest size allocated, in bytes.
	peak atomic.Uint64
	// pools, when set, supplies small memories and takes them back when
	// the instance is closed.
	pools *memoryPools
}

var _ experimental.MemoryAllocator = (*memoryLimiter)(nil)

// Allocate implements experimental.MemoryAllocator.
func (l *memoryLimiter) Allocate(capacity, _ uint64) experimental.LinearMemory {
	capacity = min(capacity, l.limit)
	if l.pools != nil {
		if k, ok := poolClass(capacity); ok {
			return &linearMemory{l: l, buf: l.pools.get(k)}
		}
	}
	return &linearMemory{l: l, buf: make([]byte, 0, capacity)}
}

// linearMemory is a growable buffer that refuses to grow past the limit.
type linearMemory struct {
	l   *memoryLimiter
	buf []byte
}

// Reallocate implements experimental.LinearMemory. Wasm memories only grow,
// and the bytes between the old and the new length were never exposed, so
// they are still zero.
func (m *linearMemory) Reallocate(size uint64) []byte {
	if size > m.l.limit {
		m.l.refused.Store(true)
		return nil
	}
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
	} else {
		// Grow geometrically (as append would) but never past the limit.
		c := min(max(size, 2*uint64(cap(m.buf))), m.l.limit)
		nb := make([]byte, size, c)
		copy(nb, m.buf)
		m.buf = nb
	}
	if size > m.l.peak.Load() {
		m.l.peak.Store(size)
	}
	return m.buf
}

// Free implements experimental.LinearMemory. wazero calls it once, when
// the instance is closed: on the goroutine running it, after its code
// stopped (or from proc_exit, which then unwinds without touching memory),
// so the buffer can go back to the pool; or when the runtime is closed,
// after the executor turned pooling off.
func (m *linearMemory) Free() {
	if m.l.pools != nil && m.buf != nil {
		m.l.pools.put(m.buf)
	}
	m.buf = nil
}

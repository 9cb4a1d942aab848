package wasmexec

import (
	"sync/atomic"

	"github.com/tetratelabs/wazero/experimental"
)

// pageSize is the size of one WebAssembly memory page.
const pageSize = 65536

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
}

var _ experimental.MemoryAllocator = (*memoryLimiter)(nil)

// Allocate implements experimental.MemoryAllocator.
func (l *memoryLimiter) Allocate(capacity, _ uint64) experimental.LinearMemory {
	capacity = min(capacity, l.limit)
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

// Free implements experimental.LinearMemory.
func (m *linearMemory) Free() { m.buf = nil }

package wasmexec

import (
	"bytes"
	"testing"
)

func TestPoolClass(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		capacity uint64
		k        int
		ok       bool
	}{
		{0, 0, true},
		{1, 0, true},
		{pageSize, 0, true},
		{pageSize + 1, 1, true},
		{3 * pageSize, 2, true},
		{16 * pageSize, 4, true},
		{17 * pageSize, 5, false},
	} {
		if k, ok := poolClass(tc.capacity); k != tc.k || ok != tc.ok {
			t.Errorf("poolClass(%d) = %d, %v; want %d, %v", tc.capacity, k, ok, tc.k, tc.ok)
		}
	}
}

// TestRecycledMemoryIsZero dirties memories (grown too) and frees them:
// whatever the pools hand out next is all zero, to its capacity.
func TestRecycledMemoryIsZero(t *testing.T) {
	t.Parallel()
	var pools memoryPools
	l := &memoryLimiter{limit: 64 * pageSize, pools: &pools}
	for range 20 {
		m := l.Allocate(pageSize, 0).(*linearMemory)
		b := m.Reallocate(pageSize)
		for i := range b {
			b[i] = 0xa5
		}
		b = m.Reallocate(2 * pageSize) // grows into a new buffer of 2 pages
		for i := range b {
			b[i] = 0x5a
		}
		m.Free()
		for k, want := range []int{pageSize, 2 * pageSize} {
			got := pools.get(k)
			if len(got) != 0 || cap(got) != want {
				t.Fatalf("pool %d gave len %d cap %d", k, len(got), cap(got))
			}
			if !bytes.Equal(got[:cap(got)], make([]byte, want)) {
				t.Fatalf("pool %d gave a buffer that is not zero", k)
			}
			pools.put(got)
		}
	}
	// Over the limit: refused, recorded, and the memory is unchanged.
	m := l.Allocate(pageSize, 0).(*linearMemory)
	if m.Reallocate(65*pageSize) != nil || !l.refused.Load() {
		t.Error("a grow past the limit was not refused")
	}
	m.Free()
	// A memory too large to pool is not pooled.
	pools.put(make([]byte, 32*pageSize))
	if k, ok := poolClass(32 * pageSize); ok {
		t.Errorf("32 pages pooled in class %d", k)
	}
}

// TestPoolingOff: once the executor is closing, freed memories (of
// instances that may still run) are not pooled.
func TestPoolingOff(t *testing.T) {
	t.Parallel()
	var pools memoryPools
	pools.off.Store(true)
	l := &memoryLimiter{limit: pageSize, pools: &pools}
	m := l.Allocate(pageSize, 0).(*linearMemory)
	b := m.Reallocate(pageSize)
	b[0] = 1
	m.Free()
	if got := pools.get(0); &got[:1][0] == &b[0] {
		t.Error("a memory freed after pooling was turned off came back from the pool")
	}
}

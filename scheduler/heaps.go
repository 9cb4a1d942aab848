package scheduler

import (
	"container/heap"
	"time"
)

type readyItem struct {
	prio    int
	id      string
	attempt int
}

// readyHeap orders by priority (high first), then id (old first).
type readyHeap []readyItem

func (h readyHeap) Len() int { return len(h) }
func (h readyHeap) Less(i, j int) bool {
	if h[i].prio != h[j].prio {
		return h[i].prio > h[j].prio
	}
	return h[i].id < h[j].id
}
func (h readyHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *readyHeap) Push(x any)   { *h = append(*h, x.(readyItem)) }
func (h *readyHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

type timedItem struct {
	at      time.Time
	id      string
	attempt int
}

// timeHeap orders by time, earliest first.
type timeHeap []timedItem

func (h timeHeap) Len() int           { return len(h) }
func (h timeHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timeHeap) Push(x any)        { *h = append(*h, x.(timedItem)) }
func (h *timeHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

func pushTimed(h *timeHeap, it timedItem) { heap.Push(h, it) }

func peekTimed(h *timeHeap) (timedItem, bool) {
	if len(*h) == 0 {
		return timedItem{}, false
	}
	return (*h)[0], true
}

package scheduler

import (
	"time"
)

type readyItem struct {
	prio    int
	id      string
	attempt int
}

// before orders ready items by priority (high first), then id (old first).
func (a readyItem) before(b readyItem) bool {
	if a.prio != b.prio {
		return a.prio > b.prio
	}
	return a.id < b.id
}

// readyHeap is a min-heap by readyItem.before.
type readyHeap []readyItem

type timedItem struct {
	at      time.Time
	id      string
	attempt int
}

// before orders timed items by time, earliest first.
func (a timedItem) before(b timedItem) bool { return a.at.Before(b.at) }

// timeHeap is a min-heap by timedItem.before.
type timeHeap []timedItem

// heapItem is an element of the scheduler's heaps. The heaps are typed
// (not container/heap, whose Push and Pop box every item: an allocation
// per queued and per taken task).
type heapItem[T any] interface{ before(T) bool }

func heapPush[T heapItem[T]](h *[]T, x T) {
	s := append(*h, x)
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !s[i].before(s[p]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
	*h = s
}

func heapPop[T heapItem[T]](h *[]T) T {
	s := *h
	n := len(s) - 1
	top := s[0]
	s[0] = s[n]
	var zero T
	s[n] = zero // drop the reference to the id
	s = s[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && s[r].before(s[l]) {
			m = r
		}
		if !s[m].before(s[i]) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

func pushTimed(h *timeHeap, it timedItem) { heapPush((*[]timedItem)(h), it) }

func popTimed(h *timeHeap) timedItem { return heapPop((*[]timedItem)(h)) }

func pushReadyItem(h *readyHeap, it readyItem) { heapPush((*[]readyItem)(h), it) }

func popReady(h *readyHeap) readyItem { return heapPop((*[]readyItem)(h)) }

func peekTimed(h *timeHeap) (timedItem, bool) {
	if len(*h) == 0 {
		return timedItem{}, false
	}
	return (*h)[0], true
}

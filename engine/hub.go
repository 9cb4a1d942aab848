package engine

import (
	"sync"

	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
)

// hub fans store changes out to waiters (one task, until terminal) and
// watchers (a tenant's stream of changes).
type hub struct {
	mu       sync.Mutex
	waiters  map[string][]chan *task.Task
	watchers map[*Watcher]struct{}
}

func newHub() *hub {
	return &hub{waiters: make(map[string][]chan *task.Task), watchers: make(map[*Watcher]struct{})}
}

// Watcher is a subscription to a tenant's task changes.
type Watcher struct {
	tenant   string
	statuses map[task.Status]bool
	kind     string
	ch       chan *task.Task
	closed   bool
	// Overflow is set when the watcher fell behind and was closed.
	overflow bool
}

// C delivers changes; it is closed when the watch ends.
func (w *Watcher) C() <-chan *task.Task { return w.ch }

// Overflowed reports whether the stream ended because the reader was slow.
func (w *Watcher) Overflowed() bool { return w.overflow }

func (h *hub) observe(c state.Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.waiters) == 0 && len(h.watchers) == 0 {
		return
	}
	for _, t := range c.Tasks {
		if t.Status.Terminal() {
			if ws := h.waiters[t.ID]; len(ws) > 0 {
				for _, ch := range ws {
					ch <- t // buffered, one send each
				}
				delete(h.waiters, t.ID)
			}
		}
		for w := range h.watchers {
			if w.tenant != t.TenantID || (w.kind != "" && w.kind != t.Kind) || (len(w.statuses) > 0 && !w.statuses[t.Status]) {
				continue
			}
			select {
			case w.ch <- t:
			default:
				w.overflow = true
				h.closeWatcherLocked(w)
			}
		}
	}
}

func (h *hub) wait(id string) chan *task.Task {
	ch := make(chan *task.Task, 1)
	h.mu.Lock()
	h.waiters[id] = append(h.waiters[id], ch)
	h.mu.Unlock()
	return ch
}

func (h *hub) unwait(id string, ch chan *task.Task) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ws := h.waiters[id]
	for i, c := range ws {
		if c == ch {
			ws = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(h.waiters, id)
	} else {
		h.waiters[id] = ws
	}
}

func (h *hub) watch(w *Watcher) {
	h.mu.Lock()
	h.watchers[w] = struct{}{}
	h.mu.Unlock()
}

func (h *hub) unwatch(w *Watcher) {
	h.mu.Lock()
	h.closeWatcherLocked(w)
	h.mu.Unlock()
}

func (h *hub) closeWatcherLocked(w *Watcher) {
	if w.closed {
		return
	}
	w.closed = true
	delete(h.watchers, w)
	close(w.ch)
}

func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		h.closeWatcherLocked(w)
	}
}

package state

import (
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/btree"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// Change reports the tasks one write touched, for the scheduler, waiters and
// watchers. Tasks are the published (immutable) versions.
type Change struct {
	// Index is the Raft index of the write.
	Index uint64
	// Tasks changed by the write, including tasks unblocked or failed by a
	// cascade (a parent's outcome, a state key's turn).
	Tasks []*task.Task
	// Removed are tasks collected by GC.
	Removed []*task.Task
	// Tenants is true when a tenant record changed.
	Tenants bool
}

// Observer receives changes after each write, outside the store's lock, in
// Raft order.
type Observer func(Change)

type tenantKey struct{ tenant, key string }

type finishedItem struct {
	at time.Time
	id string
}

// Store is the state store. The zero value is not usable; call New.
type Store struct {
	mu       sync.RWMutex
	index    uint64
	tasks    map[string]*task.Task
	byTenant map[string]*btree.BTreeG[string] // tenant → ids (UUIDv7 order)
	idem     map[tenantKey]string             // (tenant, idempotency key) → id
	children map[string][]string              // parent id → child ids still waiting
	deps     map[string]int                   // child id → parents not yet completed
	keys     map[tenantKey][]string           // (tenant, state key) → non-terminal ids, FIFO
	finished *btree.BTreeG[finishedItem]      // terminal tasks by finish time (for GC)
	feed     *btree.BTreeG[feedItem]          // terminal tasks by Raft index (for sinks)
	sinks    map[string]*sinkState            // sink name → cursor in feed
	counts   map[task.Status]int

	tenantsByID map[string]*tenantState
	nodes       map[string]*Node
	signingKeys map[string]*SigningKey
	proofs      map[string]*proofBlob
	apiKeys     map[string]*APIKey // id → key; records are replaced, never modified
	clusterID   string
	batch       *txn           // the open BeginBatch write, if any
	spareSeen   map[string]int // an emptied txn.seen for the next write (takeSeen)

	obsMu     sync.RWMutex
	observers []Observer
}

// New returns an empty store.
func New() *Store {
	s := &Store{}
	s.reset()
	return s
}

func (s *Store) reset() {
	s.index = 0
	s.tasks = make(map[string]*task.Task)
	s.byTenant = make(map[string]*btree.BTreeG[string])
	s.idem = make(map[tenantKey]string)
	s.children = make(map[string][]string)
	s.deps = make(map[string]int)
	s.keys = make(map[tenantKey][]string)
	s.finished = btree.NewG(32, func(a, b finishedItem) bool {
		if !a.at.Equal(b.at) {
			return a.at.Before(b.at)
		}
		return a.id < b.id
	})
	s.feed = newFeed()
	s.sinks = make(map[string]*sinkState)
	s.counts = make(map[task.Status]int)
	s.tenantsByID = make(map[string]*tenantState)
	s.nodes = make(map[string]*Node)
	s.signingKeys = make(map[string]*SigningKey)
	s.proofs = make(map[string]*proofBlob)
	s.apiKeys = make(map[string]*APIKey)
	s.clusterID = ""
}

// Observe registers fn to receive every change from now on.
func (s *Store) Observe(fn Observer) {
	s.obsMu.Lock()
	s.observers = append(s.observers, fn)
	s.obsMu.Unlock()
}

func (s *Store) notify(c Change) {
	if len(c.Tasks) == 0 && len(c.Removed) == 0 && !c.Tenants {
		return
	}
	s.obsMu.RLock()
	obs := s.observers
	s.obsMu.RUnlock()
	for _, fn := range obs {
		fn(c)
	}
}

// Index returns the Raft index of the last applied write.
func (s *Store) Index() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.index
}

// Get returns the tenant's task, or NotFound (also for another tenant's task).
func (s *Store) Get(tenant, id string) (*task.Task, error) {
	s.mu.RLock()
	t := s.tasks[id]
	s.mu.RUnlock()
	if t == nil || t.TenantID != tenant {
		return nil, greyerr.New(greyerr.NotFound, "task %s not found", id)
	}
	return t, nil
}

// Lookup returns any tenant's task by id, for internal callers (scheduler,
// worker protocol) that are not acting for a tenant.
func (s *Store) Lookup(id string) *task.Task {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tasks[id]
}

// ListFilter selects tasks in List.
type ListFilter struct {
	// Statuses to include (all when empty).
	Statuses []task.Status
	// Kind to include (all when empty).
	Kind string
	// Limit on the page size.
	Limit int
	// Before is the cursor: only ids strictly less (older) than it.
	Before string
	// FinishedFrom and FinishedTo, when not zero, keep finished tasks with
	// FinishedAt in [FinishedFrom, FinishedTo) (and no unfinished task).
	FinishedFrom, FinishedTo time.Time
	// Labels keeps tasks that require every one of these worker labels
	// with the same value.
	Labels map[string]string
}

// List returns the tenant's tasks, newest first, and the cursor of the next
// page ("" at the end).
func (s *Store) List(tenant string, f ListFilter) ([]*task.Task, string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids := s.byTenant[tenant]
	if ids == nil {
		return nil, ""
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	var out []*task.Task
	next := ""
	visit := func(id string) bool {
		t := s.tasks[id]
		if t == nil || !matches(t, f) {
			return true
		}
		if len(out) == limit {
			next = out[len(out)-1].ID
			return false
		}
		out = append(out, t)
		return true
	}
	if f.Before != "" {
		ids.DescendLessOrEqual(f.Before, func(id string) bool {
			if id == f.Before {
				return true
			}
			return visit(id)
		})
	} else {
		ids.Descend(visit)
	}
	return out, next
}

func matches(t *task.Task, f ListFilter) bool {
	if f.Kind != "" && t.Kind != f.Kind {
		return false
	}
	if !f.FinishedFrom.IsZero() || !f.FinishedTo.IsZero() {
		if t.FinishedAt == nil || (!f.FinishedFrom.IsZero() && t.FinishedAt.Before(f.FinishedFrom)) ||
			(!f.FinishedTo.IsZero() && !t.FinishedAt.Before(f.FinishedTo)) {
			return false
		}
	}
	if len(f.Labels) > 0 {
		have := t.Spec.Labels()
		for k, v := range f.Labels {
			if l, ok := have[k]; !ok || l != v {
				return false
			}
		}
	}
	if len(f.Statuses) == 0 {
		return true
	}
	for _, st := range f.Statuses {
		if t.Status == st {
			return true
		}
	}
	return false
}

// Counts returns the number of tasks per status.
func (s *Store) Counts() map[task.Status]int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[task.Status]int, len(task.Statuses))
	for _, st := range task.Statuses {
		out[st] = s.counts[st]
	}
	return out
}

// Len returns the number of stored tasks.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.tasks)
}

// Each calls fn for every stored task (in no particular order) under the
// read lock; fn must not call back into the store.
func (s *Store) Each(fn func(*task.Task)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, t := range s.tasks {
		fn(t)
	}
}

// Blocked says why an eligible-status task cannot be leased yet, or "" when
// nothing in the store holds it back (time gates are the scheduler's).
func (s *Store) Blocked(id string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t := s.tasks[id]
	if t == nil {
		return "unknown task"
	}
	return s.blockedLocked(t)
}

func (s *Store) blockedLocked(t *task.Task) string {
	if n := s.deps[t.ID]; n > 0 {
		var waiting []string
		for _, p := range t.DependsOn {
			if pt := s.tasks[p]; pt != nil && pt.Status != task.Completed {
				waiting = append(waiting, p)
			}
		}
		sort.Strings(waiting)
		return "waiting for dependencies: " + strings.Join(waiting, ",")
	}
	if t.StateKey != "" {
		q := s.keys[tenantKey{t.TenantID, t.StateKey}]
		if len(q) > 0 && q[0] != t.ID {
			return "waiting for its turn on state_key " + t.StateKey + " (task " + q[0] + " first)"
		}
	}
	return ""
}

// Ready reports whether t is leasable as far as the store is concerned:
// pending or retrying, with no unfinished parent and at the head of its
// state key's queue.
func (s *Store) Ready(id string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t := s.tasks[id]
	return t != nil && (t.Status == task.Pending || t.Status == task.Retrying) && s.blockedLocked(t) == ""
}

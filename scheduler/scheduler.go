package scheduler

import (
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
)

// Policy supplies per-tenant scheduling parameters. Both methods must be
// cheap and safe for concurrent use.
type Policy interface {
	// Weight is the tenant's fair-share weight (> 0).
	Weight(tenant string) float64
	// MaxRunning is how many active tasks the tenant may have (0 = no limit).
	MaxRunning(tenant string) int
}

// EqualShare is the Policy where every tenant weighs 1 with no limit.
type EqualShare struct{}

// Weight implements Policy.
func (EqualShare) Weight(string) float64 { return 1 }

// MaxRunning implements Policy.
func (EqualShare) MaxRunning(string) int { return 0 }

type class struct {
	kind   string
	labels map[string]string
	// affinity is the model digest its tasks prefer a warm worker for
	// (task.ModelDigestHeader); "" for every other kind.
	affinity string
	ready    readyHeap
}

// workerWarm is what one worker last reported warm, and when.
type workerWarm struct {
	models []string
	at     time.Time
}

// warmReport is the last worker that reported a model warm, and when.
type warmReport struct {
	worker string
	at     time.Time
}

type tenantQueue struct {
	id      string
	classes map[string]*class
	size    int
	deficit float64
	active  int // leased or running
}

// Scheduler holds the leader's queues. It is inert until Enable.
type Scheduler struct {
	store  *state.Store
	policy Policy
	fifo   bool

	mu        sync.Mutex
	enabled   bool
	tenants   map[string]*tenantQueue
	ring      []string
	pos       int
	queued    map[string]int // id → attempt for which it sits in a ready or delay heap
	delayed   timeHeap
	tracked   map[string]int // id → attempt whose deadline is watched
	activeOf  map[string]string
	deadlines timeHeap
	graceTill time.Time
	wake      chan struct{}

	// Warm-model routing (delay scheduling): who last reported each
	// model digest warm, and the pending wake-up for a deferred class.
	warm          map[string]warmReport
	byWorker      map[string]workerWarm // worker id → its last report
	localityDelay time.Duration
	warmWindow    time.Duration
	localityWake  time.Time
}

// Options configure a Scheduler.
type Options struct {
	// Policy gives weights and limits (nil = EqualShare).
	Policy Policy
	// FIFO disables fair share: tasks go out in global (priority, age)
	// order regardless of tenant. For baselines in benchmarks.
	FIFO bool
	// LocalityDelay is how long a task that prefers a warm worker (an
	// inference task whose model another worker has loaded) waits for that
	// worker before any worker may take it (default 50ms; negative: no
	// waiting, warm preference off).
	LocalityDelay time.Duration
	// WarmWindow is how long a worker's report of a warm model counts
	// (default 5s): a worker that stopped asking for work for that long
	// no longer holds the model's tasks back.
	WarmWindow time.Duration
}

// Default warm-routing parameters (Options.LocalityDelay, WarmWindow).
const (
	DefaultLocalityDelay = 50 * time.Millisecond
	DefaultWarmWindow    = 5 * time.Second
)

// New returns a scheduler reading store. Call Enable on leadership.
func New(store *state.Store, opts Options) *Scheduler {
	p := opts.Policy
	if p == nil {
		p = EqualShare{}
	}
	s := &Scheduler{store: store, policy: p, fifo: opts.FIFO, wake: make(chan struct{}),
		localityDelay: opts.LocalityDelay, warmWindow: opts.WarmWindow}
	if s.localityDelay == 0 {
		s.localityDelay = DefaultLocalityDelay
	}
	if s.warmWindow <= 0 {
		s.warmWindow = DefaultWarmWindow
	}
	s.clear()
	store.Observe(s.observe)
	return s
}

func (s *Scheduler) clear() {
	s.tenants = make(map[string]*tenantQueue)
	s.ring = nil
	s.pos = 0
	s.queued = make(map[string]int)
	s.delayed = nil
	s.tracked = make(map[string]int)
	s.activeOf = make(map[string]string)
	s.deadlines = nil
	s.warm = make(map[string]warmReport)
	s.byWorker = make(map[string]workerWarm)
}

// Enable rebuilds the queues from the store and starts tracking changes.
// Leases already out get grace until now+grace before they can expire, so
// workers that could not heartbeat during an election keep their work.
func (s *Scheduler) Enable(now time.Time, grace time.Duration) {
	s.mu.Lock()
	s.clear()
	s.enabled = true
	s.graceTill = now.Add(grace)
	s.mu.Unlock()
	var all []*task.Task
	s.store.Each(func(t *task.Task) {
		if !t.Status.Terminal() {
			all = append(all, t)
		}
	})
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	s.observe(state.Change{Tasks: all})
}

// Enabled reports whether the scheduler is serving (this node leads and
// has caught up).
func (s *Scheduler) Enabled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.enabled
}

// Disable drops the queues (leadership lost).
func (s *Scheduler) Disable() {
	s.mu.Lock()
	s.enabled = false
	s.clear()
	s.broadcastLocked()
	s.mu.Unlock()
}

// Wake returns a channel closed when new work may be ready.
func (s *Scheduler) Wake() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wake
}

func (s *Scheduler) broadcastLocked() {
	close(s.wake)
	s.wake = make(chan struct{})
}

func classKey(kind string, labels map[string]string) string {
	if len(labels) == 0 {
		return kind
	}
	ks := make([]string, 0, len(labels))
	for k, v := range labels {
		ks = append(ks, k+"="+v)
	}
	sort.Strings(ks)
	return kind + "\x00" + strings.Join(ks, "\x00")
}

func (s *Scheduler) tenantKey(t *task.Task) string {
	if s.fifo {
		return ""
	}
	return t.TenantID
}

// observe feeds a store change into the queues.
func (s *Scheduler) observe(c state.Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.enabled {
		return
	}
	woke := false
	for _, t := range c.Tasks {
		switch {
		case t.Status == task.Pending || t.Status == task.Retrying:
			s.untrackActive(t.ID)
			if q, ok := s.queued[t.ID]; ok && q == t.Attempt {
				continue
			}
			if s.store.Blocked(t.ID) != "" {
				continue
			}
			if at := gate(t); !at.IsZero() {
				s.queued[t.ID] = t.Attempt
				pushTimed(&s.delayed, timedItem{at: at, id: t.ID, attempt: t.Attempt})
				woke = true // the delay loop may need an earlier wake-up
				continue
			}
			s.pushReady(t)
			woke = true
		case t.Status.Active():
			if s.tracked[t.ID] != t.Attempt {
				s.tracked[t.ID] = t.Attempt
				s.trackActive(t)
				pushTimed(&s.deadlines, timedItem{at: t.Lease.Deadline, id: t.ID, attempt: t.Attempt})
			}
		default:
			delete(s.tracked, t.ID)
			delete(s.queued, t.ID)
			if s.untrackActive(t.ID) {
				woke = true // a tenant held at max_running may go on
			}
		}
	}
	if woke {
		s.broadcastLocked()
	}
}

func (s *Scheduler) trackActive(t *task.Task) {
	if _, ok := s.activeOf[t.ID]; ok {
		return
	}
	s.activeOf[t.ID] = t.TenantID
	s.tenant(t.TenantID).active++
}

// untrackActive forgets an active task; it reports whether its tenant has
// queued work that a freed slot could let through.
func (s *Scheduler) untrackActive(id string) bool {
	ten, ok := s.activeOf[id]
	if !ok {
		return false
	}
	delete(s.activeOf, id)
	q := s.tenants[ten]
	if q == nil {
		return false
	}
	q.active--
	return q.size > 0 && s.policy.MaxRunning(ten) > 0
}

// gate returns when t becomes eligible, or zero if it already is (relative
// to nothing: the caller compares against its clock when taking).
func gate(t *task.Task) time.Time {
	if t.Status == task.Retrying && t.NextAttemptAt != nil {
		return *t.NextAttemptAt
	}
	if t.Status == task.Pending && t.RunAt != nil {
		return *t.RunAt
	}
	return time.Time{}
}

func (s *Scheduler) tenant(id string) *tenantQueue {
	q := s.tenants[id]
	if q == nil {
		q = &tenantQueue{id: id, classes: make(map[string]*class)}
		s.tenants[id] = q
	}
	return q
}

func (s *Scheduler) pushReady(t *task.Task) {
	q := s.tenant(s.tenantKey(t))
	labels := t.Labels()
	ck := classKey(t.Kind, labels)
	aff := t.Headers[task.ModelDigestHeader]
	if aff != "" {
		ck += "\x01" + aff
	}
	c := q.classes[ck]
	if c == nil {
		c = &class{kind: t.Kind, labels: labels, affinity: aff}
		q.classes[ck] = c
	}
	pushReadyItem(&c.ready, readyItem{prio: t.Prio(), id: t.ID, attempt: t.Attempt})
	if q.size == 0 {
		s.ring = append(s.ring, q.id)
	}
	q.size++
	s.queued[t.ID] = t.Attempt
}

// Promote moves delayed tasks whose time has come into the ready queues and
// returns when the next one is due (zero if none).
func (s *Scheduler) Promote(now time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	moved := false
	for {
		it, ok := peekTimed(&s.delayed)
		if !ok {
			break
		}
		if it.at.After(now) {
			if moved {
				s.broadcastLocked()
			}
			return it.at
		}
		popTimed(&s.delayed)
		if s.queued[it.id] != it.attempt {
			continue
		}
		delete(s.queued, it.id)
		t := s.store.Lookup(it.id)
		if t == nil || t.Attempt != it.attempt || (t.Status != task.Pending && t.Status != task.Retrying) {
			continue
		}
		s.pushReady(t)
		moved = true
	}
	if moved {
		s.broadcastLocked()
	}
	return time.Time{}
}

// TakeRequest describes the worker asking for tasks.
type TakeRequest struct {
	// Kinds the worker runs.
	Kinds []string
	// Labels the worker offers.
	Labels map[string]string
	// Max tasks to take.
	Max int
	// Now is the leader's clock.
	Now time.Time
	// Allow, when set, limits the tasks to those whose tenant and kind it
	// accepts (the tenants and kinds the worker's principal is granted).
	Allow func(tenant, kind string) bool
	// WorkerID identifies the worker (for warm-model reports).
	WorkerID string
	// Warm lists the model digests the worker has loaded. Tasks of a
	// model that another worker reported warm recently are left to that
	// worker for up to Options.LocalityDelay (delay scheduling); then any
	// worker takes them.
	Warm []string
}

// Take removes up to req.Max ready tasks for the worker, by weighted
// deficit round robin over tenants. The caller must propose leases for them
// and Return those it could not lease.
func (s *Scheduler) Take(req TakeRequest) []*task.Task {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.enabled || req.Max <= 0 {
		return nil
	}
	kinds := make(map[string]bool, len(req.Kinds))
	for _, k := range req.Kinds {
		kinds[k] = true
	}
	for _, d := range req.Warm {
		s.warm[d] = warmReport{worker: req.WorkerID, at: req.Now}
	}
	if req.WorkerID != "" {
		if len(req.Warm) > 0 {
			s.byWorker[req.WorkerID] = workerWarm{models: slices.Clone(req.Warm), at: req.Now}
		} else if _, had := s.byWorker[req.WorkerID]; had {
			delete(s.byWorker, req.WorkerID)
		}
	}
	var out []*task.Task
	idle := 0 // consecutive tenants visited without a dispatch
	for len(out) < req.Max && len(s.ring) > 0 && idle < len(s.ring) {
		if s.pos >= len(s.ring) {
			s.pos = 0
		}
		q := s.tenants[s.ring[s.pos]]
		if max := s.policy.MaxRunning(q.id); !s.fifo && max > 0 && q.active >= max {
			s.pos++
			idle++
			continue
		}
		if q.deficit < 1 {
			w := s.policy.Weight(q.id)
			if s.fifo || w <= 0 {
				w = 1
			}
			q.deficit += w
		}
		took := 0
		for q.deficit >= 1 && len(out) < req.Max {
			t := s.popBest(q, kinds, req)
			if t == nil {
				break
			}
			out = append(out, t)
			q.deficit--
			took++
			if max := s.policy.MaxRunning(q.id); !s.fifo && max > 0 && q.active >= max {
				break
			}
		}
		if q.size == 0 {
			q.deficit = 0
			s.ring = append(s.ring[:s.pos], s.ring[s.pos+1:]...)
			idle = 0
			continue
		}
		if took == 0 {
			idle++
		} else {
			idle = 0
		}
		if q.deficit < 1 || took == 0 {
			s.pos++
		}
	}
	return out
}

// popBest pops the best valid task of q that the worker can run.
func (s *Scheduler) popBest(q *tenantQueue, kinds map[string]bool, req TakeRequest) *task.Task {
	for {
		var best *class
		for _, c := range q.classes {
			if len(c.ready) == 0 || !kinds[c.kind] || !(task.Constraints{Labels: c.labels}).Satisfied(req.Labels) ||
				(req.Allow != nil && !req.Allow(q.id, c.kind)) {
				continue
			}
			if c.affinity != "" && s.deferCold(c, req) {
				continue
			}
			if best == nil || c.ready[0].before(best.ready[0]) {
				best = c
			}
		}
		if best == nil {
			return nil
		}
		it := popReady(&best.ready)
		q.size--
		if s.queued[it.id] != it.attempt {
			continue
		}
		delete(s.queued, it.id)
		t := s.store.Lookup(it.id)
		if t == nil || t.Attempt != it.attempt || (t.Status != task.Pending && t.Status != task.Retrying) || s.store.Blocked(it.id) != "" {
			continue
		}
		if at := gate(t); !at.IsZero() && at.After(req.Now) {
			s.queued[t.ID] = t.Attempt
			pushTimed(&s.delayed, timedItem{at: at, id: t.ID, attempt: t.Attempt})
			continue
		}
		s.trackActive(t)
		return t
	}
}

// deferCold reports whether the worker of req should leave class c (whose
// tasks prefer a worker with c.affinity warm) to another worker: it lacks
// the model, another worker reported it warm within the warm window, and
// the class's head task has been ready for less than the locality delay.
// When it defers, a wake-up is set for when the delay runs out, so a
// waiting cold worker is asked again then.
func (s *Scheduler) deferCold(c *class, req TakeRequest) bool {
	if s.localityDelay < 0 {
		return false
	}
	for _, d := range req.Warm {
		if d == c.affinity {
			return false
		}
	}
	w, ok := s.warm[c.affinity]
	if !ok || w.worker == req.WorkerID {
		return false
	}
	if req.Now.Sub(w.at) > s.warmWindow {
		delete(s.warm, c.affinity)
		return false
	}
	head := s.store.Lookup(c.ready[0].id)
	if head == nil {
		return false // a stale entry: let popBest drop it
	}
	readyAt := head.CreatedAt
	if at := gate(head); !at.IsZero() {
		readyAt = at
	}
	due := readyAt.Add(s.localityDelay)
	if !req.Now.Before(due) {
		return false
	}
	s.wakeAt(req.Now, due)
	return true
}

// wakeAt broadcasts at due (leader's clock, relative to now) unless an
// earlier wake-up is already set.
func (s *Scheduler) wakeAt(now, due time.Time) {
	if !s.localityWake.IsZero() && !s.localityWake.After(due) {
		return
	}
	s.localityWake = due
	time.AfterFunc(due.Sub(now), func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.localityWake.Equal(due) {
			return // superseded by an earlier one, which broadcast already
		}
		s.localityWake = time.Time{}
		if s.enabled {
			s.broadcastLocked()
		}
	})
}

// Return puts back tasks taken but not leased.
func (s *Scheduler) Return(ts []*task.Task) {
	if len(ts) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.enabled {
		return
	}
	for _, t := range ts {
		s.untrackActive(t.ID)
		cur := s.store.Lookup(t.ID)
		if cur == nil || (cur.Status != task.Pending && cur.Status != task.Retrying) {
			continue
		}
		if _, ok := s.queued[cur.ID]; ok {
			continue
		}
		s.pushReady(cur)
	}
	s.broadcastLocked()
}

// Expiry is an active task whose lease or timeout ran out.
type Expiry struct {
	Task *task.Task
	// Code is lease_expired or timeout.
	Code string
}

// Due returns active tasks whose lease deadline or timeout passed at now.
// timeoutOf gives each task's effective per-attempt timeout.
func (s *Scheduler) Due(now time.Time, timeoutOf func(*task.Task) time.Duration) []Expiry {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Expiry
	for {
		it, ok := peekTimed(&s.deadlines)
		if !ok || it.at.After(now) {
			break
		}
		popTimed(&s.deadlines)
		if s.tracked[it.id] != it.attempt {
			continue
		}
		t := s.store.Lookup(it.id)
		if t == nil || t.Attempt != it.attempt || !t.Status.Active() || t.Lease == nil {
			delete(s.tracked, it.id)
			continue
		}
		next := t.Lease.Deadline
		if next.Before(s.graceTill) {
			next = s.graceTill
		}
		code := "lease_expired"
		if t.StartedAt != nil {
			if d := timeoutOf(t); d > 0 {
				if to := t.StartedAt.Add(d); to.Before(next) {
					next, code = to, "timeout"
				}
			}
		}
		if next.After(now) {
			pushTimed(&s.deadlines, timedItem{at: next, id: t.ID, attempt: t.Attempt})
			continue
		}
		delete(s.tracked, it.id)
		out = append(out, Expiry{Task: t, Code: code})
	}
	return out
}

// Pending returns how many tasks sit in ready queues per tenant.
func (s *Scheduler) Pending() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.tenants))
	for id, q := range s.tenants {
		if q.size > 0 {
			out[id] = q.size
		}
	}
	return out
}

// WarmModels returns, by worker id, the model digests each worker reported
// warm in the window before now (leader only: the reports come with lease
// requests, at least once per long poll of an idle worker).
func (s *Scheduler) WarmModels(now time.Time, window time.Duration) map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]string, len(s.byWorker))
	for w, r := range s.byWorker {
		if now.Sub(r.at) <= window {
			out[w] = slices.Clone(r.models)
		}
	}
	return out
}

package state

import (
	"time"

	"github.com/google/btree"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// txn collects the effects of one write under the store's write lock.
type txn struct {
	s       *Store
	index   uint64
	now     time.Time
	changed []*task.Task
	seen    map[string]int
	removed []*task.Task

	tenantsChanged bool
	restoring      bool
}

func (s *Store) begin(index uint64, now time.Time) *txn {
	if b := s.batch; b != nil && b.index == index {
		// Inside BeginBatch: the FSM goroutine already holds the lock.
		b.now = now
		return b
	}
	s.mu.Lock()
	if index > s.index {
		s.index = index
	}
	return &txn{s: s, index: index, now: now}
}

// commit releases the lock and notifies observers (at EndBatch for a
// write inside a batch).
func (x *txn) commit() {
	if x == x.s.batch {
		return
	}
	c := Change{Index: x.index, Tasks: x.changed, Removed: x.removed, Tenants: x.tenantsChanged}
	x.s.keepSeen(x.seen)
	x.s.mu.Unlock()
	x.s.notify(c)
}

// BeginBatch makes the writes until EndBatch one atomic write at index:
// readers see all or none of them, and observers get one Change with each
// task's final version. It is for the FSM, applying the commands of one
// Raft entry; only the FSM goroutine may write in between.
func (s *Store) BeginBatch(index uint64) {
	s.mu.Lock()
	if index > s.index {
		s.index = index
	}
	s.batch = &txn{s: s, index: index}
}

// EndBatch ends a batch begun with BeginBatch.
func (s *Store) EndBatch() {
	x := s.batch
	s.batch = nil
	x.commit()
}

// maxSpareSeen bounds the spare seen map a Store keeps, sized for the
// batches of the hot path (leases and reports of up to 1,000 tasks): a
// write of more tasks (a restore, a large GC) leaves its map to the
// collector, since a map never shrinks and clearing it costs its size on
// every later write.
const maxSpareSeen = 1024

// takeSeen returns an empty map for a write's seen set: the spare one a
// previous write left (its buckets already grown for a batch of tasks,
// so a new write does not grow and rehash a map again), or a new one.
// Callers hold s.mu.
func (s *Store) takeSeen() map[string]int {
	if m := s.spareSeen; m != nil {
		s.spareSeen = nil
		return m
	}
	return make(map[string]int, 64)
}

// keepSeen keeps m, emptied, as the spare seen map. Callers hold s.mu.
func (s *Store) keepSeen(m map[string]int) {
	if m == nil || len(m) > maxSpareSeen {
		return
	}
	clear(m)
	s.spareSeen = m
}

// put publishes t (a fresh clone) and records the change.
func (x *txn) put(t *task.Task) {
	s := x.s
	t.Index = x.index
	old := s.tasks[t.ID]
	if !x.restoring {
		x.account(old, t)
	}
	if !x.restoring {
		if old != nil && old.Status.Terminal() {
			s.feedRemove(old)
		}
		if t.Status.Terminal() {
			s.feedAdd(t)
		}
	}
	if old != nil {
		s.counts[old.Status]--
	} else {
		ids := s.byTenant[t.TenantID]
		if ids == nil {
			ids = btree.NewG(32, func(a, b string) bool { return a < b })
			s.byTenant[t.TenantID] = ids
		}
		ids.ReplaceOrInsert(t.ID)
	}
	s.counts[t.Status]++
	s.tasks[t.ID] = t
	if x.seen == nil {
		x.seen = x.s.takeSeen()
	}
	if i, ok := x.seen[t.ID]; ok {
		x.changed[i] = t
		return
	}
	x.seen[t.ID] = len(x.changed)
	x.changed = append(x.changed, t)
}

// touch records t as changed without modifying it (it became ready).
func (x *txn) touch(id string) {
	if t := x.s.tasks[id]; t != nil {
		if x.seen == nil {
			x.seen = x.s.takeSeen()
		}
		if _, ok := x.seen[id]; ok {
			return
		}
		x.seen[id] = len(x.changed)
		x.changed = append(x.changed, t)
	}
}

// Submit stores new tasks, all or none: a missing parent rejects the whole
// batch. An idempotency key that matches an existing task (or an earlier
// task of the batch) returns that task instead of creating one when the
// specs are the same request (SpecDiff), and refuses the whole submit with
// AlreadyExists, reason ReasonIdempotencyKeyReused, when they differ.
func (s *Store) Submit(index uint64, req *SubmitRequest) (*SubmitResult, error) {
	x := s.begin(index, req.Now)
	defer x.commit()
	inBatch := make(map[string]*task.Task, len(req.Tasks))
	batchKeys := make(map[tenantKey]*task.Task)
	for i, t := range req.Tasks {
		if s.tasks[t.ID] != nil || inBatch[t.ID] != nil {
			return nil, greyerr.New(greyerr.AlreadyExists, "task %s already exists", t.ID)
		}
		if t.IdempotencyKey != "" {
			k := tenantKey{t.TenantID, t.IdempotencyKey}
			// The key names one request: the same spec again is answered
			// with the task it created, a different one is refused.
			if id, ok := s.idem[k]; ok {
				if prev := s.tasks[id]; prev != nil {
					if diff := SpecDiff(&prev.Spec, &t.Spec); diff != nil {
						return nil, keyReused(fieldOf(i, len(req.Tasks), "idempotency_key"), t.IdempotencyKey, id, diff)
					}
				}
				continue
			}
			if first, ok := batchKeys[k]; ok {
				if diff := SpecDiff(&first.Spec, &t.Spec); diff != nil {
					return nil, keyReused(fieldOf(i, len(req.Tasks), "idempotency_key"), t.IdempotencyKey, first.ID, diff)
				}
				continue
			}
			batchKeys[k] = t
		}
		for _, p := range t.DependsOn {
			pt := s.tasks[p]
			if pt == nil {
				pt = inBatch[p]
			}
			if pt == nil || pt.TenantID != t.TenantID {
				return nil, greyerr.Invalid(fieldOf(i, len(req.Tasks), "depends_on"), "parent task %s not found", p)
			}
		}
		inBatch[t.ID] = t
	}
	if len(inBatch) > 0 {
		if err := s.admitLocked(x, req, inBatch); err != nil {
			return nil, err
		}
	}
	res := &SubmitResult{Tasks: make([]*task.Task, len(req.Tasks)), Created: make([]bool, len(req.Tasks))}
	for i, in := range req.Tasks {
		if in.IdempotencyKey != "" {
			k := tenantKey{in.TenantID, in.IdempotencyKey}
			if id, ok := s.idem[k]; ok {
				res.Tasks[i] = s.tasks[id]
				continue
			}
			if first := batchKeys[k]; first != in {
				res.Tasks[i] = s.tasks[first.ID]
				continue
			}
		}
		t := in // decoded for this write alone: no copy needed
		t.Status = task.Pending
		t.UpdatedAt = req.Now
		x.put(t)
		if t.IdempotencyKey != "" {
			s.idem[tenantKey{t.TenantID, t.IdempotencyKey}] = t.ID
		}
		if t.StateKey != "" {
			k := tenantKey{t.TenantID, t.StateKey}
			s.keys[k] = append(s.keys[k], t.ID)
		}
		// Dependencies: count unfinished parents; a parent that already
		// failed or was cancelled fails the child at once.
		failedParent := ""
		waiting := 0
		for _, p := range t.DependsOn {
			pt := s.tasks[p]
			switch {
			case pt.Status == task.Completed:
			case pt.Status.Terminal():
				if failedParent == "" {
					failedParent = p
				}
			default:
				waiting++
				s.children[p] = append(s.children[p], t.ID)
			}
		}
		if waiting > 0 {
			s.deps[t.ID] = waiting
		}
		if failedParent != "" {
			x.failDependent(t.ID, failedParent)
		}
		res.Tasks[i] = s.tasks[t.ID]
		res.Created[i] = true
	}
	return res, nil
}

func fieldOf(i, n int, f string) string {
	if n == 1 {
		return f
	}
	return "tasks[" + itoa(i) + "]." + f
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	p := len(b)
	for i > 0 {
		p--
		b[p] = byte('0' + i%10)
		i /= 10
	}
	return string(b[p:])
}

// Lease grants each item whose task is ready, not time-gated at req.Now and
// whose new attempt number is the next one.
func (s *Store) Lease(index uint64, req *LeaseRequest) *LeaseResult {
	x := s.begin(index, req.Now)
	defer x.commit()
	res := &LeaseResult{}
	for _, it := range req.Items {
		t := s.tasks[it.TaskID]
		if t == nil || (t.Status != task.Pending && t.Status != task.Retrying) || it.Attempt != t.Attempt+1 ||
			s.blockedLocked(t) != "" || (t.RunAt != nil && t.RunAt.After(req.Now)) ||
			(t.Status == task.Retrying && t.NextAttemptAt != nil && t.NextAttemptAt.After(req.Now)) {
			res.Refused = append(res.Refused, it.TaskID)
			continue
		}
		n := t.CloneGrow(1) // the new attempt goes in without a second copy
		n.Status = task.Leased
		n.Attempt = it.Attempt
		n.Lease = &task.Lease{WorkerID: req.WorkerID, Principal: req.Principal, Attempt: it.Attempt, Deadline: req.Deadline}
		n.NextAttemptAt = nil
		n.StartedAt = nil
		n.UpdatedAt = req.Now
		n.Attempts = append(n.Attempts, task.Attempt{N: it.Attempt, WorkerID: req.WorkerID, Principal: req.Principal, LeasedAt: req.Now})
		x.put(n)
		res.Leased = append(res.Leased, n)
	}
	return res
}

// holds reports whether the worker (as principal, when set) holds the
// lease of ref on t.
func holds(t *task.Task, worker, principal string, ref Ref) (bool, string) {
	switch {
	case t == nil:
		return false, "unknown task"
	case t.Status == task.Cancelled:
		return false, "cancelled"
	case !t.Status.Active():
		return false, "task is " + string(t.Status)
	case t.Attempt != ref.Attempt || t.Lease == nil:
		return false, "stale attempt"
	case worker != "" && t.Lease.WorkerID != worker:
		return false, "lease held by another worker"
	case principal != "" && t.Lease.Principal != "" && t.Lease.Principal != principal:
		// Leases taken without a principal (the node's in-process
		// workers) stay reportable by the same worker id through the
		// leader's API after a leader change.
		return false, "lease held by another principal"
	}
	return true, ""
}

// Start moves leased tasks to running.
func (s *Store) Start(index uint64, req *StartRequest) []Outcome {
	x := s.begin(index, req.Now)
	defer x.commit()
	out := make([]Outcome, len(req.Items))
	for i, it := range req.Items {
		t := s.tasks[it.TaskID]
		ok, why := holds(t, req.WorkerID, req.Principal, it.Ref)
		if ok && t.Status != task.Leased {
			ok, why = false, "already started"
		}
		out[i] = Outcome{TaskID: it.TaskID, Accepted: ok, Reason: why}
		if !ok {
			continue
		}
		n := t.Clone()
		n.Status = task.Running
		at := it.At
		n.StartedAt = &at
		n.UpdatedAt = req.Now
		if k := len(n.Attempts) - 1; k >= 0 {
			n.Attempts[k].StartedAt = &at
		}
		x.put(n)
	}
	return out
}

// Heartbeat extends held leases to req.Deadline and lists the lost ones.
func (s *Store) Heartbeat(index uint64, req *HeartbeatRequest) []Lost {
	x := s.begin(index, req.Now)
	defer x.commit()
	var lost []Lost
	for _, r := range req.Items {
		t := s.tasks[r.TaskID]
		if ok, why := holds(t, req.WorkerID, req.Principal, r); !ok {
			lost = append(lost, Lost{Ref: r, Reason: why})
			continue
		}
		if !req.Deadline.After(t.Lease.Deadline) {
			continue
		}
		n := t.Clone()
		n.Lease.Deadline = req.Deadline
		x.put(n)
	}
	return lost
}

// Complete records successful outcomes, fenced by attempt. A report for a
// leased task whose start was not recorded counts as started at its
// StartedAt, or without one at its At.
func (s *Store) Complete(index uint64, req *CompleteRequest) []Outcome {
	x := s.begin(index, req.Now)
	defer x.commit()
	out := make([]Outcome, len(req.Items))
	blobs := req.Blobs
	if blobs == nil && len(req.Proofs) > 0 {
		blobs = make([]ProofBlob, len(req.Proofs))
		for k, env := range req.Proofs {
			blobs[k].Env = env
		}
	}
	proofIDs := make([]string, len(blobs))
	for i, it := range req.Items {
		t := s.tasks[it.TaskID]
		ok, why := holds(t, req.WorkerID, req.Principal, it.Ref)
		out[i] = Outcome{TaskID: it.TaskID, Accepted: ok, Reason: why}
		if !ok {
			continue
		}
		n := t.Clone()
		at := it.At
		start := at
		if it.StartedAt != nil && t.Status == task.Leased {
			start = startBefore(*it.StartedAt, at)
			n.StartedAt = &start
		} else if n.StartedAt == nil {
			n.StartedAt = &at
		}
		n.Result = it.Result
		n.ResultRef = it.ResultRef
		if k := it.Proof - 1; k >= 0 && k < len(blobs) {
			if proofIDs[k] == "" {
				proofIDs[k] = x.addProof(blobs[k])
			}
			n.ProofID = proofIDs[k]
			s.proofs[n.ProofID].refs++
		}
		n.Error = nil
		n.Lease = nil
		if k := len(n.Attempts) - 1; k >= 0 {
			if n.Attempts[k].StartedAt == nil {
				n.Attempts[k].StartedAt = &start
			}
			n.Attempts[k].FinishedAt = &at
		}
		x.finish(n, task.Completed, req.Now)
	}
	return out
}

// startBefore is a reported start time, no later than the outcome at.
func startBefore(start, at time.Time) time.Time {
	if start.IsZero() || start.After(at) {
		return at
	}
	return start
}

// Fail records failed attempts: retrying when the item has RetryAt, else
// failed. With an empty WorkerID (the leader's own expiries and timeouts)
// only the attempt fences.
func (s *Store) Fail(index uint64, req *FailRequest) []Outcome {
	x := s.begin(index, req.Now)
	defer x.commit()
	out := make([]Outcome, len(req.Items))
	for i, it := range req.Items {
		t := s.tasks[it.TaskID]
		ok, why := holds(t, req.WorkerID, req.Principal, it.Ref)
		out[i] = Outcome{TaskID: it.TaskID, Accepted: ok, Reason: why}
		if !ok {
			continue
		}
		n := t.Clone()
		e := it.Error
		n.Error = &e
		n.Lease = nil
		at := it.At
		if it.StartedAt != nil && t.Status == task.Leased {
			// As if the start had been recorded first.
			start := startBefore(*it.StartedAt, at)
			n.StartedAt = &start
			if k := len(n.Attempts) - 1; k >= 0 {
				n.Attempts[k].StartedAt = &start
			}
		}
		if k := len(n.Attempts) - 1; k >= 0 {
			n.Attempts[k].FinishedAt = &at
			n.Attempts[k].Error = &e
		}
		if it.RetryAt != nil {
			n.Status = task.Retrying
			ra := *it.RetryAt
			n.NextAttemptAt = &ra
			n.UpdatedAt = req.Now
			x.put(n)
			continue
		}
		x.finish(n, task.Failed, req.Now)
	}
	return out
}

// Cancel cancels a non-terminal task of the tenant.
func (s *Store) Cancel(index uint64, req *CancelRequest) (*task.Task, error) {
	x := s.begin(index, req.Now)
	defer x.commit()
	t := s.tasks[req.TaskID]
	if t == nil || t.TenantID != req.TenantID {
		return nil, greyerr.New(greyerr.NotFound, "task %s not found", req.TaskID)
	}
	if t.Status.Terminal() {
		return t, greyerr.New(greyerr.FailedPrecondition, "task %s is already %s", t.ID, t.Status)
	}
	n := t.Clone()
	reason := req.Reason
	if reason == "" {
		reason = "cancelled by client"
	}
	n.Error = &task.Error{Message: reason, Code: "cancelled"}
	n.Lease = nil
	if k := len(n.Attempts) - 1; k >= 0 && n.Attempts[k].FinishedAt == nil && t.Status.Active() {
		now := req.Now
		n.Attempts[k].FinishedAt = &now
	}
	x.finish(n, task.Cancelled, req.Now)
	return s.tasks[n.ID], nil
}

// finish publishes n in a terminal status and runs the cascades: children
// of a failed or cancelled parent fail, children of a completed parent lose
// one wait, and the next task of its state key becomes the head.
func (x *txn) finish(n *task.Task, st task.Status, now time.Time) {
	s := x.s
	n.Status = st
	n.UpdatedAt = now
	fin := now
	n.FinishedAt = &fin
	n.NextAttemptAt = nil
	x.put(n)
	s.finished.ReplaceOrInsert(finishedItem{at: fin, id: n.ID})
	delete(s.deps, n.ID)
	if n.StateKey != "" {
		k := tenantKey{n.TenantID, n.StateKey}
		q := s.keys[k]
		for i, id := range q {
			if id == n.ID {
				q = append(q[:i:i], q[i+1:]...)
				break
			}
		}
		if len(q) == 0 {
			delete(s.keys, k)
		} else {
			s.keys[k] = q
			x.touch(q[0])
		}
	}
	kids := s.children[n.ID]
	delete(s.children, n.ID)
	for _, c := range kids {
		ct := s.tasks[c]
		if ct == nil || ct.Status.Terminal() {
			continue
		}
		if st != task.Completed {
			x.failDependent(c, n.ID)
			continue
		}
		if s.deps[c]--; s.deps[c] <= 0 {
			delete(s.deps, c)
			x.touch(c)
		}
	}
}

// failDependent fails a task because its parent did not complete.
func (x *txn) failDependent(id, parent string) {
	t := x.s.tasks[id]
	if t == nil || t.Status.Terminal() {
		return
	}
	pt := x.s.tasks[parent]
	ps := "missing"
	if pt != nil {
		ps = string(pt.Status)
	}
	n := t.Clone()
	n.Lease = nil
	n.Error = &task.Error{Code: "dependency_failed", Message: "dependency " + parent + " " + ps + "; not run"}
	x.finish(n, task.Failed, x.now)
}

// GC removes up to req.Max terminal tasks finished before req.Before that
// every sink in req.Hold has acknowledged.
func (s *Store) GC(index uint64, req *GCRequest) int {
	x := s.begin(index, req.Now)
	defer x.commit()
	var victims []finishedItem
	s.finished.Ascend(func(it finishedItem) bool {
		if !it.at.Before(req.Before) || (req.Max > 0 && len(victims) >= req.Max) {
			return false
		}
		if t := s.tasks[it.id]; t != nil && len(req.Hold) > 0 && s.held(t, req.Hold) {
			return true
		}
		victims = append(victims, it)
		return true
	})
	for _, v := range victims {
		s.finished.Delete(v)
		t := s.tasks[v.id]
		if t == nil {
			continue
		}
		delete(s.tasks, v.id)
		s.feedRemove(t)
		x.unaccount(t)
		s.releaseProof(t.ProofID)
		s.counts[t.Status]--
		if ids := s.byTenant[t.TenantID]; ids != nil {
			ids.Delete(t.ID)
			if ids.Len() == 0 {
				delete(s.byTenant, t.TenantID)
			}
		}
		if t.IdempotencyKey != "" {
			k := tenantKey{t.TenantID, t.IdempotencyKey}
			if s.idem[k] == t.ID {
				delete(s.idem, k)
			}
		}
		x.removed = append(x.removed, t)
	}
	return len(victims)
}

// admitLocked checks the submitting tenant: it must exist (or be created
// from req.AutoCreate) and, when req.Enforce, the new tasks must fit its
// quota. All tasks of one submit belong to one tenant.
func (s *Store) admitLocked(x *txn, req *SubmitRequest, fresh map[string]*task.Task) error {
	tenantID := req.Tasks[0].TenantID
	for _, t := range req.Tasks {
		if t.TenantID != tenantID {
			return greyerr.Invalid("tenant", "one submit must hold one tenant's tasks")
		}
	}
	ts := s.tenantsByID[tenantID]
	if ts == nil || ts.t == nil {
		if req.AutoCreate == nil || req.AutoCreate.ID != tenantID {
			e := greyerr.Invalid("tenant", "unknown tenant %q: create it first (POST /api/v1/tenants)", tenantID)
			e.Reason = "unknown_tenant"
			return e
		}
		ts = s.tstate(tenantID)
		t := *req.AutoCreate
		t.CreatedAt, t.UpdatedAt, t.AutoCreated = req.Now, req.Now, true
		ts.t = &t
		x.tenantsChanged = true
	}
	if !req.Enforce {
		return nil
	}
	var c SubmitCheck
	var list []*task.Task
	for _, t := range req.Tasks {
		if fresh[t.ID] != nil {
			c.New++
			c.Bytes += int64(len(t.Payload))
			list = append(list, t)
		}
	}
	return checkQuota(ts.t.Quota, ts, list, c)
}

// CheckSubmit runs the same admission checks as Submit without writing, so
// the API can refuse a doomed submit before it reaches the log.
func (s *Store) CheckSubmit(tenantID string, tasks []*task.Task, autoCreate bool) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	// Parents must exist (the tenant's, or earlier in the batch): checked
	// here too so that a doomed submit spends no submit-rate tokens.
	earlier := make(map[string]bool, len(tasks))
	for i, t := range tasks {
		for _, p := range t.DependsOn {
			if pt := s.tasks[p]; (pt == nil || pt.TenantID != tenantID) && !earlier[p] {
				return greyerr.Invalid(fieldOf(i, len(tasks), "depends_on"), "parent task %s not found", p)
			}
		}
		earlier[t.ID] = true
	}
	ts := s.tenantsByID[tenantID]
	if ts == nil || ts.t == nil {
		if autoCreate {
			return nil
		}
		e := greyerr.Invalid("tenant", "unknown tenant %q: create it first (POST /api/v1/tenants)", tenantID)
		e.Reason = "unknown_tenant"
		return e
	}
	var c SubmitCheck
	var list []*task.Task
	for _, t := range tasks {
		if t.IdempotencyKey != "" {
			if _, ok := s.idem[tenantKey{tenantID, t.IdempotencyKey}]; ok {
				continue
			}
		}
		c.New++
		c.Bytes += int64(len(t.Payload))
		list = append(list, t)
	}
	return checkQuota(ts.t.Quota, ts, list, c)
}

// NewTasks counts the tasks of a prospective submit that an idempotency key
// would not map to an existing task.
func (s *Store) NewTasks(tenantID string, tasks []*task.Task) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, t := range tasks {
		if t.IdempotencyKey != "" {
			if _, ok := s.idem[tenantKey{tenantID, t.IdempotencyKey}]; ok {
				continue
			}
		}
		n++
	}
	return n
}

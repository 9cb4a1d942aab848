package quorumarchive

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/greyerr"
)

// repairJob asks for one record to be checked on every replica.
type repairJob struct{ tenant, id string }

// repairTimeout bounds one read repair.
const repairTimeout = 30 * time.Second

// enqueue queues a read repair; when the queue is full it is dropped
// (counted) and left to anti-entropy.
func (d *Driver) enqueue(tenant, id string) {
	if d.closed.Load() {
		return
	}
	select {
	case d.repairs <- repairJob{tenant, id}:
	default:
		m := d.m.Load()
		m.repairsDropped.WithLabelValues(m.name).Inc()
	}
}

func (d *Driver) repairLoop() {
	defer d.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-d.stop
		cancel()
	}()
	for {
		select {
		case <-d.stop:
			return
		case j := <-d.repairs:
			jctx, jcancel := context.WithTimeout(ctx, repairTimeout)
			if _, err := d.repairID(jctx, j.tenant, j.id, "read"); err != nil && ctx.Err() == nil {
				d.log.Warn("quorum archive: read repair failed", "tenant", j.tenant, "id", j.id, "err", err)
			}
			jcancel()
		}
	}
}

// repairID reads the record from every replica that answers and writes
// the newest version to those that lack it or hold an older one (or, for
// a record deleted through this driver, deletes it where it is left). It
// returns how many replicas it repaired; an error names each replica
// that could not be read or repaired. source labels the repairs metric.
func (d *Driver) repairID(ctx context.Context, tenant, id, source string) (int, error) {
	type got struct {
		r   *replica
		rec archive.Record
		err error
	}
	replies := make([]got, len(d.reps))
	done := make(chan struct{}, len(d.reps))
	for i, r := range d.reps {
		go func() {
			rec, err := r.Driver.Get(ctx, tenant, id)
			replies[i] = got{r, rec, err}
			done <- struct{}{}
		}()
	}
	for range d.reps {
		<-done
	}
	var (
		found []archive.Record
		errs  []error
	)
	for _, x := range replies {
		switch {
		case x.err == nil:
			found = append(found, x.rec)
		case !greyerr.Is(x.err, greyerr.NotFound):
			errs = append(errs, fmt.Errorf("%s: %w", x.r.label(), x.err))
		}
	}
	fixed := 0
	if len(found) == 0 {
		return 0, errors.Join(errs...)
	}
	if d.tombed(tenant, id) {
		for _, x := range replies {
			if x.err == nil {
				if err := d.deleteOn(ctx, x.r, tenant, []string{id}, source); err != nil {
					errs = append(errs, err)
				} else {
					fixed++
				}
			}
		}
		return fixed, errors.Join(errs...)
	}
	win := found[newest(found)]
	if d.expired(win) {
		return 0, errors.Join(errs...)
	}
	for _, x := range replies {
		stale := greyerr.Is(x.err, greyerr.NotFound) || (x.err == nil && compare(win, x.rec) > 0)
		if !stale {
			continue
		}
		if err := d.writeOn(ctx, x.r, tenant, []archive.Record{win}, source); err != nil {
			errs = append(errs, err)
		} else {
			fixed++
		}
	}
	return fixed, errors.Join(errs...)
}

// expired reports whether r finished before the retention horizon (a
// record retention removes is never copied back).
func (d *Driver) expired(r archive.Record) bool {
	return d.cfg.Retention > 0 && r.Task.FinishedAt.Before(time.Now().Add(-d.cfg.Retention))
}

// writeOn writes recs to one replica to repair it.
func (d *Driver) writeOn(ctx context.Context, r *replica, tenant string, recs []archive.Record, source string) error {
	if err := r.Driver.Upsert(ctx, tenant, recs); err != nil {
		d.replicaFailed(r, "repair", err)
		return fmt.Errorf("repair %s: %w", r.label(), err)
	}
	m := d.m.Load()
	m.repairs.WithLabelValues(m.name, r.Name, source).Add(float64(len(recs)))
	return nil
}

// deleteOn deletes ids from one replica to repair it.
func (d *Driver) deleteOn(ctx context.Context, r *replica, tenant string, ids []string, source string) error {
	dl, ok := r.Driver.(archive.Deleter)
	if !ok {
		return greyerr.New(greyerr.Unimplemented, "%s cannot delete single records", r.label())
	}
	n, err := dl.Delete(ctx, tenant, ids)
	if err != nil {
		d.replicaFailed(r, "repair", err)
		return fmt.Errorf("repair %s: %w", r.label(), err)
	}
	m := d.m.Load()
	m.repairs.WithLabelValues(m.name, r.Name, source).Add(float64(n))
	return nil
}

// PassResult is what one anti-entropy pass found and did.
type PassResult struct {
	// Full is whether the pass compared every record (see
	// Config.FullEvery) or only those some replica is known to have
	// missed.
	Full bool
	// Replicas is how many replicas took part (those that listed their
	// tenants; every replica in a pass that is not full).
	Replicas int
	// Tenants is how many tenants were compared.
	Tenants int
	// Records is how many distinct records were compared.
	Records int64
	// Divergent is how many of them some taking-part replica lacked or
	// held in an older version (or held after a delete).
	Divergent int64
	// Repaired is how many record writes and deletes repaired replicas.
	Repaired int64
	// Errors are the failures of the pass, each naming its replica.
	Errors []string
	// Took is how long the pass took.
	Took time.Duration
}

// AntiEntropy runs one anti-entropy pass now (one at a time: a call
// waits for a running pass) and returns what it found. A full pass (see
// Config.FullEvery) compares the replicas that answer, tenant by tenant,
// and repairs them; it fails when fewer than two replicas answer
// (nothing to compare, unless there is one replica) or when a replica is
// no TenantLister. The passes in between check, on every replica, only
// the records some replica missed (and the deletes some replica has not
// made), and repair those. The divergent records gauge takes the pass's
// count.
func (d *Driver) AntiEntropy(ctx context.Context) (PassResult, error) {
	d.passMu.Lock()
	defer d.passMu.Unlock()
	start := time.Now()
	gen, full := d.fullDue(start)
	if !full {
		return d.incrementalPass(ctx, start)
	}
	res := PassResult{Full: true}
	type listed struct {
		r       *replica
		tenants []string
		err     error
	}
	lists := make([]listed, len(d.reps))
	done := make(chan struct{}, len(d.reps))
	for i, r := range d.reps {
		go func() {
			ts, err := tenantsOf(ctx, r)
			lists[i] = listed{r, ts, err}
			done <- struct{}{}
		}()
	}
	for range d.reps {
		<-done
	}
	var live []*replica
	tenantSet := map[string]bool{}
	var tenants []string
	for _, l := range lists {
		if l.err != nil {
			if greyerr.Is(l.err, greyerr.Unimplemented) {
				return res, fmt.Errorf("quorum archive anti-entropy: %s: %w", l.r.label(), l.err)
			}
			d.replicaFailed(l.r, "anti_entropy", l.err)
			res.Errors = append(res.Errors, fmt.Sprintf("%s: list tenants: %v", l.r.label(), l.err))
			continue
		}
		live = append(live, l.r)
		for _, t := range l.tenants {
			if !tenantSet[t] {
				tenantSet[t] = true
				tenants = append(tenants, t)
			}
		}
	}
	res.Replicas = len(live)
	if len(live) < min(2, len(d.reps)) {
		res.Took = time.Since(start)
		return res, greyerr.New(greyerr.Unavailable, "quorum archive anti-entropy: %d of %d replicas answer, nothing to compare: %v", len(live), len(d.reps), res.Errors)
	}
	for _, t := range tenants {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		d.compareTenant(ctx, t, live, &res)
	}
	res.Tenants = len(tenants)
	res.Took = time.Since(start)
	if len(live) == len(d.reps) && len(res.Errors) == 0 {
		d.fullDone(start, gen)
	}
	m := d.m.Load()
	m.divergent.WithLabelValues(m.name).Set(float64(res.Divergent))
	return res, nil
}

// markDirty remembers that some replica missed the records ids of tenant.
func (d *Driver) markDirty(tenant string, ids []string) {
	d.dirtyMu.Lock()
	defer d.dirtyMu.Unlock()
	d.dirtyGen++
	for _, id := range ids {
		if len(d.dirty) >= maxDirty {
			d.overflow = true
			return
		}
		d.dirty[tombKey{tenant, id}] = d.dirtyGen
	}
}

// fullDue reports whether the pass starting at start must be full, and
// the dirty generation it starts at.
func (d *Driver) fullDue(start time.Time) (uint64, bool) {
	d.dirtyMu.Lock()
	defer d.dirtyMu.Unlock()
	return d.dirtyGen, d.cfg.FullEvery < 0 || d.overflow || d.lastFull.IsZero() || start.Sub(d.lastFull) >= d.cfg.FullEvery
}

// fullDone records a full pass that every replica took part in without
// errors, started at start when the dirty generation was gen: what was
// missed before it is repaired.
func (d *Driver) fullDone(start time.Time, gen uint64) {
	d.dirtyMu.Lock()
	defer d.dirtyMu.Unlock()
	d.lastFull = start
	d.overflow = false
	for k, g := range d.dirty {
		if g <= gen {
			delete(d.dirty, k)
		}
	}
}

// incrementalPass checks the dirty records and the remembered deletes on
// every replica and repairs them; a record that every replica now holds
// in its newest version leaves the dirty set.
func (d *Driver) incrementalPass(ctx context.Context, start time.Time) (PassResult, error) {
	res := PassResult{Replicas: len(d.reps)}
	d.dirtyMu.Lock()
	keys := make(map[tombKey]uint64, len(d.dirty))
	for k, g := range d.dirty {
		keys[k] = g
	}
	d.dirtyMu.Unlock()
	d.tombMu.Lock()
	for k := range d.tombs {
		if _, ok := keys[k]; !ok {
			keys[k] = 0
		}
	}
	d.tombMu.Unlock()
	tenants := map[string]bool{}
	for k, g := range keys {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		tenants[k.tenant] = true
		res.Records++
		n, err := d.repairID(ctx, k.tenant, k.id, "anti_entropy")
		if n > 0 {
			res.Divergent++
			res.Repaired += int64(n)
		}
		if err != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("tenant %s, record %s: %v", k.tenant, k.id, err))
			continue
		}
		if d.tombed(k.tenant, k.id) {
			// every replica answered and none holds it any more
			d.untomb(k.tenant, []string{k.id})
		}
		if g > 0 {
			d.dirtyMu.Lock()
			if d.dirty[k] == g {
				delete(d.dirty, k)
			}
			d.dirtyMu.Unlock()
		}
	}
	res.Tenants = len(tenants)
	res.Took = time.Since(start)
	m := d.m.Load()
	m.divergent.WithLabelValues(m.name).Set(float64(res.Divergent))
	return res, nil
}

// stream pages through one replica's records of a tenant, newest id first.
type stream struct {
	r      *replica
	buf    []archive.Record
	before string
	done   bool
	err    error
	fixes  []archive.Record // what to write to this replica
	drops  []string         // what to delete from it
}

func (s *stream) fill(ctx context.Context, tenant string, page int) {
	if len(s.buf) > 0 || s.done || s.err != nil {
		return
	}
	recs, err := s.r.Driver.List(ctx, tenant, archive.DriverQuery{Limit: page, Before: s.before})
	if err != nil {
		s.err = err
		return
	}
	s.buf = recs
	if len(recs) < page {
		s.done = true
	}
	if len(recs) > 0 {
		s.before = recs[len(recs)-1].Task.ID
	}
}

// compareTenant merges the tenant's records of every live replica by id
// and repairs the replicas that lack a record or hold an older version.
func (d *Driver) compareTenant(ctx context.Context, tenant string, live []*replica, res *PassResult) {
	page := d.cfg.PageSize
	ss := make([]*stream, len(live))
	for i, r := range live {
		ss[i] = &stream{r: r}
	}
	flush := func(s *stream, force bool) {
		if len(s.fixes) > 0 && (force || len(s.fixes) >= page) {
			if err := d.writeOn(ctx, s.r, tenant, s.fixes, "anti_entropy"); err != nil {
				res.Errors = append(res.Errors, err.Error())
			} else {
				res.Repaired += int64(len(s.fixes))
			}
			s.fixes = nil
		}
		if len(s.drops) > 0 && (force || len(s.drops) >= page) {
			if err := d.deleteOn(ctx, s.r, tenant, s.drops, "anti_entropy"); err != nil {
				res.Errors = append(res.Errors, err.Error())
			} else {
				res.Repaired += int64(len(s.drops))
			}
			s.drops = nil
		}
	}
	for {
		top := ""
		for _, s := range ss {
			s.fill(ctx, tenant, page)
			if s.err == nil && len(s.buf) > 0 && s.buf[0].Task.ID > top {
				top = s.buf[0].Task.ID
			}
		}
		if top == "" {
			break
		}
		// The record top on every replica that is still read.
		var (
			have []archive.Record
			at   = make([]int, len(ss)) // index in have, -1: lacks it
		)
		for i, s := range ss {
			at[i] = -1
			if s.err != nil {
				continue
			}
			if len(s.buf) > 0 && s.buf[0].Task.ID == top {
				at[i] = len(have)
				have = append(have, s.buf[0])
				s.buf = s.buf[1:]
			}
		}
		res.Records++
		win := have[newest(have)]
		divergent := false
		tombed := d.tombed(tenant, top)
		for i, s := range ss {
			if s.err != nil {
				continue
			}
			switch {
			case tombed && at[i] >= 0:
				divergent = true
				s.drops = append(s.drops, top)
			case tombed:
			case at[i] < 0 || compare(win, have[at[i]]) > 0:
				divergent = true
				if !d.expired(win) {
					s.fixes = append(s.fixes, win)
				}
			}
			flush(s, false)
		}
		if divergent {
			res.Divergent++
		}
	}
	for _, s := range ss {
		if s.err != nil {
			d.replicaFailed(s.r, "anti_entropy", s.err)
			res.Errors = append(res.Errors, fmt.Sprintf("%s: tenant %s: %v", s.r.label(), tenant, s.err))
			continue
		}
		flush(s, true)
	}
}

func (d *Driver) antiEntropyLoop(every time.Duration) {
	defer d.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-d.stop
		cancel()
	}()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			res, err := d.AntiEntropy(ctx)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				d.log.Warn("quorum archive: anti-entropy pass failed", "err", err)
			default:
				d.log.Info("quorum archive: anti-entropy pass", "full", res.Full, "replicas", res.Replicas, "tenants", res.Tenants,
					"records", res.Records, "divergent", res.Divergent, "repaired", res.Repaired, "errors", len(res.Errors), "took", res.Took)
			}
		}
	}
}

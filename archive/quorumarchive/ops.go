package quorumarchive

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/memarchive"
	"github.com/grey-distributed/grey/greyerr"
)

// refuseIfDown is the check of a write whose quorum is all: a replica that
// failed as unreachable a moment ago is pinged first, and when it still
// does not answer the write is refused before anything is written.
func (d *Driver) refuseIfDown(ctx context.Context, op string) error {
	if d.cfg.Write != All {
		return nil
	}
	var down []string
	for _, r := range d.reps {
		if !r.down() {
			continue
		}
		if err := r.Driver.Ping(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			d.replicaFailed(r, "ping", err)
			down = append(down, fmt.Sprintf("%s: %v", r.label(), err))
			continue
		}
		r.downUntil.Store(0)
	}
	if len(down) > 0 {
		return greyerr.New(greyerr.Unavailable, "quorum archive %s: the write quorum is all and %d of %d replicas do not answer (%s): refused, nothing written",
			op, len(down), len(d.reps), strings.Join(down, "; "))
	}
	return nil
}

// Upsert implements archive.Driver: the records go to every replica at
// once, and the call succeeds when the write quorum acknowledged them.
func (d *Driver) Upsert(ctx context.Context, tenant string, recs []archive.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if err := d.refuseIfDown(ctx, "upsert"); err != nil {
		return err
	}
	// The calls of replicas slower than the quorum outlive this one: they
	// write a copy the caller cannot change under them.
	own := make([]archive.Record, len(recs))
	ids := make([]string, len(recs))
	for i, r := range recs {
		own[i] = memarchive.CopyRecord(r)
		ids[i] = r.Task.ID
	}
	d.untomb(tenant, ids)
	// A replica that missed the records (failed, or had not answered when
	// the call returned and failed later) makes them dirty: the next
	// anti-entropy pass checks them even when it is not a full one.
	missed := func(rs []result[struct{}]) {
		for _, x := range rs {
			if x.err != nil {
				d.markDirty(tenant, ids)
				return
			}
		}
	}
	res, err := fanout(ctx, d, "upsert", d.reps, d.cfg.Write.of(len(d.reps)), okOnly, func(ctx context.Context, r *replica) (struct{}, error) {
		return struct{}{}, r.Driver.Upsert(ctx, tenant, own)
	}, missed)
	missed(res) // before the call returns, so that a pass after it sees them
	return err
}

// Get implements archive.Driver: the newest version among the read
// quorum's answers; replicas that answered with an older one or none are
// repaired in the background.
func (d *Driver) Get(ctx context.Context, tenant, id string) (archive.Record, error) {
	res, err := fanout(ctx, d, "get", d.reps, d.cfg.Read.of(len(d.reps)), okOrNotFound, func(ctx context.Context, r *replica) (archive.Record, error) {
		return r.Driver.Get(ctx, tenant, id)
	}, func(all []result[archive.Record]) {
		if diverge(all, id) {
			d.enqueue(tenant, id)
		}
	})
	if err != nil {
		return archive.Record{}, err
	}
	var found []archive.Record
	for _, x := range res {
		if x.err == nil {
			found = append(found, x.v)
		}
	}
	if len(found) == 0 || d.tombed(tenant, id) {
		return archive.Record{}, greyerr.New(greyerr.NotFound, "task %s not found in the archive", id)
	}
	// The repair check still reads the replies: the caller gets its own.
	return memarchive.CopyRecord(found[newest(found)]), nil
}

// diverge reports whether the replicas that answered a get disagree: one
// holds the record and another does not, or holds another version.
func diverge(all []result[archive.Record], id string) bool {
	var first *archive.Record
	missing := false
	for i := range all {
		x := &all[i]
		switch {
		case greyerr.Is(x.err, greyerr.NotFound):
			missing = true
		case x.err != nil:
		case first == nil:
			first = &x.v
		case compare(*first, x.v) != 0:
			return true
		}
	}
	return first != nil && missing
}

// List implements archive.Driver: the read quorum's pages merged, task id
// descending, the newest version of each id. Ids some replica should have
// listed but did not, or listed in an older version, are checked and
// repaired in the background.
func (d *Driver) List(ctx context.Context, tenant string, q archive.DriverQuery) ([]archive.Record, error) {
	res, err := fanout(ctx, d, "list", d.reps, d.cfg.Read.of(len(d.reps)), okOnly, func(ctx context.Context, r *replica) ([]archive.Record, error) {
		return r.Driver.List(ctx, tenant, q)
	}, func(all []result[[]archive.Record]) { d.repairList(tenant, q.Limit, all) })
	if err != nil {
		return nil, err
	}
	pages := make([][]archive.Record, 0, len(res))
	for _, x := range res {
		pages = append(pages, x.v)
	}
	out := merge(pages)
	out = slices.DeleteFunc(out, func(r archive.Record) bool { return d.tombed(tenant, r.Task.ID) })
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	for i := range out {
		out[i] = memarchive.CopyRecord(out[i]) // the repair check still reads the replies
	}
	return out, nil
}

// merge returns the union of pages (each in task id descending order) in
// task id descending order, the newest version of each id.
func merge(pages [][]archive.Record) []archive.Record {
	n := 0
	for _, p := range pages {
		n += len(p)
	}
	byID := make(map[string]int, n)
	out := make([]archive.Record, 0, n)
	for _, p := range pages {
		for _, r := range p {
			if i, ok := byID[r.Task.ID]; ok {
				if compare(r, out[i]) > 0 {
					out[i] = r
				}
				continue
			}
			byID[r.Task.ID] = len(out)
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b archive.Record) int { return strings.Compare(b.Task.ID, a.Task.ID) })
	return out
}

// repairList queues a check of every id that a replica's page covers (its
// page was short, or the id is above its page's last) but lacks or holds
// in another version.
func (d *Driver) repairList(tenant string, limit int, all []result[[]archive.Record]) {
	var ok []result[[]archive.Record]
	for _, x := range all {
		if x.err == nil {
			ok = append(ok, x)
		}
	}
	if len(ok) < 2 {
		return
	}
	byID := make([]map[string]archive.Record, len(ok))
	for i, x := range ok {
		byID[i] = make(map[string]archive.Record, len(x.v))
		for _, r := range x.v {
			byID[i][r.Task.ID] = r
		}
	}
	seen := map[string]bool{}
	for _, x := range ok {
		for _, r := range x.v {
			if seen[r.Task.ID] {
				continue
			}
			seen[r.Task.ID] = true
			for i, y := range ok {
				covers := len(y.v) < limit || (len(y.v) > 0 && r.Task.ID >= y.v[len(y.v)-1].Task.ID)
				if !covers {
					continue
				}
				if o, has := byID[i][r.Task.ID]; !has || compare(o, r) != 0 {
					d.enqueue(tenant, r.Task.ID)
					break
				}
			}
		}
	}
}

// Count implements archive.Driver: the greatest count among the read
// quorum's answers (a replica that missed writes counts fewer; once the
// replicas converge they all say the same).
func (d *Driver) Count(ctx context.Context, tenant string, f archive.Filter) (int64, error) {
	res, err := fanout(ctx, d, "count", d.reps, d.cfg.Read.of(len(d.reps)), okOnly, func(ctx context.Context, r *replica) (int64, error) {
		return r.Driver.Count(ctx, tenant, f)
	}, nil)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, x := range res {
		n = max(n, x.v)
	}
	return n, nil
}

// DeleteBefore implements archive.Driver: every replica's retention, done
// when the write quorum did it. It returns the greatest count, -1 when a
// replica could not tell.
func (d *Driver) DeleteBefore(ctx context.Context, before time.Time) (int64, error) {
	if err := d.refuseIfDown(ctx, "delete_before"); err != nil {
		return 0, err
	}
	res, err := fanout(ctx, d, "delete_before", d.reps, d.cfg.Write.of(len(d.reps)), okOnly, func(ctx context.Context, r *replica) (int64, error) {
		return r.Driver.DeleteBefore(ctx, before)
	}, nil)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, x := range res {
		if x.v < 0 {
			return -1, nil
		}
		n = max(n, x.v)
	}
	return n, nil
}

// Tenants implements archive.TenantLister: the union of the read quorum's
// lists, sorted. Every replica must be a TenantLister.
func (d *Driver) Tenants(ctx context.Context) ([]string, error) {
	res, err := fanout(ctx, d, "tenants", d.reps, d.cfg.Read.of(len(d.reps)), okOnly, func(ctx context.Context, r *replica) ([]string, error) {
		return tenantsOf(ctx, r)
	}, nil)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, x := range res {
		out = append(out, x.v...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func tenantsOf(ctx context.Context, r *replica) ([]string, error) {
	tl, ok := r.Driver.(archive.TenantLister)
	if !ok {
		return nil, greyerr.New(greyerr.Unimplemented, "the %s archive cannot list its tenants", r.Driver.Capabilities().Scheme)
	}
	return tl.Tenants(ctx)
}

// Delete implements archive.Deleter: every replica deletes, done when the
// write quorum did. The ids are remembered (tombstones) until every
// replica deleted them, so that repair does not copy them back from a
// replica that missed the delete. It returns the greatest count.
func (d *Driver) Delete(ctx context.Context, tenant string, ids []string) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	if err := d.refuseIfDown(ctx, "delete"); err != nil {
		return 0, err
	}
	ids = slices.Clone(ids)
	d.tomb(tenant, ids)
	res, err := fanout(ctx, d, "delete", d.reps, d.cfg.Write.of(len(d.reps)), okOnly, func(ctx context.Context, r *replica) (int64, error) {
		dl, ok := r.Driver.(archive.Deleter)
		if !ok {
			return 0, greyerr.New(greyerr.Unimplemented, "the %s archive cannot delete single records", r.Driver.Capabilities().Scheme)
		}
		return dl.Delete(ctx, tenant, ids)
	}, func(all []result[int64]) {
		for _, x := range all {
			if x.err != nil {
				return
			}
		}
		d.untomb(tenant, ids) // every replica deleted them
	})
	if err != nil {
		return 0, err
	}
	var n int64
	for _, x := range res {
		n = max(n, x.v)
	}
	return n, nil
}

// tombKey names one deleted record.
type tombKey struct{ tenant, id string }

func (d *Driver) tomb(tenant string, ids []string) {
	d.tombMu.Lock()
	defer d.tombMu.Unlock()
	for _, id := range ids {
		k := tombKey{tenant, id}
		if _, ok := d.tombs[k]; ok {
			continue
		}
		d.tombs[k] = struct{}{}
		d.tombOrder = append(d.tombOrder, k)
	}
	for len(d.tombOrder) > maxTombstones {
		delete(d.tombs, d.tombOrder[0])
		d.tombOrder = d.tombOrder[1:]
	}
}

func (d *Driver) untomb(tenant string, ids []string) {
	d.tombMu.Lock()
	defer d.tombMu.Unlock()
	if len(d.tombs) == 0 {
		return
	}
	for _, id := range ids {
		delete(d.tombs, tombKey{tenant, id})
	}
	if len(d.tombs) == 0 {
		d.tombOrder = nil
	}
}

func (d *Driver) tombed(tenant, id string) bool {
	d.tombMu.Lock()
	defer d.tombMu.Unlock()
	if len(d.tombs) == 0 {
		return false
	}
	_, ok := d.tombs[tombKey{tenant, id}]
	return ok
}

// Package shardarchive is the sharded archive driver (sharded://): several
// archives of any schemes acting as one, each tenant living on one shard
// chosen by rendezvous hashing over the shards' identities (see Owner and
// Identity). Writes go to the tenant's owner; reads go to the owner and to
// any other shard known to hold records of the tenant (during a
// rebalance); Tenants, Delete and DeleteBefore fan out to every shard.
// A retiring shard (retire=) owns no tenant: it is only read, until a
// rebalance has moved everything it holds to the owners.
//
// Opening checks placement: when a shard holds records of a tenant that
// hashes to another shard (the shard list changed), Open fails with
// FailedPrecondition and names greyctl archive rebalance, unless the URL
// carries allow_misplaced=true (reads then cover the misplaced tenants
// while a rebalance runs). A shard that does not answer at open does not
// fail it (greyd starts, as with any archive it cannot reach): the check
// waits, writes (Upsert, Delete) and Ping fail with Unavailable naming the
// shard until the check has run, and reads go to the owner alone until
// then. The first call after every shard answers runs it, and a shard
// list that changed then fails those calls with the FailedPrecondition
// above. As reaches nothing.
package shardarchive

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/greyerr"
)

// Scheme is the URL scheme of sharded archives.
const Scheme = "sharded"

// URL query parameters of a sharded:// URL besides shard=.
const (
	// AllowMisplacedParam (allow_misplaced=true) opens an archive whose
	// shards hold misplaced tenants instead of failing.
	AllowMisplacedParam = "allow_misplaced"
	// RefreshParam (refresh=1m) is how often the map of which shards hold
	// which tenants is rebuilt from Tenants() of every shard.
	RefreshParam = "refresh"
	// RetireParam (retire=<escaped child URL>, repeated) names a shard
	// being removed: it owns no tenant, reads still find what it holds,
	// and greyctl archive rebalance moves all of it to the owners.
	RetireParam = "retire"
)

// DefaultRefresh is how often the holder map is rebuilt when the URL names
// no refresh=.
const DefaultRefresh = time.Minute

// Register registers the sharded:// driver in r. Its shards open through r
// (the opener of each child's scheme) with the parent's OpenOptions, less
// ReadURLs and MigrateURL (they name one database, not every shard).
func Register(r *archive.Registry) error {
	return r.Register(Scheme, archive.OpenerFunc(func(ctx context.Context, u *url.URL, opts archive.OpenOptions) (archive.Driver, error) {
		return OpenURL(ctx, r, u.String(), opts)
	}))
}

// Config is a sharded archive opened from drivers the caller opened.
type Config struct {
	// IDs are the shards' identities (placement input), Drivers their
	// drivers, in the same order. The sharded driver closes the drivers.
	IDs     []string
	Drivers []archive.Driver
	// Owners is how many of IDs (the first ones) own tenants; the others
	// are retiring shards, which own none: nothing is written to them,
	// reads find what they hold, and every tenant on them counts as
	// misplaced. 0 means every shard owns.
	Owners int
	// AllowMisplaced opens even when shards hold misplaced tenants.
	AllowMisplaced bool
	// Refresh is how often the holder map is rebuilt (0: DefaultRefresh;
	// negative: never after the open).
	Refresh time.Duration
	// Logger receives the driver's log lines (nil: discarded).
	Logger *slog.Logger
}

// OpenURL opens the sharded archive rawURL, its shards through r.
func OpenURL(ctx context.Context, r *archive.Registry, rawURL string, opts archive.OpenOptions) (*Driver, error) {
	shards, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(rawURL)
	q := u.Query()
	cfg := Config{IDs: IDs(shards), Owners: Owners(shards), Logger: opts.Logger}
	if v := q.Get(AllowMisplacedParam); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, greyerr.Invalid(AllowMisplacedParam, "%q is not true or false", v)
		}
		cfg.AllowMisplaced = b
	}
	if v := q.Get(RefreshParam); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d == 0 {
			return nil, greyerr.Invalid(RefreshParam, "%q is not a duration such as 1m (negative: never)", v)
		}
		cfg.Refresh = d
	}
	// Read replicas and the schema owner's URL name one database: they
	// cannot apply to every shard, so shards open without them (a shard
	// migrates with its own URL's credentials).
	child := opts
	child.ReadURLs, child.MigrateURL = nil, ""
	for _, s := range shards {
		// Shards open as drivers: the parent Store validates, retries and
		// measures once for all of them.
		d, err := r.OpenDriver(ctx, s.URL, child)
		if err != nil {
			closeAll(cfg.Drivers)
			return nil, shardErr(s.ID, "open", err)
		}
		cfg.Drivers = append(cfg.Drivers, d)
	}
	return New(ctx, cfg)
}

func closeAll(ds []archive.Driver) {
	for _, d := range ds {
		_ = d.Close()
	}
}

// Driver is a sharded archive. It is safe for concurrent use.
type Driver struct {
	ids    []string
	owners int // ids[:owners] own tenants, the rest are retiring
	shards []archive.Driver
	caps   archive.Capabilities
	log    *slog.Logger

	mu      sync.RWMutex
	holders map[string][]int // tenant -> shards other than its owner holding it

	allowMisplaced bool
	checkMu        sync.Mutex  // one placement check at a time
	checked        atomic.Bool // the placement check passed

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

var (
	_ archive.Driver       = (*Driver)(nil)
	_ archive.TenantLister = (*Driver)(nil)
	_ archive.Deleter      = (*Driver)(nil)
)

// New returns a sharded driver over cfg's drivers after the placement
// check (see the package doc). On error it closes them.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	if len(cfg.IDs) == 0 || len(cfg.IDs) != len(cfg.Drivers) {
		closeAll(cfg.Drivers)
		return nil, greyerr.Invalid("shard", "a sharded archive needs one identity per shard and at least one shard")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	owners := cfg.Owners
	if owners == 0 {
		owners = len(cfg.IDs)
	}
	if owners < 0 || owners > len(cfg.IDs) {
		closeAll(cfg.Drivers)
		return nil, greyerr.Invalid("shard", "Owners is %d, out of the %d shards", cfg.Owners, len(cfg.IDs))
	}
	d := &Driver{ids: slices.Clone(cfg.IDs), owners: owners, shards: slices.Clone(cfg.Drivers), log: log, allowMisplaced: cfg.AllowMisplaced,
		stop: make(chan struct{}), done: make(chan struct{})}
	d.caps = archive.Capabilities{Scheme: Scheme, LabelFilter: true}
	for _, s := range d.shards {
		c := s.Capabilities()
		d.caps.LabelFilter = d.caps.LabelFilter && c.LabelFilter
		if c.MaxBatch > 0 && (d.caps.MaxBatch == 0 || c.MaxBatch < d.caps.MaxBatch) {
			d.caps.MaxBatch = c.MaxBatch
		}
		d.caps.PartitionedRetention = d.caps.PartitionedRetention || c.PartitionedRetention
	}
	if err := d.check(ctx); err != nil {
		if c := greyerr.CodeOf(err); c != greyerr.Unavailable && c != greyerr.DeadlineExceeded {
			closeAll(d.shards)
			return nil, err
		}
		log.Warn("sharded archive: a shard does not answer; writes wait until every shard answers and placement is checked", "err", err)
	}
	refresh := cfg.Refresh
	if refresh == 0 {
		refresh = DefaultRefresh
	}
	if refresh > 0 {
		go d.refreshLoop(refresh)
	} else {
		close(d.done)
	}
	return d, nil
}

// Misplaced returns the tenants found on the wrong shard by the last
// rebuild of the holder map (at open, then every refresh).
func (d *Driver) Misplaced() map[string][]string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := map[string][]string{}
	for t, hs := range d.holders {
		for _, h := range hs {
			out[t] = append(out[t], d.ids[h])
		}
	}
	return out
}

// check runs the placement check unless it passed: it rebuilds the holder
// map and fails with FailedPrecondition when tenants are on the wrong
// shard (unless misplaced tenants are allowed), with the shard's error
// (Unavailable for one that does not answer) when a shard cannot list.
func (d *Driver) check(ctx context.Context) error {
	if d.checked.Load() {
		return nil
	}
	d.checkMu.Lock()
	defer d.checkMu.Unlock()
	if d.checked.Load() {
		return nil
	}
	mis, err := d.refresh(ctx)
	if err != nil {
		return fmt.Errorf("sharded archive: placement not checked yet: %w", err)
	}
	if len(mis) > 0 {
		tenants := map[string]bool{}
		for _, m := range mis {
			tenants[m.Tenant] = true
		}
		if !d.allowMisplaced {
			return greyerr.New(greyerr.FailedPrecondition,
				"shard list changed: %d tenants are on the wrong shard; run greyctl archive rebalance --archive '<this sharded:// URL>' (or open with %s=true to serve them while it runs)",
				len(tenants), AllowMisplacedParam)
		}
		d.log.Warn("sharded archive: tenants on the wrong shard; reads cover them until greyctl archive rebalance moves them", "tenants", len(tenants))
	}
	d.checked.Store(true)
	return nil
}

// refresh rebuilds the holder map from Tenants() of every shard.
func (d *Driver) refresh(ctx context.Context) ([]Misplaced, error) {
	listers := make([]archive.TenantLister, len(d.shards))
	for i, s := range d.shards {
		l, ok := s.(archive.TenantLister)
		if !ok {
			return nil, greyerr.New(greyerr.Unimplemented, "shard %s (%s) cannot list its tenants: a sharded archive needs it to check placement", d.ids[i], s.Capabilities().Scheme)
		}
		listers[i] = l
	}
	mis, _, err := FindMisplaced(ctx, d.ids, d.owners, listers)
	if err != nil {
		return nil, err
	}
	h := map[string][]int{}
	for _, m := range mis {
		h[m.Tenant] = append(h[m.Tenant], m.From)
	}
	d.mu.Lock()
	d.holders = h
	d.mu.Unlock()
	return mis, nil
}

func (d *Driver) refreshLoop(every time.Duration) {
	defer close(d.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), every)
			if _, err := d.refresh(ctx); err != nil {
				// Keep the previous map: a shard that is down now held
				// what it held.
				d.log.Warn("sharded archive: rebuilding the tenant map failed; keeping the previous one", "err", err)
			}
			cancel()
		}
	}
}

// owner returns the owner's index.
func (d *Driver) owner(tenant string) int { return Owner(d.ids[:d.owners], tenant) }

// readers returns the other shards known to hold tenant, then the owner,
// last. Reads go in this order, one after the other, so that a tenant
// being moved is never missed: a rebalance copies a record to the owner
// before it deletes it from the old shard, so a record the old shard no
// longer has when read there is on the owner when read there after.
func (d *Driver) readers(tenant string) []int {
	o := d.owner(tenant)
	d.mu.RLock()
	defer d.mu.RUnlock()
	return append(slices.Clone(d.holders[tenant]), o)
}

// Upsert implements archive.Driver: the records go to the tenant's owner.
func (d *Driver) Upsert(ctx context.Context, tenant string, recs []archive.Record) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	o := d.owner(tenant)
	if err := d.shards[o].Upsert(ctx, tenant, recs); err != nil {
		return shardErr(d.ids[o], "upsert", err)
	}
	return nil
}

// Get implements archive.Driver: the other shards known to hold the
// tenant, then the owner (see readers for why in this order).
func (d *Driver) Get(ctx context.Context, tenant, id string) (archive.Record, error) {
	var lastErr error
	for _, i := range d.readers(tenant) {
		r, err := d.shards[i].Get(ctx, tenant, id)
		if err == nil {
			return r, nil
		}
		if greyerr.CodeOf(err) != greyerr.NotFound {
			return archive.Record{}, shardErr(d.ids[i], "get", err)
		}
		lastErr = err
	}
	return archive.Record{}, lastErr
}

// List implements archive.Driver: the pages of every shard holding the
// tenant (read one after the other, the owner last) merged by id
// descending, each id once (a record on two shards, mid-move, is the copy
// with the higher Task.Index, the owner's on a tie).
func (d *Driver) List(ctx context.Context, tenant string, q archive.DriverQuery) ([]archive.Record, error) {
	rs := d.readers(tenant)
	if len(rs) == 1 {
		out, err := d.shards[rs[0]].List(ctx, tenant, q)
		if err != nil {
			return nil, shardErr(d.ids[rs[0]], "list", err)
		}
		return out, nil
	}
	pages := make([][]archive.Record, len(rs))
	for n, i := range rs { // one after the other, owner last: see readers
		p, err := d.shards[i].List(ctx, tenant, q)
		if err != nil {
			return nil, shardErr(d.ids[i], "list", err)
		}
		pages[n] = p
	}
	return mergePages(pages, q.Limit), nil
}

// mergePages merges pages sorted by id descending, keeping each id once
// (the copy with the higher Task.Index, the later page's — the owner's —
// on a tie), up to limit records.
func mergePages(pages [][]archive.Record, limit int) []archive.Record {
	byID := map[string]archive.Record{}
	for _, p := range pages {
		for _, r := range p {
			if old, ok := byID[r.Task.ID]; !ok || r.Task.Index >= old.Task.Index {
				byID[r.Task.ID] = r
			}
		}
	}
	out := make([]archive.Record, 0, len(byID))
	for _, r := range byID {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b archive.Record) int { return cmp.Compare(b.Task.ID, a.Task.ID) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Count implements archive.Driver. A tenant on one shard costs one Count;
// a tenant found on several (mid-rebalance) is counted by listing the
// matching ids of each, so a record on two shards counts once.
func (d *Driver) Count(ctx context.Context, tenant string, f archive.Filter) (int64, error) {
	rs := d.readers(tenant)
	if len(rs) == 1 {
		n, err := d.shards[rs[0]].Count(ctx, tenant, f)
		if err != nil {
			return 0, shardErr(d.ids[rs[0]], "count", err)
		}
		return n, nil
	}
	seen := map[string]struct{}{}
	for _, i := range rs { // owner last: see readers
		before := ""
		for {
			p, err := d.shards[i].List(ctx, tenant, archive.DriverQuery{Filter: f, Limit: archive.MaxLimit, Before: before})
			if err != nil {
				return 0, shardErr(d.ids[i], "count", err)
			}
			for _, r := range p {
				seen[r.Task.ID] = struct{}{}
			}
			if len(p) < archive.MaxLimit {
				break
			}
			before = p[len(p)-1].Task.ID
		}
	}
	return int64(len(seen)), nil
}

// fanOut calls f on every shard at once and joins the errors, each naming
// its shard; the error's code is the first failure's.
func (d *Driver) fanOut(ctx context.Context, op string, f func(ctx context.Context, i int) error) error {
	errs := make([]error, len(d.shards))
	var wg sync.WaitGroup
	for i := range d.shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx, i); err != nil {
				errs[i] = shardErr(d.ids[i], op, err)
			}
		}()
	}
	wg.Wait()
	var first error
	for _, e := range errs {
		if e != nil {
			first = e
			break
		}
	}
	if first == nil {
		return nil
	}
	return &greyerr.Error{Code: greyerr.CodeOf(first), Message: "sharded archive " + op, Err: errors.Join(errs...)}
}

// DeleteBefore implements archive.Driver on every shard; the count is the
// sum (-1 when a shard cannot tell). When a shard fails, the others have
// still deleted.
func (d *Driver) DeleteBefore(ctx context.Context, before time.Time) (int64, error) {
	ns := make([]int64, len(d.shards))
	err := d.fanOut(ctx, "delete before", func(ctx context.Context, i int) (err error) {
		ns[i], err = d.shards[i].DeleteBefore(ctx, before)
		return err
	})
	var total int64
	for _, n := range ns {
		if n < 0 {
			total = -1
			break
		}
		total += n
	}
	return total, err
}

// Tenants implements archive.TenantLister: the union of every shard's.
func (d *Driver) Tenants(ctx context.Context) ([]string, error) {
	lists := make([][]string, len(d.shards))
	err := d.fanOut(ctx, "tenants", func(ctx context.Context, i int) (err error) {
		l, ok := d.shards[i].(archive.TenantLister)
		if !ok {
			return greyerr.New(greyerr.Unimplemented, "the %s archive cannot list its tenants", d.shards[i].Capabilities().Scheme)
		}
		lists[i], err = l.Tenants(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Delete implements archive.Deleter on every shard (a record may be on two
// mid-move), returning the number of ids removed from at least one.
func (d *Driver) Delete(ctx context.Context, tenant string, ids []string) (int64, error) {
	if err := d.check(ctx); err != nil {
		return 0, err
	}
	ns := make([]int64, len(d.shards))
	err := d.fanOut(ctx, "delete", func(ctx context.Context, i int) (err error) {
		dl, ok := d.shards[i].(archive.Deleter)
		if !ok {
			return greyerr.New(greyerr.Unimplemented, "the %s archive cannot delete single records", d.shards[i].Capabilities().Scheme)
		}
		ns[i], err = dl.Delete(ctx, tenant, ids)
		return err
	})
	var total int64
	for _, n := range ns {
		total = max(total, n) // a record on two shards counts once
	}
	if o := ns[d.owner(tenant)]; o > total {
		total = o
	}
	return total, err
}

// Ping implements archive.Driver: every shard must answer (the error names
// the ones that do not; reads and writes of the other shards' tenants go
// on all the same).
func (d *Driver) Ping(ctx context.Context) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	return d.fanOut(ctx, "ping", func(ctx context.Context, i int) error { return d.shards[i].Ping(ctx) })
}

// Capabilities implements archive.Driver: labels are filtered when every
// shard filters them; MaxBatch is the smallest of the shards'.
func (d *Driver) Capabilities() archive.Capabilities { return d.caps }

// As implements archive.Driver; a sharded archive has no native client of
// its own, so it reports false.
func (d *Driver) As(any) bool { return false }

// Close implements archive.Driver: it stops the refresh and closes every
// shard.
func (d *Driver) Close() error {
	var errs []error
	d.once.Do(func() {
		close(d.stop)
		<-d.done
		for i, s := range d.shards {
			if err := s.Close(); err != nil {
				errs = append(errs, fmt.Errorf("shard %s: %w", d.ids[i], err))
			}
		}
	})
	return errors.Join(errs...)
}

package archivetest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/archivetest"
	"github.com/grey-distributed/grey/archive/memarchive"
	"github.com/grey-distributed/grey/greyerr"
)

// The suite must fail drivers that break the contract: each mutant below
// breaks one rule, and the test runs the subtest that should catch it in
// a child process (the suite reports through *testing.T) and wants it to
// fail.
var mutants = []struct {
	name, catches string
}{
	{"ascending", "OrderAndPagination"},
	{"before-inclusive", "OrderAndPagination"},
	{"get-any-tenant", "GetByTenantAndID"},
	{"list-any-tenant", "TenantIsolation"},
	{"count-ignores-filter", "Filters"},
	{"to-inclusive", "Filters"},
	{"from-exclusive", "Filters"},
	{"labels-ignored", "Filters"},
	{"delete-inclusive", "Retention"},
	{"ignores-context", "ContextCancelled"},
	{"outage-uncoded", "Unreachable"},
	{"shared-memory", "GetByTenantAndID"},
	{"drops-proof", "GetByTenantAndID"},
	{"compacts-json", "JSONBytes"},
	{"writes-first-1000", "LargeBatch"},
	{"millisecond-times", "GetByTenantAndID"},
	{"keeps-first-copy", "IdempotentUpsert"},
	{"skips-under-writes", "CursorStableUnderConcurrentInserts"},
	{"tenants-unsorted", "Tenants"},
	{"tenants-twice", "Tenants"},
	{"tenants-keeps-emptied", "Tenants"},
	{"delete-any-tenant", "Delete"},
	{"delete-counts-asked", "Delete"},
	{"delete-missing-fails", "Delete"},
}

const mutantEnv = "ARCHIVETEST_MUTANTS"

func TestSuiteFailsBrokenDrivers(t *testing.T) {
	if os.Getenv(mutantEnv) != "" {
		t.Skip("in a child process")
	}
	// One child per catching subtest runs it on the mutants it should
	// catch, and only there.
	byCatcher := map[string][]string{}
	for _, m := range mutants {
		byCatcher[m.catches] = append(byCatcher[m.catches], m.name)
	}
	for catcher, names := range byCatcher {
		t.Run(catcher, func(t *testing.T) {
			t.Parallel()
			quoted := make([]string, len(names))
			for i, n := range names {
				quoted[i] = regexp.QuoteMeta(n)
			}
			run := fmt.Sprintf("^TestMutants$/^(%s)$/^%s$", strings.Join(quoted, "|"), catcher)
			cmd := exec.Command(os.Args[0], "-test.run="+run, "-test.count=1", "-test.v", "-test.timeout=2m")
			cmd.Env = append(os.Environ(), mutantEnv+"=1")
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Errorf("%s passed every broken driver, or did not run (%v)", catcher, err)
			}
			for _, n := range names {
				if !strings.Contains(string(out), "--- FAIL: TestMutants/"+n+"/"+catcher+" ") {
					t.Errorf("%s does not catch a driver that breaks %q", catcher, n)
				}
			}
			if t.Failed() {
				t.Logf("child output:\n%s", out)
			}
		})
	}
}

// TestMutants runs the suite on every mutant, when its parent asks.
func TestMutants(t *testing.T) {
	if os.Getenv(mutantEnv) == "" {
		t.Skip("run by TestSuiteFailsBrokenDrivers")
	}
	for _, m := range mutants {
		t.Run(m.name, func(t *testing.T) {
			archivetest.Run(t, archivetest.Harness{
				Open: func(testing.TB) archive.Driver { return &mutant{Driver: memarchive.NewDriver(), name: m.name} },
				Unreachable: func(testing.TB) archive.Driver {
					d := memarchive.NewDriver()
					d.SetUnavailable(errors.New("refused"))
					return &mutant{Driver: d, name: m.name}
				},
			})
		})
	}
}

// mutant is memarchive with one rule broken.
type mutant struct {
	*memarchive.Driver
	name string

	mu     sync.Mutex
	owner  map[string]string // task id → tenant
	ever   map[string]bool   // tenants ever written
	cached map[string]archive.Record
	pages  int
}

func (m *mutant) is(name string) bool { return m.name == name }

func (m *mutant) ctx(ctx context.Context) context.Context {
	if m.is("ignores-context") {
		return context.Background()
	}
	return ctx
}

func (m *mutant) err(err error) error {
	if err != nil && m.is("outage-uncoded") {
		return errors.New(err.Error())
	}
	return err
}

func (m *mutant) Upsert(ctx context.Context, tenant string, recs []archive.Record) error {
	m.mu.Lock()
	if m.owner == nil {
		m.owner = map[string]string{}
	}
	for _, r := range recs {
		m.owner[r.Task.ID] = tenant
	}
	if m.ever == nil {
		m.ever = map[string]bool{}
	}
	m.ever[tenant] = true
	m.mu.Unlock()
	switch {
	case m.is("writes-first-1000") && len(recs) > 1000:
		recs = recs[:1000]
	case m.is("millisecond-times"):
		recs = slices.Clone(recs)
		for i := range recs {
			r := memarchive.CopyRecord(recs[i])
			f := r.Task.FinishedAt.Truncate(time.Millisecond)
			r.Task.FinishedAt = &f
			recs[i] = r
		}
	case m.is("keeps-first-copy"):
		var fresh []archive.Record
		for _, r := range recs {
			if _, err := m.Driver.Get(ctx, tenant, r.Task.ID); err != nil {
				fresh = append(fresh, r)
			}
		}
		recs = fresh
	}
	return m.err(m.Driver.Upsert(m.ctx(ctx), tenant, recs))
}

func (m *mutant) Get(ctx context.Context, tenant, id string) (archive.Record, error) {
	if m.is("get-any-tenant") {
		m.mu.Lock()
		tenant = m.owner[id]
		m.mu.Unlock()
	}
	r, err := m.Driver.Get(m.ctx(ctx), tenant, id)
	if err != nil {
		return r, m.err(err)
	}
	return m.out(r), nil
}

func (m *mutant) out(r archive.Record) archive.Record {
	switch {
	case m.is("drops-proof"):
		r.Proof = nil
	case m.is("compacts-json"):
		r.Task.Payload = compact(r.Task.Payload)
		r.Task.Result = compact(r.Task.Result)
	case m.is("shared-memory"):
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.cached == nil {
			m.cached = map[string]archive.Record{}
		}
		if c, ok := m.cached[r.Task.ID]; ok {
			return c
		}
		m.cached[r.Task.ID] = r
	}
	return r
}

func compact(b json.RawMessage) json.RawMessage {
	if b == nil {
		return nil
	}
	out, _ := json.Marshal(b) // encoding/json compacts and escapes HTML
	return out
}

func (m *mutant) filter(f archive.Filter) archive.Filter {
	switch {
	case m.is("to-inclusive") && !f.FinishedTo.IsZero():
		f.FinishedTo = f.FinishedTo.Add(time.Microsecond)
	case m.is("from-exclusive") && !f.FinishedFrom.IsZero():
		f.FinishedFrom = f.FinishedFrom.Add(time.Microsecond)
	case m.is("labels-ignored"):
		f.Labels = nil
	}
	return f
}

func (m *mutant) List(ctx context.Context, tenant string, q archive.DriverQuery) ([]archive.Record, error) {
	q.Filter = m.filter(q.Filter)
	switch {
	case m.is("before-inclusive") && q.Before != "":
		all, err := m.Driver.List(ctx, tenant, archive.DriverQuery{Filter: q.Filter, Limit: 1 << 30})
		var out []archive.Record
		for _, r := range all {
			if r.Task.ID <= q.Before && len(out) < q.Limit {
				out = append(out, r)
			}
		}
		return out, err
	case m.is("list-any-tenant"):
		recs, err := m.Driver.List(ctx, tenant, q)
		if err == nil && len(recs) < q.Limit {
			m.mu.Lock()
			var other string
			for _, t := range m.owner {
				if t != tenant {
					other = t
				}
			}
			m.mu.Unlock()
			if other != "" {
				more, _ := m.Driver.List(ctx, other, archive.DriverQuery{Limit: q.Limit - len(recs)})
				recs = append(recs, more...)
			}
		}
		return recs, err
	case m.is("skips-under-writes") && q.Before != "":
		// Resumes from the newest record rather than the cursor's id
		// once writes arrive: an offset-style page.
		m.mu.Lock()
		m.pages++
		skip := m.pages%3 == 0
		m.mu.Unlock()
		if skip {
			q.Limit++
			recs, err := m.Driver.List(ctx, tenant, q)
			if len(recs) > 0 {
				recs = recs[1:]
			}
			return recs, err
		}
	}
	recs, err := m.Driver.List(m.ctx(ctx), tenant, q)
	if err != nil {
		return nil, m.err(err)
	}
	if m.is("ascending") {
		slices.Reverse(recs)
	}
	for i := range recs {
		recs[i] = m.out(recs[i])
	}
	return recs, nil
}

func (m *mutant) Count(ctx context.Context, tenant string, f archive.Filter) (int64, error) {
	if m.is("count-ignores-filter") {
		f = archive.Filter{}
	}
	n, err := m.Driver.Count(m.ctx(ctx), tenant, m.filter(f))
	return n, m.err(err)
}

func (m *mutant) DeleteBefore(ctx context.Context, before time.Time) (int64, error) {
	if m.is("delete-inclusive") {
		before = before.Add(time.Microsecond)
	}
	n, err := m.Driver.DeleteBefore(m.ctx(ctx), before)
	return n, m.err(err)
}

func (m *mutant) Ping(ctx context.Context) error { return m.err(m.Driver.Ping(m.ctx(ctx))) }

func (m *mutant) Tenants(ctx context.Context) ([]string, error) {
	got, err := m.Driver.Tenants(ctx)
	if err != nil {
		return nil, m.err(err)
	}
	switch {
	case m.is("tenants-unsorted"):
		slices.Reverse(got)
	case m.is("tenants-twice") && len(got) > 0:
		got = append(got, got[len(got)-1])
		slices.Sort(got)
	case m.is("tenants-keeps-emptied"):
		m.mu.Lock()
		for t := range m.ever {
			if !slices.Contains(got, t) {
				got = append(got, t)
			}
		}
		m.mu.Unlock()
		slices.Sort(got)
	}
	return got, nil
}

func (m *mutant) Delete(ctx context.Context, tenant string, ids []string) (int64, error) {
	switch {
	case m.is("delete-any-tenant"):
		var n int64
		for _, id := range ids {
			m.mu.Lock()
			owner := m.owner[id]
			m.mu.Unlock()
			if owner == "" {
				owner = tenant
			}
			k, err := m.Driver.Delete(ctx, owner, []string{id})
			if err != nil {
				return n, err
			}
			n += k
		}
		return n, nil
	case m.is("delete-counts-asked"):
		_, err := m.Driver.Delete(ctx, tenant, ids)
		return int64(len(ids)), err
	case m.is("delete-missing-fails"):
		n, err := m.Driver.Delete(ctx, tenant, ids)
		if err == nil && n < int64(len(ids)) {
			return n, greyerr.New(greyerr.NotFound, "some ids not found")
		}
		return n, err
	}
	n, err := m.Driver.Delete(m.ctx(ctx), tenant, ids)
	return n, m.err(err)
}

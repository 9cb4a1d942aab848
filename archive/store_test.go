package archive_test

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/archive/archivetest"
	"github.com/grey-distributed/grey/archive/memarchive"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// fake is a memarchive driver whose calls are counted, whose failures are
// scripted per operation, and whose answers can be replaced.
type fake struct {
	*memarchive.Driver
	caps *archive.Capabilities

	mu      sync.Mutex
	calls   map[string]int
	fail    map[string][]error // the next errors of an operation, in order
	always  map[string]error   // the error of every call of an operation
	upserts []upsertCall
	lastQ   archive.DriverQuery
	get     func(tenant, id string) (archive.Record, error)
	list    func(tenant string, q archive.DriverQuery) ([]archive.Record, error)
}

type upsertCall struct {
	tenant string
	n      int
}

func newFake() *fake {
	return &fake{Driver: memarchive.NewDriver(), calls: map[string]int{}, fail: map[string][]error{}, always: map[string]error{}}
}

// enter counts a call of op and returns the error it is scripted to fail
// with, if any.
func (f *fake) enter(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	if err := f.always[op]; err != nil {
		return err
	}
	if errs := f.fail[op]; len(errs) > 0 {
		f.fail[op] = errs[1:]
		return errs[0]
	}
	return nil
}

func (f *fake) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *fake) Upsert(ctx context.Context, tenant string, recs []archive.Record) error {
	if err := f.enter("upsert"); err != nil {
		return err
	}
	f.mu.Lock()
	f.upserts = append(f.upserts, upsertCall{tenant, len(recs)})
	f.mu.Unlock()
	return f.Driver.Upsert(ctx, tenant, recs)
}

func (f *fake) Get(ctx context.Context, tenant, id string) (archive.Record, error) {
	if err := f.enter("get"); err != nil {
		return archive.Record{}, err
	}
	if f.get != nil {
		return f.get(tenant, id)
	}
	return f.Driver.Get(ctx, tenant, id)
}

func (f *fake) List(ctx context.Context, tenant string, q archive.DriverQuery) ([]archive.Record, error) {
	if err := f.enter("list"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.lastQ = q
	f.mu.Unlock()
	if f.list != nil {
		return f.list(tenant, q)
	}
	return f.Driver.List(ctx, tenant, q)
}

func (f *fake) Count(ctx context.Context, tenant string, fl archive.Filter) (int64, error) {
	if err := f.enter("count"); err != nil {
		return 0, err
	}
	return f.Driver.Count(ctx, tenant, fl)
}

func (f *fake) DeleteBefore(ctx context.Context, before time.Time) (int64, error) {
	if err := f.enter("delete_before"); err != nil {
		return 0, err
	}
	return f.Driver.DeleteBefore(ctx, before)
}

func (f *fake) Ping(ctx context.Context) error {
	if err := f.enter("ping"); err != nil {
		return err
	}
	return f.Driver.Ping(ctx)
}

func (f *fake) Capabilities() archive.Capabilities {
	if f.caps != nil {
		return *f.caps
	}
	return f.Driver.Capabilities()
}

func fastRetry() archive.RetryOptions {
	return archive.RetryOptions{InitialInterval: time.Millisecond, MaxInterval: 2 * time.Millisecond}
}

func newStore(t *testing.T, d archive.Driver, reg prometheus.Registerer) *archive.Store {
	t.Helper()
	s, err := archive.New(d, archive.Options{Name: "t", Registerer: reg, Retry: fastRetry()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func wantField(t *testing.T, what string, err error, field string) {
	t.Helper()
	var ge *greyerr.Error
	if !errors.As(err, &ge) || ge.Code != greyerr.InvalidArgument || ge.Field != field {
		t.Errorf("%s: got %v, want InvalidArgument on field %q", what, err, field)
	}
}

func rec(tenant string) archive.Record {
	return archivetest.Make(archivetest.Spec{Tenant: tenant})
}

func TestUpsertValidation(t *testing.T) {
	f := newFake()
	s := newStore(t, f, nil)
	good := rec("acme")
	running := rec("acme")
	running.Task.Status = task.Running
	unfinished := rec("acme")
	unfinished.Task.FinishedAt = nil
	pending := rec("acme")
	pending.Task.Status = task.Pending
	badTenant := rec("acme")
	badTenant.Task.TenantID = "Not A Tenant"
	longTenant := rec("acme")
	longTenant.Task.TenantID = strings.Repeat("a", 64)
	noTenant := rec("acme")
	noTenant.Task.TenantID = ""
	badID := rec("acme")
	badID.Task.ID = "not-a-uuid"
	for _, tc := range []struct {
		what  string
		r     archive.Record
		field string
	}{
		{"a record without its task", archive.Record{}, "task"},
		{"a running task", running, "status"},
		{"a pending task", pending, "status"},
		{"a completed task without a finish time", unfinished, "status"},
		{"a bad tenant id", badTenant, "tenant_id"},
		{"a 64-byte tenant id", longTenant, "tenant_id"},
		{"an empty tenant id", noTenant, "tenant_id"},
		{"a bad task id", badID, "id"},
	} {
		// The bad record comes after a good one: nothing is written.
		err := s.Upsert(t.Context(), []archive.Record{good, tc.r})
		wantField(t, tc.what, err, tc.field)
		if err != nil && !strings.Contains(err.Error(), "record 1") {
			t.Errorf("%s: %v does not say which record", tc.what, err)
		}
	}
	if n := f.count("upsert"); n != 0 || f.Len() != 0 {
		t.Errorf("refused batches reached the driver: %d calls, %d records", n, f.Len())
	}
	if err := s.Upsert(t.Context(), nil); err != nil || f.count("upsert") != 0 {
		t.Errorf("empty upsert: %v, %d driver calls", err, f.count("upsert"))
	}
}

func TestReadValidation(t *testing.T) {
	f := newFake()
	s := newStore(t, f, nil)
	ctx := t.Context()
	now := time.Now()
	for _, bad := range []string{"", "Acme", "acme corp", "-acme", strings.Repeat("a", 64), "acme/../other"} {
		_, err := s.Get(ctx, bad, archivetest.IDAt(now))
		wantField(t, "get under tenant "+bad, err, "tenant")
		_, err = s.List(ctx, bad, archive.Query{})
		wantField(t, "list under tenant "+bad, err, "tenant")
		_, err = s.Count(ctx, bad, archive.Filter{})
		wantField(t, "count under tenant "+bad, err, "tenant")
	}
	filters := []struct {
		what  string
		f     archive.Filter
		field string
	}{
		{"an unknown status", archive.Filter{Statuses: []task.Status{"bogus"}}, "status"},
		{"a status that is not terminal", archive.Filter{Statuses: []task.Status{task.Completed, task.Running}}, "status"},
		{"pending", archive.Filter{Statuses: []task.Status{task.Pending}}, "status"},
		{"from after to", archive.Filter{FinishedFrom: now, FinishedTo: now.Add(-time.Second)}, "finished_from"},
		{"from equal to to", archive.Filter{FinishedFrom: now, FinishedTo: now}, "finished_from"},
		{"an empty label key", archive.Filter{Labels: map[string]string{"": "x"}}, "label"},
		{"a long label key", archive.Filter{Labels: map[string]string{strings.Repeat("k", 257): "x"}}, "label"},
		{"a long label value", archive.Filter{Labels: map[string]string{"k": strings.Repeat("v", 257)}}, "label"},
		{"a long kind", archive.Filter{Kind: strings.Repeat("k", 257)}, "kind"},
	}
	for _, tc := range filters {
		_, err := s.List(ctx, "acme", archive.Query{Filter: tc.f})
		wantField(t, "list with "+tc.what, err, tc.field)
		_, err = s.Count(ctx, "acme", tc.f)
		wantField(t, "count with "+tc.what, err, tc.field)
		wantField(t, "ValidateFilter with "+tc.what, s.ValidateFilter(tc.f), tc.field)
	}
	for _, limit := range []int{-1, archive.MaxLimit + 1, 1 << 30} {
		_, err := s.List(ctx, "acme", archive.Query{Limit: limit})
		wantField(t, "limit "+strconv.Itoa(limit), err, "limit")
	}
	_, err := s.DeleteBefore(ctx, time.Time{})
	wantField(t, "delete before the zero time", err, "before")
	if n := f.count("list") + f.count("count") + f.count("get") + f.count("delete_before"); n != 0 {
		t.Errorf("refused requests reached the driver %d times", n)
	}

	// A string that is not a task id is simply not found, without asking
	// the driver.
	_, err = s.Get(ctx, "acme", "../../etc/passwd")
	if !greyerr.Is(err, greyerr.NotFound) || f.count("get") != 0 {
		t.Errorf("get of a non-id: %v after %d driver calls", err, f.count("get"))
	}

	// Limits: 0 is the default page; the driver is asked for one more than
	// the page to know whether there is a next.
	for _, tc := range []struct{ limit, driver int }{{0, archive.DefaultLimit + 1}, {1, 2}, {archive.MaxLimit, archive.MaxLimit + 1}} {
		if _, err := s.List(ctx, "acme", archive.Query{Limit: tc.limit}); err != nil {
			t.Fatalf("limit %d: %v", tc.limit, err)
		}
		if f.lastQ.Limit != tc.driver {
			t.Errorf("limit %d: driver asked for %d, want %d", tc.limit, f.lastQ.Limit, tc.driver)
		}
	}
	// Good filters pass ValidateFilter.
	for _, ok := range []archive.Filter{{}, {Statuses: []task.Status{task.Completed, task.Failed, task.Cancelled}},
		{FinishedFrom: now}, {FinishedTo: now}, {FinishedFrom: now, FinishedTo: now.Add(time.Nanosecond)}, {Labels: map[string]string{"k": ""}}} {
		if err := s.ValidateFilter(ok); err != nil {
			t.Errorf("ValidateFilter(%+v) = %v", ok, err)
		}
	}
}

func TestLabelFilterNeedsCapability(t *testing.T) {
	f := newFake()
	f.caps = &archive.Capabilities{Scheme: "nolabels"}
	s := newStore(t, f, nil)
	lf := archive.Filter{Labels: map[string]string{"gpu": "true"}}
	_, err := s.List(t.Context(), "acme", archive.Query{Filter: lf})
	if !greyerr.Is(err, greyerr.Unimplemented) {
		t.Errorf("label filter without LabelFilter: %v, want Unimplemented", err)
	}
	_, err = s.Count(t.Context(), "acme", lf)
	if !greyerr.Is(err, greyerr.Unimplemented) {
		t.Errorf("label count without LabelFilter: %v, want Unimplemented", err)
	}
	if f.count("list")+f.count("count") != 0 {
		t.Error("an unsupported filter reached the driver")
	}
}

func TestRetriesUnavailableWithBackoff(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := newFake()
	unavailable := greyerr.New(greyerr.Unavailable, "connection refused")
	f.fail["count"] = []error{unavailable, unavailable}
	s, err := archive.New(f, archive.Options{Name: "r", Registerer: reg,
		Retry: archive.RetryOptions{MaxTries: 5, InitialInterval: 30 * time.Millisecond, MaxInterval: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := s.Count(t.Context(), "acme", archive.Filter{}); err != nil {
		t.Fatalf("count after two transient failures: %v", err)
	}
	// Two waits of 30 ms and 45 ms, each jittered by ±50%: at least 37 ms.
	if el := time.Since(start); el < 37*time.Millisecond {
		t.Errorf("two retries took %s: no backoff between tries", el)
	}
	if n := f.count("count"); n != 3 {
		t.Errorf("driver called %d times, want 3", n)
	}
	if got := testutil.ToFloat64(retries(t, reg, "count")); got != 2 {
		t.Errorf("grey_archive_retries_total{op=count} = %v, want 2", got)
	}
}

func TestRetriesBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := newFake()
	f.always["get"] = greyerr.New(greyerr.Unavailable, "down")
	f.always["ping"] = greyerr.New(greyerr.Unavailable, "down")
	s, err := archive.New(f, archive.Options{Name: "b", Registerer: reg,
		Retry: archive.RetryOptions{MaxTries: 3, InitialInterval: time.Millisecond, MaxInterval: 2 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Get(t.Context(), "acme", archivetest.IDAt(time.Now()))
	if !greyerr.Is(err, greyerr.Unavailable) || f.count("get") != 3 {
		t.Errorf("lasting outage: %v after %d calls, want Unavailable after 3", err, f.count("get"))
	}
	if got := testutil.ToFloat64(retries(t, reg, "get")); got != 2 {
		t.Errorf("3 tries are 2 retries; grey_archive_retries_total{op=get} = %v", got)
	}
	// MaxElapsed bounds a long outage too.
	s, _ = archive.New(f, archive.Options{Retry: archive.RetryOptions{MaxTries: 1000, InitialInterval: 10 * time.Millisecond,
		MaxInterval: 20 * time.Millisecond, MaxElapsed: 150 * time.Millisecond}})
	start := time.Now()
	if err := s.Ping(t.Context()); !greyerr.Is(err, greyerr.Unavailable) {
		t.Errorf("ping during an outage: %v", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("MaxElapsed 150ms, retried for %s", el)
	}
	// A context that ends while the Store waits to retry ends the wait.
	s, _ = archive.New(f, archive.Options{Retry: archive.RetryOptions{MaxTries: 1000, InitialInterval: time.Second, MaxElapsed: time.Minute}})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start = time.Now()
	err = s.Ping(ctx)
	if !greyerr.Is(err, greyerr.DeadlineExceeded) {
		t.Errorf("ping whose context ended while waiting to retry: %v, want deadline_exceeded", err)
	}
	if el := time.Since(start); el > 500*time.Millisecond {
		t.Errorf("the retry wait outlived the context by %s", el-50*time.Millisecond)
	}
}

func TestNoRetryOfOtherCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want greyerr.Code
	}{
		{greyerr.New(greyerr.PermissionDenied, "password authentication failed"), greyerr.PermissionDenied},
		{greyerr.New(greyerr.FailedPrecondition, "schema 7 is newer than this binary's 5"), greyerr.FailedPrecondition},
		{greyerr.New(greyerr.NotFound, "no such task"), greyerr.NotFound},
		{greyerr.Invalid("x", "bad"), greyerr.InvalidArgument},
		{greyerr.New(greyerr.Unimplemented, "no"), greyerr.Unimplemented},
		{errors.New("the driver forgot to code this"), greyerr.Internal},
		{context.Canceled, greyerr.Canceled},
	} {
		f := newFake()
		f.always["count"] = tc.err
		s := newStore(t, f, nil)
		_, err := s.Count(t.Context(), "acme", archive.Filter{})
		if !greyerr.Is(err, tc.want) || f.count("count") != 1 {
			t.Errorf("driver error %v: got %v (code %q) after %d calls, want %q after 1", tc.err, err, greyerr.CodeOf(err), f.count("count"), tc.want)
		}
		if !errors.Is(err, tc.err) {
			t.Errorf("driver error %v: the Store's error %v does not wrap it", tc.err, err)
		}
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := newFake()
	s := newStore(t, f, reg)
	// A second store on the same registerer shares the families.
	if _, err := archive.New(memarchive.NewDriver(), archive.Options{Name: "t2", Registerer: reg}); err != nil {
		t.Fatalf("second store on one registerer: %v", err)
	}
	ctx := t.Context()
	recs := []archive.Record{rec("acme"), rec("acme"), rec("beta")}
	if err := s.Upsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "acme", recs[0].Task.ID); err != nil {
		t.Fatal(err)
	}
	_, _ = s.Get(ctx, "acme", recs[2].Task.ID) // beta's: not found
	f.fail["list"] = []error{greyerr.New(greyerr.Unavailable, "blip")}
	if _, err := s.List(ctx, "acme", archive.Query{}); err != nil {
		t.Fatal(err)
	}
	f.always["count"] = greyerr.New(greyerr.PermissionDenied, "no")
	_, _ = s.Count(ctx, "acme", archive.Filter{})
	want := `
# HELP grey_archive_operations_total Archive operations by store, driver, operation and result code (ok or a Grey error code).
# TYPE grey_archive_operations_total counter
grey_archive_operations_total{code="ok",driver="mem",op="get",store="t"} 1
grey_archive_operations_total{code="not_found",driver="mem",op="get",store="t"} 1
grey_archive_operations_total{code="ok",driver="mem",op="list",store="t"} 1
grey_archive_operations_total{code="ok",driver="mem",op="upsert",store="t"} 2
grey_archive_operations_total{code="permission_denied",driver="mem",op="count",store="t"} 1
# HELP grey_archive_records_written_total Task records written to the archive (a re-delivered task counts again).
# TYPE grey_archive_records_written_total counter
grey_archive_records_written_total{driver="mem",store="t"} 3
# HELP grey_archive_retries_total Transient archive failures that were retried.
# TYPE grey_archive_retries_total counter
grey_archive_retries_total{driver="mem",op="list",store="t"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"grey_archive_operations_total", "grey_archive_records_written_total", "grey_archive_retries_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "grey_archive_operation_seconds"); err != nil || n != 4 {
		t.Errorf("latency series = %d, %v; want 4 (upsert, get, list, count)", n, err)
	}
}

func TestGetGuardsTenant(t *testing.T) {
	f := newFake()
	s := newStore(t, f, nil)
	theirs := rec("other")
	f.get = func(tenant, id string) (archive.Record, error) { return theirs, nil }
	r, err := s.Get(t.Context(), "acme", theirs.Task.ID)
	if !greyerr.Is(err, greyerr.Internal) || r.Task != nil {
		t.Errorf("a driver returning another tenant's task: got %v, %v; want Internal and no record", r.Task, err)
	}
	// Another task of the right tenant, or no task at all, is refused too.
	mine := rec("acme")
	f.get = func(tenant, id string) (archive.Record, error) { return mine, nil }
	if r, err := s.Get(t.Context(), "acme", archivetest.IDAt(time.Now())); !greyerr.Is(err, greyerr.Internal) || r.Task != nil {
		t.Errorf("a driver returning another id: %v, %v", r.Task, err)
	}
	f.get = func(tenant, id string) (archive.Record, error) { return archive.Record{}, nil }
	if _, err := s.Get(t.Context(), "acme", mine.Task.ID); !greyerr.Is(err, greyerr.Internal) {
		t.Errorf("a driver returning an empty record: %v", err)
	}
	// List too.
	f.list = func(string, archive.DriverQuery) ([]archive.Record, error) {
		return []archive.Record{mine, theirs}, nil
	}
	p, err := s.List(t.Context(), "acme", archive.Query{})
	if !greyerr.Is(err, greyerr.Internal) || len(p.Records) != 0 {
		t.Errorf("a driver listing another tenant's task: %d records, %v", len(p.Records), err)
	}
}

func TestUpsertSplitsByTenantAndBatch(t *testing.T) {
	f := newFake()
	f.caps = &archive.Capabilities{Scheme: "mem", LabelFilter: true, MaxBatch: 3}
	s := newStore(t, f, nil)
	var recs []archive.Record
	for i := range 9 {
		ten := "acme"
		if i%4 == 3 {
			ten = "beta"
		}
		recs = append(recs, rec(ten))
	}
	if err := s.Upsert(t.Context(), recs); err != nil {
		t.Fatal(err)
	}
	// The parts run concurrently: compare them in order.
	want := []upsertCall{{"acme", 1}, {"acme", 3}, {"acme", 3}, {"beta", 2}}
	got := slices.SortedFunc(slices.Values(f.upserts), func(a, b upsertCall) int {
		return cmp.Or(cmp.Compare(a.tenant, b.tenant), cmp.Compare(a.n, b.n))
	})
	if !slices.Equal(got, want) {
		t.Fatalf("driver upserts %v, want %v", f.upserts, want)
	}
	// A failed part fails the call and says why.
	f.upserts = nil
	f.fail["upsert"] = []error{nil, greyerr.New(greyerr.PermissionDenied, "no")}
	if err := s.Upsert(t.Context(), recs); !greyerr.Is(err, greyerr.PermissionDenied) {
		t.Errorf("upsert with a refused part: %v", err)
	}
}

func TestUpsertWritesATaskOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := newFake()
	s := newStore(t, f, reg)
	a1 := rec("acme")
	a2 := archivetest.Make(archivetest.Spec{Tenant: "acme", ID: a1.Task.ID, Finished: *a1.Task.FinishedAt, Status: task.Failed})
	b := rec("beta")
	if err := s.Upsert(t.Context(), []archive.Record{a1, b, a2, b}); err != nil {
		t.Fatal(err)
	}
	// The tenants' parts run concurrently: compare them in order.
	want := []upsertCall{{"acme", 1}, {"beta", 1}}
	got := slices.SortedFunc(slices.Values(f.upserts), func(a, b upsertCall) int { return cmp.Compare(a.tenant, b.tenant) })
	if !slices.Equal(got, want) {
		t.Errorf("driver upserts %v, want %v", f.upserts, want)
	}
	stored, err := s.Get(t.Context(), "acme", a1.Task.ID)
	if err != nil || stored.Task.Status != task.Failed {
		t.Errorf("the task twice in a batch was written as %v, %v; want its last occurrence (failed)", stored.Task, err)
	}
	if v := testutil.ToFloat64(mustCounter(t, reg, "grey_archive_records_written_total")); v != 2 {
		t.Errorf("records written = %v, want 2", v)
	}
}

func TestListNextCursor(t *testing.T) {
	s, err := memarchive.Open(archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	var recs []archive.Record
	base := time.Now()
	for i := range 5 {
		recs = append(recs, archivetest.Make(archivetest.Spec{Tenant: "acme", ID: archivetest.IDAt(base.Add(time.Duration(i) * time.Second))}))
	}
	if err := s.Upsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	p, err := s.List(ctx, "acme", archive.Query{Limit: 5})
	if err != nil || len(p.Records) != 5 || p.Next != "" {
		t.Fatalf("a page holding everything: %d records, next %q, %v", len(p.Records), p.Next, err)
	}
	p, err = s.List(ctx, "acme", archive.Query{Limit: 2})
	if err != nil || len(p.Records) != 2 || p.Next == "" {
		t.Fatalf("first page of 2: %d records, next %q, %v", len(p.Records), p.Next, err)
	}
	c, err := archive.DecodeCursor(p.Next, "acme", archive.Filter{})
	if err != nil || c.Before != recs[3].Task.ID {
		t.Errorf("next cursor decodes to %+v, %v; want the last listed id %s", c, err, recs[3].Task.ID)
	}
}

func TestRegistry(t *testing.T) {
	reg := archive.NewRegistry()
	if err := memarchive.Register(reg); err != nil {
		t.Fatal(err)
	}
	if err := memarchive.Register(reg); err == nil {
		t.Error("registering mem twice succeeded")
	}
	if got := reg.Schemes(); len(got) != 1 || got[0] != "mem" {
		t.Errorf("schemes %v", got)
	}
	s, err := reg.Open(t.Context(), "mem://", archive.OpenOptions{}, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(t.Context()); err != nil || s.Capabilities().Scheme != "mem" {
		t.Errorf("ping %v, caps %+v", err, s.Capabilities())
	}
	for _, bad := range []string{"postgres://grey:secret@localhost/grey", "no-scheme", "://"} {
		err := reg.Check(bad)
		wantField(t, "check "+bad, err, "url")
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("the error shows the password: %v", err)
		}
		if _, err := reg.Open(t.Context(), bad, archive.OpenOptions{}, archive.Options{}); !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Errorf("open %s: %v", bad, err)
		}
	}
	if got := archive.Redact("postgres://grey:secret@db:5432/grey?sslmode=disable"); strings.Contains(got, "secret") {
		t.Errorf("redact kept the password: %s", got)
	}
}

// retries is grey_archive_retries_total of op, summed over stores.
func retries(t *testing.T, reg *prometheus.Registry, op string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
	for _, mf := range mfs {
		if mf.GetName() != "grey_archive_retries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" && l.GetValue() == op {
					c.Add(m.GetCounter().GetValue())
				}
			}
		}
	}
	return c
}

// mustCounter is the counter family name, summed over its series.
func mustCounter(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
			for _, m := range mf.GetMetric() {
				c.Add(m.GetCounter().GetValue())
			}
			return c
		}
	}
	t.Fatalf("metric %s not registered", name)
	return nil
}

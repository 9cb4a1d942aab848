package state_test

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/tenant"
)

func (f *fixture) putTenant(now time.Time, t *tenant.Tenant, create bool) (*tenant.Tenant, error) {
	return f.s.PutTenant(f.next(), &state.TenantPutRequest{Now: now, Tenant: t, Create: create})
}

// Create refuses an existing id and update a missing one; an update keeps
// the creation time; reads list tenants by id.
func TestTenantPutAndDelete(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tenantsChanged := 0
	f.s.Observe(func(c state.Change) {
		if c.Tenants {
			tenantsChanged++
		}
	})
	if q := f.s.Quota("acme"); q.Weight != 1 || q.MaxQueued != 0 {
		t.Fatalf("quota of an unknown tenant = %+v, want weight 1 and no limits", q)
	}
	if _, err := f.putTenant(t0, &tenant.Tenant{ID: "acme"}, false); !greyerr.Is(err, greyerr.NotFound) {
		t.Fatalf("update of a missing tenant: %v", err)
	}
	a, err := f.putTenant(t0, &tenant.Tenant{ID: "acme", Quota: tenant.Quota{Weight: 2}}, true)
	if err != nil || !a.CreatedAt.Equal(t0) || !a.UpdatedAt.Equal(t0) {
		t.Fatalf("create = %+v, %v", a, err)
	}
	if _, err := f.putTenant(t0, &tenant.Tenant{ID: "acme"}, true); !greyerr.Is(err, greyerr.AlreadyExists) {
		t.Fatalf("second create: %v", err)
	}
	later := t0.Add(time.Hour)
	u, err := f.putTenant(later, &tenant.Tenant{ID: "acme", Quota: tenant.Quota{Weight: 5, MaxRunning: 3}, CreatedAt: later}, false)
	if err != nil || !u.CreatedAt.Equal(t0) || !u.UpdatedAt.Equal(later) || f.s.Quota("acme").Weight != 5 || f.s.Quota("acme").MaxRunning != 3 {
		t.Fatalf("update = %+v, %v; want the creation time kept and the new quota", u, err)
	}
	if _, err := f.putTenant(t0, &tenant.Tenant{ID: "beta"}, true); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range f.s.Tenants() {
		got = append(got, x.ID)
	}
	if !slices.Equal(got, []string{"acme", "beta"}) || tenantsChanged != 3 {
		t.Fatalf("tenants = %v, %d tenant changes observed; want [acme beta] and 3 (the refusals change nothing)", got, tenantsChanged)
	}
	// Delete: refused while the tenant has unfinished tasks.
	f.s.Submit(f.next(), &state.SubmitRequest{Now: t0, Tasks: []*task.Task{mk(1, "acme")}})
	if _, err := f.s.DeleteTenant(f.next(), &state.TenantDeleteRequest{Now: t0, ID: "acme"}); !greyerr.Is(err, greyerr.FailedPrecondition) {
		t.Fatalf("delete with a queued task: %v", err)
	}
	f.run(t0, 1)
	d, err := f.s.DeleteTenant(f.next(), &state.TenantDeleteRequest{Now: t0, ID: "acme"})
	if err != nil || d.ID != "acme" {
		t.Fatalf("delete = %+v, %v", d, err)
	}
	if _, err := f.s.Tenant("acme"); !greyerr.Is(err, greyerr.NotFound) {
		t.Fatalf("Tenant after delete: %v", err)
	}
	if _, err := f.s.DeleteTenant(f.next(), &state.TenantDeleteRequest{Now: t0, ID: "acme"}); !greyerr.Is(err, greyerr.NotFound) {
		t.Fatalf("second delete: %v", err)
	}
	// Its finished task and usage stay (until GC), and a submit without
	// AutoCreate is refused again.
	if f.s.Lookup(tid(1)) == nil || !slices.Contains(f.s.UsageTenants(), "acme") {
		t.Fatal("deleting the record dropped its tasks or usage")
	}
	if _, err := f.s.Submit(f.next(), &state.SubmitRequest{Now: t0, Tasks: []*task.Task{mk(2, "acme")}}); err == nil {
		t.Fatal("submit to a deleted tenant accepted")
	}
}

// With Enforce, a submit must fit the tenant's quota; CheckSubmit gives
// the same verdict without writing; idempotent replays cost nothing.
func TestQuotaEnforcement(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	q := tenant.Quota{Weight: 1, MaxQueued: 2, MaxPayloadBytes: 10, MaxStorageBytes: 15, AllowedKinds: []string{"noop"}, MaxTaskTimeout: task.Duration(time.Minute)}
	if _, err := f.putTenant(t0, &tenant.Tenant{ID: "acme", Quota: q}, true); err != nil {
		t.Fatal(err)
	}
	payload := func(n int) func(*task.Task) {
		return func(x *task.Task) { x.Payload = json.RawMessage(`"` + strings.Repeat("a", n-2) + `"`) }
	}
	submit := func(tasks ...*task.Task) error {
		_, err := f.s.Submit(f.next(), &state.SubmitRequest{Now: t0, Enforce: true, Tasks: tasks})
		return err
	}
	check := func(tasks ...*task.Task) error { return f.s.CheckSubmit("acme", tasks, false) }
	cases := []struct {
		name   string
		tasks  []*task.Task
		code   greyerr.Code
		reason string
	}{
		{"kind", []*task.Task{mk(1, "acme", func(x *task.Task) { x.Kind = "resize" })}, greyerr.PermissionDenied, "allowed_kinds"},
		{"payload", []*task.Task{mk(1, "acme", payload(11))}, greyerr.TooLarge, "max_payload_bytes"},
		{"timeout", []*task.Task{mk(1, "acme", func(x *task.Task) { x.Timeout = task.Duration(2 * time.Minute) })}, greyerr.InvalidArgument, "max_task_timeout"},
		{"queued", []*task.Task{mk(1, "acme"), mk(2, "acme"), mk(3, "acme")}, greyerr.ResourceExhausted, "max_queued"},
		{"storage", []*task.Task{mk(1, "acme", payload(10)), mk(2, "acme", payload(10))}, greyerr.ResourceExhausted, "max_storage_bytes"},
	}
	for _, c := range cases {
		for name, run := range map[string]func(...*task.Task) error{"Submit": submit, "CheckSubmit": check} {
			err := run(c.tasks...)
			var ge *greyerr.Error
			if !asGrey(err, &ge) || ge.Code != c.code || ge.Reason != c.reason {
				t.Errorf("%s over %s: %v, want %s (%s)", name, c.name, err, c.code, c.reason)
			}
		}
	}
	if f.s.Len() != 0 {
		t.Fatal("a refused submit stored tasks")
	}
	// Without Enforce (the API decided), the quota does not apply.
	if _, err := f.s.Submit(f.next(), &state.SubmitRequest{Now: t0, Tasks: []*task.Task{mk(1, "acme", payload(11))}}); err != nil {
		t.Fatalf("unenforced submit: %v", err)
	}
	// One queued task left under max_queued: a replay of its key is free.
	keyed := mk(2, "acme", func(x *task.Task) { x.IdempotencyKey = "k" })
	if err := submit(keyed); err != nil {
		t.Fatal(err)
	}
	if err := check(mk(3, "acme", func(x *task.Task) { x.IdempotencyKey = "k" })); err != nil {
		t.Fatalf("a replay counted against max_queued: %v", err)
	}
	if err := check(mk(3, "acme")); !greyerr.Is(err, greyerr.ResourceExhausted) {
		t.Fatalf("a third task: %v", err)
	}
	if err := f.s.CheckSubmit("initech", []*task.Task{mk(9, "initech")}, true); err != nil {
		t.Fatalf("CheckSubmit for a tenant to be auto-created: %v", err)
	}
}

// The usage ledger records submissions, outcomes, execution and CPU time,
// bytes in and out, and stored byte-seconds split by hour.
func TestUsageLedger(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.submit(mk(1, "acme", func(x *task.Task) {
		x.Payload = json.RawMessage(`"` + strings.Repeat("p", 98) + `"`) // 100 bytes
		x.Constraints = &task.Constraints{CPU: 2}
	}), mk(2, "acme"), mk(3, "acme"))
	f.lease(t0, "w1", ref(1, 1), ref(2, 1))
	f.start(t0.Add(time.Minute), "w1", ref(1, 1))
	done := t0.Add(3 * time.Minute)
	if o := f.complete(done, "w1", ref(1, 1), `"`+strings.Repeat("r", 48)+`"`); !o.Accepted { // 50 bytes
		t.Fatal(o.Reason)
	}
	f.fail(done, "w1", ref(2, 1), nil)
	if _, err := f.s.Cancel(f.next(), &state.CancelRequest{Now: done, TenantID: "acme", TaskID: tid(3)}); err != nil {
		t.Fatal(err)
	}
	u := f.s.UsageReport("acme", time.Time{}, time.Time{}, t0.Add(4*time.Minute))
	want := tenant.Usage{TasksSubmitted: 3, TasksCompleted: 1, TasksFailed: 1, TasksCancelled: 1, ExecSeconds: 120, CPUSeconds: 240, BytesIn: 100, BytesOut: 50,
		ByteSeconds: 100*180 + 150*60} // 100 bytes for 3 minutes, then 150 for one
	if u != want {
		t.Fatalf("usage = %+v\nwant    %+v", u, want)
	}
	if l := f.s.Load("acme"); l.Queued != 0 || l.StoredBytes != 150 {
		t.Fatalf("load = %+v", l)
	}
	if tk := f.get(1); tk.Usage == nil || tk.Usage.ExecSeconds != 120 || tk.Usage.CPUSeconds != 240 || tk.Usage.BytesIn != 100 || tk.Usage.BytesOut != 50 {
		t.Fatalf("task usage = %+v", tk.Usage)
	}
	// A period excludes earlier hours; storage since the last write counts
	// up to now within the period.
	h1, h2 := t0.Add(time.Hour), t0.Add(2*time.Hour)
	if u := f.s.UsageReport("acme", h1, h2, t0.Add(3*time.Hour)); u != (tenant.Usage{ByteSeconds: 150 * 3600}) {
		t.Fatalf("usage of the next hour = %+v", u)
	}
	// A write across hours splits the stored byte-seconds by hour: GC at
	// 14:30 integrates 12:03 → 14:30.
	if n := f.s.GC(f.next(), &state.GCRequest{Now: t0.Add(150 * time.Minute), Before: h1}); n != 3 {
		t.Fatalf("GC collected %d", n)
	}
	if u := f.s.UsageReport("acme", h1, h2, t0.Add(5*time.Hour)); u.ByteSeconds != 150*3600 {
		t.Fatalf("13:00-14:00 byte-seconds = %v, want %v", u.ByteSeconds, 150*3600)
	}
	if u := f.s.UsageReport("acme", h2, time.Time{}, t0.Add(5*time.Hour)); u.ByteSeconds != 150*1800 {
		t.Fatalf("from 14:00 byte-seconds = %v, want %v (nothing stored after GC)", u.ByteSeconds, 150*1800)
	}
	if l := f.s.Load("acme"); l.StoredBytes != 0 {
		t.Fatalf("load after GC = %+v", l)
	}
	if u := f.s.UsageReport("globex", time.Time{}, time.Time{}, t0); u != (tenant.Usage{}) {
		t.Fatal("a tenant without tasks has usage")
	}
	if !slices.Equal(f.s.UsageTenants(), []string{"acme"}) {
		t.Fatalf("usage tenants = %v", f.s.UsageTenants())
	}
}

// GPU-seconds are execution time × the requested GPUs: constraints.gpu
// when set, one for a gpu=true label alone, none otherwise; they enter the
// task's usage and the tenant's ledger from the attempts' own timestamps.
func TestUsageLedgerGPUSeconds(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.submit(
		mk(1, "acme", func(x *task.Task) { x.Constraints = &task.Constraints{GPU: 2} }),
		mk(2, "acme", func(x *task.Task) { x.Constraints = &task.Constraints{Labels: map[string]string{"gpu": "true"}} }),
		mk(3, "acme", func(x *task.Task) { x.Constraints = &task.Constraints{Labels: map[string]string{"gpu": "false"}} }),
		mk(4, "acme"),
	)
	f.lease(t0, "w1", ref(1, 1), ref(2, 1), ref(3, 1), ref(4, 1))
	for n := 1; n <= 4; n++ {
		f.start(t0, "w1", ref(n, 1))
		if o := f.complete(t0.Add(10*time.Second), "w1", ref(n, 1), `1`); !o.Accepted {
			t.Fatal(o.Reason)
		}
	}
	for n, want := range map[int]float64{1: 20, 2: 10, 3: 0, 4: 0} {
		if u := f.get(n).Usage; u == nil || u.GPUSeconds != want || u.ExecSeconds != 10 {
			t.Errorf("task %d usage = %+v, want gpu_seconds %v", n, u, want)
		}
	}
	u := f.s.UsageReport("acme", time.Time{}, time.Time{}, t0.Add(time.Minute))
	if u.GPUSeconds != 30 || u.CPUSeconds != 40 {
		t.Fatalf("ledger = %+v, want 30 GPU-seconds and 40 CPU-seconds", u)
	}
	c := tenant.Prices{CPUSecond: 1, GPUSecond: 10}.Price(u)
	if c.GPU != 300 || c.CPU != 40 || c.Total != 340 {
		t.Fatalf("cost = %+v", c)
	}
	// A snapshot written before GPU-seconds existed (no gpu_seconds
	// fields) restores with them zero and everything else equal.
	full := snap(t, f.s)
	old := regexp.MustCompile(`"gpu_seconds":[0-9.e+-]+,?`).ReplaceAll(full, nil)
	if len(old) == len(full) {
		t.Fatal("the snapshot carries no gpu_seconds to strip")
	}
	r := restored(t, old)
	ru := r.UsageReport("acme", time.Time{}, time.Time{}, t0.Add(time.Minute))
	if ru.GPUSeconds != 0 || ru.CPUSeconds != 40 || ru.TasksCompleted != 4 {
		t.Fatalf("old snapshot's usage = %+v", ru)
	}
}

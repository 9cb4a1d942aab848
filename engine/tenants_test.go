package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/tenant"
	"github.com/grey-distributed/grey/worker"
)

func mustTenant(t *testing.T, e *engine.Engine, id string, q tenant.Quota) {
	t.Helper()
	if _, err := e.CreateTenant(context.Background(), &tenant.Tenant{ID: id, Quota: q}); err != nil {
		t.Fatalf("create tenant %s: %v", id, err)
	}
}

func wantErr(t *testing.T, err error, code greyerr.Code, reason string) {
	t.Helper()
	var ge *greyerr.Error
	if !errors.As(err, &ge) || ge.Code != code || (reason != "" && ge.Reason != reason) {
		t.Fatalf("err = %v, want %s/%s", err, code, reason)
	}
}

func TestUnknownTenantRefusedUnlessAutoCreate(t *testing.T) {
	t.Parallel()
	strict := greytest.NewStrictNode(t, engine.Config{})
	_, err := strict.Engine.Submit(context.Background(), "ghost", []task.Spec{{Kind: "noop"}}, false)
	wantErr(t, err, greyerr.InvalidArgument, "unknown_tenant")
	if strict.Store.Len() != 0 {
		t.Fatal("task written for an unknown tenant")
	}
	mustTenant(t, strict.Engine, "ghost", tenant.Quota{})
	submit(t, strict.Engine, "ghost", task.Spec{Kind: "noop"})

	dev := greytest.NewNode(t, engine.Config{Tenants: engine.TenantsConfig{DefaultQuota: tenant.Quota{Weight: 3, MaxQueued: 7}}})
	submit(t, dev.Engine, "newbie", task.Spec{Kind: "noop"})
	got, err := dev.Engine.GetTenant(context.Background(), "newbie")
	if err != nil || !got.AutoCreated || got.Quota.Weight != 3 || got.Quota.MaxQueued != 7 {
		t.Fatalf("auto-created tenant = %+v, %v", got, err)
	}
}

func TestQuotaEnforcement(t *testing.T) {
	t.Parallel()
	n := greytest.NewStrictNode(t, engine.Config{})
	e := n.Engine
	ctx := context.Background()
	mustTenant(t, e, "small", tenant.Quota{MaxQueued: 3, AllowedKinds: []string{"noop", "echo"}, MaxPayloadBytes: 16, MaxTaskTimeout: task.Duration(time.Second)})
	mustTenant(t, e, "slow", tenant.Quota{SubmitRate: 1, SubmitBurst: 2})

	_, err := e.Submit(ctx, "small", []task.Spec{{Kind: "sleep"}}, false)
	wantErr(t, err, greyerr.PermissionDenied, "allowed_kinds")
	_, err = e.Submit(ctx, "small", []task.Spec{{Kind: "echo", Payload: json.RawMessage(`"` + strings.Repeat("x", 20) + `"`)}}, false)
	wantErr(t, err, greyerr.TooLarge, "max_payload_bytes")
	_, err = e.Submit(ctx, "small", []task.Spec{{Kind: "noop", Timeout: task.Duration(time.Minute)}}, false)
	wantErr(t, err, greyerr.InvalidArgument, "max_task_timeout")
	// Batches are all or nothing against max_queued.
	_, err = e.Submit(ctx, "small", []task.Spec{{Kind: "noop"}, {Kind: "noop"}, {Kind: "noop"}, {Kind: "noop"}}, true)
	wantErr(t, err, greyerr.ResourceExhausted, "max_queued")
	if n.Store.Len() != 0 {
		t.Fatalf("%d tasks written by refused submits", n.Store.Len())
	}
	submit(t, e, "small", task.Spec{Kind: "noop"}, task.Spec{Kind: "noop"}, task.Spec{Kind: "noop", IdempotencyKey: "k"})
	// An idempotent replay is not a new task: allowed at the limit.
	submit(t, e, "small", task.Spec{Kind: "noop", IdempotencyKey: "k"})
	_, err = e.Submit(ctx, "small", []task.Spec{{Kind: "noop"}}, false)
	wantErr(t, err, greyerr.ResourceExhausted, "max_queued")

	submit(t, e, "slow", task.Spec{Kind: "noop"}, task.Spec{Kind: "noop"})
	_, err = e.Submit(ctx, "slow", []task.Spec{{Kind: "noop"}}, false)
	wantErr(t, err, greyerr.ResourceExhausted, "submit_rate")
	var ge *greyerr.Error
	errors.As(err, &ge)
	if ge.RetryAfter <= 0 || ge.RetryAfter > time.Second {
		t.Fatalf("retry after %s", ge.RetryAfter)
	}
	_, err = e.Submit(ctx, "slow", []task.Spec{{Kind: "noop"}, {Kind: "noop"}, {Kind: "noop"}}, true)
	wantErr(t, err, greyerr.InvalidArgument, "submit_burst")

	// Draining the queue frees the quota.
	n.StartWorkers(t, worker.Options{Concurrency: 4}, nil)
	greytest.Eventually(t, 10*time.Second, func() bool { return n.Store.Load("small").Queued == 0 })
	submit(t, e, "small", task.Spec{Kind: "noop"})
}

func TestMaxRunningHoldsWithoutError(t *testing.T) {
	t.Parallel()
	n := greytest.NewStrictNode(t, engine.Config{})
	mustTenant(t, n.Engine, "capped", tenant.Quota{MaxRunning: 2})
	n.Engine.RegisterKinds("hold")
	var running, peak atomic.Int32
	release := make(chan struct{})
	h := worker.HandlerFunc(func(ctx context.Context, j *worker.Job) (any, error) {
		c := running.Add(1)
		for {
			p := peak.Load()
			if c <= p || peak.CompareAndSwap(p, c) {
				break
			}
		}
		<-release
		running.Add(-1)
		return nil, nil
	})
	var ids []string
	for i := 0; i < 6; i++ {
		ids = append(ids, submit(t, n.Engine, "capped", task.Spec{Kind: "hold"})[0].ID)
	}
	n.StartWorkers(t, worker.Options{Concurrency: 6}, map[string]worker.Handler{"hold": h})
	greytest.Eventually(t, 5*time.Second, func() bool { return running.Load() == 2 })
	time.Sleep(100 * time.Millisecond)
	close(release)
	for _, id := range ids {
		wait(t, n.Engine, "capped", id)
	}
	if peak.Load() != 2 {
		t.Fatalf("peak running %d, max_running 2", peak.Load())
	}
}

func TestUsageAndCost(t *testing.T) {
	t.Parallel()
	prices := tenant.Prices{CPUSecond: 2, GBMoved: 1e9, Task: 0.5}
	n := greytest.NewNode(t, engine.Config{Tenants: engine.TenantsConfig{Prices: prices, Environment: "test", CostTags: map[string]string{"team": "platform"}}})
	n.StartWorkers(t, worker.Options{Concurrency: 4}, nil)
	a := submit(t, n.Engine, "acme", task.Spec{Kind: "echo", Payload: json.RawMessage(`"abcd"`)})[0]
	b := submit(t, n.Engine, "acme", task.Spec{Kind: "sleep", Payload: json.RawMessage(`{"ms":50}`), Constraints: &task.Constraints{CPU: 2}})[0]
	f := submit(t, n.Engine, "acme", task.Spec{Kind: "fail", Payload: json.RawMessage(`{}`)})[0]
	submit(t, n.Engine, "other", task.Spec{Kind: "noop"})
	ga := wait(t, n.Engine, "acme", a.ID)
	gb := wait(t, n.Engine, "acme", b.ID)
	wait(t, n.Engine, "acme", f.ID)

	if ga.CostTags["grey-tenant-id"] != "acme" || ga.CostTags["grey-task-id"] != a.ID || ga.CostTags["grey-environment"] != "test" || ga.CostTags["team"] != "platform" {
		t.Fatalf("cost tags = %v", ga.CostTags)
	}
	if ga.Usage == nil || ga.Usage.BytesIn != 6 || ga.Usage.BytesOut != 6 || ga.CostUSD == nil {
		t.Fatalf("echo usage = %+v cost %v", ga.Usage, ga.CostUSD)
	}
	// 12 bytes moved at $1/byte, one task at $0.5, plus a little CPU.
	if *ga.CostUSD < 12.5 || *ga.CostUSD > 12.6 {
		t.Fatalf("echo cost = %v", *ga.CostUSD)
	}
	if gb.Usage.ExecSeconds < 0.05 || gb.Usage.CPUSeconds < 2*gb.Usage.ExecSeconds*0.999 {
		t.Fatalf("sleep usage = %+v", gb.Usage)
	}
	rep, err := n.Engine.Usage(context.Background(), "acme", time.Time{}, time.Time{})
	if err != nil || len(rep.Tenants) != 1 {
		t.Fatalf("usage: %v %+v", err, rep)
	}
	u := rep.Tenants[0].Usage
	if u.TasksSubmitted != 3 || u.TasksCompleted != 2 || u.TasksFailed != 1 || u.BytesIn != 6+9+2 || u.BytesOut < 6 {
		t.Fatalf("acme usage = %+v", u)
	}
	if c := rep.Tenants[0].Cost; c.Tasks != 1.5 || c.CPU < 2*0.05*2 {
		t.Fatalf("acme cost = %+v", c)
	}
	all, _ := n.Engine.Usage(context.Background(), "", time.Time{}, time.Time{})
	if len(all.Tenants) != 2 {
		t.Fatalf("all usage tenants = %d", len(all.Tenants))
	}
	// An hour-window in the past holds nothing.
	past, _ := n.Engine.Usage(context.Background(), "acme", time.Now().Add(-3*time.Hour), time.Now().Add(-2*time.Hour))
	if past.Tenants[0].Usage.TasksSubmitted != 0 {
		t.Fatal("usage leaked into a past window")
	}
	// Usage and tenants survive a restart.
	n.Restart(true)
	rep2, _ := n.Engine.Usage(context.Background(), "acme", time.Time{}, time.Time{})
	if rep2.Tenants[0].Usage.TasksSubmitted != 3 || rep2.Tenants[0].Usage.BytesIn != u.BytesIn {
		t.Fatalf("usage after restart = %+v", rep2.Tenants[0].Usage)
	}
}

func TestTenantCRUDBadInput(t *testing.T) {
	t.Parallel()
	n := greytest.NewStrictNode(t, engine.Config{})
	e := n.Engine
	ctx := context.Background()
	bad := []tenant.Tenant{
		{ID: "../etc"},
		{ID: strings.Repeat("a", 70)},
		{ID: "Upper"},
		{ID: "ok", Quota: tenant.Quota{Weight: -1}},
		{ID: "ok", Quota: tenant.Quota{Weight: 5000}},
		{ID: "ok", Quota: tenant.Quota{MaxQueued: -5}},
		{ID: "ok", Quota: tenant.Quota{SubmitRate: 10}},
		{ID: "ok", Quota: tenant.Quota{AllowedKinds: []string{"Bad Kind"}}},
	}
	for _, b := range bad {
		_, err := e.CreateTenant(ctx, &b)
		wantErr(t, err, greyerr.InvalidArgument, "")
	}
	if len(e.ListTenants(ctx)) != 0 {
		t.Fatal("bad input created a tenant")
	}
	mustTenant(t, e, "acme", tenant.Quota{Weight: 2})
	_, err := e.CreateTenant(ctx, &tenant.Tenant{ID: "acme"})
	wantErr(t, err, greyerr.AlreadyExists, "")
	_, err = e.UpdateTenant(ctx, &tenant.Tenant{ID: "nobody"})
	wantErr(t, err, greyerr.NotFound, "")
	up, err := e.UpdateTenant(ctx, &tenant.Tenant{ID: "acme", Quota: tenant.Quota{Weight: 4, MaxRunning: 3}})
	if err != nil || up.Quota.Weight != 4 || up.CreatedAt.IsZero() {
		t.Fatalf("update: %v %+v", err, up)
	}
	id := submit(t, e, "acme", task.Spec{Kind: "noop"})[0].ID
	_, err = e.DeleteTenant(ctx, "acme")
	wantErr(t, err, greyerr.FailedPrecondition, "")
	if _, err := e.Cancel(ctx, "acme", id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.DeleteTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	_, err = e.GetTenant(ctx, "acme")
	wantErr(t, err, greyerr.NotFound, "")
}

func TestRefusedSubmitGivesRateTokensBack(t *testing.T) {
	t.Parallel()
	n := greytest.NewStrictNode(t, engine.Config{})
	mustTenant(t, n.Engine, "slow", tenant.Quota{SubmitRate: 0.001, SubmitBurst: 1})
	// The state machine refuses this one (its parent does not exist)...
	_, err := n.Engine.Submit(context.Background(), "slow", []task.Spec{{Kind: "noop", DependsOn: []string{"0190b1b2-0000-7000-8000-000000000000"}}}, false)
	wantErr(t, err, greyerr.InvalidArgument, "")
	// ...so the only token is still there for a valid submit.
	submit(t, n.Engine, "slow", task.Spec{Kind: "noop"})
	_, err = n.Engine.Submit(context.Background(), "slow", []task.Spec{{Kind: "noop"}}, false)
	wantErr(t, err, greyerr.ResourceExhausted, "submit_rate")
}

package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"math"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/api"
	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/task"
	tenants "github.com/grey-distributed/grey/tenant"
	"github.com/grey-distributed/grey/worker"
)

// The tenant and cost commands run against a real single-node engine behind
// the real API, so that what greyctl sends is what the server accepts.

const testAdminToken = "0123456789abcdef"

func realServer(t *testing.T, cfg engine.Config, token string) (*greytest.Node, map[string]string) {
	t.Helper()
	n := greytest.NewNode(t, cfg)
	srv := httptest.NewServer(api.New(n.Engine, api.Options{AdminToken: token, Logger: greytest.Logger(t)}))
	t.Cleanup(srv.Close)
	env := map[string]string{"GREY_SERVER": srv.URL}
	if token != "" {
		env["GREY_TOKEN"] = token
	}
	return n, env
}

func without(env map[string]string, key string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		if k != key {
			out[k] = v
		}
	}
	return out
}

func TestTenantCommands(t *testing.T) {
	t.Parallel()
	n, env := realServer(t, engine.Config{}, testAdminToken)
	ctx := context.Background()

	// The admin token: missing or wrong is refused.
	if r := greyctl(t, without(env, "GREY_TOKEN"), "tenant", "list"); r.code != 1 || !strings.Contains(r.stderr, "unauthenticated") {
		t.Errorf("list without a token: %+v", r)
	}
	if r := greyctl(t, env, "--token", "wrong", "tenant", "create", "x"); r.code != 1 || !strings.Contains(r.stderr, "unauthenticated") {
		t.Errorf("create with a wrong token: %+v", r)
	}
	if got := n.Engine.ListTenants(ctx); len(got) != 0 {
		t.Fatalf("refused requests created %v", got)
	}

	// create sends every flag.
	r := greyctl(t, env, "tenant", "create", "acme", "--weight", "2.5", "--max-running", "3", "--max-queued", "100",
		"--submit-rate", "50", "--submit-burst", "10", "--max-payload-bytes", "4096", "--max-storage-bytes", "1048576",
		"--allowed-kinds", "noop,echo", "--max-task-timeout", "1m", "-o", "json")
	var tn tenants.Tenant
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &tn) != nil {
		t.Fatalf("create: %+v", r)
	}
	want := tenants.Quota{Weight: 2.5, MaxRunning: 3, MaxQueued: 100, SubmitRate: 50, SubmitBurst: 10, MaxPayloadBytes: 4096,
		MaxStorageBytes: 1 << 20, AllowedKinds: []string{"noop", "echo"}, MaxTaskTimeout: task.Duration(time.Minute)}
	stored, err := n.Engine.GetTenant(ctx, "acme")
	if err != nil || !sameQuota(stored.Quota, want) || !sameQuota(tn.Quota, want) || tn.ID != "acme" {
		t.Fatalf("created %+v, stored %+v (%v), want quota %+v", tn, stored, err, want)
	}
	if r := greyctl(t, env, "tenant", "create", "acme"); r.code != 1 || !strings.Contains(r.stderr, "already_exists") {
		t.Errorf("duplicate create: %+v", r)
	}
	// Without flags: no limits, weight 1.
	if r := greyctl(t, env, "tenant", "create", "plain"); r.code != 0 || !strings.Contains(r.stdout, "Weight:") {
		t.Errorf("plain create: %+v", r)
	}
	if p, _ := n.Engine.GetTenant(ctx, "plain"); p == nil || !sameQuota(p.Quota, tenants.Quota{Weight: 1}) {
		t.Errorf("plain tenant = %+v", p)
	}

	// update changes only the given flags.
	r = greyctl(t, env, "tenant", "update", "acme", "--max-queued", "7", "--weight", "4")
	if r.code != 0 || !strings.Contains(r.stdout, "Max queued:         7") {
		t.Fatalf("update: %+v", r)
	}
	want.MaxQueued, want.Weight = 7, 4
	if got, _ := n.Engine.GetTenant(ctx, "acme"); !sameQuota(got.Quota, want) {
		t.Errorf("after update: %+v, want %+v", got.Quota, want)
	}
	// Zero lifts a limit; an empty kind list allows every kind.
	if r := greyctl(t, env, "tenant", "update", "acme", "--submit-rate", "0", "--submit-burst", "0", "--allowed-kinds", ""); r.code != 0 {
		t.Fatalf("update to no limits: %+v", r)
	}
	want.SubmitRate, want.SubmitBurst, want.AllowedKinds = 0, 0, nil
	if got, _ := n.Engine.GetTenant(ctx, "acme"); !sameQuota(got.Quota, want) {
		t.Errorf("after lifting limits: %+v, want %+v", got.Quota, want)
	}
	for _, args := range [][]string{
		{"tenant", "update", "acme"},                                 // no quota flag
		{"tenant", "update", "acme", "--max-task-timeout", "-1s"},    // negative
		{"tenant", "update", "acme", "--max-queued", "many"},         // not a number
		{"tenant", "create"},                                         // no id
		{"tenant", "get", "a", "b"},                                  // two ids
		{"tenant", "list", "-o", "csv"},                              // csv is for cost report only
		{"tenant", "create", "x", "--allowed-kinds", "a", "--bogus"}, // unknown flag
	} {
		if r := greyctl(t, env, args...); r.code != 2 {
			t.Errorf("greyctl %q = %+v, want exit code 2", args, r)
		}
	}
	// Server-side validation comes back with its field.
	if r := greyctl(t, env, "tenant", "update", "acme", "--weight", "-1"); r.code != 1 || !strings.Contains(r.stderr, "field quota.weight") {
		t.Errorf("bad weight: %+v", r)
	}
	if r := greyctl(t, env, "tenant", "create", "Not/Valid"); r.code != 1 || !strings.Contains(r.stderr, "invalid_argument") {
		t.Errorf("bad id: %+v", r)
	}
	if r := greyctl(t, env, "tenant", "update", "nobody", "--weight", "2"); r.code != 1 || !strings.Contains(r.stderr, "not_found") {
		t.Errorf("update unknown: %+v", r)
	}
	if got, _ := n.Engine.GetTenant(ctx, "acme"); !sameQuota(got.Quota, want) {
		t.Errorf("after refused updates: %+v, want %+v", got.Quota, want)
	}

	// get and list.
	r = greyctl(t, env, "tenant", "get", "acme")
	if r.code != 0 || !strings.Contains(r.stdout, "Max task timeout:   1m0s") || !strings.Contains(r.stdout, "Allowed kinds:      (all)") {
		t.Errorf("get: %+v", r)
	}
	r = greyctl(t, env, "tenant", "list")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.HasPrefix(lines[1], "acme ") || !strings.HasPrefix(lines[2], "plain ") {
		t.Errorf("list: %+v", r)
	}
	r = greyctl(t, env, "tenant", "list", "-o", "json")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 2 || !strings.HasPrefix(r.stdout, `{"id":"acme"`) {
		t.Errorf("list json: %+v", r)
	}

	// A quota refusal names its reason.
	greyctl(t, env, "tenant", "update", "acme", "--allowed-kinds", "noop")
	r = greyctl(t, env, "--tenant", "acme", "task", "submit", "--kind", "echo")
	if r.code != 1 || !strings.Contains(r.stderr, "permission_denied") || !strings.Contains(r.stderr, "[reason: allowed_kinds]") {
		t.Errorf("refused submit: %+v", r)
	}

	// delete.
	if r := greyctl(t, env, "tenant", "delete", "plain"); r.code != 0 || r.stdout != "deleted tenant plain\n" {
		t.Errorf("delete: %+v", r)
	}
	if r := greyctl(t, env, "tenant", "get", "plain"); r.code != 1 || !strings.Contains(r.stderr, "not_found") {
		t.Errorf("get deleted: %+v", r)
	}
	if r := greyctl(t, env, "tenant", "delete", "plain", "-o", "json"); r.code != 1 {
		t.Errorf("delete twice: %+v", r)
	}
}

func sameQuota(a, b tenants.Quota) bool {
	ak, bk := a.AllowedKinds, b.AllowedKinds
	a.AllowedKinds, b.AllowedKinds = nil, nil
	aj, _ := json.Marshal(a)
	bj, _ := json.Marshal(b)
	return string(aj) == string(bj) && slices.Equal(ak, bk)
}

func TestCostReport(t *testing.T) {
	t.Parallel()
	prices := tenants.Prices{CPUSecond: 2, GPUSecond: 3, GBMoved: 1e9, Task: 0.25}
	n, env := realServer(t, engine.Config{Tenants: engine.TenantsConfig{Prices: prices}}, "")
	n.StartWorkers(t, worker.Options{Concurrency: 4}, nil)
	for _, tc := range []struct{ tenant, kind, payload string }{
		{"acme", "echo", `"abcd"`}, {"acme", "fail", `{}`}, {"acme", "noop", ""}, {"globex", "echo", `[1,2]`},
	} {
		args := []string{"--tenant", tc.tenant, "task", "submit", "--kind", tc.kind, "--wait"}
		if tc.tenant == "globex" {
			args = append(args, "--gpu", "2") // GPU-seconds: 2 × its execution time
		}
		if tc.payload != "" {
			args = append(args, "--payload", tc.payload)
		}
		greyctl(t, env, args...)
	}

	// CSV: the columns, a row per tenant and the total.
	r := greyctl(t, env, "cost", "report", "-o", "csv", "--from", "-1h", "--to", "+1h")
	if r.code != 0 {
		t.Fatalf("cost report csv: %+v", r)
	}
	recs, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if err != nil || len(recs) != 4 {
		t.Fatalf("csv = %q (%v)", r.stdout, err)
	}
	if !slices.Equal(recs[0], costColumns) || len(costColumns) != 16 || recs[1][0] != "acme" || recs[2][0] != "globex" || recs[3][0] != "TOTAL" {
		t.Fatalf("csv rows = %q", recs)
	}
	col := func(row []string, name string) float64 {
		t.Helper()
		v, err := strconv.ParseFloat(row[slices.Index(costColumns, name)], 64)
		if err != nil {
			t.Fatalf("%s = %q: %v", name, row[slices.Index(costColumns, name)], err)
		}
		return v
	}
	acme, globex, total := recs[1], recs[2], recs[3]
	if col(acme, "tasks_submitted") != 3 || col(acme, "completed") != 2 || col(acme, "failed") != 1 || col(acme, "bytes_in") != 6+2 ||
		col(acme, "bytes_out") != 6 || col(globex, "tasks_submitted") != 1 || col(globex, "bytes_in") != 5 {
		t.Errorf("rows = %q", recs[1:3])
	}
	if col(acme, "tasks_usd") != 0.75 || math.Abs(col(acme, "transfer_usd")-14) > 1e-9 || math.Abs(col(acme, "cpu_usd")-2*col(acme, "cpu_seconds")) > 1e-9 {
		t.Errorf("acme costs = %q", acme)
	}
	if col(acme, "gpu_seconds") != 0 || col(globex, "gpu_seconds") <= 0 || math.Abs(col(globex, "gpu_usd")-3*col(globex, "gpu_seconds")) > 1e-9 ||
		math.Abs(col(globex, "gpu_seconds")-2*col(globex, "cpu_seconds")) > 1e-9 {
		t.Errorf("GPU-seconds: acme %q, globex %q (globex asked for 2 GPUs, 1 CPU)", acme, globex)
	}
	for _, c := range costColumns[1:] {
		if math.Abs(col(total, c)-(col(acme, c)+col(globex, c))) > 1e-9 {
			t.Errorf("TOTAL %s = %v, want %v + %v", c, col(total, c), col(acme, c), col(globex, c))
		}
	}

	// Table: the same columns, upper case, and the period and prices.
	r = greyctl(t, env, "cost", "report")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "TENANT  TASKS_SUBMITTED") || !strings.Contains(r.stdout, "\nTOTAL ") ||
		!strings.Contains(r.stdout, "TOTAL_USD") || !strings.Contains(r.stdout, "$0.25/task") {
		t.Errorf("cost report table: %+v", r)
	}

	// JSON, one tenant; GREY_TENANT alone does not filter, --tenant does.
	env["GREY_TENANT"] = "globex"
	r = greyctl(t, env, "cost", "report", "-o", "json")
	var rep client.UsageReport
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rep) != nil || len(rep.Tenants) != 2 {
		t.Errorf("cost report json: %+v", r)
	}
	r = greyctl(t, env, "cost", "report", "-o", "json", "--tenant", "acme", "--from", "2020-01-01T00:00:00Z")
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rep) != nil || len(rep.Tenants) != 1 || rep.Tenants[0].TenantID != "acme" ||
		rep.Tenants[0].Usage.TasksSubmitted != 3 || rep.From == nil || rep.To != nil || rep.Prices != prices {
		t.Errorf("cost report json for acme: %+v %+v", r, rep)
	}
	// A window in the past holds nothing.
	r = greyctl(t, env, "cost", "report", "-o", "csv", "--from", "-5h", "--to", "-3h")
	if recs, _ := csv.NewReader(strings.NewReader(r.stdout)).ReadAll(); r.code != 0 || len(recs) != 4 || col(recs[3], "tasks_submitted") != 0 || col(recs[3], "total_usd") != 0 {
		t.Errorf("past window: %+v", r)
	}

	for _, args := range [][]string{
		{"cost", "report", "--from", "yesterday"},
		{"cost", "report", "--to", "2026-13-01T00:00:00Z"},
		{"cost", "report", "--from", "+1h", "--to", "-1h"},
		{"cost", "report", "-o", "yaml"},
		{"cost", "report", "extra"},
		{"cost", "nope"},
	} {
		if r := greyctl(t, env, args...); r.code != 2 {
			t.Errorf("greyctl %q = %+v, want exit code 2", args, r)
		}
	}
	if r := greyctl(t, env, "cost", "report", "--tenant", "Bad!"); r.code != 2 {
		t.Errorf("bad tenant: %+v", r)
	}
}

func TestParseWhen(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                            {},
		"now":                         now,
		"-24h":                        now.Add(-24 * time.Hour),
		"+30m":                        now.Add(30 * time.Minute),
		"2026-01-02T03:04:05Z":        time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		"2026-01-02T03:04:05.5+01:00": time.Date(2026, 1, 2, 2, 4, 5, 5e8, time.UTC),
	} {
		got, err := parseWhen("--from", in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"24h", "-soon", "yesterday", "2026-01-02"} {
		if _, err := parseWhen("--from", bad, now); err == nil || exitCodeOf(err) != exitUsage {
			t.Errorf("parseWhen(%q) = %v, want a usage error", bad, err)
		}
	}
}

func TestBenchNoisyNeighbor(t *testing.T) {
	t.Parallel()
	f := newFakeGrey(t)
	env := serverEnv(f)

	start := time.Now()
	r := greyctl(t, env, "bench", "--scenario", "noisy-neighbor", "--a-tasks", "2500", "--b-tasks", "20", "--concurrency", "3", "-q")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("noisy-neighbor: %+v", r)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatal(err)
	}
	keys := []string{"scenario", "b_p50_ms", "b_p99_ms", "b_max_ms", "a_seconds"}
	if len(res) != len(keys) || res["scenario"] != "noisy-neighbor" {
		t.Fatalf("result = %s", r.stdout)
	}
	for _, k := range keys[1:] {
		if v, ok := res[k].(float64); !ok || v < 0 {
			t.Errorf("%s = %v in %s", k, res[k], r.stdout)
		}
	}
	if res["b_p50_ms"].(float64) > res["b_p99_ms"].(float64) || res["b_p99_ms"].(float64) > res["b_max_ms"].(float64) {
		t.Errorf("percentiles out of order: %s", r.stdout)
	}

	// Every task of A and B was created; B's 10ms apart.
	f.mu.Lock()
	per := map[string]int{}
	var bCreated []time.Time
	for _, id := range f.order {
		tk := f.tasks[id]
		per[tk.TenantID]++
		if tk.TenantID == quietTenant {
			bCreated = append(bCreated, tk.CreatedAt)
		}
	}
	f.mu.Unlock()
	if per[noisyTenant] != 2500 || per[quietTenant] != 20 || len(per) != 2 {
		t.Errorf("tasks per tenant = %v", per)
	}
	slices.SortFunc(bCreated, func(a, b time.Time) int { return a.Compare(b) })
	// B is paced, one submit every 10 ms: its 20th cannot reach the server
	// before 190 ms into the run (a causal bound; a loaded machine only
	// makes it later, so this does not time the code).
	if last := bCreated[len(bCreated)-1]; last.Sub(start) < 190*time.Millisecond {
		t.Errorf("B's 20th submit arrived %s into the run: B was not paced every 10ms", last.Sub(start))
	}

	// --b-tasks 0: A alone, the b_* fields null.
	r = greyctl(t, env, "bench", "--scenario", "noisy-neighbor", "--a-tasks", "10", "--b-tasks", "0", "-q")
	if r.code != 0 || !strings.Contains(r.stdout, `"b_p50_ms":null,"b_p99_ms":null,"b_max_ms":null,"a_seconds":`) {
		t.Errorf("A alone: %+v", r)
	}
	for _, args := range [][]string{
		{"bench", "--scenario", "noisy-neighbor", "--a-tasks", "0"},
		{"bench", "--scenario", "noisy-neighbor", "--b-tasks", "-1"},
	} {
		if r := greyctl(t, env, args...); r.code != 2 {
			t.Errorf("greyctl %q = %+v, want exit code 2", args, r)
		}
	}
	// Failed tasks: the line is still printed, exit code 1.
	r = greyctl(t, env, "bench", "--scenario", "noisy-neighbor", "--kind", "fail", "--a-tasks", "5", "--b-tasks", "2", "-q")
	if r.code != 1 || strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stderr, "failed") {
		t.Errorf("noisy-neighbor with failures: %+v", r)
	}
}

// TestBenchQuotas: the bench rides out rate limits, but a batch larger than
// the tenant's submit_burst, which can never pass, ends the run at once.
func TestBenchQuotas(t *testing.T) {
	t.Parallel()
	n, env := realServer(t, engine.Config{}, "")
	n.StartWorkers(t, worker.Options{Concurrency: 8}, nil)
	ctx := context.Background()
	if _, err := n.Engine.CreateTenant(ctx, &tenants.Tenant{ID: "bench-1", Quota: tenants.Quota{SubmitRate: 100, SubmitBurst: 10}}); err != nil {
		t.Fatal(err)
	}
	// (Retry-After has whole seconds: each refusal costs the bench 1s.)
	r := greyctl(t, env, "bench", "--tasks", "20", "--batch", "10", "--concurrency", "1", "--timeout", "30s", "-q")
	if r.code != 0 || !strings.Contains(r.stdout, `"tasks":20`) {
		t.Errorf("bench under a submit rate: %+v", r)
	}
	start := time.Now()
	r = greyctl(t, env, "bench", "--tasks", "30", "--batch", "20", "--timeout", "30s", "-q")
	if r.code != 1 || !strings.Contains(r.stderr, "[reason: submit_burst]") || time.Since(start) > 10*time.Second {
		t.Errorf("bench with batches over the burst: %+v after %s", r, time.Since(start))
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// fakeGrey emulates the HTTP API for greyctl: tasks of kind "slow" stay
// pending, kind "fail" fail at once, every other kind completes at once. The
// completion event is sent to watchers before the submit response, the worst
// case of the race the benchmark must handle.
type fakeGrey struct {
	srv *httptest.Server

	mu       sync.Mutex
	seq      int
	tasks    map[string]*task.Task
	order    []string
	specs    []task.Spec // as received
	tenants  map[string]bool
	watchers map[chan []byte]string // → tenant
}

func newFakeGrey(t *testing.T) *fakeGrey {
	t.Helper()
	f := &fakeGrey{tasks: map[string]*task.Task{}, tenants: map[string]bool{}, watchers: map[chan []byte]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/tasks", func(w http.ResponseWriter, r *http.Request) {
		var s task.Spec
		if err := json.NewDecoder(r.Body).Decode(&s); err != nil {
			reply(w, 0, greyerr.Invalid("", "%v", err))
			return
		}
		ts, err := f.create(tenant(r), []task.Spec{s})
		if err != nil {
			reply(w, 0, err)
			return
		}
		reply(w, http.StatusCreated, ts[0])
	})
	mux.HandleFunc("POST /api/v1/tasks/batch", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Tasks []task.Spec `json:"tasks"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			reply(w, 0, greyerr.Invalid("", "%v", err))
			return
		}
		if len(req.Tasks) == 0 || len(req.Tasks) > 1000 {
			reply(w, 0, greyerr.Invalid("tasks", "1..1000"))
			return
		}
		ts, err := f.create(tenant(r), req.Tasks)
		if err != nil {
			reply(w, 0, err)
			return
		}
		reply(w, http.StatusCreated, map[string]any{"tasks": ts})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.HandleFunc("GET /api/v1/tasks", f.list)
	mux.HandleFunc("GET /api/v1/tasks/watch", f.watch)
	mux.HandleFunc("GET /api/v1/tasks/{id}", func(w http.ResponseWriter, r *http.Request) {
		if t := f.get(w, r); t != nil {
			reply(w, http.StatusOK, t)
		}
	})
	mux.HandleFunc("GET /api/v1/tasks/{id}/wait", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("timeout"))
		if err != nil {
			reply(w, 0, greyerr.Invalid("timeout", "%v", err))
			return
		}
		deadline := time.Now().Add(d)
		for {
			t := f.get(w, r)
			if t == nil {
				return
			}
			if t.Status.Terminal() || time.Now().After(deadline) {
				reply(w, http.StatusOK, t)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	})
	mux.HandleFunc("DELETE /api/v1/tasks/{id}", func(w http.ResponseWriter, r *http.Request) {
		t := f.get(w, r)
		if t == nil {
			return
		}
		if t.Status.Terminal() {
			reply(w, 0, greyerr.New(greyerr.FailedPrecondition, "task is %s", t.Status))
			return
		}
		f.mu.Lock()
		f.finish(f.tasks[t.ID], task.Cancelled)
		c := f.tasks[t.ID].Clone()
		f.mu.Unlock()
		reply(w, http.StatusOK, c)
	})
	mux.HandleFunc("GET /api/v1/cluster", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"node_id":"n1","state":"leader","leader_id":"n1","leader_addr":"127.0.0.1:8080","term":2,
			"commit_index":9,"applied_index":9,"last_snapshot_index":0,"quorum_size":1,
			"members":[{"id":"n1","raft_addr":"127.0.0.1:7000","api_addr":"127.0.0.1:8080","role":"server","suffrage":"voter","state":"leader","last_contact":null}],
			"tasks":{"pending":2,"completed":5}}`)
	})
	mux.HandleFunc("GET /api/v1/cluster/nodes", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"nodes":[{"id":"n1","role":"server","suffrage":"voter","state":"leader","last_contact":null},
			{"id":"w1","role":"worker","state":"unknown","last_contact":"2026-01-02T03:04:05Z","labels":{"gpu":"true"}}]}`)
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func tenant(r *http.Request) string {
	if t := r.Header.Get("X-Grey-Tenant"); t != "" {
		return t
	}
	return "default"
}

func reply(w http.ResponseWriter, status int, v any) {
	if e, ok := v.(*greyerr.Error); ok {
		status = greyerr.HTTPStatus(e.Code)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeGrey) create(tenant string, specs []task.Spec) ([]*task.Task, *greyerr.Error) {
	for i := range specs {
		prefix := ""
		if len(specs) > 1 {
			prefix = fmt.Sprintf("tasks[%d].", i)
		}
		if err := specs[i].Validate(prefix, task.Limits{}); err != nil {
			return nil, err.(*greyerr.Error)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tenants[tenant] = true
	out := make([]*task.Task, 0, len(specs))
	for _, s := range specs {
		f.specs = append(f.specs, s)
		f.seq++
		now := time.Now().UTC()
		t := &task.Task{ID: fmt.Sprintf("00000000-0000-7000-8000-%012d", f.seq), TenantID: tenant, Spec: s,
			Status: task.Pending, CreatedAt: now, UpdatedAt: now, Index: uint64(f.seq)}
		f.tasks[t.ID] = t
		f.order = append(f.order, t.ID)
		out = append(out, t.Clone())
		switch s.Kind {
		case "slow":
		case "fail":
			f.finish(t, task.Failed)
		default:
			f.finish(t, task.Completed)
		}
	}
	return out, nil
}

// finish ends a task and notifies watchers; f.mu is held.
func (f *fakeGrey) finish(t *task.Task, st task.Status) {
	now := time.Now().UTC()
	t.Status, t.UpdatedAt, t.FinishedAt = st, now, &now
	if st != task.Cancelled {
		t.StartedAt = &now
	}
	if st == task.Failed {
		t.Error = &task.Error{Message: "boom", Code: "executor"}
	}
	ev := t.Clone()
	ev.Payload, ev.Result = nil, nil
	b, _ := json.Marshal(ev)
	for ch, tn := range f.watchers {
		if tn == t.TenantID {
			ch <- b
		}
	}
}

func (f *fakeGrey) get(w http.ResponseWriter, r *http.Request) *task.Task {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tasks[r.PathValue("id")]
	if t == nil || t.TenantID != tenant(r) {
		reply(w, 0, greyerr.New(greyerr.NotFound, "task %s not found", r.PathValue("id")))
		return nil
	}
	return t.Clone()
}

func (f *fakeGrey) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 100
	if s := q.Get("limit"); s != "" {
		limit, _ = strconv.Atoi(s)
	}
	start, _ := strconv.Atoi(q.Get("cursor"))
	statuses := map[string]bool{}
	for _, s := range strings.Split(q.Get("status"), ",") {
		if s != "" {
			statuses[s] = true
		}
	}
	f.mu.Lock()
	var match []*task.Task
	for i := len(f.order) - 1; i >= 0; i-- {
		t := f.tasks[f.order[i]]
		if t.TenantID == tenant(r) && (len(statuses) == 0 || statuses[string(t.Status)]) && (q.Get("kind") == "" || q.Get("kind") == t.Kind) {
			match = append(match, t.Clone())
		}
	}
	f.mu.Unlock()
	end := min(start+limit, len(match))
	page := map[string]any{"tasks": match[min(start, end):end]}
	if end < len(match) {
		page["next_cursor"] = strconv.Itoa(end)
	}
	reply(w, http.StatusOK, page)
}

func (f *fakeGrey) watch(w http.ResponseWriter, r *http.Request) {
	ch := make(chan []byte, 100000)
	f.mu.Lock()
	f.watchers[ch] = tenant(r)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.watchers, ch)
		f.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case b := <-ch:
			fmt.Fprintf(w, "event: task\ndata: %s\n\n", b)
			w.(http.Flusher).Flush()
		}
	}
}

// result of one greyctl run.
type result struct {
	code           int
	stdout, stderr string
}

// greyctl runs the command against url with the given environment.
func greyctl(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	return greyctlIn(t, env, "", args...)
}

// greyctlIn runs greyctl with stdin. Unless env names GREY_CONFIG_DIR, the
// config directory is a fresh temporary one, so no test reads the login
// stored by the user running it.
func greyctlIn(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	dir := ""
	getenv := func(k string) string {
		if v, ok := env[k]; ok || k != "GREY_CONFIG_DIR" {
			return v
		}
		if dir == "" {
			dir = t.TempDir()
		}
		return dir
	}
	code := run(t.Context(), args, strings.NewReader(stdin), &out, &errb, getenv)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

func serverEnv(f *fakeGrey) map[string]string { return map[string]string{"GREY_SERVER": f.srv.URL} }

func TestTaskCommands(t *testing.T) {
	t.Parallel()
	f := newFakeGrey(t)
	env := serverEnv(f)

	// submit prints the id, and sends every flag.
	r := greyctl(t, env, "task", "submit", "--kind", "slow", "--payload", `{"n":1}`, "--priority", "9",
		"--label", "gpu=true", "--label", "zone=a", "--gpu", "2", "--header", "traceparent=x", "--timeout", "30s",
		"--max-retries", "2", "--run-at", "+10s", "--idempotency-key", "k1")
	if r.code != 0 {
		t.Fatalf("submit: %+v", r)
	}
	id := strings.TrimSpace(r.stdout)
	if !task.ValidID(id) {
		t.Fatalf("submit printed %q, want an id", r.stdout)
	}
	f.mu.Lock()
	s := f.specs[len(f.specs)-1]
	f.mu.Unlock()
	if s.Kind != "slow" || string(s.Payload) != `{"n":1}` || s.Prio() != 9 || s.Labels()["zone"] != "a" || s.GPU() != 2 ||
		s.Headers["traceparent"] != "x" || s.Timeout.D() != 30*time.Second || s.Retry.Retries() != 2 ||
		s.RunAt == nil || time.Until(*s.RunAt) < 5*time.Second || s.IdempotencyKey != "k1" {
		t.Errorf("spec sent = %+v", s)
	}

	// get, in both formats.
	r = greyctl(t, env, "task", "get", id)
	if r.code != 0 || !strings.Contains(r.stdout, "Status:") || !strings.Contains(r.stdout, "pending") || !strings.Contains(r.stdout, "gpu=true,zone=a") {
		t.Errorf("get table: %+v", r)
	}
	r = greyctl(t, env, "task", "get", id, "-o", "json")
	var got task.Task
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &got) != nil || got.ID != id || !strings.Contains(r.stdout, "\n  \"id\"") {
		t.Errorf("get json: %+v", r)
	}

	// wait times out on a pending task.
	r = greyctl(t, env, "task", "wait", id, "--timeout", "200ms")
	if r.code != 1 || !strings.Contains(r.stderr, "timed out") || !strings.Contains(r.stderr, "pending") {
		t.Errorf("wait timeout: %+v", r)
	}

	// cancel, then wait reports the cancellation with exit code 1.
	r = greyctl(t, env, "task", "cancel", id, "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"status": "cancelled"`) {
		t.Errorf("cancel: %+v", r)
	}
	r = greyctl(t, env, "task", "cancel", id)
	if r.code != 1 || !strings.Contains(r.stderr, "failed_precondition") {
		t.Errorf("second cancel: %+v", r)
	}
	r = greyctl(t, env, "task", "wait", id)
	if r.code != 1 || !strings.Contains(r.stderr, "cancelled") {
		t.Errorf("wait cancelled: %+v", r)
	}

	// submit --wait: success, and failure with exit code 1.
	r = greyctl(t, env, "task", "submit", "--kind", "noop", "--wait", "-o", "json")
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &got) != nil || got.Status != task.Completed {
		t.Errorf("submit --wait: %+v", r)
	}
	r = greyctl(t, env, "task", "submit", "--kind", "fail", "--wait")
	if r.code != 1 || !strings.Contains(r.stdout, "failed") || !strings.Contains(r.stderr, "boom") {
		t.Errorf("submit --wait failing: %+v", r)
	}

	// server-side validation errors come back with their field.
	r = greyctl(t, env, "task", "submit", "--kind", "Bad Kind")
	if r.code != 1 || !strings.Contains(r.stderr, "invalid_argument") || !strings.Contains(r.stderr, "field kind") {
		t.Errorf("submit invalid: %+v", r)
	}
	r = greyctl(t, env, "task", "get", "00000000-0000-7000-8000-999999999999")
	if r.code != 1 || !strings.Contains(r.stderr, "not_found") {
		t.Errorf("get unknown: %+v", r)
	}
}

func TestTaskList(t *testing.T) {
	t.Parallel()
	f := newFakeGrey(t)
	env := serverEnv(f)
	env["GREY_TENANT"] = "lister"
	for i := range 5 {
		kind := "noop"
		if i%2 == 0 {
			kind = "slow"
		}
		if r := greyctl(t, env, "task", "submit", "--kind", kind); r.code != 0 {
			t.Fatalf("submit: %+v", r)
		}
	}
	r := greyctl(t, env, "task", "list", "--limit", "2")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(r.stderr, "--cursor 2") {
		t.Errorf("list page: %+v", r)
	}
	r = greyctl(t, env, "task", "list", "--limit", "2", "--all", "-o", "json")
	lines = strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 5 || r.stderr != "" {
		t.Fatalf("list --all: %+v", r)
	}
	for _, l := range lines {
		var tk task.Task
		if err := json.Unmarshal([]byte(l), &tk); err != nil || tk.TenantID != "lister" {
			t.Errorf("line %q: %v", l, err)
		}
	}
	r = greyctl(t, env, "task", "list", "--status", "pending", "--kind", "slow", "-o", "json")
	if n := strings.Count(r.stdout, "\n"); r.code != 0 || n != 3 {
		t.Errorf("list filtered: %d lines, %+v", n, r)
	}
	r = greyctl(t, env, "task", "list", "--status", "done")
	if r.code != 2 {
		t.Errorf("list bad status: %+v", r)
	}
	// Another tenant sees nothing.
	r = greyctl(t, env, "--tenant", "other", "task", "list", "-o", "json")
	if r.code != 0 || r.stdout != "" {
		t.Errorf("list other tenant: %+v", r)
	}
}

func TestClusterCommands(t *testing.T) {
	t.Parallel()
	f := newFakeGrey(t)
	env := serverEnv(f)
	r := greyctl(t, env, "cluster", "status")
	if r.code != 0 || !strings.Contains(r.stdout, "n1 (leader)") || !strings.Contains(r.stdout, "pending=2 completed=5") || !strings.Contains(r.stdout, "SUFFRAGE") {
		t.Errorf("cluster status: %+v", r)
	}
	r = greyctl(t, env, "cluster", "status", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"quorum_size": 1`) {
		t.Errorf("cluster status json: %+v", r)
	}
	r = greyctl(t, env, "cluster", "nodes")
	if r.code != 0 || !strings.Contains(r.stdout, "w1") || !strings.Contains(r.stdout, "gpu=true") {
		t.Errorf("cluster nodes: %+v", r)
	}
	r = greyctl(t, env, "cluster", "nodes", "-o", "json")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 2 {
		t.Errorf("cluster nodes json: %+v", r)
	}
}

func TestGlobalFlagsAndUsage(t *testing.T) {
	t.Parallel()
	f := newFakeGrey(t)
	dead := "http://127.0.0.1:1"

	// --server overrides GREY_SERVER; a list fails over to the live server.
	r := greyctl(t, map[string]string{"GREY_SERVER": dead}, "--server", dead+","+f.srv.URL, "cluster", "nodes")
	if r.code != 0 {
		t.Errorf("failover list: %+v", r)
	}
	r = greyctl(t, map[string]string{"GREY_SERVER": dead}, "cluster", "nodes")
	if r.code != 1 || !strings.Contains(r.stderr, "unavailable") {
		t.Errorf("dead server: %+v", r)
	}
	// GREY_TENANT is used when --tenant is absent.
	r = greyctl(t, map[string]string{"GREY_SERVER": f.srv.URL, "GREY_TENANT": "envtenant"}, "task", "submit", "--kind", "noop")
	f.mu.Lock()
	ok := f.tenants["envtenant"]
	f.mu.Unlock()
	if r.code != 0 || !ok {
		t.Errorf("GREY_TENANT: %+v", r)
	}

	for _, args := range [][]string{
		{"task", "submit"},
		{"task", "submit", "--kind", "x", "--priority", "11"},
		{"task", "submit", "--kind", "x", "--payload", "{"},
		{"task", "get"},
		{"task", "get", "a", "b"},
		{"-o", "yaml", "cluster", "status"},
		{"cluster", "status", "--bogus"},
		{"bench", "--tasks", "0"},
		{"bench", "--scenario", "nope"},
		{"--tenant", "Not Valid", "cluster", "status"},
		{"nope"},
		{"task", "nope"},
	} {
		if r := greyctl(t, serverEnv(f), args...); r.code != 2 {
			t.Errorf("greyctl %q = %+v, want exit code 2", args, r)
		}
	}
}

func TestBench(t *testing.T) {
	t.Parallel()
	f := newFakeGrey(t)
	env := serverEnv(f)

	r := greyctl(t, env, "bench", "--tasks", "250", "--tenants", "3", "--batch", "40", "--concurrency", "3", "--payload", `{"x":1}`, "-q")
	if r.code != 0 {
		t.Fatalf("bench: %+v", r)
	}
	if strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("bench printed %q, want one line", r.stdout)
	}
	var res map[string]float64
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"tasks", "seconds", "tasks_per_second", "p50_ms", "p99_ms", "failed"} {
		if _, ok := res[k]; !ok {
			t.Errorf("result lacks %s: %s", k, r.stdout)
		}
	}
	if len(res) != 6 || res["tasks"] != 250 || res["failed"] != 0 || res["p99_ms"] < res["p50_ms"] {
		t.Errorf("result = %s", r.stdout)
	}
	f.mu.Lock()
	perTenant := map[string]int{}
	for _, id := range f.order {
		perTenant[f.tasks[id].TenantID]++
	}
	f.mu.Unlock()
	if perTenant["bench-1"] != 84 || perTenant["bench-2"] != 83 || perTenant["bench-3"] != 83 {
		t.Errorf("tasks per tenant = %v", perTenant)
	}

	// Failed tasks: still one line, exit code 1.
	r = greyctl(t, env, "bench", "--tasks", "20", "--kind", "fail", "--batch", "7", "-q")
	if r.code != 1 || json.Unmarshal([]byte(r.stdout), &res) != nil || res["failed"] != 20 {
		t.Errorf("bench with failures: %+v", r)
	}

	// Timeout: one line, exit code 1.
	r = greyctl(t, env, "bench", "--tasks", "5", "--kind", "slow", "--timeout", "300ms", "-q")
	if r.code != 1 || strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stderr, "timed out") {
		t.Errorf("bench timeout: %+v", r)
	}
}

// A bench against a server that does not answer fails at once, naming it,
// instead of retrying until --timeout.
func TestBenchDeadServer(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	start := time.Now()
	r := greyctl(t, map[string]string{"GREY_SERVER": url}, "bench", "-q", "--tasks", "10", "--timeout", "5m")
	if r.code != 1 || !strings.Contains(r.stderr, "not ready") {
		t.Fatalf("exit %d, stderr %q; want 1 and the server named not ready", r.code, r.stderr)
	}
	if el := time.Since(start); el > time.Minute {
		t.Errorf("took %s: it waited for --timeout", el)
	}
}

// --server-metrics reads each server's CPU and allocation counters before
// and after the run and prints their growth per task, summed over servers;
// an endpoint that is not a greyd's fails the bench naming it.
func TestBenchServerCost(t *testing.T) {
	t.Parallel()
	f := newFakeGrey(t)
	env := serverEnv(f)
	var scrapes atomic.Int64
	metrics := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := scrapes.Add(1) // 1 before the run, 2 after it
		fmt.Fprintf(w, "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %g\n# TYPE go_memstats_mallocs_total counter\ngo_memstats_mallocs_total %d\n", 0.5*float64(n), 1000*n)
	}))
	defer metrics.Close()
	r := greyctl(t, env, "bench", "--tasks", "250", "--batch", "50", "-q", "--server-metrics", metrics.URL+","+metrics.URL)
	if r.code != 0 {
		t.Fatalf("bench: %+v", r)
	}
	var res map[string]float64
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatal(err)
	}
	// Two endpoints (the same one twice), so four scrapes: 1 and 2 before
	// the run, 3 and 4 after. CPU: (1.5+2.0)-(0.5+1.0) = 2 s over 250
	// tasks = 8000 µs; allocations: (3000+4000)-(1000+2000) = 4000 / 250 = 16.
	if res["server_cpu_us_per_task"] != 8000 || res["server_allocs_per_task"] != 16 {
		t.Errorf("server cost = %s", r.stdout)
	}

	notGrey := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "# TYPE other_total counter\nother_total 1")
	}))
	defer notGrey.Close()
	r = greyctl(t, env, "bench", "--tasks", "10", "-q", "--server-metrics", notGrey.URL)
	if r.code != 1 || !strings.Contains(r.stderr, notGrey.URL) || !strings.Contains(r.stderr, "process_cpu_seconds_total") {
		t.Errorf("bench against a non-greyd metrics endpoint: %+v", r)
	}
	r = greyctl(t, env, "bench", "--tasks", "10", "-q", "--server-metrics", notGrey.URL+"/nothing-here{")
	if r.code != 1 {
		t.Errorf("bench against a bad metrics URL: %+v", r)
	}
}

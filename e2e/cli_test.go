package e2e

import (
	"bufio"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/task"
)

// TestCLIEndToEnd drives a real greyd with the greyctl binary: submit and
// wait, a permanent failure's exit code, list, and a small benchmark.
func TestCLIEndToEnd(t *testing.T) {
	requireE2E(t)
	g := newGreyd(t, "")
	g.Start()
	g.WaitReady(30 * time.Second)
	srv := g.URL()

	// echo returns its payload.
	r := greyctl(t, srv, 30*time.Second, "task", "submit", "--kind", "echo", "--payload", `{"x":1}`, "--wait", "-o", "json")
	if r.Code != 0 {
		t.Fatalf("submit echo --wait: exit %d, stderr: %s", r.Code, r.Stderr)
	}
	var echo task.Task
	if err := json.Unmarshal([]byte(r.Stdout), &echo); err != nil {
		t.Fatalf("submit echo -o json: %v; stdout:\n%s", err, r.Stdout)
	}
	if echo.Status != task.Completed {
		t.Errorf("echo task status %s, want completed", echo.Status)
	}
	var got any
	if err := json.Unmarshal(echo.Result, &got); err != nil {
		t.Errorf("echo result %q: %v", echo.Result, err)
	} else if want := map[string]any{"x": 1.0}; !reflect.DeepEqual(got, want) {
		t.Errorf("echo result %s, want {\"x\":1}", echo.Result)
	}

	// A permanent failure: non-zero exit, the error on stderr.
	r = greyctl(t, srv, 30*time.Second, "task", "submit", "--kind", "fail", "--payload", `{"retryable":false}`, "--wait")
	if r.Code == 0 {
		t.Errorf("submit fail --wait: exit 0, want non-zero; stdout:\n%s", r.Stdout)
	}
	if !strings.Contains(r.Stderr, "failed") {
		t.Errorf("submit fail --wait: stderr %q does not say the task failed", r.Stderr)
	}
	var failID string
	for _, line := range strings.Split(r.Stdout, "\n") {
		if v, ok := strings.CutPrefix(line, "ID:"); ok {
			failID = strings.TrimSpace(v)
		}
	}
	if !task.ValidID(failID) {
		t.Errorf("submit fail --wait: no task id in the table output:\n%s", r.Stdout)
	}

	// list -o json: one task per line, newest first.
	r = greyctl(t, srv, 30*time.Second, "task", "list", "-o", "json")
	if r.Code != 0 {
		t.Fatalf("task list: exit %d, stderr: %s", r.Code, r.Stderr)
	}
	listed := map[string]*task.Task{}
	var order []string
	sc := bufio.NewScanner(strings.NewReader(r.Stdout))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var tk task.Task
		if err := json.Unmarshal(sc.Bytes(), &tk); err != nil {
			t.Fatalf("task list -o json: line %q: %v", sc.Text(), err)
		}
		listed[tk.ID] = &tk
		order = append(order, tk.ID)
	}
	if len(listed) != 2 {
		t.Errorf("task list shows %d tasks, want 2:\n%s", len(listed), r.Stdout)
	}
	if tk := listed[echo.ID]; tk == nil || tk.Status != task.Completed {
		t.Errorf("task list: echo task %s missing or not completed: %+v", echo.ID, tk)
	}
	if tk := listed[failID]; tk == nil || tk.Status != task.Failed {
		t.Errorf("task list: fail task %s missing or not failed: %+v", failID, tk)
	} else if tk.Error == nil || tk.Error.Retryable || len(tk.Attempts) != 1 {
		t.Errorf("task list: fail task should have failed once, permanently: error %+v, %d attempts", tk.Error, len(tk.Attempts))
	}
	if len(order) == 2 && order[0] != failID {
		t.Errorf("task list order %v, want newest (%s) first", order, failID)
	}

	// bench prints one JSON line; assert on the counts, not on speed.
	start := time.Now()
	r = greyctl(t, srv, 2*time.Minute, "bench", "--tasks", "2000", "--tenants", "2", "--kind", "noop",
		"--server-metrics", "http://"+g.MetricsAddr+"/metrics")
	if r.Code != 0 {
		t.Fatalf("bench: exit %d; stdout: %s; stderr: %s", r.Code, r.Stdout, r.Stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if len(lines) != 1 {
		t.Fatalf("bench printed %d lines, want 1:\n%s", len(lines), r.Stdout)
	}
	var res struct {
		Tasks          *int     `json:"tasks"`
		Failed         *int     `json:"failed"`
		Seconds        *float64 `json:"seconds"`
		TasksPerSecond *float64 `json:"tasks_per_second"`
		P50Ms          *float64 `json:"p50_ms"`
		P99Ms          *float64 `json:"p99_ms"`
		CPUMicros      *float64 `json:"server_cpu_us_per_task"`
		Allocs         *float64 `json:"server_allocs_per_task"`
	}
	dec := json.NewDecoder(strings.NewReader(lines[0]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("bench line %q: %v", lines[0], err)
	}
	switch {
	case res.Tasks == nil || *res.Tasks != 2000:
		t.Errorf("bench: tasks = %v, want 2000 (%s)", deref(res.Tasks), lines[0])
	case res.Failed == nil || *res.Failed != 0:
		t.Errorf("bench: failed = %v, want 0 (%s)", deref(res.Failed), lines[0])
	case res.Seconds == nil || res.TasksPerSecond == nil || res.P50Ms == nil || res.P99Ms == nil:
		t.Errorf("bench: a field is missing in %s", lines[0])
	case *res.P50Ms > *res.P99Ms:
		t.Errorf("bench: p50 %.2fms above p99 %.2fms", *res.P50Ms, *res.P99Ms)
	case res.CPUMicros == nil || *res.CPUMicros <= 0 || res.Allocs == nil || *res.Allocs <= 0:
		// The server did work for every task: its CPU and allocation
		// counters moved (how much is the benchmark's business).
		t.Errorf("bench: server cost per task missing or zero in %s", lines[0])
	}
	t.Logf("bench (%s): %s", time.Since(start).Round(time.Millisecond), lines[0])
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

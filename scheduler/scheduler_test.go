package scheduler_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/grey-distributed/grey/scheduler"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
)

var now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type fill struct {
	st  *state.Store
	idx uint64
	n   int
}

func (f *fill) add(t *testing.T, tenant string, count int, mod func(*task.Task)) {
	t.Helper()
	var ts []*task.Task
	for i := 0; i < count; i++ {
		f.n++
		tk := &task.Task{ID: fmt.Sprintf("01900000-0000-7000-8000-%012d", f.n), TenantID: tenant, Spec: task.Spec{Kind: "noop"}, Status: task.Pending, CreatedAt: now}
		if mod != nil {
			mod(tk)
		}
		ts = append(ts, tk)
	}
	f.idx++
	if _, err := f.st.Submit(f.idx, &state.SubmitRequest{Now: now, Tasks: ts}); err != nil {
		t.Fatal(err)
	}
}

func take(s *scheduler.Scheduler, max int, labels map[string]string) []*task.Task {
	return s.Take(scheduler.TakeRequest{Kinds: []string{"noop", "gpu"}, Labels: labels, Max: max, Now: now})
}

func TestRoundRobinAcrossBackloggedTenants(t *testing.T) {
	t.Parallel()
	f := &fill{st: state.New()}
	s := scheduler.New(f.st, scheduler.Options{})
	s.Enable(now, time.Minute)
	f.add(t, "a", 300, nil) // a floods first
	f.add(t, "b", 50, nil)
	f.add(t, "c", 50, nil)
	counts := map[string]int{}
	for i := 0; i < 10; i++ {
		for _, tk := range take(s, 9, nil) {
			counts[tk.TenantID]++
		}
	}
	for _, ten := range []string{"a", "b", "c"} {
		if counts[ten] < 29 || counts[ten] > 31 {
			t.Fatalf("shares %v: want 30 each of 90", counts)
		}
	}
}

type weights map[string]float64

func (w weights) Weight(t string) float64 { return w[t] }
func (w weights) MaxRunning(string) int   { return 0 }

func TestWeightedShares(t *testing.T) {
	t.Parallel()
	f := &fill{st: state.New()}
	s := scheduler.New(f.st, scheduler.Options{Policy: weights{"a": 3, "b": 1}})
	s.Enable(now, time.Minute)
	f.add(t, "a", 500, nil)
	f.add(t, "b", 500, nil)
	counts := map[string]int{}
	for i := 0; i < 40; i++ {
		for _, tk := range take(s, 10, nil) {
			counts[tk.TenantID]++
		}
	}
	if counts["a"] < 290 || counts["a"] > 310 {
		t.Fatalf("shares %v: want a≈300 b≈100", counts)
	}
}

func TestFIFOBaselineIgnoresTenants(t *testing.T) {
	t.Parallel()
	f := &fill{st: state.New()}
	s := scheduler.New(f.st, scheduler.Options{FIFO: true})
	s.Enable(now, time.Minute)
	f.add(t, "a", 100, nil)
	f.add(t, "b", 10, nil)
	for _, tk := range take(s, 100, nil) {
		if tk.TenantID != "a" {
			t.Fatal("FIFO served b before a's older tasks")
		}
	}
}

func TestLabelsAndKindsMatchWorkers(t *testing.T) {
	t.Parallel()
	f := &fill{st: state.New()}
	s := scheduler.New(f.st, scheduler.Options{})
	s.Enable(now, time.Minute)
	f.add(t, "a", 3, func(tk *task.Task) {
		tk.Kind = "gpu"
		tk.Constraints = &task.Constraints{Labels: map[string]string{"gpu": "true"}}
	})
	if got := take(s, 10, nil); len(got) != 0 {
		t.Fatalf("worker without gpu label got %d gpu tasks", len(got))
	}
	if got := s.Take(scheduler.TakeRequest{Kinds: []string{"noop"}, Labels: map[string]string{"gpu": "true"}, Max: 10, Now: now}); len(got) != 0 {
		t.Fatal("worker without the kind got tasks")
	}
	if got := take(s, 10, map[string]string{"gpu": "true", "zone": "x"}); len(got) != 3 {
		t.Fatalf("gpu worker got %d of 3", len(got))
	}
}

func TestDelayedTasksWaitForTheirTime(t *testing.T) {
	t.Parallel()
	f := &fill{st: state.New()}
	s := scheduler.New(f.st, scheduler.Options{})
	s.Enable(now, time.Minute)
	later := now.Add(time.Minute)
	f.add(t, "a", 1, func(tk *task.Task) { tk.RunAt = &later })
	if got := take(s, 10, nil); len(got) != 0 {
		t.Fatal("run_at ignored")
	}
	if next := s.Promote(now); !next.Equal(later) {
		t.Fatalf("next due %v, want %v", next, later)
	}
	s.Promote(later)
	if got := s.Take(scheduler.TakeRequest{Kinds: []string{"noop"}, Max: 1, Now: later}); len(got) != 1 {
		t.Fatal("task not promoted at run_at")
	}
}

func TestMaxRunningHoldsTenant(t *testing.T) {
	t.Parallel()
	f := &fill{st: state.New()}
	s := scheduler.New(f.st, scheduler.Options{Policy: limit{"a": 2}})
	s.Enable(now, time.Minute)
	f.add(t, "a", 10, nil)
	f.add(t, "b", 10, nil)
	counts := map[string]int{}
	for _, tk := range take(s, 10, nil) {
		counts[tk.TenantID]++
	}
	if counts["a"] != 2 || counts["b"] != 8 {
		t.Fatalf("counts %v: a is capped at 2 running", counts)
	}
}

type limit map[string]int

func (l limit) Weight(string) float64   { return 1 }
func (l limit) MaxRunning(t string) int { return l[t] }

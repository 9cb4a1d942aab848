package scheduler_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/grey-distributed/grey/scheduler"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/tenant"
)

var now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type fill struct {
	st  *state.Store
	idx uint64
	n   int
}

func (f *fill) add(t *testing.T, tenantID string, count int, mod func(*task.Task)) {
	t.Helper()
	var ts []*task.Task
	for i := 0; i < count; i++ {
		f.n++
		tk := &task.Task{ID: fmt.Sprintf("01900000-0000-7000-8000-%012d", f.n), TenantID: tenantID, Spec: task.Spec{Kind: "noop"}, Status: task.Pending, CreatedAt: now}
		if mod != nil {
			mod(tk)
		}
		ts = append(ts, tk)
	}
	f.idx++
	if _, err := f.st.Submit(f.idx, &state.SubmitRequest{Now: now, Tasks: ts, AutoCreate: &tenant.Tenant{ID: tenantID, Quota: tenant.Quota{Weight: 1}}}); err != nil {
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

// TestFairShareProperty: for random weights and random lease sizes, over
// every window of dispatches at least 10 rounds long (a round is Σweights
// dispatches) while all tenants stay backlogged, each tenant's share is
// within 10% of weight/Σweights.
func TestFairShareProperty(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for c := 0; c < 60; c++ {
		nt := 2 + rng.IntN(5)
		w := weights{}
		sum := 0.0
		for i := 0; i < nt; i++ {
			w[fmt.Sprintf("t%d", i)] = float64(1 + rng.IntN(8))
			sum += w[fmt.Sprintf("t%d", i)]
		}
		f := &fill{st: state.New()}
		s := scheduler.New(f.st, scheduler.Options{Policy: w})
		s.Enable(now, time.Minute)
		total := int(sum) * 40
		for i := 0; i < nt; i++ {
			f.add(t, fmt.Sprintf("t%d", i), total, nil) // enough to stay backlogged
		}
		var seq []string
		for len(seq) < total {
			for _, tk := range take(s, 1+rng.IntN(50), nil) {
				seq = append(seq, tk.TenantID)
			}
		}
		window := int(sum) * 10
		for start := 0; start+window <= len(seq); start += 1 + rng.IntN(int(sum)) {
			counts := map[string]int{}
			for _, id := range seq[start : start+window] {
				counts[id]++
			}
			for id, wt := range w {
				want := float64(window) * wt / sum
				if got := float64(counts[id]); got < want*0.9 || got > want*1.1 {
					t.Fatalf("case %d weights %v: window [%d,%d) tenant %s got %v, want %.1f ±10%%", c, w, start, start+window, id, got, want)
				}
			}
		}
	}
}

package scheduler_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/grey-distributed/grey/scheduler"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/tenant"
)

// BenchmarkTakeNoop measures taking noop tasks (no labels, no affinity):
// the common path, whose cost warm-model routing must not raise. Each
// iteration takes one batch of 100 from a queue refilled outside the
// timer.
func BenchmarkTakeNoop(b *testing.B) {
	st := state.New()
	s := scheduler.New(st, scheduler.Options{})
	s.Enable(now, time.Minute)
	idx, n := uint64(0), 0
	refill := func() {
		for ten := 0; ten < 4; ten++ {
			ts := make([]*task.Task, 250)
			for i := range ts {
				n++
				ts[i] = &task.Task{ID: fmt.Sprintf("01900000-0000-7000-8000-%012d", n), TenantID: fmt.Sprintf("t%d", ten), Spec: task.Spec{Kind: "noop"}, Status: task.Pending, CreatedAt: now}
			}
			idx++
			if _, err := st.Submit(idx, &state.SubmitRequest{Now: now, Tasks: ts, AutoCreate: &tenant.Tenant{ID: fmt.Sprintf("t%d", ten)}}); err != nil {
				b.Fatal(err)
			}
		}
	}
	req := scheduler.TakeRequest{Kinds: []string{"noop"}, Max: 100, Now: now}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%10 == 0 {
			b.StopTimer()
			refill()
			b.StartTimer()
		}
		if got := s.Take(req); len(got) != 100 {
			b.Fatalf("took %d", len(got))
		}
	}
}

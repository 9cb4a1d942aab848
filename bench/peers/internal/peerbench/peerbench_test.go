package peerbench

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"
)

func TestPlanSpreadsJobsEvenlyAndInterleavesQueues(t *testing.T) {
	plan := Plan(2003, 4, 250)
	per := make([]int, 4)
	total := 0
	for _, b := range plan {
		if b.N < 1 || b.N > 250 {
			t.Fatalf("batch of %d jobs, want 1..250", b.N)
		}
		per[b.Queue] += b.N
		total += b.N
	}
	if total != 2003 {
		t.Fatalf("plan holds %d jobs, want 2003", total)
	}
	for q, n := range per {
		if n != 500 && n != 501 {
			t.Errorf("queue %d gets %d jobs, want 500 or 501", q, n)
		}
	}
	for i := range 4 {
		if plan[i].Queue != i {
			t.Fatalf("batch %d is for queue %d: the first round must visit every queue in turn", i, plan[i].Queue)
		}
	}
}

func TestInsertAllStopsAtTheFirstError(t *testing.T) {
	boom := errors.New("boom")
	var calls atomic.Int64
	err := InsertAll(context.Background(), Plan(1000, 1, 1), 4, func(context.Context, Batch) error {
		if calls.Add(1) == 10 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if calls.Load() >= 1000 {
		t.Fatalf("every batch was inserted after an error")
	}
}

func TestParseStat(t *testing.T) {
	// A command name with spaces and a ')' of its own.
	line := "4242 (postgres: a) b) S 77 4242 4242 0 -1 4194560 100 0 0 0 123 45 6 7 20 0 1 0 100 0 0\n"
	st, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != 77 || st.utime != 123 || st.stime != 45 || st.cutime != 6 || st.cstime != 7 {
		t.Fatalf("parsed %+v", st)
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 2 3", "1 (x) S p 1 1 0 -1 0 0 0 0 0 a b c d 20"} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("parseStat(%q) accepted a malformed line", bad)
		}
	}
}

func TestTreeCPUOfThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc here")
	}
	if _, err := TreeCPU(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	if _, err := TreeCPU(-1); err == nil {
		t.Fatal("TreeCPU of a pid that cannot exist succeeded")
	}
}

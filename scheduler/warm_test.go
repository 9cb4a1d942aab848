package scheduler_test

import (
	"testing"
	"time"

	"github.com/grey-distributed/grey/scheduler"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
)

const digestA = "sha256:aaaa"

func inference(digest string) func(*task.Task) {
	return func(t *task.Task) {
		t.Kind = "inference"
		t.Headers = map[string]string{task.ModelDigestHeader: digest}
		t.Constraints = &task.Constraints{Labels: map[string]string{"grey.ai/pytorch": "true"}}
	}
}

// aiWorker asks for work like a worker serving pytorch with warm models.
func aiWorker(s *scheduler.Scheduler, id string, at time.Time, max int, warm ...string) []*task.Task {
	return s.Take(scheduler.TakeRequest{WorkerID: id, Kinds: []string{"inference", "noop"}, Labels: map[string]string{"grey.ai/pytorch": "true"},
		Max: max, Now: at, Warm: warm})
}

func warmFixture(t *testing.T, opts scheduler.Options) (*fill, *scheduler.Scheduler) {
	t.Helper()
	f := &fill{st: state.New()}
	s := scheduler.New(f.st, opts)
	s.Enable(now, time.Minute)
	return f, s
}

// A worker without the model leaves its tasks to the worker that has it
// warm while they are fresh; the warm worker gets them.
func TestWarmWorkerPreferred(t *testing.T) {
	t.Parallel()
	f, s := warmFixture(t, scheduler.Options{})
	f.add(t, "a", 10, inference(digestA))
	if got := aiWorker(s, "warm", now, 1, digestA); len(got) != 1 {
		t.Fatalf("warm worker took %d, want 1", len(got))
	}
	if got := aiWorker(s, "cold", now.Add(10*time.Millisecond), 5); len(got) != 0 {
		t.Fatalf("cold worker took %d fresh tasks of a model warm elsewhere", len(got))
	}
	if got := aiWorker(s, "warm", now.Add(20*time.Millisecond), 9, digestA); len(got) != 9 {
		t.Fatalf("warm worker took %d, want the 9 left", len(got))
	}
}

// Once the head task has waited the locality delay, any worker takes it:
// a busy warm worker does not starve the model's tasks.
func TestColdWorkerTakesAfterLocalityDelay(t *testing.T) {
	t.Parallel()
	f, s := warmFixture(t, scheduler.Options{LocalityDelay: 50 * time.Millisecond})
	f.add(t, "a", 10, inference(digestA))
	aiWorker(s, "warm", now, 1, digestA)
	if got := aiWorker(s, "cold", now.Add(49*time.Millisecond), 5); len(got) != 0 {
		t.Fatalf("cold worker took %d before the delay", len(got))
	}
	if got := aiWorker(s, "cold", now.Add(50*time.Millisecond), 5); len(got) != 5 {
		t.Fatalf("cold worker took %d after the delay, want 5", len(got))
	}
}

// No recent warm report (none at all, or one older than the warm window,
// or only the asking worker's own earlier report): no waiting.
func TestNoWaitWithoutRecentWarmReport(t *testing.T) {
	t.Parallel()
	f, s := warmFixture(t, scheduler.Options{WarmWindow: time.Second})
	f.add(t, "a", 4, inference(digestA))
	if got := aiWorker(s, "cold", now, 1); len(got) != 1 {
		t.Fatalf("with no worker warm, a cold worker took %d, want 1", len(got))
	}
	aiWorker(s, "warm", now, 1, digestA)
	if got := aiWorker(s, "warm", now, 1); len(got) != 1 {
		t.Fatalf("the reporting worker, now cold, took %d, want 1", len(got))
	}
	// A report older than the warm window no longer holds fresh tasks.
	later := now.Add(1100 * time.Millisecond)
	f.add(t, "b", 3, func(tk *task.Task) { inference(digestA)(tk); tk.CreatedAt = later })
	aiWorker(s, "other", now, 1, digestA) // drains tenant a's last one
	if got := aiWorker(s, "cold", later, 1); len(got) != 1 {
		t.Fatalf("after the warm window, a cold worker took %d, want 1", len(got))
	}
	// A report within the window does.
	aiWorker(s, "other", later, 1, digestA)
	if got := aiWorker(s, "cold", later, 1); len(got) != 0 {
		t.Fatalf("within the warm window, a cold worker took %d fresh tasks", len(got))
	}
}

// Other classes are unaffected: a cold worker deferring one model's tasks
// still takes noop tasks and another model's.
func TestDeferOnlyTheWarmModel(t *testing.T) {
	t.Parallel()
	f, s := warmFixture(t, scheduler.Options{})
	f.add(t, "a", 3, inference(digestA))
	f.add(t, "a", 2, inference("sha256:bbbb"))
	f.add(t, "a", 2, nil)
	aiWorker(s, "warm", now, 1, digestA)
	got := aiWorker(s, "cold", now, 10)
	if len(got) != 4 {
		t.Fatalf("cold worker took %d, want the 2 noop and 2 of model b", len(got))
	}
	for _, tk := range got {
		if tk.Headers[task.ModelDigestHeader] == digestA {
			t.Fatalf("cold worker took a task of the warm model")
		}
	}
}

// A deferring cold worker that waits in a long poll is woken when the
// locality delay runs out.
func TestDeferredClassWakesWaiters(t *testing.T) {
	t.Parallel()
	f := &fill{st: state.New()}
	s := scheduler.New(f.st, scheduler.Options{LocalityDelay: 30 * time.Millisecond})
	start := time.Now().UTC()
	s.Enable(start, time.Minute)
	f.add(t, "a", 2, func(tk *task.Task) { inference(digestA)(tk); tk.CreatedAt = start })
	aiWorker(s, "warm", start, 1, digestA)
	wake := s.Wake()
	if got := aiWorker(s, "cold", start, 1); len(got) != 0 {
		t.Fatal("cold worker took a fresh task")
	}
	select {
	case <-wake:
	case <-time.After(2 * time.Second):
		t.Fatal("no wake-up after the locality delay")
	}
	if got := aiWorker(s, "cold", time.Now().UTC(), 1); len(got) != 1 {
		t.Fatalf("after the wake-up the cold worker took %d, want 1", len(got))
	}
}

// A negative locality delay turns warm preference off.
func TestLocalityOff(t *testing.T) {
	t.Parallel()
	f, s := warmFixture(t, scheduler.Options{LocalityDelay: -1})
	f.add(t, "a", 2, inference(digestA))
	aiWorker(s, "warm", now, 1, digestA)
	if got := aiWorker(s, "cold", now, 1); len(got) != 1 {
		t.Fatalf("with locality off the cold worker took %d, want 1", len(got))
	}
}

// WarmModels lists what each worker last reported warm within the warm
// window: a worker that reports none, or none lately, is not listed.
func TestWarmModelsByWorker(t *testing.T) {
	t.Parallel()
	_, s := warmFixture(t, scheduler.Options{})
	aiWorker(s, "n1/builtin", now, 1, digestA, "sha256:bbbb")
	aiWorker(s, "w2", now, 1)
	got := s.WarmModels(now.Add(500*time.Millisecond), time.Second)
	if len(got) != 1 || len(got["n1/builtin"]) != 2 || got["n1/builtin"][0] != digestA {
		t.Fatalf("warm models %v, want n1/builtin's two", got)
	}
	if got := s.WarmModels(now.Add(2*time.Second), time.Second); len(got) != 0 {
		t.Fatalf("reports older than the window listed: %v", got)
	}
	aiWorker(s, "n1/builtin", now.Add(3*time.Second), 1)
	if got := s.WarmModels(now.Add(3*time.Second), time.Second); len(got) != 0 {
		t.Fatalf("a worker that now reports nothing warm listed: %v", got)
	}
}

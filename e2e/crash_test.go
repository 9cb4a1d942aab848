package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// crashBatch is one SubmitBatch call of the crash test's load.
type crashBatch struct {
	tenant string
	specs  []task.Spec
	ids    []task.ID // the answer's ids, when acknowledged
	err    error     // nil when acknowledged
	took   time.Duration
}

// TestCrashDuringLoad SIGKILLs greyd in the middle of a submit load, keeps
// submitting while it is down, restarts it on the same data dir and checks
// that every acknowledged task survived and ran to completion exactly once,
// and that idempotency keys of unacknowledged batches cannot duplicate
// tasks that were stored anyway.
func TestCrashDuringLoad(t *testing.T) {
	requireE2E(t)
	began := time.Now()
	// A short lease TTL lets tasks that were leased when greyd died be
	// retried soon after the restart.
	g := newGreyd(t, "tasks:\n  lease_ttl: 2s\n")
	g.Start()
	g.WaitReady(30 * time.Second)

	tenants := []string{"crash-a", "crash-b"}
	clients := map[string]*client.Client{}
	for _, ten := range tenants {
		c, err := client.New(g.URL(), client.WithTenant(ten))
		if err != nil {
			t.Fatal(err)
		}
		clients[ten] = c
	}

	const (
		submitters = 4
		batchSize  = 100
		// Each submitter starts a batch at most every pace (and waits
		// failPause after a failure), so the load is the same on fast and
		// slow machines: up to 8,000 tasks a second, ~10,000 in all.
		pace      = 50 * time.Millisecond
		failPause = 250 * time.Millisecond
	)
	var (
		mu       sync.Mutex
		batches  []*crashBatch
		ackedN   atomic.Int64
		inflight atomic.Int32 // SubmitBatch calls under way
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	for s := range submitters {
		wg.Go(func() {
			time.Sleep(time.Duration(s) * pace / submitters) // spread the batches out
			tick := time.NewTicker(pace)
			defer tick.Stop()
			for b := 0; ; b++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				ten := tenants[(s+b)%len(tenants)]
				cb := &crashBatch{tenant: ten, specs: make([]task.Spec, batchSize)}
				for i := range cb.specs {
					sp := task.Spec{Kind: "noop", IdempotencyKey: fmt.Sprintf("crash-%d-%d-%d", s, b, i)}
					if i%2 == 1 {
						sp.Kind, sp.Payload = "sleep", json.RawMessage(`{"ms":5}`)
					}
					cb.specs[i] = sp
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				inflight.Add(1)
				sent := time.Now()
				ts, err := clients[ten].SubmitBatch(ctx, cb.specs)
				cb.took = time.Since(sent)
				inflight.Add(-1)
				cancel()
				if err == nil {
					err = checkBatchAnswer(cb, ts)
					if err != nil {
						t.Errorf("acknowledged batch: %v", err)
					}
				}
				cb.err = err
				mu.Lock()
				batches = append(batches, cb)
				mu.Unlock()
				if err != nil {
					time.Sleep(failPause) // greyd is down: do not spin
					continue
				}
				ackedN.Add(batchSize)
			}
		})
	}

	// Stop the load before the test ends, also when it ends early.
	stopLoad := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	t.Cleanup(stopLoad)

	loadFrom := time.Now()
	time.Sleep(time.Second)
	// Kill at a random point of a typical request after one went out, so
	// that a batch may be stored but not acknowledged.
	mu.Lock()
	var lat []time.Duration
	for _, cb := range batches {
		lat = append(lat, cb.took)
	}
	mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	median := 5 * time.Millisecond
	if len(lat) > 0 {
		median = lat[len(lat)/2]
	}
	for deadline := time.Now().Add(time.Second); inflight.Load() < 1 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Microsecond)
	}
	time.Sleep(rand.N(max(median, time.Microsecond)))
	killedAt := time.Now()
	killInflight := inflight.Load()
	ackedBeforeKill := ackedN.Load()
	mu.Lock()
	var probe *crashBatch // the last batch acknowledged before the kill
	for _, cb := range batches {
		if cb.err == nil {
			probe = cb
		}
	}
	mu.Unlock()
	g.Kill()
	t.Logf("SIGKILL after %s of load (%s after the first start), %d tasks acknowledged, %d batches in flight, median submit %s",
		killedAt.Sub(loadFrom).Round(time.Millisecond), killedAt.Sub(began).Round(time.Millisecond), ackedBeforeKill, killInflight, median.Round(10*time.Microsecond))
	time.Sleep(time.Second) // the load goes on against the dead server

	g.Start()
	ready := g.WaitReady(30 * time.Second)
	t.Logf("restart to /readyz: %s", ready.Round(time.Millisecond))
	if probe != nil {
		// Once ready, greyd must serve what it acknowledged before the crash.
		pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
		id := probe.ids[len(probe.ids)-1]
		got, err := clients[probe.tenant].Get(pctx, id)
		pcancel()
		switch {
		case greyerr.Is(err, greyerr.NotFound):
			// /readyz only asks for a Raft leader; after a crash the log
			// is replayed into the state only once the new term's first
			// entry commits, so reads can briefly miss acknowledged tasks.
			t.Errorf("right after /readyz, GET of acknowledged task %s: %v ", id, err)
		case err != nil:
			t.Errorf("right after /readyz, GET of acknowledged task %s: %v", id, err)
		case got.ID != id:
			t.Errorf("right after /readyz, GET %s returned task %s", id, got.ID)
		}
	}
	time.Sleep(500 * time.Millisecond) // and a little against the restarted one
	stopLoad()

	// What the clients were told.
	acked := map[string]task.ID{} // tenant/key → id
	var failed []*crashBatch
	for _, cb := range batches {
		if cb.err != nil {
			failed = append(failed, cb)
			continue
		}
		for i, sp := range cb.specs {
			acked[cb.tenant+"/"+sp.IdempotencyKey] = cb.ids[i]
		}
	}
	t.Logf("load: %d batches, %d acknowledged tasks, %d failed batches", len(batches), len(acked), len(failed))
	if len(acked) == 0 {
		t.Fatal("no batch was acknowledged")
	}
	if ackedBeforeKill == 0 {
		t.Error("no batch was acknowledged before the kill: the crash did not hit a loaded server")
	}
	errKinds := map[string]int{}
	for _, cb := range failed {
		errKinds[string(greyerr.CodeOf(cb.err))]++
	}
	t.Logf("failed batches by error code: %v", errKinds)

	// Wait until every acknowledged task is terminal.
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	var stored map[task.ID]*task.Task
	for {
		var err error
		stored, err = listAllTasks(ctx, clients)
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		pending := 0
		for _, id := range acked {
			if st := stored[id]; st == nil || !st.Status.Terminal() {
				pending++
			}
		}
		if pending == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d of %d acknowledged tasks not terminal (or missing) after 40s", pending, len(acked))
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("all acknowledged tasks terminal %s after the kill", time.Since(killedAt).Round(time.Millisecond))

	// Every acknowledged task exists and completed exactly once.
	retried := 0
	var bad []string
	for key, id := range acked {
		st := stored[id]
		if st == nil {
			bad = append(bad, fmt.Sprintf("%s (%s): missing", key, id))
			continue
		}
		if err := checkOneOutcome(st); err != nil {
			bad = append(bad, fmt.Sprintf("%s (%s): %v", key, id, err))
		}
		if len(st.Attempts) > 1 {
			retried++
		}
	}
	sort.Strings(bad)
	for i, b := range bad {
		if i == 20 {
			t.Errorf("… and %d more", len(bad)-20)
			break
		}
		t.Errorf("acknowledged task %s", b)
	}
	t.Logf("%d acknowledged tasks needed more than one attempt (leased at crash time)", retried)

	// No idempotency key is stored twice, and each failed batch was stored
	// entirely or not at all.
	byKey := keysOf(t, stored)
	storedUnacked := 0
	for _, cb := range failed {
		n := 0
		for _, sp := range cb.specs {
			if byKey[cb.tenant+"/"+sp.IdempotencyKey] != "" {
				n++
			}
		}
		if n != 0 && n != len(cb.specs) {
			t.Errorf("failed batch %s/%s…: %d of %d tasks stored; a batch must be all or nothing", cb.tenant, cb.specs[0].IdempotencyKey, n, len(cb.specs))
		}
		storedUnacked += n
	}
	t.Logf("%d tasks of unacknowledged batches were stored anyway (in flight at the kill)", storedUnacked)

	// Resubmitting the unacknowledged batches returns the stored task for
	// every key that made it and creates the rest once.
	for _, cb := range failed {
		var ts []*task.Task
		var err error
		for attempt := 0; attempt < 20; attempt++ {
			sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
			ts, err = clients[cb.tenant].SubmitBatch(sctx, cb.specs)
			scancel()
			if err == nil || !retryable(err) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("resubmit %s/%s…: %v", cb.tenant, cb.specs[0].IdempotencyKey, err)
		}
		if len(ts) != len(cb.specs) {
			t.Fatalf("resubmit: %d tasks back for %d specs", len(ts), len(cb.specs))
		}
		for i, sp := range cb.specs {
			if old := byKey[cb.tenant+"/"+sp.IdempotencyKey]; old != "" && ts[i].ID != old {
				t.Errorf("resubmitting key %s/%s created %s although %s was stored", cb.tenant, sp.IdempotencyKey, ts[i].ID, old)
			}
		}
	}
	after, err := listAllTasks(ctx, clients)
	if err != nil {
		t.Fatalf("list after resubmit: %v", err)
	}
	afterKeys := keysOf(t, after)
	for k, id := range byKey {
		if afterKeys[k] != id {
			t.Errorf("key %s: task %s before the resubmission, %q after", k, id, afterKeys[k])
		}
	}
	for _, id := range acked {
		if after[id] == nil {
			t.Errorf("acknowledged task %s vanished after the resubmission", id)
		}
	}
	t.Logf("stored tasks: %d before resubmitting %d batches, %d after", len(stored), len(failed), len(after))
	if d := time.Since(began); d > 60*time.Second {
		t.Errorf("test took %s, want under 60s", d.Round(time.Millisecond))
	}
}

// checkBatchAnswer checks a successful SubmitBatch answer against its specs
// and records the ids in cb.
func checkBatchAnswer(cb *crashBatch, ts []*task.Task) error {
	if len(ts) != len(cb.specs) {
		return fmt.Errorf("%d tasks back for %d specs", len(ts), len(cb.specs))
	}
	for i, tk := range ts {
		sp := cb.specs[i]
		switch {
		case tk == nil || !task.ValidID(tk.ID):
			return fmt.Errorf("tasks[%d]: no valid id", i)
		case tk.IdempotencyKey != sp.IdempotencyKey:
			return fmt.Errorf("tasks[%d]: idempotency key %q, sent %q", i, tk.IdempotencyKey, sp.IdempotencyKey)
		case tk.TenantID != cb.tenant:
			return fmt.Errorf("tasks[%d]: tenant %q, sent %q", i, tk.TenantID, cb.tenant)
		case tk.Kind != sp.Kind:
			return fmt.Errorf("tasks[%d]: kind %q, sent %q", i, tk.Kind, sp.Kind)
		}
		cb.ids = append(cb.ids, tk.ID)
	}
	return nil
}

// checkOneOutcome checks that a task completed exactly once: one attempt
// that finished without error, possibly after earlier attempts that ended
// because their lease expired (the worker died with greyd).
func checkOneOutcome(tk *task.Task) error {
	if tk.Status != task.Completed {
		msg := ""
		if tk.Error != nil {
			msg = fmt.Sprintf(" (%s: %s)", tk.Error.Code, tk.Error.Message)
		}
		return fmt.Errorf("status %s%s, want completed", tk.Status, msg)
	}
	n := len(tk.Attempts)
	if n == 0 {
		return fmt.Errorf("completed with no attempt recorded")
	}
	if tk.Attempt != n {
		return fmt.Errorf("attempt = %d but %d attempts recorded", tk.Attempt, n)
	}
	for i, a := range tk.Attempts {
		if a.N != i+1 {
			return fmt.Errorf("attempts[%d].n = %d", i, a.N)
		}
		if a.FinishedAt == nil {
			return fmt.Errorf("attempts[%d] has no finished_at", i)
		}
		if i < n-1 && (a.Error == nil || a.Error.Code != "lease_expired") {
			return fmt.Errorf("attempts[%d] (not the last) ended with %+v, want a lease_expired error", i, a.Error)
		}
	}
	if last := tk.Attempts[n-1]; last.Error != nil {
		return fmt.Errorf("final attempt has error %+v", last.Error)
	}
	if tk.Error != nil {
		return fmt.Errorf("completed task has error %+v", tk.Error)
	}
	if tk.FinishedAt == nil {
		return fmt.Errorf("completed task has no finished_at")
	}
	if tk.Kind == "sleep" && string(tk.Result) != `{"slept_ms":5}` {
		return fmt.Errorf("sleep result %s, want {\"slept_ms\":5}", tk.Result)
	}
	return nil
}

// listAllTasks lists every task of every client's tenant by id, failing on
// a duplicate id.
func listAllTasks(ctx context.Context, clients map[string]*client.Client) (map[task.ID]*task.Task, error) {
	out := map[task.ID]*task.Task{}
	for ten, c := range clients {
		for tk, err := range c.ListAll(ctx, client.ListOptions{Limit: 1000}) {
			if err != nil {
				return nil, fmt.Errorf("tenant %s: %w", ten, err)
			}
			if tk.TenantID != ten {
				return nil, fmt.Errorf("tenant %s's list holds task %s of tenant %s", ten, tk.ID, tk.TenantID)
			}
			if out[tk.ID] != nil {
				return nil, fmt.Errorf("task %s listed twice", tk.ID)
			}
			out[tk.ID] = tk
		}
	}
	return out, nil
}

// keysOf maps tenant/idempotency key → id, failing t when a key is stored
// twice.
func keysOf(t *testing.T, tasks map[task.ID]*task.Task) map[string]task.ID {
	t.Helper()
	out := map[string]task.ID{}
	for id, tk := range tasks {
		if tk.IdempotencyKey == "" {
			continue
		}
		k := tk.TenantID + "/" + tk.IdempotencyKey
		if old, dup := out[k]; dup {
			t.Errorf("idempotency key %s is stored twice: %s and %s", k, old, id)
		}
		out[k] = id
	}
	return out
}

// retryable reports whether err means "try again shortly".
func retryable(err error) bool {
	switch greyerr.CodeOf(err) {
	case greyerr.Unavailable, greyerr.ResourceExhausted, greyerr.DeadlineExceeded:
		return true
	}
	return false
}

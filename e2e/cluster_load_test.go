package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// clusterLoad is the continuous client load of the cluster tests: several
// goroutines, each with its own client over all servers (in a rotated
// order, so some prefer followers and go through forwarding), submitting
// single tasks and small batches of noop and sleep{"ms":20} tasks with
// unique idempotency keys and reading acknowledged tasks back. Every
// operation is recorded for the linearizability check (cluster_model_test.go).
type clusterLoad struct {
	t       *testing.T
	tenant  string
	servers []string
	base    time.Time
	stop    chan struct{}
	wg      sync.WaitGroup

	mu       sync.Mutex
	ops      []porcupine.Operation
	acked    map[string]string // key → id, from acknowledged submits
	ackOrder []ackedRef        // acknowledged keys in acknowledgement order
	ackSpans []opSpan          // call/return of acknowledged submits
	batches  [][]string        // keys of each batch request
	direct   []directWrite     // submits sent to one server only
	keyless  []keylessSubmit   // submits without an idempotency key
	tight    int               // tightSubmits rounds
	stats    loadStats
}

// keylessSubmit is a submit sent once without an idempotency key; its
// payload carries Tag, so the tasks it created can be counted: at most one
// (the client never re-sends a POST that may have reached a server, see
// the client package doc).
type keylessSubmit struct {
	Tag   string
	ID    string // when acknowledged
	Acked bool
	Err   string
}

// opSpan is an operation's call and return times (ns since the load began).
type opSpan struct{ Call, Return int64 }

// directWrite is a submit sent straight to one server (no failover).
type directWrite struct {
	Key   string
	Via   string
	Span  opSpan
	ID    string // when acknowledged
	Err   string // otherwise
	Acked bool
}

type loadStats struct {
	Submits, SubmitAcked, SubmitUnknown int
	Batches, BatchAcked, BatchUnknown   int
	Retries                             int
	Gets, GetFound, GetNotFound, GetErr int
	Tasks                               int // tasks in acknowledged or unknown submits
	Errors                              map[string]int
}

const (
	loadOpTimeout = 2 * time.Second
	loadPace      = 15 * time.Millisecond
)

// startLoad starts n load goroutines against servers for tenant; Stop ends
// them.
func startLoad(t *testing.T, tenant string, servers []string, n int) *clusterLoad {
	l := &clusterLoad{
		t: t, tenant: tenant, servers: servers, base: time.Now(), stop: make(chan struct{}),
		acked: map[string]string{}, stats: loadStats{Errors: map[string]int{}},
	}
	for g := range n {
		order := make([]string, len(servers))
		for i := range servers {
			order[i] = servers[(g+i)%len(servers)]
		}
		c, err := client.New(strings.Join(order, ","), client.WithTenant(tenant))
		if err != nil {
			t.Fatal(err)
		}
		l.wg.Go(func() { l.run(g, c) })
	}
	t.Cleanup(l.Stop)
	return l
}

// Stop ends the load and waits for the goroutines (idempotent).
func (l *clusterLoad) Stop() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// now is the time since the load began, in ns (monotonic).
func (l *clusterLoad) now() int64 { return int64(time.Since(l.base)) }

// At converts a load timestamp to wall time.
func (l *clusterLoad) At(ts int64) time.Time { return l.base.Add(time.Duration(ts)) }

type ackedRef struct{ key, id string }

type retryItem struct {
	specs []task.Spec
	batch bool
	tries int
	last  time.Time
}

func (l *clusterLoad) run(g int, c *client.Client) {
	rng := rand.New(rand.NewPCG(uint64(g), uint64(time.Now().UnixNano())))
	var (
		mine    []ackedRef
		retries []*retryItem
	)
	via := strings.TrimPrefix(c.Servers()[0], "http://") + "…"
	newSpec := func(key string) task.Spec {
		sp := task.Spec{Kind: "noop", IdempotencyKey: key}
		if rng.IntN(2) == 0 {
			sp.Kind, sp.Payload = "sleep", json.RawMessage(`{"ms":20}`)
		}
		return sp
	}
	submit := func(specs []task.Spec, batch bool, tries int) {
		ids, ok := l.submit(c, g, via, specs, batch)
		if ok {
			for i, sp := range specs {
				mine = append(mine, ackedRef{sp.IdempotencyKey, ids[i]})
			}
			// Read one back at once half of the time (read your writes).
			if rng.IntN(2) == 0 {
				r := mine[len(mine)-1]
				l.get(c, g, via, r.key, r.id)
			}
			return
		}
		if tries < 3 {
			retries = append(retries, &retryItem{specs: specs, batch: batch, tries: tries + 1, last: time.Now()})
		}
	}
	for n := 0; ; n++ {
		select {
		case <-l.stop:
			return
		case <-time.After(loadPace):
		}
		// Retry an unacknowledged submit, same keys, after 300ms.
		if len(retries) > 0 && time.Since(retries[0].last) > 300*time.Millisecond {
			r := retries[0]
			retries = retries[1:]
			l.mu.Lock()
			l.stats.Retries++
			l.mu.Unlock()
			submit(r.specs, r.batch, r.tries)
			continue
		}
		switch r := rng.IntN(100); {
		case r < 5:
			l.submitKeyless(c, fmt.Sprintf("%s-g%d-%d", l.tenant, g, n))
		case r < 45 || len(mine) == 0:
			submit([]task.Spec{newSpec(fmt.Sprintf("%s-g%d-%d", l.tenant, g, n))}, false, 0)
		case r < 65:
			specs := make([]task.Spec, 2+rng.IntN(4))
			for i := range specs {
				specs[i] = newSpec(fmt.Sprintf("%s-g%d-%d-%d", l.tenant, g, n, i))
			}
			l.mu.Lock()
			keys := make([]string, len(specs))
			for i, sp := range specs {
				keys[i] = sp.IdempotencyKey
			}
			l.batches = append(l.batches, keys)
			l.mu.Unlock()
			submit(specs, true, 0)
		default:
			// A random acknowledged task, mostly recent ones.
			lo := max(0, len(mine)-200)
			ref := mine[lo+rng.IntN(len(mine)-lo)]
			l.get(c, g, via, ref.key, ref.id)
		}
	}
}

// submit sends specs (one task, or a batch) and records one operation per
// key. It returns the ids when acknowledged.
func (l *clusterLoad) submit(c *client.Client, clientID int, via string, specs []task.Spec, batch bool) ([]string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), loadOpTimeout)
	defer cancel()
	call := l.now()
	var (
		ts  []*task.Task
		err error
	)
	if batch {
		ts, err = c.SubmitBatch(ctx, specs)
	} else {
		var tk *task.Task
		tk, err = c.Submit(ctx, specs[0])
		if err == nil {
			ts = []*task.Task{tk}
		}
	}
	ret := l.now()
	if err == nil && len(ts) != len(specs) {
		err = fmt.Errorf("answer has %d tasks for %d specs", len(ts), len(specs))
		l.t.Errorf("acknowledged submit: %v", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats.Tasks += len(specs)
	if batch {
		l.stats.Batches++
	} else {
		l.stats.Submits++
	}
	var ids []string
	if err == nil {
		ids = make([]string, len(ts))
		for i, tk := range ts {
			key := specs[i].IdempotencyKey
			if tk.IdempotencyKey != key {
				l.t.Errorf("submit of key %s answered with task %s of key %q", key, tk.ID, tk.IdempotencyKey)
			}
			ids[i] = tk.ID
			if prev, ok := l.acked[key]; ok && prev != tk.ID {
				l.t.Errorf("key %s acknowledged as task %s and as task %s", key, prev, tk.ID)
			} else if !ok {
				l.acked[key] = tk.ID
				l.ackOrder = append(l.ackOrder, ackedRef{key, tk.ID})
			}
			l.ops = append(l.ops, porcupine.Operation{
				ClientId: clientID, Input: opInput{Kind: opSubmit, Key: key, Via: via}, Call: call,
				Output: opOutput{ID: tk.ID, Index: tk.Index, Status: tk.Status, Found: true}, Return: ret,
			})
		}
		l.ackSpans = append(l.ackSpans, opSpan{call, ret})
		if batch {
			l.stats.BatchAcked++
		} else {
			l.stats.SubmitAcked++
		}
		return ids, true
	}
	code := errCode(err)
	l.stats.Errors[code]++
	if batch {
		l.stats.BatchUnknown++
	} else {
		l.stats.SubmitUnknown++
	}
	for _, sp := range specs {
		l.ops = append(l.ops, porcupine.Operation{
			ClientId: clientID, Input: opInput{Kind: opSubmit, Key: sp.IdempotencyKey, Via: via}, Call: call,
			Output: opOutput{Unknown: true, Err: code}, Return: returnNever,
		})
	}
	return nil, false
}

// submitKeyless submits a noop task without an idempotency key, once,
// whatever the outcome.
func (l *clusterLoad) submitKeyless(c *client.Client, tag string) {
	ctx, cancel := context.WithTimeout(context.Background(), loadOpTimeout)
	defer cancel()
	tk, err := c.Submit(ctx, task.Spec{Kind: "noop", Payload: json.RawMessage(fmt.Sprintf(`{"tag":%q}`, tag))})
	ks := keylessSubmit{Tag: tag}
	if err == nil {
		ks.Acked, ks.ID = true, tk.ID
	} else {
		ks.Err = err.Error()
	}
	l.mu.Lock()
	l.keyless = append(l.keyless, ks)
	l.mu.Unlock()
}

// get reads task id (of key) and records it, unless it failed without an
// answer about the task.
func (l *clusterLoad) get(c *client.Client, clientID int, via, key, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), loadOpTimeout)
	defer cancel()
	call := l.now()
	tk, err := c.Get(ctx, id)
	ret := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats.Gets++
	var out opOutput
	switch {
	case err == nil:
		l.stats.GetFound++
		out = opOutput{Found: true, ID: tk.ID, Index: tk.Index, Status: tk.Status}
	case greyerr.Is(err, greyerr.NotFound):
		l.stats.GetNotFound++
		out = opOutput{Found: false}
	default:
		l.stats.GetErr++
		l.stats.Errors["get: "+errCode(err)]++
		return
	}
	l.ops = append(l.ops, porcupine.Operation{
		ClientId: clientID, Input: opInput{Kind: opGet, Key: key, ID: id, Via: via}, Call: call, Output: out, Return: ret,
	})
}

// errCode names an error for the statistics.
func errCode(err error) string {
	if c := greyerr.CodeOf(err); c != "" {
		return string(c)
	}
	return "other"
}

// probeDirect sends a submit (and a read of an acknowledged task) straight
// to url, without failover, every interval until stop is closed; the
// submits are recorded as directWrites and all operations go into the
// history.
func (l *clusterLoad) probeDirect(url string, interval time.Duration, stop <-chan struct{}) {
	c, err := client.New(url, client.WithTenant(l.tenant))
	if err != nil {
		l.t.Error(err)
		return
	}
	const clientID = 1000
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		case <-time.After(interval):
		}
		key := fmt.Sprintf("%s-direct-%d", l.tenant, n)
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		call := l.now()
		tk, err := c.Submit(ctx, task.Spec{Kind: "noop", IdempotencyKey: key})
		ret := l.now()
		cancel()
		dw := directWrite{Key: key, Via: url, Span: opSpan{call, ret}}
		op := porcupine.Operation{ClientId: clientID, Input: opInput{Kind: opSubmit, Key: key, Via: url}, Call: call}
		if err == nil {
			dw.Acked, dw.ID = true, tk.ID
			op.Output, op.Return = opOutput{Found: true, ID: tk.ID, Index: tk.Index, Status: tk.Status}, ret
		} else {
			dw.Err = err.Error()
			op.Output, op.Return = opOutput{Unknown: true, Err: errCode(err)}, returnNever
		}
		l.mu.Lock()
		l.direct = append(l.direct, dw)
		l.ops = append(l.ops, op)
		var ref *ackedRef
		if len(l.ackSpans) > 0 {
			for k, id := range l.acked { // any acknowledged task
				ref = &ackedRef{k, id}
				break
			}
		}
		l.mu.Unlock()
		if ref != nil {
			l.get(c, clientID+1, url, ref.key, ref.id)
		}
	}
}

// tightSubmits submits single noop tasks back to back from n goroutines
// straight to url (no failover, no pause), until stop is closed; all
// recorded like the load's submits. A busy leader has acknowledged writes
// its followers have not applied yet at any moment, which is what a leader
// kill should find.
func (l *clusterLoad) tightSubmits(url string, n int, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	c, err := client.New(url, client.WithTenant(l.tenant))
	if err != nil {
		l.t.Fatal(err)
	}
	l.mu.Lock()
	l.tight++
	round := l.tight
	l.mu.Unlock()
	for g := range n {
		wg.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("%s-t%d-%d-%d", l.tenant, round, g, k)
				if _, ok := l.submit(c, 3000+g, url+" (tight)", []task.Spec{{Kind: "noop", IdempotencyKey: key}}, false); !ok {
					return
				}
			}
		})
	}
	return &wg
}

// readBurst reads the most recently acknowledged tasks straight from each
// of urls (no failover), as fast as it can from 3 goroutines per server,
// until stop is closed. Meant for the moments after a leader change: a new
// leader must not answer from a state that lacks writes the old one
// acknowledged. Reads are recorded like the load's (errors dropped). It
// returns how many reads answered, and how many of them were 404s.
func (l *clusterLoad) readBurst(urls []string, stop <-chan struct{}) (answered, notFound int) {
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	for i, u := range urls {
		c, err := client.New(u, client.WithTenant(l.tenant))
		if err != nil {
			l.t.Error(err)
			return
		}
		for g := range 3 {
			wg.Go(func() {
				clientID := 2000 + 10*i + g
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					l.mu.Lock()
					recent := l.ackOrder[max(0, len(l.ackOrder)-30):]
					var ref ackedRef
					if len(recent) > 0 {
						ref = recent[n%len(recent)]
					}
					l.mu.Unlock()
					if ref.id == "" {
						time.Sleep(10 * time.Millisecond)
						continue
					}
					ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
					call := l.now()
					tk, err := c.Get(ctx, ref.id)
					ret := l.now()
					cancel()
					var out opOutput
					switch {
					case err == nil:
						out = opOutput{Found: true, ID: tk.ID, Index: tk.Index, Status: tk.Status}
					case greyerr.Is(err, greyerr.NotFound):
						out = opOutput{Found: false}
					default:
						time.Sleep(2 * time.Millisecond)
						continue
					}
					mu.Lock()
					answered++
					if !out.Found {
						notFound++
					}
					mu.Unlock()
					l.mu.Lock()
					l.ops = append(l.ops, porcupine.Operation{
						ClientId: clientID, Input: opInput{Kind: opGet, Key: ref.key, ID: ref.id, Via: u + " (burst)"},
						Call: call, Output: out, Return: ret,
					})
					l.mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	return answered, notFound
}

// firstAckAfter is how long after ts (a load timestamp) the first submit
// called at or after ts was acknowledged.
func (l *clusterLoad) firstAckAfter(ts int64) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	best := int64(-1)
	for _, s := range l.ackSpans {
		if s.Call >= ts && (best < 0 || s.Return < best) {
			best = s.Return
		}
	}
	if best < 0 {
		return 0, false
	}
	return time.Duration(best - ts), true
}

// acksBetween counts submits acknowledged with both call and return in
// [from, to].
func (l *clusterLoad) acksBetween(from, to int64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.ackSpans {
		if s.Call >= from && s.Return <= to {
			n++
		}
	}
	return n
}

// Summary is a one-line description of the load.
func (l *clusterLoad) Summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stats
	codes := make([]string, 0, len(s.Errors))
	for k, v := range s.Errors {
		codes = append(codes, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(codes)
	return fmt.Sprintf("%d ops: submits %d (acked %d, unknown %d), batches %d (acked %d, unknown %d), retries %d, gets %d (found %d, 404 %d, error %d), %d keys acknowledged; errors: %s",
		len(l.ops), s.Submits, s.SubmitAcked, s.SubmitUnknown, s.Batches, s.BatchAcked, s.BatchUnknown, s.Retries,
		s.Gets, s.GetFound, s.GetNotFound, s.GetErr, len(l.acked), strings.Join(codes, " "))
}

// nonTerminal are the statuses of unfinished tasks.
var nonTerminal = []task.Status{task.Pending, task.Leased, task.Running, task.Retrying}

// verify waits until every task of the tenant is terminal, then checks the
// outcome and the history (see the package comment of cluster_test.go) and
// returns the tenant's tasks by id.
func (l *clusterLoad) verify(c *client.Client, drainTimeout time.Duration) map[string]*task.Task {
	t := l.t
	t.Helper()
	l.Stop()
	t.Logf("load: %s", l.Summary())

	// 1. Let everything finish.
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout+30*time.Second)
	defer cancel()
	for {
		p, err := c.List(ctx, client.ListOptions{Status: nonTerminal, Limit: 1000})
		if err == nil && len(p.Tasks) == 0 {
			break
		}
		if time.Since(began) > drainTimeout {
			if err != nil {
				t.Fatalf("tasks not all terminal after %s: %v", drainTimeout, err)
			}
			var b strings.Builder
			for i, tk := range p.Tasks {
				if i == 5 {
					break
				}
				fmt.Fprintf(&b, "\n  %s %s attempt %d lease %+v next %v", tk.ID, tk.Status, tk.Attempt, tk.Lease, tk.NextAttemptAt)
			}
			t.Fatalf("%d+ tasks still unfinished %s after the load stopped:%s", len(p.Tasks), drainTimeout, b.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("all tasks terminal %s after the load stopped", time.Since(began).Round(time.Millisecond))

	// 2. Read them all.
	all := map[string]*task.Task{}
	byKey := map[string][]*task.Task{}
	for tk, err := range c.ListAll(ctx, client.ListOptions{Limit: 1000}) {
		if err != nil {
			t.Fatalf("list tasks: %v", err)
		}
		all[tk.ID] = tk
		byKey[tk.IdempotencyKey] = append(byKey[tk.IdempotencyKey], tk)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	// Submits without a key: one task per submit at most, acknowledged
	// ones exist.
	byTag := map[string][]*task.Task{}
	for _, tk := range byKey[""] {
		var p struct {
			Tag string `json:"tag"`
		}
		if err := json.Unmarshal(tk.Payload, &p); err != nil || p.Tag == "" {
			t.Errorf("task %s without idempotency key has payload %s", tk.ID, tk.Payload)
			continue
		}
		byTag[p.Tag] = append(byTag[p.Tag], tk)
	}
	dups := 0
	for _, ks := range l.keyless {
		ts := byTag[ks.Tag]
		switch {
		case len(ts) > 1:
			dups++
			var b strings.Builder
			for _, tk := range ts {
				fmt.Fprintf(&b, " %s (created %s)", tk.ID, tk.CreatedAt.Format("15:04:05.000000"))
			}
			t.Errorf("submit %s without idempotency key was sent once (acknowledged %v, error %q) and created %d tasks:%s",
				ks.Tag, ks.Acked, ks.Err, len(ts), b.String())
		case ks.Acked && (len(ts) == 0 || ts[0].ID != ks.ID):
			t.Errorf("acknowledged submit %s without idempotency key (task %s) does not exist", ks.Tag, ks.ID)
		}
	}
	delete(byKey, "")

	// 3. One task per key, every acknowledged task exists.
	for k, ts := range byKey {
		if len(ts) > 1 {
			ids := make([]string, len(ts))
			for i, tk := range ts {
				ids[i] = tk.ID
			}
			t.Errorf("idempotency key %q has %d tasks: %v", k, len(ts), ids)
		}
	}
	lost := 0
	for k, id := range l.acked {
		tk := all[id]
		switch {
		case tk == nil:
			if lost++; lost <= 10 {
				t.Errorf("acknowledged task %s (key %s) does not exist", id, k)
			}
		case tk.IdempotencyKey != k:
			t.Errorf("acknowledged task %s has key %q, want %q", id, tk.IdempotencyKey, k)
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged tasks lost", lost, len(l.acked))
	}

	// 4. Exactly one recorded outcome: completed, by its last attempt, and
	// no other attempt completed.
	retried, bad := 0, 0
	for _, tk := range all {
		if why := outcomeProblem(tk); why != "" {
			if bad++; bad <= 10 {
				t.Errorf("task %s (key %s): %s; attempts: %s", tk.ID, tk.IdempotencyKey, why, describeAttempts(tk))
			}
		}
		if len(tk.Attempts) > 1 {
			retried++
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d tasks do not have exactly one completed outcome", bad, len(all))
	}

	// 5. Batches are all or nothing.
	for _, keys := range l.batches {
		n := 0
		for _, k := range keys {
			if len(byKey[k]) > 0 {
				n++
			}
		}
		if n != 0 && n != len(keys) {
			t.Errorf("batch %v: %d of %d tasks exist (all or nothing)", keys, n, len(keys))
		}
	}
	keylessAcked := 0
	for _, ks := range l.keyless {
		if ks.Acked {
			keylessAcked++
		}
	}
	t.Logf("%d tasks checked; %d needed more than one attempt; %d keys acknowledged, %d more keys whose submits were unknown exist; %d submits without key (%d acknowledged, %d duplicated)",
		len(all), retried, len(l.acked), len(byKey)-len(l.acked), len(l.keyless), keylessAcked, dups)

	// 6. Linearizability of the recorded history.
	checkLinearizable(t, l.ops)
	return all
}

// outcomeProblem says what is wrong with a finished task's outcome ("" if
// nothing): it must be completed by its last attempt, which must be the
// only completed one (every earlier attempt failed, e.g. lease expired).
func outcomeProblem(tk *task.Task) string {
	if tk.Status != task.Completed {
		return "status " + string(tk.Status) + ", want completed"
	}
	if len(tk.Attempts) == 0 || tk.Attempt != len(tk.Attempts) {
		return fmt.Sprintf("attempt %d with %d attempts recorded", tk.Attempt, len(tk.Attempts))
	}
	completed := 0
	for i, a := range tk.Attempts {
		if a.N != i+1 {
			return fmt.Sprintf("attempt #%d is numbered %d", i+1, a.N)
		}
		if a.FinishedAt == nil {
			return fmt.Sprintf("attempt %d never finished", a.N)
		}
		if a.Error == nil {
			completed++
		}
	}
	last := tk.Attempts[len(tk.Attempts)-1]
	switch {
	case completed != 1:
		return fmt.Sprintf("%d completed attempts", completed)
	case last.Error != nil:
		return "last attempt failed but the task is completed"
	}
	return ""
}

func describeAttempts(tk *task.Task) string {
	var parts []string
	for _, a := range tk.Attempts {
		s := fmt.Sprintf("#%d %s leased %s", a.N, a.WorkerID, a.LeasedAt.Format("15:04:05.000"))
		if a.Error != nil {
			s += " error " + a.Error.Code + ": " + a.Error.Message
		} else if a.FinishedAt != nil {
			s += " completed " + a.FinishedAt.Format("15:04:05.000")
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// checkLinearizable checks ops with porcupine; on a violation it reports
// the offending keys' operations and writes porcupine's visualization.
func checkLinearizable(t *testing.T, ops []porcupine.Operation) {
	t.Helper()
	began := time.Now()
	res, info := porcupine.CheckOperationsVerbose(taskModel, ops, time.Minute)
	t.Logf("linearizability: %s (%d operations, checked in %s)", res, len(ops), time.Since(began).Round(time.Millisecond))
	switch res {
	case porcupine.Ok:
		return
	case porcupine.Unknown:
		t.Errorf("linearizability check timed out")
		return
	}
	// Name the keys whose sub-history is not linearizable.
	perKey := porcupine.Model{Init: taskModel.Init, Step: taskModel.Step, Equal: taskModel.Equal}
	shown := 0
	for _, part := range taskModel.Partition(ops) {
		if porcupine.CheckOperations(perKey, part) {
			continue
		}
		if shown++; shown <= 5 {
			t.Errorf("history of key %s is not linearizable:\n%s", part[0].Input.(opInput).Key, describeOps(part))
		}
	}
	t.Errorf("history not linearizable (%d keys)", shown)
	f, err := os.CreateTemp("", "grey-e2e-porcupine-*.html")
	if err == nil {
		if err := porcupine.Visualize(taskModel, info, f); err == nil {
			t.Logf("porcupine visualization: %s", filepath.Clean(f.Name()))
		}
		_ = f.Close()
	}
}

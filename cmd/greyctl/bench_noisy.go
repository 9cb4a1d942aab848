package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// The tenants of the noisy-neighbor scenario.
const (
	noisyTenant = "noisy-a"
	quietTenant = "quiet-b"
)

// quietInterval is the pace of the quiet tenant's submits.
const quietInterval = 10 * time.Millisecond

// noisyResult is the JSON line of the noisy-neighbor scenario. The b_*
// fields are null when the quiet tenant submitted nothing.
type noisyResult struct {
	Scenario string   `json:"scenario"`
	BP50Ms   *float64 `json:"b_p50_ms"`
	BP99Ms   *float64 `json:"b_p99_ms"`
	BMaxMs   *float64 `json:"b_max_ms"`
	ASeconds float64  `json:"a_seconds"`
}

// runNoisyNeighbor is the "noisy-neighbor" scenario: tenant A floods the
// cluster with cfg.ATasks tasks while tenant B submits cfg.BTasks tasks at a
// steady pace; it measures B's submit → start latency (server stamps) and
// how long A's flood takes. It prints its own JSON line and returns no
// benchResult.
func runNoisyNeighbor(ctx context.Context, a *app, cfg benchConfig) (*benchResult, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	ca, err := a.client(noisyTenant)
	if err != nil {
		return nil, err
	}
	cb, err := a.client(quietTenant)
	if err != nil {
		return nil, err
	}

	// A's completions come from a watch opened before the first submit.
	acfg := cfg
	acfg.Tasks = cfg.ATasks
	tr := newTracker(acfg.Tasks)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watchErr, err := watchCompletions(ctx, watchCtx, []*client.Client{ca}, tr)
	if err != nil {
		return nil, err
	}

	// t0: A's flood and B's paced submits start together.
	s := &submitter{clients: []*client.Client{ca}, cfg: acfg, tr: tr}
	aErr := make(chan error, 1)
	q := &quietRun{c: cb, n: cfg.BTasks, kind: cfg.Kind, payload: cfg.payloadAt()}
	bDone := make(chan error, 1)
	t0 := time.Now()
	go func() { aErr <- s.run(ctx) }()
	go func() { bDone <- q.submitAll(ctx, t0) }()

	var tick <-chan time.Time
	if cfg.Progress > 0 {
		t := time.NewTicker(cfg.Progress)
		defer t.Stop()
		tick = t.C
	}
	aDone := tr.done
	aFinished, bSubmitted := false, false
	var runErr error
	for runErr == nil && (!aFinished || !bSubmitted) {
		select {
		case <-aDone:
			aFinished = true
			aDone = nil // closed: stop selecting it
		case err := <-aErr:
			if err != nil {
				runErr = fmt.Errorf("submit (%s): %w", noisyTenant, err)
			}
			aErr = nil
		case err := <-bDone:
			if err != nil {
				runErr = fmt.Errorf("submit (%s): %w", quietTenant, err)
			}
			bSubmitted = true
			bDone = nil
		case err := <-watchErr:
			runErr = err
		case <-ctx.Done():
			what := "timed out"
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				what = "interrupted"
			}
			sub, fin := tr.progress()
			runErr = fmt.Errorf("%s after %s: %s %d of %d tasks submitted, %d finished; %s %d of %d submitted",
				what, cfg.Timeout, noisyTenant, sub, cfg.ATasks, fin, quietTenant, q.submitted(), cfg.BTasks)
		case <-tick:
			sub, fin := tr.progress()
			fmt.Fprintf(a.stderr, "bench: %s %d/%d submitted, %d finished; %s %d/%d submitted\n",
				noisyTenant, sub, cfg.ATasks, fin, quietTenant, q.submitted(), cfg.BTasks)
		}
	}
	if runErr != nil {
		return nil, runErr
	}
	ares := tr.result()
	res := &noisyResult{Scenario: "noisy-neighbor", ASeconds: ares.Seconds}

	// B's latencies from the server's stamps, once each task finished.
	lat, bFailed, err := q.latencies(ctx)
	if err != nil {
		return nil, err
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		p50, p99, mx := round(ms(percentile(lat, 0.50)), 2), round(ms(percentile(lat, 0.99)), 2), round(ms(lat[len(lat)-1]), 2)
		res.BP50Ms, res.BP99Ms, res.BMaxMs = &p50, &p99, &mx
	}
	if err := writeJSONLine(a.stdout, res); err != nil {
		return nil, err
	}
	if ares.Failed > 0 || bFailed > 0 {
		return nil, fmt.Errorf("%d of %s's and %d of %s's tasks failed or were cancelled", ares.Failed, noisyTenant, bFailed, quietTenant)
	}
	return nil, nil
}

// quietRun submits the quiet tenant's tasks, one every quietInterval from
// t0, each in its own request so that a slow answer does not delay the next
// (an open-loop arrival process).
type quietRun struct {
	c       *client.Client
	n       int
	kind    string
	payload json.RawMessage

	mu  sync.Mutex
	ids []task.ID
}

func (q *quietRun) submitted() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.ids)
}

// submitAll submits the n tasks and returns when all were accepted, or with
// the first error.
func (q *quietRun) submitAll(ctx context.Context, t0 time.Time) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for i := range q.n {
		if d := time.Until(t0.Add(time.Duration(i) * quietInterval)); d > 0 {
			if err := pause(ctx, d); err != nil {
				break
			}
		}
		wg.Go(func() {
			t, err := q.submit(ctx)
			if err != nil {
				cancel(err)
				return
			}
			q.mu.Lock()
			q.ids = append(q.ids, t.ID)
			q.mu.Unlock()
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// submit sends one task, retrying while the server pushes back.
func (q *quietRun) submit(ctx context.Context) (*task.Task, error) {
	delay := 20 * time.Millisecond
	for {
		t, err := q.c.Submit(ctx, task.Spec{Kind: q.kind, Payload: q.payload})
		if err == nil {
			return t, nil
		}
		if !retryable(err) {
			return nil, err
		}
		wait := delay
		var ge *greyerr.Error
		if errors.As(err, &ge) && ge.RetryAfter > 0 {
			wait = min(ge.RetryAfter, 10*time.Second)
		}
		delay = min(2*delay, time.Second)
		if err := pause(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// latencies waits for each quiet task and returns its created_at →
// started_at, and how many did not complete.
func (q *quietRun) latencies(ctx context.Context) ([]time.Duration, int, error) {
	q.mu.Lock()
	ids := slices.Clone(q.ids)
	q.mu.Unlock()
	var (
		mu     sync.Mutex
		lat    = make([]time.Duration, 0, len(ids))
		failed int
		first  error
		wg     sync.WaitGroup
	)
	jobs := make(chan task.ID)
	for range min(8, len(ids)) {
		wg.Go(func() {
			for id := range jobs {
				t, err := q.c.Wait(ctx, id)
				mu.Lock()
				switch {
				case err != nil:
					if first == nil {
						first = fmt.Errorf("wait %s: %w", id, err)
					}
				case t.Status != task.Completed || t.StartedAt == nil:
					failed++
				default:
					lat = append(lat, max(t.StartedAt.Sub(t.CreatedAt), 0))
				}
				mu.Unlock()
			}
		})
	}
	for _, id := range ids {
		jobs <- id
	}
	close(jobs)
	wg.Wait()
	return lat, failed, first
}

// pause waits d or until ctx ends, returning ctx's error in that case.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

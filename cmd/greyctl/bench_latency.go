package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/grey-distributed/grey/task"
)

// runLatency measures idle latency: it submits --tasks tasks one at a time,
// each after the previous finished, so the cluster is otherwise idle.
// p50_ms/p99_ms are submit → start, from the server's own created_at and
// started_at stamps (one clock, no client or network time); seconds and
// tasks_per_second cover the whole sequential run.
func runLatency(ctx context.Context, a *app, cfg benchConfig) (*benchResult, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	c, err := a.client("bench-1")
	if err != nil {
		return nil, err
	}
	res := &benchResult{Tasks: cfg.Tasks}
	lat := make([]time.Duration, 0, cfg.Tasks)
	start := time.Now()
	for i := 0; i < cfg.Tasks; i++ {
		t, err := c.Submit(ctx, task.Spec{Kind: cfg.Kind, Payload: cfg.payloadAt()})
		if err != nil {
			return nil, fmt.Errorf("submit %d: %w", i, err)
		}
		done, err := c.Wait(ctx, t.ID)
		if err != nil {
			return nil, fmt.Errorf("wait %s: %w", t.ID, err)
		}
		if done.Status != task.Completed {
			res.Failed++
			continue
		}
		if done.StartedAt != nil {
			lat = append(lat, done.StartedAt.Sub(done.CreatedAt))
		}
	}
	res.Seconds = time.Since(start).Seconds()
	res.TasksPerSecond = float64(cfg.Tasks) / res.Seconds
	slices.Sort(lat)
	res.P50Ms = round(ms(percentile(lat, 0.50)), 3)
	res.P99Ms = round(ms(percentile(lat, 0.99)), 3)
	return res, nil
}

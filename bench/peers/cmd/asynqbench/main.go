// Command asynqbench measures Asynq (Redis) on the shape of
// `greyctl bench --tasks N --tenants 4 --kind noop`: N noop tasks over 4
// queues (bench-1…bench-4, equal weights), enqueued from concurrent
// enqueuers while the server runs, timed from the first enqueue to the last
// task marked done, printed as one JSON line.
//
// Asynq 0.26 has no batch enqueue (each Enqueue is one Lua script call), so
// the enqueuers' concurrency is the lever instead of a batch size. A task
// counts as done when Redis no longer holds it pending or active: the
// handler's return is counted first, then the queues are polled every
// millisecond until the processors have marked the last ones done.
//
//	asynqbench --redis-addr 127.0.0.1:6379 --jobs 20000 --workers 100
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hibiken/asynq"

	"github.com/grey-distributed/grey/bench/peers/internal/peerbench"
)

const taskType = "noop"

type config struct {
	redisAddr     string
	jobs          int
	queues        int
	workers       int
	concurrency   int
	mode          string
	checkInterval time.Duration
	poolSize      int
	storePID      int
	timeout       time.Duration
}

func main() {
	var c config
	flag.StringVar(&c.redisAddr, "redis-addr", "127.0.0.1:6379", "Redis address")
	flag.IntVar(&c.jobs, "jobs", 20000, "noop tasks to enqueue and process")
	flag.IntVar(&c.queues, "queues", 4, "queues the tasks are spread over, equal weights (greyctl bench's --tenants)")
	flag.IntVar(&c.workers, "workers", 100, "server Concurrency (processing goroutines)")
	flag.IntVar(&c.concurrency, "concurrency", 32, "concurrent enqueuers (one task per Enqueue call)")
	flag.StringVar(&c.mode, "mode", peerbench.ModeOverlap, "overlap: greyctl bench's shape; prefill: enqueue all, then start the server")
	flag.DurationVar(&c.checkInterval, "task-check-interval", 5*time.Millisecond, "server TaskCheckInterval (idle wait when every queue is empty)")
	flag.IntVar(&c.poolSize, "pool-size", 0, "Redis pool size of client and server (0: go-redis's default, 10 per CPU)")
	flag.IntVar(&c.storePID, "store-pid", 0, "redis-server pid: its CPU is reported per job")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Minute, "give up after this long")
	flag.Parse()
	if err := c.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "asynqbench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res, err := run(ctx, c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "asynqbench:", err)
		os.Exit(1)
	}
	if err := peerbench.Print(os.Stdout, res); err != nil {
		fmt.Fprintln(os.Stderr, "asynqbench:", err)
		os.Exit(1)
	}
	if res.Failed > 0 {
		os.Exit(1)
	}
}

func (c config) validate() error {
	switch {
	case c.redisAddr == "":
		return errors.New("--redis-addr is required")
	case c.jobs < 1, c.queues < 1, c.workers < 1, c.concurrency < 1, c.checkInterval <= 0, c.poolSize < 0:
		return errors.New("--jobs, --queues, --workers, --concurrency and --task-check-interval must be positive")
	case c.mode != peerbench.ModeOverlap && c.mode != peerbench.ModePrefill:
		return fmt.Errorf("--mode %q: want %s or %s", c.mode, peerbench.ModeOverlap, peerbench.ModePrefill)
	}
	return nil
}

func run(ctx context.Context, c config) (*peerbench.Result, error) {
	opt := asynq.RedisClientOpt{Addr: c.redisAddr, PoolSize: c.poolSize}
	client := asynq.NewClient(opt)
	defer func() { _ = client.Close() }()
	if err := client.Ping(); err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	inspector := asynq.NewInspector(opt)
	defer func() { _ = inspector.Close() }()

	var handled, failed atomic.Int64
	handledAll := make(chan struct{})
	mux := asynq.NewServeMux()
	mux.HandleFunc(taskType, func(context.Context, *asynq.Task) error {
		if handled.Add(1) == int64(c.jobs) {
			close(handledAll)
		}
		return nil
	})
	weights := make(map[string]int, c.queues)
	for q := range c.queues {
		weights[peerbench.QueueName(q)] = 1
	}
	srv := asynq.NewServer(opt, asynq.Config{
		Concurrency:       c.workers,
		Queues:            weights,
		TaskCheckInterval: c.checkInterval,
		LogLevel:          asynq.WarnLevel,
		ErrorHandler: asynq.ErrorHandlerFunc(func(context.Context, *asynq.Task, error) {
			failed.Add(1)
		}),
	})

	enqueue := func(ctx context.Context, b peerbench.Batch) error {
		q := asynq.Queue(peerbench.QueueName(b.Queue))
		for range b.N {
			if _, err := client.EnqueueContext(ctx, asynq.NewTask(taskType, nil), q); err != nil {
				return fmt.Errorf("enqueue: %w", err)
			}
		}
		return nil
	}
	// One task per call: Asynq has no batch enqueue.
	plan := peerbench.Plan(c.jobs, c.queues, 1)
	res := &peerbench.Result{
		System: "asynq", Jobs: c.jobs, Mode: c.mode, Queues: c.queues, Workers: c.workers,
		Batch: 1, Concurrency: c.concurrency, Insert: "enqueue",
	}
	meter := peerbench.NewMeter(c.storePID)
	var start time.Time
	if c.mode == peerbench.ModePrefill {
		t0 := time.Now()
		if err := peerbench.InsertAll(ctx, plan, c.concurrency, enqueue); err != nil {
			return nil, err
		}
		res.InsertSeconds = peerbench.Seconds(time.Since(t0))
		meter.Start()
		start = time.Now()
		if err := srv.Start(mux); err != nil {
			return nil, fmt.Errorf("start: %w", err)
		}
	} else {
		if err := srv.Start(mux); err != nil {
			return nil, fmt.Errorf("start: %w", err)
		}
		meter.Start()
		start = time.Now()
		if err := peerbench.InsertAll(ctx, plan, c.concurrency, enqueue); err != nil {
			srv.Shutdown()
			return nil, err
		}
	}
	defer srv.Shutdown()
	select {
	case <-handledAll:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the handlers: %w (%d of %d handled)", ctx.Err(), handled.Load(), c.jobs)
	}
	end, err := waitDone(ctx, inspector, c.queues)
	if err != nil {
		return nil, err
	}
	meter.Stop()
	res.Failed = failed.Load()
	res.Finish(end.Sub(start))
	meter.Fill(res)
	return res, nil
}

// waitDone polls the queues until none holds a pending or active task and
// returns when that was first seen.
func waitDone(ctx context.Context, in *asynq.Inspector, queues int) (time.Time, error) {
	for {
		left := 0
		for q := range queues {
			info, err := in.GetQueueInfo(peerbench.QueueName(q))
			if err != nil {
				return time.Time{}, fmt.Errorf("queue info: %w", err)
			}
			left += info.Pending + info.Active + info.Retry
		}
		if left == 0 {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("waiting for the last %d tasks: %w", left, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

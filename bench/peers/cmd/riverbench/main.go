// Command riverbench measures River (PostgreSQL) on the shape of
// `greyctl bench --tasks N --tenants 4 --kind noop`: N noop jobs over 4
// queues (bench-1…bench-4), inserted in batches from concurrent inserters
// while the workers run, timed from the first insert to the last completion
// event, printed as one JSON line.
//
// The settings are River's recommended ones for throughput (those of its own
// `river bench`): FetchCooldown 2 ms, FetchPollInterval 20 ms, batch inserts
// with InsertManyFast (COPY FROM) or InsertMany, a worker that returns nil,
// and completions counted from the subscription channel, which reports a job
// only after the completer has written its new state.
//
//	riverbench --database-url postgres://… --jobs 20000 --workers 1000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/grey-distributed/grey/bench/peers/internal/peerbench"
)

// NoopArgs are the arguments of a noop job: none.
type NoopArgs struct{}

// Kind names the job kind.
func (NoopArgs) Kind() string { return "noop" }

// NoopWorker does nothing and succeeds.
type NoopWorker struct {
	river.WorkerDefaults[NoopArgs]
}

// Work returns at once.
func (NoopWorker) Work(context.Context, *river.Job[NoopArgs]) error { return nil }

type config struct {
	databaseURL   string
	jobs          int
	queues        int
	workers       int
	batch         int
	concurrency   int
	insert        string
	mode          string
	fetchCooldown time.Duration
	fetchPoll     time.Duration
	poolConns     int
	storePID      int
	timeout       time.Duration
}

func main() {
	var c config
	flag.StringVar(&c.databaseURL, "database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL (default $DATABASE_URL)")
	flag.IntVar(&c.jobs, "jobs", 20000, "noop jobs to insert and work")
	flag.IntVar(&c.queues, "queues", 4, "queues the jobs are spread over (greyctl bench's --tenants)")
	flag.IntVar(&c.workers, "workers", 1000, "MaxWorkers in all, split evenly over the queues")
	flag.IntVar(&c.batch, "batch", 500, "jobs per insert call (greyctl bench's --batch)")
	flag.IntVar(&c.concurrency, "concurrency", 4, "concurrent inserters (greyctl bench's --concurrency)")
	flag.StringVar(&c.insert, "insert", "fast", "fast: InsertManyFast (COPY FROM); many: InsertMany (returns the rows)")
	flag.StringVar(&c.mode, "mode", peerbench.ModeOverlap, "overlap: greyctl bench's shape; prefill: insert all, then start the workers")
	flag.DurationVar(&c.fetchCooldown, "fetch-cooldown", 2*time.Millisecond, "River FetchCooldown")
	flag.DurationVar(&c.fetchPoll, "fetch-poll-interval", 20*time.Millisecond, "River FetchPollInterval")
	flag.IntVar(&c.poolConns, "pool-conns", 16, "pgxpool max connections")
	flag.IntVar(&c.storePID, "store-pid", 0, "PostgreSQL postmaster pid: its tree's CPU is reported per job")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Minute, "give up after this long")
	flag.Parse()
	if err := c.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "riverbench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res, err := run(ctx, c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "riverbench:", err)
		os.Exit(1)
	}
	if err := peerbench.Print(os.Stdout, res); err != nil {
		fmt.Fprintln(os.Stderr, "riverbench:", err)
		os.Exit(1)
	}
	if res.Failed > 0 {
		os.Exit(1)
	}
}

func (c config) validate() error {
	switch {
	case c.databaseURL == "":
		return errors.New("--database-url (or $DATABASE_URL) is required")
	case c.jobs < 1, c.queues < 1, c.batch < 1, c.concurrency < 1, c.poolConns < 1:
		return errors.New("--jobs, --queues, --batch, --concurrency and --pool-conns must be at least 1")
	case c.workers < c.queues:
		return errors.New("--workers must be at least --queues")
	case c.insert != "fast" && c.insert != "many":
		return fmt.Errorf("--insert %q: want fast or many", c.insert)
	case c.mode != peerbench.ModeOverlap && c.mode != peerbench.ModePrefill:
		return fmt.Errorf("--mode %q: want %s or %s", c.mode, peerbench.ModeOverlap, peerbench.ModePrefill)
	}
	return nil
}

func run(ctx context.Context, c config) (*peerbench.Result, error) {
	pcfg, err := pgxpool.ParseConfig(c.databaseURL)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	pcfg.MaxConns = int32(c.poolConns)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer pool.Close()
	driver := riverpgxv5.New(pool)

	migrator, err := rivermigrate.New(driver, nil)
	if err != nil {
		return nil, fmt.Errorf("migrator: %w", err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	// A clean table, as River's own bench starts from.
	if _, err := pool.Exec(ctx, "TRUNCATE river_job"); err != nil {
		return nil, fmt.Errorf("truncate: %w", err)
	}

	workers := river.NewWorkers()
	river.AddWorker(workers, NoopWorker{})
	queues := make(map[string]river.QueueConfig, c.queues)
	for q := range c.queues {
		n := c.workers / c.queues
		if q < c.workers%c.queues {
			n++
		}
		queues[peerbench.QueueName(q)] = river.QueueConfig{MaxWorkers: n}
	}
	client, err := river.NewClient(driver, &river.Config{
		FetchCooldown:     c.fetchCooldown,
		FetchPollInterval: c.fetchPoll,
		Logger:            slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Queues:            queues,
		Workers:           workers,
	})
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	events, unsubscribe := client.SubscribeConfig(&river.SubscribeConfig{
		// Large enough never to drop one: a dropped event would stall the count.
		ChanSize: c.jobs + 1000,
		Kinds:    []river.EventKind{river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobCancelled},
	})
	defer unsubscribe()

	var failed atomic.Int64
	done := make(chan time.Time, 1)
	go func() {
		for n := 0; n < c.jobs; {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-events:
				if !ok {
					return
				}
				if ev.Kind != river.EventKindJobCompleted {
					failed.Add(1)
				}
				n++
			}
		}
		done <- time.Now()
	}()

	insert := func(ctx context.Context, b peerbench.Batch) error {
		params := make([]river.InsertManyParams, b.N)
		opts := &river.InsertOpts{Queue: peerbench.QueueName(b.Queue)}
		for i := range params {
			params[i] = river.InsertManyParams{Args: NoopArgs{}, InsertOpts: opts}
		}
		var err error
		if c.insert == "fast" {
			_, err = client.InsertManyFast(ctx, params)
		} else {
			_, err = client.InsertMany(ctx, params)
		}
		if err != nil {
			return fmt.Errorf("insert %d jobs: %w", b.N, err)
		}
		return nil
	}
	plan := peerbench.Plan(c.jobs, c.queues, c.batch)
	res := &peerbench.Result{
		System: "river", Jobs: c.jobs, Mode: c.mode, Queues: c.queues, Workers: c.workers,
		Batch: c.batch, Concurrency: c.concurrency, Insert: c.insert,
	}
	meter := peerbench.NewMeter(c.storePID)
	var start time.Time
	if c.mode == peerbench.ModePrefill {
		t0 := time.Now()
		if err := peerbench.InsertAll(ctx, plan, c.concurrency, insert); err != nil {
			return nil, err
		}
		res.InsertSeconds = peerbench.Seconds(time.Since(t0))
		meter.Start()
		start = time.Now()
		if err := client.Start(ctx); err != nil {
			return nil, fmt.Errorf("start: %w", err)
		}
	} else {
		if err := client.Start(ctx); err != nil {
			return nil, fmt.Errorf("start: %w", err)
		}
		meter.Start()
		start = time.Now()
		if err := peerbench.InsertAll(ctx, plan, c.concurrency, insert); err != nil {
			return nil, err
		}
	}
	var end time.Time
	select {
	case end = <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for completions: %w", ctx.Err())
	}
	meter.Stop()
	stopCtx, cancelStop := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelStop()
	if err := client.Stop(stopCtx); err != nil {
		return nil, fmt.Errorf("stop: %w", err)
	}
	res.Failed = failed.Load()
	res.Finish(end.Sub(start))
	meter.Fill(res)
	return res, nil
}

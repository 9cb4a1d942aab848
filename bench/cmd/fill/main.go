// Command fill submits many noop tasks that stay pending (run_at in the
// future) as fast as it can, for memory and restart benchmarks:
//
//	fill --server http://127.0.0.1:8080 --tasks 1000000
//
// It prints one JSON line: {"submitted":N,"seconds":S,"tasks_per_second":R}.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

func main() {
	var (
		server      = flag.String("server", "http://127.0.0.1:8080", "greyd API base URL")
		tenant      = flag.String("tenant", "default", "tenant to submit for")
		kind        = flag.String("kind", "noop", "task kind")
		n           = flag.Int("tasks", 1_000_000, "number of tasks")
		batch       = flag.Int("batch", 1000, "tasks per SubmitBatch (1-1000)")
		concurrency = flag.Int("concurrency", 4, "concurrent submitters")
		delay       = flag.Duration("run-at", time.Hour, "run_at = now + this, so the tasks stay pending")
		progress    = flag.Duration("progress", 10*time.Second, "interval of progress lines on stderr (0 = none)")
	)
	flag.Parse()
	if *n < 1 || *batch < 1 || *batch > 1000 || *concurrency < 1 {
		fmt.Fprintln(os.Stderr, "fill: --tasks, --concurrency must be positive and --batch 1-1000")
		os.Exit(2)
	}
	c, err := client.New(*server, client.WithTenant(*tenant), client.WithUserAgent("grey-bench-fill/1"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fill:", err)
		os.Exit(2)
	}
	runAt := time.Now().Add(*delay).UTC()
	specs := func(size int) []task.Spec {
		s := make([]task.Spec, size)
		for i := range s {
			s[i] = task.Spec{Kind: *kind, RunAt: &runAt}
		}
		return s
	}

	ctx := context.Background()
	jobs := make(chan int)
	var (
		done    atomic.Int64
		retries atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		runErr  error
	)
	start := time.Now()
	stopProgress := make(chan struct{})
	if *progress > 0 {
		go func() {
			t := time.NewTicker(*progress)
			defer t.Stop()
			for {
				select {
				case <-stopProgress:
					return
				case <-t.C:
					d := done.Load()
					fmt.Fprintf(os.Stderr, "fill: %d/%d submitted (%.0f/s), %d retries\n", d, *n, float64(d)/time.Since(start).Seconds(), retries.Load())
				}
			}
		}()
	}
	for range *concurrency {
		wg.Go(func() {
			for size := range jobs {
				if err := submit(ctx, c, specs(size), &retries); err != nil {
					errOnce.Do(func() { runErr = err })
					continue
				}
				done.Add(int64(size))
			}
		})
	}
	for left := *n; left > 0; left -= *batch {
		jobs <- min(left, *batch)
	}
	close(jobs)
	wg.Wait()
	close(stopProgress)
	secs := time.Since(start).Seconds()
	out, _ := json.Marshal(struct {
		Submitted      int64   `json:"submitted"`
		Seconds        float64 `json:"seconds"`
		TasksPerSecond float64 `json:"tasks_per_second"`
	}{done.Load(), math.Round(secs*1000) / 1000, math.Round(float64(done.Load())/secs*10) / 10})
	fmt.Println(string(out))
	if runErr != nil {
		fmt.Fprintln(os.Stderr, "fill:", runErr)
		os.Exit(1)
	}
}

// submit sends one batch, retrying while the server pushes back or is
// briefly unavailable (nothing was created then).
func submit(ctx context.Context, c *client.Client, specs []task.Spec, retries *atomic.Int64) error {
	wait := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		ts, err := c.SubmitBatch(rctx, specs)
		cancel()
		if err == nil {
			if len(ts) != len(specs) {
				return fmt.Errorf("submitted %d tasks, got %d back", len(specs), len(ts))
			}
			return nil
		}
		code := greyerr.CodeOf(err)
		if code != greyerr.ResourceExhausted && code != greyerr.Unavailable || attempt == 20 {
			return err
		}
		retries.Add(1)
		var ge *greyerr.Error
		if errors.As(err, &ge) && ge.RetryAfter > 0 {
			wait = ge.RetryAfter
		}
		time.Sleep(wait)
		wait = min(2*wait, 5*time.Second)
	}
}

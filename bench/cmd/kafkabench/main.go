// Command kafkabench measures Grey's Kafka path end to end: it writes
// noop task submissions to grey.tasks.<tenant> and reads their results
// from grey.results.<tenant>, and prints one JSON line:
//
//	{"tasks":N,"seconds":…,"tasks_per_second":…,"lag_p50_ms":…,"lag_p99_ms":…,"result_records":…,"distinct_results":…}
//
// seconds runs from the first message written to the last result read;
// lag is, per message, result read − message written (same clock), so
// with -rate 0 (as fast as the producer goes) it includes the backlog.
// A greyd with events.kafka source and sink on (topics_regex selecting
// the tenant) must be running; with -group, writing starts once its
// consumer group is stable (the steady state, not the join). Used by
// bench/events_kafka.sh.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kafkabench:", err)
		os.Exit(1)
	}
}

func run() error {
	brokers := flag.String("brokers", "127.0.0.1:19092", "Kafka brokers, comma-separated")
	tenant := flag.String("tenant", "", "tenant (topics grey.tasks.<tenant> and grey.results.<tenant>)")
	tasks := flag.Int("tasks", 20000, "messages to write")
	rate := flag.Int("rate", 0, "messages per second (0: as fast as the producer goes)")
	partitions := flag.Int("partitions", 4, "partitions of the tasks topic (created if missing)")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after")
	createOnly := flag.Bool("create", false, "only create the topics, then exit (before greyd starts, so its subscription finds them at once)")
	group := flag.String("group", "", "wait until this consumer group (greyd's) is stable with a member before writing")
	flag.Parse()
	if *tenant == "" {
		return fmt.Errorf("-tenant is required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	seeds := strings.Split(*brokers, ",")
	taskTopic, resultTopic := "grey.tasks."+*tenant, "grey.results."+*tenant

	admCl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if _, err := adm.CreateTopics(ctx, int32(*partitions), -1, nil, taskTopic, resultTopic); err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	if *createOnly {
		return nil
	}
	for *group != "" {
		gs, err := adm.DescribeGroups(ctx, *group)
		if err == nil {
			if g, ok := gs[*group]; ok && g.Err == nil && g.State == "Stable" && len(g.Members) > 0 {
				break
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("group %s never became stable", *group)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The reader starts first, at the end of the results topic.
	cons, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(resultTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		return err
	}
	defer cons.Close()

	var mu sync.Mutex
	sent := make(map[string]time.Time, *tasks) // position → written
	got := make(map[string]time.Time, *tasks)  // position → first result read
	records := 0
	var first, last time.Time

	prod, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.ProducerLinger(2*time.Millisecond))
	if err != nil {
		return err
	}
	defer prod.Close()
	prodErr := make(chan error, 1)
	go func() {
		// Paced by schedule (message i is due at start + i/rate), so a
		// late message does not lower the rate after it.
		start := time.Now()
		var wg sync.WaitGroup
		var ferr error
		var emu sync.Mutex
		for i := 0; i < *tasks; i++ {
			if *rate > 0 {
				if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(*rate))); d > 0 {
					time.Sleep(d)
				}
			}
			r := &kgo.Record{Topic: taskTopic, Value: fmt.Appendf(nil, `{"kind":"noop","payload":{"n":%d}}`, i)}
			at := time.Now()
			mu.Lock()
			if first.IsZero() {
				first = at
			}
			mu.Unlock()
			wg.Add(1)
			prod.Produce(ctx, r, func(r *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					emu.Lock()
					ferr = err
					emu.Unlock()
					return
				}
				mu.Lock()
				sent[fmt.Sprintf("kafka:%s/%d/%d", r.Topic, r.Partition, r.Offset)] = at
				mu.Unlock()
			})
		}
		wg.Wait()
		prodErr <- ferr
	}()

	var result struct {
		IdempotencyKey string `json:"idempotency_key"`
	}
	for {
		mu.Lock()
		done := len(got) >= *tasks
		mu.Unlock()
		if done {
			break
		}
		select {
		case err := <-prodErr:
			if err != nil {
				return fmt.Errorf("produce: %w", err)
			}
		default:
		}
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			mu.Lock()
			defer mu.Unlock()
			return fmt.Errorf("timed out with %d of %d results", len(got), *tasks)
		}
		now := time.Now()
		fs.EachRecord(func(r *kgo.Record) {
			if err := json.Unmarshal(r.Value, &result); err != nil {
				return
			}
			mu.Lock()
			records++
			if _, seen := got[result.IdempotencyKey]; !seen {
				got[result.IdempotencyKey] = now
				last = now
			}
			mu.Unlock()
		})
	}
	mu.Lock()
	defer mu.Unlock()
	var lags []float64
	for pos, at := range got {
		if s, ok := sent[pos]; ok {
			lags = append(lags, float64(at.Sub(s).Microseconds())/1000)
		}
	}
	sort.Float64s(lags)
	pct := func(p float64) float64 {
		if len(lags) == 0 {
			return 0
		}
		return lags[min(len(lags)-1, int(p*float64(len(lags))))]
	}
	secs := last.Sub(first).Seconds()
	fmt.Printf(`{"tasks":%d,"seconds":%.3f,"tasks_per_second":%.1f,"lag_p50_ms":%.1f,"lag_p99_ms":%.1f,"result_records":%d,"distinct_results":%d,"rate":%d}`+"\n",
		*tasks, secs, float64(len(got))/secs, pct(0.50), pct(0.99), records, len(got), *rate)
	return nil
}

package server

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/events/memevents"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/task"
)

// BenchmarkEventsMemRoundTrip measures message in → task → result out
// through a real greyd on the in-memory broker (the core's overhead,
// without a broker's): b.N noop messages, reported as messages/s.
//
//	go test -run '^$' -bench EventsMemRoundTrip -benchtime 5000x ./server/
func BenchmarkEventsMemRoundTrip(b *testing.B) {
	broker := memevents.New()
	startEventsServer(b, memevents.Opener(broker), func(cfg *config.Config) {
		cfg.Log.Level = "warn"
		cfg.Tenants.EnforceQuotas = false
	})
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if _, err := broker.Produce("acme", memevents.Message{Value: fmt.Appendf(nil, `{"kind":"noop","payload":%d}`, i)}); err != nil {
			b.Fatal(err)
		}
	}
	greytest.Eventually(b, 10*time.Minute, func() bool { return broker.Count(events.Result, "acme") >= b.N })
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkSinkOverhead compares noop throughput (API batches of 1000 →
// completed) with and without an event sink publishing every result and
// lifecycle event (in-memory broker): the sink's cost on the core path.
// sink_on publishes the terminal lifecycle events (the default),
// sink_all every transition (events.kafka.lifecycle: [all]).
// sink_discard is sink_on with a broker that counts the events without
// keeping them (memevents.DiscardPublished): sink_on charges greyd with
// the in-process test broker's copies of every event and their garbage
// collection, which a broker in another process does not cost it;
// sink_discard leaves them out (and with them a real driver's client
// work), so the two bound the sink's cost from above and below.
//
// tasks/s runs to the last completion: the core's throughput with the
// sink running beside it. published-tasks/s runs on to the last result
// published, which adds the relay's linger (up to 250 ms for the last
// partial batch: a large share of a one-second run). cpu-µs/task counts
// the whole run, publishing included.
//
//	go test -run '^$' -bench SinkOverhead -benchtime 20000x -count 3 ./server/
func BenchmarkSinkOverhead(b *testing.B) {
	for _, mode := range []string{"off", "on", "all", "discard"} {
		on := mode != "off"
		name := "sink_" + mode
		b.Run(name, func(b *testing.B) {
			broker := memevents.New()
			if mode == "discard" {
				broker.DiscardPublished()
			}
			quiet := func(cfg *config.Config) {
				cfg.Log.Level = "warn"
				cfg.Tenants.EnforceQuotas = false
				cfg.Events.Kafka.Source = false
				cfg.Events.Kafka.Sink = on
				if !on {
					cfg.Events.Kafka.Brokers = nil
				}
				if mode == "all" {
					cfg.Events.Kafka.Lifecycle = []string{"all"}
				}
			}
			_, mk := startEventsServer(b, memevents.Opener(broker), quiet)
			c := mk("acme")
			ctx := context.Background()
			specs := make([]task.Spec, 1000)
			for i := range specs {
				specs[i] = task.Spec{Kind: "noop"}
			}
			b.ResetTimer()
			start := time.Now()
			cpu0 := processCPU(b)
			for sent := 0; sent < b.N; sent += len(specs) {
				if _, err := c.SubmitBatch(ctx, specs); err != nil {
					b.Fatal(err)
				}
			}
			want := (b.N + 999) / 1000 * 1000
			greytest.Eventually(b, 10*time.Minute, func() bool {
				ci, err := c.Cluster(ctx)
				return err == nil && ci.Tasks[task.Completed] >= want
			})
			completed := time.Since(start)
			if on {
				greytest.Eventually(b, 10*time.Minute, func() bool { return broker.Count(events.Result, "acme") >= want })
				b.ReportMetric(float64(want)/time.Since(start).Seconds(), "published-tasks/s")
			}
			if mode == "all" {
				// at least pending and completed per task (a lease and its
				// start may be one Raft entry: one transition, not two)
				greytest.Eventually(b, 10*time.Minute, func() bool { return broker.Count(events.Lifecycle, "acme") >= 2*want })
				b.ReportMetric(float64(broker.Count(events.Lifecycle, "acme"))/float64(want), "lifecycle/task")
			}
			b.StopTimer()
			b.ReportMetric(float64(want)/completed.Seconds(), "tasks/s")
			// CPU per task (server, client and broker: one process) moves
			// less than tasks/s with the load of a shared machine
			b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(want), "cpu-µs/task")
		})
	}
}

// processCPU is the CPU time (user + system) this process used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

package server

import (
	"context"
	"fmt"
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
//
//	go test -run '^$' -bench SinkOverhead -benchtime 20000x -count 3 ./server/
func BenchmarkSinkOverhead(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "sink_off"
		if on {
			name = "sink_on"
		}
		b.Run(name, func(b *testing.B) {
			broker := memevents.New()
			quiet := func(cfg *config.Config) {
				cfg.Log.Level = "warn"
				cfg.Tenants.EnforceQuotas = false
				cfg.Events.Kafka.Source = false
				cfg.Events.Kafka.Sink = on
				if !on {
					cfg.Events.Kafka.Brokers = nil
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
			if on {
				greytest.Eventually(b, 10*time.Minute, func() bool { return broker.Count(events.Result, "acme") >= want })
			}
			b.StopTimer()
			b.ReportMetric(float64(want)/time.Since(start).Seconds(), "tasks/s")
		})
	}
}

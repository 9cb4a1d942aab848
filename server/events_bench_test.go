package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/events/memevents"
	"github.com/grey-distributed/grey/internal/greytest"
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
	greytest.Eventually(b, 10*time.Minute, func() bool { return len(broker.Published(events.Result, "acme")) >= b.N })
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

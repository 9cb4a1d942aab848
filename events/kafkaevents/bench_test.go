package kafkaevents_test

import (
	"context"
	"testing"
	"time"

	"github.com/grey-distributed/grey/events"
)

// BenchmarkSourceFetchAck measures the source driver alone: fetch 256,
// acknowledge them (one offset commit), again, over pre-written messages
// of the real broker. b.N is the number of messages.
func BenchmarkSourceFetchAck(b *testing.B) {
	k := newKafkaB(b)
	tenant := k.tenant("a")
	k.createTopic(k.topic(tenant), 4)
	k.produce(k.topic(tenant), "m", b.N)
	s := k.source()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b.ResetTimer()
	for n := 0; n < b.N; {
		msgs, err := s.Fetch(ctx, min(256, b.N-n))
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Ack(ctx, msgs); err != nil {
			b.Fatal(err)
		}
		n += len(msgs)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkSinkPublish measures the sink driver alone: batches of 512
// events (the relay's results and lifecycle events of 256 tasks).
func BenchmarkSinkPublish(b *testing.B) {
	k := newKafkaB(b)
	tenant := k.tenant("a")
	sk := k.sink(false, "events_topic", "grey.events."+k.run)
	ctx := context.Background()
	evs := make([]events.Event, 512)
	for i := range evs {
		evs[i] = events.Event{Kind: events.Result, Tenant: tenant, Key: "task", Value: make([]byte, 300),
			Headers: map[string]string{"grey-task-id": "t", "grey-attempt": "1", "grey-tenant-id": tenant}}
	}
	if err := sk.Publish(ctx, evs[:1]); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for n := 0; n < b.N; n += len(evs) {
		if err := sk.Publish(ctx, evs[:min(len(evs), b.N-n)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

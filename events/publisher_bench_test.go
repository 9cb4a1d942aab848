package events_test

import (
	"context"

	"testing"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/events/eventstest"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
)

// BenchmarkPublisherEvents measures the events of a relay batch of 1000
// completed tasks (a result and a terminal lifecycle event each): the
// encoding the sink adds to every task, reported per task.
//
//	go test -run '^$' -bench PublisherEvents -benchmem ./events/
func BenchmarkPublisherEvents(b *testing.B) {
	p, err := events.NewPublisher(nopSink{}, events.PublisherOptions{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	batch := state.FeedBatch{Tasks: make([]*task.Task, 1000)}
	for i := range batch.Tasks {
		batch.Tasks[i] = eventstest.FinishedTask("acme", i, task.Completed)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		evs, err := p.Events(batch)
		if err != nil || len(evs) != 2*len(batch.Tasks) {
			b.Fatal(len(evs), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch.Tasks)), "ns/task")
}

// nopSink is a SinkDriver that drops everything.
type nopSink struct{}

func (nopSink) Publish(context.Context, []events.Event) error { return nil }
func (nopSink) As(any) bool                                   { return false }
func (nopSink) Close() error                                  { return nil }

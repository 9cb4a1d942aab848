package kafkaevents

import (
	"context"
	"net/url"

	"github.com/grey-distributed/grey/events"
)

// Scheme is the URL scheme of Kafka sources and sinks.
const Scheme = "kafka"

// Opener opens Kafka sources and sinks (an events.Opener).
type Opener struct{}

var _ events.Opener = Opener{}

// OpenSource opens a Source (see OpenSource).
func (Opener) OpenSource(ctx context.Context, u *url.URL, opts events.SourceOptions) (events.SourceDriver, error) {
	s, err := OpenSource(ctx, u, opts)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// OpenSink opens a Sink (see OpenSink).
func (Opener) OpenSink(ctx context.Context, u *url.URL, opts events.SinkOptions) (events.SinkDriver, error) {
	s, err := OpenSink(ctx, u, opts)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Register registers the kafka:// driver in r.
func Register(r *events.Registry) error {
	return r.Register(Scheme, Opener{})
}

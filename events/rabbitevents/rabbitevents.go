package rabbitevents

import (
	"context"
	"net/url"
	"strings"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/greyerr"
)

// Opener opens RabbitMQ sources and sinks (events.Opener).
type Opener struct{}

var _ events.Opener = Opener{}

// OpenSource implements events.Opener.
func (Opener) OpenSource(_ context.Context, u *url.URL, opts events.SourceOptions) (events.SourceDriver, error) {
	raw, err := brokerURL(u)
	if err != nil {
		return nil, err
	}
	return OpenSource(raw, opts)
}

// OpenSink implements events.Opener.
func (Opener) OpenSink(_ context.Context, u *url.URL, opts events.SinkOptions) (events.SinkDriver, error) {
	raw, err := brokerURL(u)
	if err != nil {
		return nil, err
	}
	return OpenSink(raw, opts)
}

func brokerURL(u *url.URL) (string, error) {
	if u == nil {
		return "", greyerr.Invalid("events.rabbitmq.url", "no URL")
	}
	switch strings.ToLower(u.Scheme) {
	case "amqp", "amqps":
	default:
		return "", greyerr.Invalid("events.rabbitmq.url", "scheme %q: want amqp or amqps", u.Scheme)
	}
	return checkURL(u)
}

// Register registers the RabbitMQ driver for the amqp and amqps schemes.
func Register(r *events.Registry) error {
	for _, scheme := range []string{"amqp", "amqps"} {
		if err := r.Register(scheme, Opener{}); err != nil {
			return err
		}
	}
	return nil
}

package rabbitevents

import (
	"context"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// Sink is the RabbitMQ sink driver (events.SinkDriver).
type Sink struct {
	set  settings
	sess *session

	pubMu sync.Mutex                   // one Publish at a time: one confirm sequence
	confs []*amqp.DeferredConfirmation // the Publish's confirmations (pubMu)

	mu  sync.Mutex
	gen uint64
	ch  *amqp.Channel // confirm mode
}

var _ events.SinkDriver = (*Sink)(nil)

// OpenSink returns a sink for the broker at rawURL. Like OpenSource it
// does not wait for the broker; Publish returns Unavailable until the
// connection is up.
func OpenSink(rawURL string, opts events.SinkOptions) (*Sink, error) {
	set, err := parseSettings(opts.Settings, "")
	if err != nil {
		return nil, err
	}
	if err := checkScheme(rawURL, &set); err != nil {
		return nil, err
	}
	if opts.Transactional {
		return nil, greyerr.New(greyerr.Unimplemented, "rabbitmq sink: transactional publishing is Kafka's; RabbitMQ publishes with confirms (at least once)")
	}
	k := &Sink{set: set, sess: newSession(rawURL, "grey-sink", set.tls)}
	k.sess.setup = k.setup
	k.sess.teardown = k.teardown
	k.sess.start()
	return k, nil
}

func (k *Sink) setup(conn *amqp.Connection, gen uint64) error {
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	for _, ex := range []string{k.set.resultsExchange, k.set.eventsExchange} {
		if err := ch.ExchangeDeclare(ex, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare exchange %s: %w", ex, err)
		}
	}
	if err := ch.Confirm(false); err != nil {
		return fmt.Errorf("confirm.select: %w", err)
	}
	watchChannel(conn, ch)
	k.mu.Lock()
	k.gen, k.ch = gen, ch
	k.mu.Unlock()
	return nil
}

func (k *Sink) teardown(gen uint64, _ error) {
	k.mu.Lock()
	if k.gen == gen {
		k.gen, k.ch = 0, nil
	}
	k.mu.Unlock()
}

// route gives an event's exchange and routing key: results to
// grey.results with <tenant>, lifecycle events to grey.events with
// <tenant>.<grey-event> (or <tenant>).
func (k *Sink) route(ev *events.Event) (string, string, error) {
	if !task.ValidTenant(ev.Tenant) {
		return "", "", greyerr.Invalid("tenant", "event for task %q has no valid tenant %q", ev.Key, ev.Tenant)
	}
	switch ev.Kind {
	case events.Result:
		return k.set.resultsExchange, ev.Tenant, nil
	case events.Lifecycle:
		key := ev.Tenant
		if e := ev.Headers["grey-event"]; e != "" && printable(e) && len(e) < 200 {
			key += "." + e
		}
		return k.set.eventsExchange, key, nil
	}
	return "", "", greyerr.Invalid("kind", "event kind %q is neither result nor lifecycle", ev.Kind)
}

// Publish implements events.SinkDriver: every event is published
// persistent on a confirm-mode channel and Publish returns once the broker
// confirmed them all. A nack, a lost connection or no connection at all is
// Unavailable: the relay retries the batch (after the driver reconnected),
// so an event may be published twice, never lost.
func (k *Sink) Publish(ctx context.Context, evs []events.Event) error {
	if len(evs) == 0 {
		return nil
	}
	routes := make([]routed, len(evs))
	for i := range evs {
		ex, key, err := k.route(&evs[i])
		if err != nil {
			return err
		}
		routes[i] = routed{ex, key}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	k.pubMu.Lock()
	defer k.pubMu.Unlock()
	_, gen, err := k.sess.wait(ctx, "sink")
	if err != nil {
		return err
	}
	k.mu.Lock()
	ch := k.ch
	if k.gen != gen {
		ch = nil
	}
	k.mu.Unlock()
	if ch == nil {
		return greyerr.New(greyerr.Unavailable, "rabbitmq sink: broker connection lost")
	}
	// The broker has confirm_timeout to confirm the batch: a connection
	// it keeps alive without serving it is closed then (session.kill),
	// so that Publish returns and the relay's retry goes out on a new
	// connection instead of waiting on this one for ever (the relay's
	// context has no deadline).
	return k.sess.confirmed(ctx, gen, k.set.confirmTimeout, "sink",
		func(ctx context.Context, progress func()) error { return k.publish(ctx, ch, evs, routes, progress) }, k.await)
}

type routed struct{ ex, key string }

// publish writes evs on ch, keeping their deferred confirmations in
// k.confs; progress is called after each message written.
func (k *Sink) publish(ctx context.Context, ch *amqp.Channel, evs []events.Event, routes []routed, progress func()) error {
	now := time.Now()
	k.confs = k.confs[:0]
	for i := range evs {
		ev := &evs[i]
		headers := make(amqp.Table, len(ev.Headers)+2)
		for hk, hv := range ev.Headers {
			headers[hk] = hv
		}
		headers["grey-tenant-id"] = ev.Tenant
		if _, ok := headers["grey-task-id"]; !ok && ev.Key != "" {
			headers["grey-task-id"] = ev.Key
		}
		msgID := ev.Key
		if a := ev.Headers["grey-attempt"]; a != "" {
			msgID += "/" + a
		}
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, routes[i].ex, routes[i].key, false, false, amqp.Publishing{
			Headers:      headers,
			ContentType:  "application/json",
			DeliveryMode: amqp.Persistent,
			MessageId:    msgID,
			Type:         string(ev.Kind),
			Timestamp:    now,
			Body:         ev.Value,
		})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return coded(err, "rabbitmq sink: publish to %s", routes[i].ex)
		}
		k.confs = append(k.confs, dc)
		progress()
	}
	return nil
}

// await waits for the confirmations of the last publish, calling
// progress after each.
func (k *Sink) await(ctx context.Context, progress func()) error {
	for _, dc := range k.confs {
		ok, err := dc.WaitContext(ctx)
		progress()
		if err != nil {
			return err
		}
		if !ok {
			return greyerr.New(greyerr.Unavailable, "rabbitmq sink: the broker did not confirm every message (nack or connection lost); the batch is published again")
		}
	}
	return nil
}

// As implements events.SinkDriver: **amqp091.Channel gets the confirm-mode
// channel (nil while disconnected).
func (k *Sink) As(i any) bool {
	p, ok := i.(**amqp.Channel)
	if !ok {
		return false
	}
	k.mu.Lock()
	*p = k.ch
	k.mu.Unlock()
	return true
}

// Close implements events.SinkDriver.
func (k *Sink) Close() error {
	k.sess.stop()
	return nil
}

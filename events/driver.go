package events

import (
	"context"
	"net/url"
)

// Message is one message a source received.
type Message struct {
	// Source is the topic or queue the message came from.
	Source string
	// Tenant is the tenant the driver derived from where the message was
	// published (the topic's suffix, the routing key's first word): a
	// message never chooses its tenant itself.
	Tenant string
	// Key is the message key (Kafka) or routing key (AMQP).
	Key []byte
	// Value is the body: a task submission (task.Spec) as JSON, or Avro
	// when ContentType says so.
	Value []byte
	// Headers are the message's headers (Kafka record headers, AMQP
	// headers), including traceparent where the producer set one.
	Headers map[string]string
	// ContentType is the body's media type: application/json (default) or
	// avro/binary.
	ContentType string
	// Position identifies the message for good, the same on every
	// redelivery: the idempotency key of the task it becomes
	// ("kafka:grey.tasks.acme/3/1207": topic, partition, offset).
	Position string
	// Attempt counts deliveries of this message where the broker says
	// (AMQP x-delivery-count + 1; 0 when unknown).
	Attempt int
	// Handle is the driver's own reference (offsets, delivery tags).
	Handle any
}

// SourceDriver is what a source driver implements. A source is consumed by
// one Consumer at a time (the Raft leader's).
//
// Errors are coded with greyerr: Unavailable for a broker that cannot be
// reached (the Consumer retries with backoff), PermissionDenied for
// refused credentials, InvalidArgument for bad settings.
type SourceDriver interface {
	// Fetch waits until messages are available (or ctx ends) and returns
	// up to max of them. Messages of a paused tenant are not returned
	// (those already buffered may be held back by the driver).
	Fetch(ctx context.Context, max int) ([]*Message, error)
	// Ack marks messages as done: their tasks are committed. A driver
	// with ordered positions (Kafka) commits a partition's offset only up
	// to the first message not yet acknowledged. Acknowledging a message
	// twice is harmless.
	Ack(ctx context.Context, msgs []*Message) error
	// Retry gives messages back unacknowledged, to be fetched again later
	// (after Resume for a paused tenant).
	Retry(ctx context.Context, msgs []*Message) error
	// DeadLetter publishes m to the tenant's dead-letter destination
	// (grey.dlq.<tenant>, grey.dlx → grey.dlq) with reason in the
	// grey-dlq-reason header, then acknowledges m.
	DeadLetter(ctx context.Context, m *Message, reason string) error
	// Pause stops delivering tenant's messages until Resume (backpressure
	// when the tenant's quota refuses submissions).
	Pause(tenant string)
	// Resume undoes Pause.
	Resume(tenant string)
	// Lag returns, per tenant, the messages published but not yet
	// acknowledged (where the broker can tell).
	Lag(ctx context.Context) (map[string]int64, error)
	// As sets i to the driver's native client (documented per driver).
	As(i any) bool
	// Close releases the driver; uncommitted messages are redelivered to
	// the next consumer.
	Close() error
}

// Event is one message a sink publishes.
type Event struct {
	// Destination is the topic (Kafka: grey.results.<tenant>,
	// grey.events) or exchange and routing key (AMQP: grey.results,
	// <tenant>), as Kind says.
	Kind EventKind
	// Tenant owns the event.
	Tenant string
	// Key is the task id (the partition key).
	Key string
	// Value is the JSON body.
	Value []byte
	// Headers: grey-tenant-id, grey-task-id, grey-attempt, traceparent.
	Headers map[string]string
}

// EventKind says what an event carries.
type EventKind string

// Event kinds.
const (
	// Result is a finished task's outcome, to the tenant's results
	// destination.
	Result EventKind = "result"
	// Lifecycle is a task's lifecycle event, to the cluster's events
	// destination.
	Lifecycle EventKind = "lifecycle"
)

// SinkDriver is what a sink driver implements.
type SinkDriver interface {
	// Publish writes events and returns once the broker confirmed every
	// one of them (acks=all, publisher confirms). On error some may have
	// been published; publishing them again is allowed (consumers
	// deduplicate by task id and attempt).
	Publish(ctx context.Context, evs []Event) error
	// As sets i to the driver's native client.
	As(i any) bool
	// Close releases the driver.
	Close() error
}

// Opener opens the drivers of one URL scheme. Either side may be nil
// when the driver has only one.
type Opener interface {
	OpenSource(ctx context.Context, u *url.URL, opts SourceOptions) (SourceDriver, error)
	OpenSink(ctx context.Context, u *url.URL, opts SinkOptions) (SinkDriver, error)
}

// SourceOptions configure a source driver beyond its URL.
type SourceOptions struct {
	// Group is the consumer group (Kafka) or queue prefix (AMQP): one per
	// Grey cluster.
	Group string
	// Prefetch bounds unacknowledged messages in flight (0: driver's
	// default).
	Prefetch int
	// Settings are the driver's native knobs from its config block
	// (SASL, TLS, queue type, delivery limit...), documented per driver.
	Settings map[string]string
}

// SinkOptions configure a sink driver beyond its URL.
type SinkOptions struct {
	// Transactional asks for transactional publishing where the driver
	// can (Kafka).
	Transactional bool
	// Settings are the driver's native knobs from its config block.
	Settings map[string]string
}

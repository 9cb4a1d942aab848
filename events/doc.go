// Package events is Grey's port to message brokers. A source takes task
// submissions from a broker (Kafka topics grey.tasks.<tenant>, RabbitMQ
// queues bound to grey.tasks), submits them through the same path as the
// API with an idempotency key derived from the message's position, and
// acknowledges a message only after its task is committed in Raft. A sink
// publishes results and lifecycle events; it is a relay.Sink, so it
// follows the feed of finished tasks from a replicated cursor and a new
// leader resumes where the old one stopped.
//
// The package follows the gocloud.dev pattern: Consumer and Publisher are
// the portable types (decoding, tenant checks, dead-lettering decisions,
// backpressure, retries, metrics, tracing live there once); SourceDriver
// and SinkDriver are the drivers' primitives, registered by URL scheme
// (kafka://, amqp://, amqps://, mem://). This package imports no broker
// SDK; eventstest is the conformance suite every driver passes.
package events

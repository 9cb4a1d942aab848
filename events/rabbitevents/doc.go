// Package rabbitevents is the RabbitMQ driver of the events port
// (amqp:// and amqps:// URLs), built on github.com/rabbitmq/amqp091-go.
//
// # Source
//
// Producers publish task submissions to the topic exchange grey.tasks with
// the routing key <tenant>.<kind>. Each configured tenant has its own
// durable queue, <prefix>.<tenant> (prefix: SourceOptions.Group, default
// grey.tasks), bound with <tenant>.#, so the tenant of a message is the
// queue it was read from and a message never chooses it. Messages whose
// routing key names no configured tenant are not lost: grey.tasks has the
// alternate exchange grey.tasks.unrouted, whose queue <prefix>._unrouted
// the source also reads; the tenant of such a message is the routing key's
// first word, and the Consumer dead-letters it when Grey does not know
// that tenant.
//
// Queues are quorum queues by default (replicated, with a delivery limit
// and x-delivery-count) or classic queues with x-max-priority (the broker
// delivers higher AMQP priorities first); docs/EVENTS.md weighs the two.
// Every task queue dead-letters to the fanout exchange grey.dlx, bound to
// the queue grey.dlq.
//
// Acknowledgements are manual and sent only when the Consumer calls Ack,
// after the task is committed in Raft. Position is
// "amqp:<queue>/<message_id>" when the producer set message_id, else
// "amqp:<queue>/sha256:<hex>" of the routing key, content type, body and
// the producer's headers: the same on every redelivery, so a message
// redelivered after a crash becomes the same task.
//
// Retry keeps messages unacknowledged inside the driver and serves them
// again (after Resume for a paused tenant) instead of nacking them: a
// nack would count as a delivery towards the queue's delivery limit, and
// a tenant held back by its quota must not see its messages dead-lettered.
// The broker's delivery count therefore counts only real redeliveries
// (a consumer or broker that died with the message in flight), which is
// what the delivery limit is for: a message that kills its consumer again
// and again reaches the DLQ after delivery_limit deliveries.
//
// DeadLetter publishes the message to grey.dlx with the headers
// grey-dlq-reason, grey-tenant-id, grey-routing-key, grey-source-queue and
// grey-position, waits for the broker's confirm, then acknowledges the
// original. Messages the broker dead-letters itself (delivery limit
// reached) carry the broker's x-first-death-reason (delivery_limit)
// instead.
//
// The driver reconnects by itself with exponential backoff
// (cenkalti/backoff/v5) when the connection or a channel closes, declares
// its topology again and restarts the consumers of tenants not paused;
// messages in flight at that moment are redelivered by the broker with
// the same Position. While it is not connected Fetch, Ack, DeadLetter and
// Lag return greyerr.Unavailable (bad credentials: PermissionDenied; a
// queue declared elsewhere with other arguments: FailedPrecondition).
// Opening never waits for the broker.
//
// # Sink
//
// Results go to the topic exchange grey.results with the routing key
// <tenant>, lifecycle events to the topic exchange grey.events with the
// routing key <tenant>.<event> (grey-event header; <tenant> when absent),
// persistent, with message_id <task id>/<attempt> and the event's headers.
// The channel is in confirm mode: Publish returns only once the broker
// confirmed every message of the batch. An unconfirmed message (nack,
// connection lost) makes Publish return Unavailable; the relay retries
// the whole batch from its replicated cursor after the driver reconnected,
// so results are published at least once and consumers deduplicate by
// (grey-task-id, grey-attempt). The broker has confirm_timeout (default
// 30s) to make progress on a batch (each message written and each confirm
// starts it again): a broker can keep a connection alive (heartbeats)
// while it no longer reads it, and then no confirm ever comes, so when it
// stays quiet past the timeout the driver closes the connection's socket
// and Publish returns Unavailable; the retry goes out on a new
// connection. DeadLetter and the setup of a new connection are bounded
// the same way.
//
// # Settings
//
// SourceOptions.Settings and SinkOptions.Settings (the events.rabbitmq
// block) may hold: tenants (comma-separated list of tenants whose queues
// the source declares and reads), queue_type (quorum | classic),
// delivery_limit (quorum queues; default 5, negative: none; classic
// queues have none),
// max_priority (classic queues; default 10), confirm_timeout (a Go
// duration, default 30s), and the names
// tasks_exchange, dead_letter_exchange, dead_letter_queue,
// results_exchange, events_exchange (defaults grey.tasks, grey.dlx,
// grey.dlq, grey.results, grey.events). TLS for amqps:// comes from the
// URL's query (cacertfile, certfile, keyfile, server_name_indication), as
// amqp091-go reads it.
//
// As gives the current connection to a **amqp091.Connection (nil while
// disconnected).
package rabbitevents

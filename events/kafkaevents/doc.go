// Package kafkaevents is the Kafka driver of the events port (kafka://),
// built on franz-go (kgo for clients, kadm for topics and lag).
//
// URL: kafka://host:port,host:port/?setting=value&... ; every setting may
// also come from SourceOptions.Settings or SinkOptions.Settings (which win
// over the URL). The settings are the Setting* constants: brokers,
// client_id, topics_regex, tasks_prefix, dlq_prefix, dlq_max_value_bytes,
// results_prefix, events_topic, start, metadata_max_age, ping_interval,
// fetch_max_wait, compression, linger, delivery_timeout, transactional,
// transactional_id, create_topics, partitions, replication,
// sasl_mechanism, sasl_user, sasl_password, tls, tls_ca, tls_cert,
// tls_key, tls_server_name, tls_insecure_skip_verify. An unknown setting
// is InvalidArgument.
//
// Source: one consumer group per Grey cluster (SourceOptions.Group)
// subscribed by regular expression to ^grey\.tasks\..+$; the tenant is
// the topic's name after grey.tasks.; a message's position is
// kafka:<topic>/<partition>/<offset>. Offsets are committed by hand, per
// partition only up to the first message not yet acknowledged; Retry
// holds messages and hands them out again; Pause and Resume pause the
// tenant's topic in the client (PauseFetchTopics); DeadLetter writes to
// grey.dlq.<tenant> with grey-dlq-reason, grey-dlq-topic,
// grey-dlq-partition and grey-dlq-offset headers, then acknowledges. Lag
// is end offsets minus the group's committed offsets, per tenant.
//
// Sink: an idempotent producer (acks=all, compression from the settings)
// writing results to grey.results.<tenant> and lifecycle events to
// grey.events, keyed by task id; with transactional, each Publish is one
// transaction. Missing topics are created with kadm.
//
// Neither side contacts the brokers when opened: greyd starts while Kafka
// is down; Fetch, Publish and Lag return Unavailable until a broker
// answers.
//
// As reaches *kgo.Client and *kadm.Client on both sides.
package kafkaevents

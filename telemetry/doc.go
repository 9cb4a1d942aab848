// Package telemetry exports Grey's Prometheus metrics (issue #6): cluster
// and consensus state, task throughput, latency, failures and retries,
// queue depth, workers, per-tenant quota utilisation, throttling and cost,
// proof and TEE attestation outcomes, and HTTP request metrics.
//
// One [Metrics] value holds every family. It is fed three ways:
//
//   - push, from the replicated state: [Metrics.Observe] is registered with
//     state.Store.Observe and turns each write's task versions into counter
//     and histogram updates (submitted, completed, failed by reason,
//     retries, duration, queue wait). It runs in the Raft apply path, so it
//     only inspects the changed tasks and keeps one small map (tasks leased
//     but not yet started, for the queue-wait histogram);
//   - pull, at scrape time: a custom prometheus.Collector reads the Raft
//     node ([ClusterSource]) and the store ([StoreSource]) for consensus
//     gauges, node counts, queue depth by priority, task counts by status,
//     quota utilisation, stored bytes, CPU-seconds and cost. Nothing is
//     computed per write; the one full pass over the stored tasks is done
//     at most once per [Options.ScanInterval];
//   - calls from other layers: [Metrics.HTTP] (middleware), [Metrics.Throttled]
//     and [Metrics.Refused] (quota refusals), [Metrics.SetWorkers],
//     [Metrics.Proof] and [Metrics.Attestation].
//
// Replicated-state metrics are recorded and exported only while the
// ClusterSource says this server leads (single-node: always), so that
// sum() across the servers of a cluster counts every task once. After a
// restart the counters start from zero and count the log entries replayed
// after the latest snapshot again (the snapshot itself is restored without
// events); that is a counter reset to Prometheus, which rate() handles.
//
// Label values for tenants come only from the replicated store (task and
// tenant records, whose ids were validated at submit), never from request
// input; with Options.IncludeTenantLabels false every tenant label value is
// "" (the label sets stay the same; Prometheus treats an empty value as
// absent) and per-tenant values are aggregated.
//
// Tracing: [SetupTracing] installs the OpenTelemetry SDK with an OTLP
// exporter (gRPC or HTTP) and parent-based ratio sampling, from
// monitoring.opentelemetry; [NewLogHandler] adds trace_id, span_id,
// tenant_id and task_id to slog records logged with a context. The spans
// themselves are made by the engine, the Raft node, the API and the worker
// pool through package telemetry/tracing (API only, no SDK).
//
// docs/metrics.md lists every family; docs/monitoring.md explains scraping,
// the Grafana dashboards in telemetry/dashboards, the alert rules in
// telemetry/alerts, and tracing.
package telemetry

// Package config owns greyd's configuration: the Config type and its
// defaults, loading one YAML file (grey.yaml) with ${VAR} expansion,
// environment-variable overrides, validation with errors that name the key
// and the file line, and printing the effective configuration with secrets
// masked.
//
// Loading happens in a fixed order: Default, then the file (${VAR} and
// ${VAR:-default} references expanded in its text, decoded strictly so that
// unknown keys are errors), then the GREY_* environment overrides, then
// Validate. Command-line flags are applied by the caller as plain field
// assignments after Load, followed by another call to Validate.
//
// Environment overrides, applied in this order (later wins):
//
//	GREY_NODE_ID          node.id
//	GREY_DATA_DIR         node.data_dir
//	GREY_HTTP_ADDR        http.addr
//	GREY_RAFT_ADDR        raft.addr
//	GREY_LOG_LEVEL        log.level
//	GREY_LOG_FORMAT       log.format
//	GREY_METRICS_ADDR     monitoring.prometheus.host and .port (host:port)
//	GREY_PROMETHEUS_PORT  monitoring.prometheus.port
//	GREY_OTEL_ENDPOINT    monitoring.opentelemetry.endpoint
//	GREY_OTEL_PROTOCOL    monitoring.opentelemetry.protocol
//	GREY_IAM_PROVIDER     auth.oidc.provider (an issuer URL or a preset: keycloak)
//	GREY_KAFKA_BROKERS    events.kafka.brokers (a comma-separated list)
//	GREY_RABBITMQ_URL     events.rabbitmq.url
//
// Other variables from the integration guide (GREY_PG_URL, …) are used
// through ${VAR} references in the file or applied like the above.
package config

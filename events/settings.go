package events

// Keys of SourceOptions.Settings and SinkOptions.Settings that the server
// fills in from the configuration's events block (config.EventsConfig);
// drivers read those of their broker and ignore the rest. Values are
// strings: lists comma-separated, booleans "true" or "false", numbers in
// decimal.
//
// The URL a server opens is kafka://<first broker> for Kafka (every
// broker is in SettingBrokers) and the configured amqp:// or amqps:// URL
// for RabbitMQ.
const (
	// SettingBrokers: Kafka seed brokers, "host:port,host:port".
	SettingBrokers = "brokers"
	// SettingTopicsRegex: the Kafka source's topic subscription.
	SettingTopicsRegex = "topics_regex"
	// SettingCompression: the Kafka producer's codec (none, gzip, snappy,
	// lz4, zstd).
	SettingCompression = "compression"
	// SettingSASLMechanism, SettingSASLUsername, SettingSASLPassword:
	// Kafka SASL (SCRAM-SHA-256, SCRAM-SHA-512, PLAIN; "" : none).
	SettingSASLMechanism = "sasl_mechanism"
	SettingSASLUsername  = "sasl_username"
	SettingSASLPassword  = "sasl_password"
	// SettingTLS: "true" to connect to Kafka with TLS.
	SettingTLS = "tls"
	// SettingTLSCAFile: PEM CAs of the Kafka brokers ("" : system pool).
	SettingTLSCAFile = "tls_ca_file"
	// SettingTransactionalID: the Kafka sink's transactional id, one per
	// Grey cluster (the server derives it from events.kafka.group, so two
	// clusters on one Kafka do not fence each other).
	SettingTransactionalID = "transactional_id"
	// SettingQueueType: RabbitMQ queue type, quorum or classic.
	SettingQueueType = "queue_type"
	// SettingDeliveryLimit: RabbitMQ quorum queues' x-delivery-limit.
	SettingDeliveryLimit = "delivery_limit"
	// SettingMaxPriority: RabbitMQ classic queues' x-max-priority ("0" :
	// none).
	SettingMaxPriority = "max_priority"
	// SettingTenants: the tenants the cluster knows when a source opens,
	// comma-separated (a driver with a queue per tenant declares theirs;
	// messages of later tenants must still arrive, e.g. through an
	// alternate exchange).
	SettingTenants = "tenants"
	// SettingConfirmTimeout: how long a RabbitMQ broker has to confirm a
	// publish before the connection is taken as wedged (a Go duration).
	SettingConfirmTimeout = "confirm_timeout"
)

package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Event-stream defaults (docs/EVENTS.md).
const (
	// DefaultKafkaGroup is the Kafka consumer group: one per Grey cluster.
	DefaultKafkaGroup = "grey"
	// DefaultKafkaTopicsRegex subscribes to every tenant's task topic.
	DefaultKafkaTopicsRegex = `^grey\.tasks\..+$`
	// DefaultKafkaCompression is the producer's compression codec.
	DefaultKafkaCompression = "zstd"
	// DefaultRabbitMQPrefetch bounds unacknowledged deliveries per queue.
	DefaultRabbitMQPrefetch = 256
	// DefaultRabbitMQDeliveryLimit is how often a quorum queue redelivers
	// a message before dead-lettering it. Grey acknowledges a message once
	// its task is committed and gives it back only on a quota refusal or
	// an outage, so a message delivered five times is one that keeps
	// crashing the consumer: RabbitMQ 4's default of 20 would retry such a
	// poison message for long; unlimited would retry it for ever.
	DefaultRabbitMQDeliveryLimit = 5
	// DefaultRabbitMQConfirmTimeout bounds the wait for publisher
	// confirms: they take milliseconds, a quorum queue electing a leader
	// seconds.
	DefaultRabbitMQConfirmTimeout = 30 * time.Second
)

// LifecycleWords are the words of events.<driver>.lifecycle: terminal
// (completed, failed, cancelled: the default), all, or task statuses.
// The statuses are task.Statuses (a test in events checks they agree).
var LifecycleWords = []string{"terminal", "all", "pending", "leased", "running", "retrying", "completed", "failed", "cancelled"}

// RabbitMQ queue types (events.rabbitmq.queue_type).
const (
	QueueQuorum  = "quorum"
	QueueClassic = "classic"
)

// EventsConfig configures the event streams: brokers Grey takes task
// submissions from and publishes results and lifecycle events to
// (docs/EVENTS.md). Both brokers may be set at once.
type EventsConfig struct {
	// Kafka is the Kafka driver's block.
	Kafka KafkaConfig `yaml:"kafka"`
	// RabbitMQ is the RabbitMQ driver's block.
	RabbitMQ RabbitMQConfig `yaml:"rabbitmq"`
}

// KafkaConfig configures the Kafka driver.
type KafkaConfig struct {
	// Brokers are the seed brokers, host:port (env GREY_KAFKA_BROKERS, a
	// comma-separated list).
	Brokers []string `yaml:"brokers"`
	// Group is the consumer group, one per Grey cluster.
	Group string `yaml:"group"`
	// Source consumes task submissions from topics grey.tasks.<tenant>.
	Source bool `yaml:"source"`
	// Sink publishes results to grey.results.<tenant> and lifecycle
	// events to grey.events.
	Sink bool `yaml:"sink"`
	// Transactional publishes each batch in a Kafka transaction
	// (read_committed consumers see each result once).
	Transactional bool `yaml:"transactional"`
	// Lifecycle is which transitions the sink publishes as lifecycle
	// events: [terminal] (default), [all] or task statuses; see
	// LifecycleWords.
	Lifecycle []string `yaml:"lifecycle"`
	// Compression is the producer's codec: none, gzip, snappy, lz4 or zstd.
	Compression string `yaml:"compression"`
	// TopicsRegex selects the task topics the source subscribes to.
	TopicsRegex string `yaml:"topics_regex"`
	// SASL authenticates to the brokers.
	SASL KafkaSASLConfig `yaml:"sasl"`
	// TLS encrypts the connections to the brokers.
	TLS KafkaTLSConfig `yaml:"tls"`
}

// KafkaSASLConfig is Kafka's SASL authentication.
type KafkaSASLConfig struct {
	// Mechanism is SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN ("": none).
	Mechanism string `yaml:"mechanism"`
	// Username and Password are the SASL credentials.
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
}

// KafkaTLSConfig is Kafka's TLS.
type KafkaTLSConfig struct {
	// Enabled connects with TLS.
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM bundle of the CAs that sign the brokers'
	// certificates ("": the system pool).
	CAFile string `yaml:"ca_file"`
}

// Enabled reports whether the Kafka driver has a side to run.
func (k *KafkaConfig) Enabled() bool { return k.Source || k.Sink }

// RabbitMQConfig configures the RabbitMQ driver.
type RabbitMQConfig struct {
	// URL is amqp://user:password@host:5672/vhost or amqps://... (env
	// GREY_RABBITMQ_URL).
	URL SecretURL `yaml:"url"`
	// Source consumes task submissions from exchange grey.tasks (routing
	// key <tenant>.<kind>), one queue per tenant.
	Source bool `yaml:"source"`
	// Sink publishes results to exchange grey.results (routing key
	// <tenant>) with publisher confirms.
	Sink bool `yaml:"sink"`
	// Lifecycle is which transitions the sink publishes as lifecycle
	// events to exchange grey.events: [terminal] (default), [all] or task
	// statuses; see LifecycleWords.
	Lifecycle []string `yaml:"lifecycle"`
	// Prefetch bounds unacknowledged deliveries (0: 256).
	Prefetch int `yaml:"prefetch"`
	// QueueType is quorum (replicated, the default) or classic (needed
	// for broker-side priorities, see MaxPriority).
	QueueType string `yaml:"queue_type"`
	// DeliveryLimit is how often a quorum queue delivers a message before
	// dead-lettering it (x-delivery-limit; see DefaultRabbitMQDeliveryLimit).
	DeliveryLimit int `yaml:"delivery_limit"`
	// MaxPriority declares classic queues with x-max-priority so that
	// the broker honours task priorities (0: no priorities; classic only).
	MaxPriority int `yaml:"max_priority"`
	// ConfirmTimeout is how long the broker has to confirm a published
	// batch (or a dead-lettered message) before the driver closes the
	// connection and publishes again on a new one (a broker can keep a
	// connection alive without serving it).
	ConfirmTimeout Duration `yaml:"confirm_timeout"`
	// TLS configures amqps:// connections.
	TLS RabbitMQTLSConfig `yaml:"tls"`
}

// RabbitMQTLSConfig is RabbitMQ's TLS (the URL's amqps:// scheme turns
// TLS on).
type RabbitMQTLSConfig struct {
	// CAFile is a PEM bundle of the CAs that sign the broker's
	// certificate ("": the system pool); it needs an amqps:// URL.
	CAFile string `yaml:"ca_file"`
}

// Enabled reports whether the RabbitMQ driver has a side to run.
func (r *RabbitMQConfig) Enabled() bool { return r.Source || r.Sink }

func defaultEvents() EventsConfig {
	return EventsConfig{
		Kafka: KafkaConfig{Group: DefaultKafkaGroup, Compression: DefaultKafkaCompression, TopicsRegex: DefaultKafkaTopicsRegex,
			Lifecycle: []string{"terminal"}},
		RabbitMQ: RabbitMQConfig{Prefetch: DefaultRabbitMQPrefetch, QueueType: QueueQuorum,
			DeliveryLimit: DefaultRabbitMQDeliveryLimit, Lifecycle: []string{"terminal"}, ConfirmTimeout: Duration(DefaultRabbitMQConfirmTimeout)},
	}
}

// splitBrokers parses GREY_KAFKA_BROKERS.
func splitBrokers(v string) []string {
	var out []string
	for _, b := range strings.Split(v, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// events validates the events block.
func (v *validator) events(e *EventsConfig) {
	k := &e.Kafka
	if k.Enabled() && len(k.Brokers) == 0 {
		v.fail("events.kafka.brokers", "must list at least one broker (host:port, or GREY_KAFKA_BROKERS) when events.kafka.source or .sink is on")
	}
	for i, b := range k.Brokers {
		host, port, err := net.SplitHostPort(b)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			v.fail(fmt.Sprintf("events.kafka.brokers[%d]", i), "must be host:port, got %q", b)
		}
	}
	if strings.TrimSpace(k.Group) == "" {
		v.fail("events.kafka.group", "must not be empty (one consumer group per Grey cluster)")
	}
	if k.Transactional && !k.Sink {
		v.fail("events.kafka.transactional", "applies to the sink: set events.kafka.sink too")
	}
	v.oneOf("events.kafka.compression", k.Compression, "none", "gzip", "snappy", "lz4", "zstd")
	if re, err := regexp.Compile(k.TopicsRegex); err != nil {
		v.fail("events.kafka.topics_regex", "is not a regular expression: %v", err)
	} else if k.TopicsRegex == "" || re.MatchString("grey.events") || re.MatchString("grey.results.x") || re.MatchString("grey.dlq.x") {
		v.fail("events.kafka.topics_regex", "must select task topics only (grey.tasks.<tenant>), not Grey's results, events or dead-letter topics; got %q", k.TopicsRegex)
	}
	s := &k.SASL
	switch s.Mechanism {
	case "":
		if s.Username != "" || s.Password != "" {
			v.fail("events.kafka.sasl.mechanism", "is required with a username or password (SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN)")
		}
	case "SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN":
		if s.Username == "" || s.Password == "" {
			v.fail("events.kafka.sasl.username", "and events.kafka.sasl.password are required with mechanism %s", s.Mechanism)
		}
		if s.Mechanism == "PLAIN" && !k.TLS.Enabled {
			v.fail("events.kafka.sasl.mechanism", "PLAIN sends the password in clear: enable events.kafka.tls or use SCRAM-SHA-512")
		}
	default:
		v.fail("events.kafka.sasl.mechanism", "must be SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN, got %q", s.Mechanism)
	}
	if k.TLS.CAFile != "" && !k.TLS.Enabled {
		v.fail("events.kafka.tls.ca_file", "is set but events.kafka.tls.enabled is off")
	}

	lifecycle(v, "events.kafka.lifecycle", k.Lifecycle)
	r := &e.RabbitMQ
	lifecycle(v, "events.rabbitmq.lifecycle", r.Lifecycle)
	if r.Enabled() && r.URL == "" {
		v.fail("events.rabbitmq.url", "is required when events.rabbitmq.source or .sink is on (amqp://user:password@host:5672/vhost, or GREY_RABBITMQ_URL)")
	}
	if r.URL != "" {
		if p, err := url.Parse(string(r.URL)); err != nil {
			v.fail("events.rabbitmq.url", "is not a URL (want amqp://user:password@host:5672/vhost)")
		} else if s := strings.ToLower(p.Scheme); s != "amqp" && s != "amqps" {
			v.fail("events.rabbitmq.url", "must be an amqp:// or amqps:// URL, got scheme %q", p.Scheme)
		} else if p.Host == "" {
			v.fail("events.rabbitmq.url", "names no host (want amqp://user:password@host:5672/vhost)")
		}
	}
	if r.TLS.CAFile != "" && r.URL != "" && !strings.HasPrefix(strings.ToLower(string(r.URL)), "amqps://") {
		v.fail("events.rabbitmq.tls.ca_file", "is set but events.rabbitmq.url is not amqps:// (the connection would not be encrypted)")
	}
	between(v, "events.rabbitmq.prefetch", r.Prefetch, 1, 65535)
	v.oneOf("events.rabbitmq.queue_type", r.QueueType, QueueQuorum, QueueClassic)
	between(v, "events.rabbitmq.delivery_limit", r.DeliveryLimit, 1, 1000)
	between(v, "events.rabbitmq.max_priority", r.MaxPriority, 0, 255)
	if d := r.ConfirmTimeout.Std(); d < time.Second || d > time.Hour {
		v.fail("events.rabbitmq.confirm_timeout", "must be between 1s and 1h, got %v", d)
	}
	if r.MaxPriority > 0 && r.QueueType != QueueClassic {
		v.fail("events.rabbitmq.max_priority", "needs queue_type classic (quorum queues have only two priorities); got queue_type %q", r.QueueType)
	}
}

// lifecycle checks an events.<driver>.lifecycle list.
func lifecycle(v *validator, key string, words []string) {
	if len(words) == 0 {
		v.fail(key, "must name at least one of %s (default [terminal])", strings.Join(LifecycleWords, ", "))
	}
	for i, w := range words {
		if !slices.Contains(LifecycleWords, w) {
			v.fail(fmt.Sprintf("%s[%d]", key, i), "must be one of %s, got %q", strings.Join(LifecycleWords, ", "), w)
		}
	}
}

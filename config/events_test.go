package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestEventsValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src string
		want      []string
	}{
		{"kafka source without brokers", "events:\n  kafka:\n    source: true\n", []string{"events.kafka.brokers", "at least one broker", "GREY_KAFKA_BROKERS"}},
		{"kafka sink without brokers", "events:\n  kafka:\n    sink: true\n", []string{"events.kafka.brokers"}},
		{"kafka broker not host:port", "events:\n  kafka:\n    brokers: [kafka]\n", []string{"events.kafka.brokers[0]", "host:port"}},
		{"kafka broker port", "events:\n  kafka:\n    brokers: [\"kafka:0\"]\n", []string{"events.kafka.brokers[0]"}},
		{"empty group", "events:\n  kafka:\n    group: \"\"\n", []string{"events.kafka.group", "one consumer group per Grey cluster"}},
		{"transactional without sink", "events:\n  kafka:\n    brokers: [k:9092]\n    source: true\n    transactional: true\n", []string{"events.kafka.transactional", "sink"}},
		{"compression", "events:\n  kafka:\n    compression: brotli\n", []string{"events.kafka.compression", "zstd", "brotli"}},
		{"regex syntax", "events:\n  kafka:\n    topics_regex: \"grey.tasks.(\"\n", []string{"events.kafka.topics_regex", "not a regular expression"}},
		{"regex catches results", "events:\n  kafka:\n    topics_regex: \"^grey\\\\..+$\"\n", []string{"events.kafka.topics_regex", "task topics only"}},
		{"sasl mechanism", "events:\n  kafka:\n    sasl:\n      mechanism: GSSAPI\n", []string{"events.kafka.sasl.mechanism", "SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN", "GSSAPI"}},
		{"sasl without password", "events:\n  kafka:\n    sasl:\n      mechanism: SCRAM-SHA-256\n      username: grey\n", []string{"events.kafka.sasl.username", "password are required"}},
		{"sasl credentials without mechanism", "events:\n  kafka:\n    sasl:\n      username: grey\n      password: pw\n", []string{"events.kafka.sasl.mechanism", "is required"}},
		{"plain without tls", "events:\n  kafka:\n    sasl:\n      mechanism: PLAIN\n      username: u\n      password: p\n", []string{"events.kafka.sasl.mechanism", "clear"}},
		{"ca without tls", "events:\n  kafka:\n    tls:\n      ca_file: /ca.pem\n", []string{"events.kafka.tls.ca_file", "enabled is off"}},
		{"rabbit source without url", "events:\n  rabbitmq:\n    source: true\n", []string{"events.rabbitmq.url", "is required", "GREY_RABBITMQ_URL"}},
		{"rabbit url scheme", "events:\n  rabbitmq:\n    url: http://rabbit:5672/\n", []string{"events.rabbitmq.url", "amqp:// or amqps://", "http"}},
		{"rabbit url host", "events:\n  rabbitmq:\n    url: \"amqp:///vhost\"\n", []string{"events.rabbitmq.url", "no host"}},
		{"rabbit ca without amqps", "events:\n  rabbitmq:\n    url: amqp://rabbit/\n    tls:\n      ca_file: /etc/ca.pem\n", []string{"events.rabbitmq.tls.ca_file", "not amqps://"}},
		{"prefetch", "events:\n  rabbitmq:\n    prefetch: 0\n", []string{"events.rabbitmq.prefetch", "between 1 and 65535"}},
		{"queue type", "events:\n  rabbitmq:\n    queue_type: stream\n", []string{"events.rabbitmq.queue_type", "quorum, classic"}},
		{"delivery limit", "events:\n  rabbitmq:\n    delivery_limit: 0\n", []string{"events.rabbitmq.delivery_limit", "between 1 and 1000"}},
		{"priority on quorum", "events:\n  rabbitmq:\n    max_priority: 10\n", []string{"events.rabbitmq.max_priority", "classic"}},
		{"confirm timeout", "events:\n  rabbitmq:\n    confirm_timeout: 100ms\n", []string{"events.rabbitmq.confirm_timeout", "between 1s and 1h"}},
		{"lifecycle word", "events:\n  rabbitmq:\n    lifecycle: [terminal, started]\n", []string{"events.rabbitmq.lifecycle[1]", "terminal, all, pending", "started"}},
		{"lifecycle empty", "events:\n  kafka:\n    lifecycle: []\n", []string{"events.kafka.lifecycle", "at least one"}},
		{"lifecycle case", "events:\n  kafka:\n    lifecycle: [ALL]\n", []string{"events.kafka.lifecycle[0]", "ALL"}},
		{"priority range", "events:\n  rabbitmq:\n    queue_type: classic\n    max_priority: 256\n", []string{"events.rabbitmq.max_priority", "between 0 and 255"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadBytes([]byte(tc.src), "grey.yaml", nil)
			wantErr(t, err, tc.want...)
		})
	}
	// Valid combinations.
	for _, src := range []string{
		"events:\n  kafka:\n    brokers: [k1:9092, \"k2:9093\"]\n    source: true\n    sink: true\n    transactional: true\n",
		"events:\n  kafka:\n    brokers: [k:9092]\n    sink: true\n    tls:\n      enabled: true\n    sasl:\n      mechanism: PLAIN\n      username: u\n      password: p\n",
		"events:\n  rabbitmq:\n    url: amqps://u:p@rabbit:5671/grey\n    tls:\n      ca_file: /etc/grey/rabbit-ca.pem\n    source: true\n    queue_type: classic\n    max_priority: 10\n",
		"events:\n  rabbitmq:\n    url: amqp://u:p@rabbit/\n    sink: true\n    lifecycle: [all]\n",
		"events:\n  kafka:\n    brokers: [k:9092]\n    sink: true\n    lifecycle: [leased, running, retrying, terminal]\n",
	} {
		if _, err := LoadBytes([]byte(src), "grey.yaml", nil); err != nil {
			t.Errorf("%s: %v", src, err)
		}
	}
}

func TestEventsEnv(t *testing.T) {
	t.Parallel()
	const pw = "rabbit-pa55-1234"
	c, err := LoadBytes([]byte("events:\n  kafka:\n    source: true\n  rabbitmq:\n    sink: true\n"), "grey.yaml",
		env("GREY_KAFKA_BROKERS", " k1:9092, k2:9092,,", "GREY_RABBITMQ_URL", "amqp://grey:"+pw+"@rabbit:5672/"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"k1:9092", "k2:9092"}; !reflect.DeepEqual(c.Events.Kafka.Brokers, want) {
		t.Errorf("brokers %v, want %v", c.Events.Kafka.Brokers, want)
	}
	if string(c.Events.RabbitMQ.URL) != "amqp://grey:"+pw+"@rabbit:5672/" {
		t.Errorf("url %q", string(c.Events.RabbitMQ.URL))
	}
	out := effective(t, c)
	for _, s := range []string{out, fmt.Sprintf("%v %+v %#v", c.Events, c.Events, c.Events)} {
		if strings.Contains(s, pw) {
			t.Errorf("password leaked: %s", s)
		}
	}
	// An invalid env value names the variable.
	_, err = LoadBytes([]byte("events:\n  kafka:\n    source: true\n"), "grey.yaml", env("GREY_KAFKA_BROKERS", "nohost"))
	wantErr(t, err, "events.kafka.brokers[0]", "nohost")
	// Defaults.
	d := Default().Events
	if d.Kafka.Group != "grey" || d.Kafka.TopicsRegex != `^grey\.tasks\..+$` || d.RabbitMQ.QueueType != QueueQuorum || d.RabbitMQ.DeliveryLimit != 5 || d.Kafka.Enabled() || d.RabbitMQ.Enabled() {
		t.Errorf("defaults %+v", d)
	}
}

func TestKafkaPasswordMasked(t *testing.T) {
	t.Parallel()
	const pw = "kafka-pa55-5678"
	c, err := LoadBytes([]byte("events:\n  kafka:\n    sasl:\n      mechanism: SCRAM-SHA-512\n      username: grey\n      password: ${PW}\n"), "grey.yaml", env("PW", pw))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{effective(t, c), fmt.Sprintf("%v %+v %#v", c.Events.Kafka, c.Events.Kafka, c.Events.Kafka)} {
		if strings.Contains(s, pw) {
			t.Errorf("password leaked: %s", s)
		}
	}
}

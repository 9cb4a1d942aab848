package rabbitevents

import (
	"crypto/tls"
	"crypto/x509"
	amqp "github.com/rabbitmq/amqp091-go"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// Queue types.
const (
	queueQuorum  = "quorum"
	queueClassic = "classic"
)

// Defaults of the settings.
const (
	// DefaultDeliveryLimit is the x-delivery-limit Grey declares on quorum
	// queues when the settings name none (the server always passes
	// events.rabbitmq.delivery_limit, whose default is the same 5).
	// RabbitMQ 4 would set 20 by itself and 3.x none at all, so Grey
	// says it explicitly and both behave the same. Only real redeliveries
	// count (Retry does not nack: quota refusals and outages of the
	// cluster cost no delivery), so a message delivered 5 times is one
	// whose consumer or broker died with it in flight again and again: a
	// poison message, dead-lettered with x-first-death-reason
	// delivery_limit instead of being retried for ever.
	DefaultDeliveryLimit = 5
	// DefaultMaxPriority is the x-max-priority of classic queues: AMQP
	// priorities 0..10 are honoured (RabbitMQ advises at most 10 levels;
	// each level costs the broker memory and CPU).
	DefaultMaxPriority = 10
	// DefaultPrefetch is basic.qos per tenant consumer when the options
	// give none.
	DefaultPrefetch = 256
	// defaultPrefix names the tenants' queues when SourceOptions.Group is
	// empty.
	defaultPrefix = "grey.tasks"
	// DefaultConfirmTimeout is how long the sink and DeadLetter wait for
	// publisher confirms before they close the connection and publish
	// again on a new one (setting confirm_timeout). Confirms normally
	// take milliseconds; a quorum queue electing a leader takes seconds.
	DefaultConfirmTimeout = 30 * time.Second
	// unroutedSuffix names the queue of messages no tenant queue took.
	// Tenant ids cannot start with '_', so it never collides.
	unroutedSuffix = "_unrouted"
)

// SettingConfirmTimeout is events.SettingConfirmTimeout (a Go duration,
// default DefaultConfirmTimeout), bounding the wait for publisher
// confirms.
const SettingConfirmTimeout = events.SettingConfirmTimeout

// settings are a driver's parsed knobs.
type settings struct {
	tenants       []string
	queueType     string
	deliveryLimit int // 0: none declared
	maxPriority   int // classic only; 0: none
	prefix        string

	tasksExchange    string
	unroutedExchange string
	dlx              string
	dlq              string
	resultsExchange  string
	eventsExchange   string

	// confirmTimeout bounds the wait for the broker's publisher confirms
	// (sink batches, dead-lettered messages); past it the connection is
	// taken as wedged, closed and opened again.
	confirmTimeout time.Duration

	// tls is the TLS configuration of amqps:// connections (nil: the
	// system's CAs); set by tls_ca_file.
	tls *tls.Config
}

// settingKeys are the keys parseSettings knows: the events package's
// (those of Kafka are ignored, a server may pass every key to every
// driver) and the driver's own names. Other keys are refused, so a typo
// is an error and not a silent default.
var settingKeys = map[string]bool{
	events.SettingTenants: true, events.SettingQueueType: true, events.SettingDeliveryLimit: true, events.SettingMaxPriority: true,
	"tasks_exchange": true, "dead_letter_exchange": true, "dead_letter_queue": true,
	"results_exchange": true, "events_exchange": true, SettingConfirmTimeout: true,
	events.SettingBrokers: true, events.SettingTopicsRegex: true, events.SettingCompression: true,
	events.SettingSASLMechanism: true, events.SettingSASLUsername: true, events.SettingSASLPassword: true,
	events.SettingTLS: true, events.SettingTLSCAFile: true,
}

// parseSettings checks and fills in the driver's settings. group is
// SourceOptions.Group (the queue prefix).
func parseSettings(m map[string]string, group string) (settings, error) {
	s := settings{
		queueType:       queueQuorum,
		prefix:          defaultPrefix,
		tasksExchange:   "grey.tasks",
		dlx:             "grey.dlx",
		dlq:             "grey.dlq",
		resultsExchange: "grey.results",
		eventsExchange:  "grey.events",
		confirmTimeout:  DefaultConfirmTimeout,
	}
	for k := range m {
		if !settingKeys[k] {
			return s, greyerr.Invalid("events.rabbitmq."+k, "unknown RabbitMQ setting %q", k)
		}
	}
	if v := strings.TrimSpace(m[SettingConfirmTimeout]); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > time.Hour {
			return s, greyerr.Invalid("events.rabbitmq."+SettingConfirmTimeout, "%s %q: want a duration between 1ms and 1h (e.g. 30s)", SettingConfirmTimeout, v)
		}
		s.confirmTimeout = d
	}
	if ca := strings.TrimSpace(m[events.SettingTLSCAFile]); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return s, greyerr.Invalid("events.rabbitmq.tls.ca_file", "rabbitmq: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return s, greyerr.Invalid("events.rabbitmq.tls.ca_file", "rabbitmq: %s holds no PEM certificate", ca)
		}
		s.tls = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	}
	if g := strings.TrimSpace(group); g != "" {
		s.prefix = g
	}
	if v := strings.TrimSpace(m[events.SettingQueueType]); v != "" {
		switch strings.ToLower(v) {
		case queueQuorum, queueClassic:
			s.queueType = strings.ToLower(v)
		default:
			return s, greyerr.Invalid("events.rabbitmq.queue_type", "queue_type %q: want quorum or classic", v)
		}
	}
	limit, limitSet, err := intSetting(m, events.SettingDeliveryLimit)
	if err != nil {
		return s, err
	}
	prio, prioSet, err := intSetting(m, events.SettingMaxPriority)
	if err != nil {
		return s, err
	}
	switch s.queueType {
	case queueQuorum:
		if prioSet && prio != 0 {
			return s, greyerr.Invalid("events.rabbitmq.max_priority", "max_priority needs queue_type classic (quorum queues of RabbitMQ 3.x ignore priorities)")
		}
		switch {
		case !limitSet || limit == 0:
			s.deliveryLimit = DefaultDeliveryLimit
		case limit < 0:
			s.deliveryLimit = 0
		default:
			s.deliveryLimit = limit
		}
	case queueClassic:
		// classic queues have no delivery limit: delivery_limit (which
		// the server always passes) does not apply to them
		switch {
		case !prioSet:
			s.maxPriority = DefaultMaxPriority
		case prio < 0 || prio > 255:
			return s, greyerr.Invalid("events.rabbitmq.max_priority", "max_priority %d: want 0..255", prio)
		default:
			s.maxPriority = prio
		}
	}
	for _, kv := range []struct {
		key string
		dst *string
	}{
		{"tasks_exchange", &s.tasksExchange},
		{"dead_letter_exchange", &s.dlx},
		{"dead_letter_queue", &s.dlq},
		{"results_exchange", &s.resultsExchange},
		{"events_exchange", &s.eventsExchange},
	} {
		if v, ok := m[kv.key]; ok {
			v = strings.TrimSpace(v)
			if err := checkName(v); err != nil {
				return s, greyerr.Invalid("events.rabbitmq."+kv.key, "%s: %v", kv.key, err)
			}
			*kv.dst = v
		}
	}
	if err := checkName(s.prefix); err != nil {
		return s, greyerr.Invalid("events.rabbitmq.group", "queue prefix: %v", err)
	}
	s.unroutedExchange = s.tasksExchange + ".unrouted"
	seen := map[string]bool{}
	for _, t := range strings.Split(m[events.SettingTenants], ",") {
		t = strings.TrimSpace(t)
		if t == "" || seen[t] {
			continue
		}
		if !task.ValidTenant(t) {
			return s, greyerr.Invalid("events.rabbitmq.tenants", "tenant %q is not a tenant id", t)
		}
		seen[t] = true
		s.tenants = append(s.tenants, t)
	}
	return s, nil
}

func intSetting(m map[string]string, key string) (int, bool, error) {
	v := strings.TrimSpace(m[key])
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, false, greyerr.Invalid("events.rabbitmq."+key, "%s %q is not an integer", key, v)
	}
	return n, true, nil
}

// checkName accepts an AMQP exchange or queue name Grey may declare.
func checkName(v string) error {
	if v == "" {
		return errString("empty name")
	}
	if len(v) > 200 {
		return errString("name longer than 200 bytes")
	}
	if strings.HasPrefix(v, "amq.") {
		return errString("names starting with amq. are reserved by the broker")
	}
	for _, r := range v {
		if r < 0x21 || r > 0x7e {
			return errString("name has a character outside printable ASCII")
		}
	}
	return nil
}

type errString string

func (e errString) Error() string { return string(e) }

// tenantQueue is the name of tenant's queue.
func (s *settings) tenantQueue(tenant string) string { return s.prefix + "." + tenant }

// unroutedQueue is the name of the queue of unrouted messages.
func (s *settings) unroutedQueue() string { return s.prefix + "." + unroutedSuffix }

// checkScheme refuses a CA file for a plain amqp:// URL (it would be
// silently unused: the connection would not be encrypted) and, the URL's
// own TLS query keys being ignored by amqp091 once a TLS configuration is
// given, takes its client certificate and server name into s.tls.
func checkScheme(rawURL string, s *settings) error {
	if s.tls == nil {
		return nil
	}
	if !strings.HasPrefix(strings.ToLower(strings.TrimSpace(rawURL)), "amqps://") {
		return greyerr.Invalid("events.rabbitmq.tls.ca_file", "rabbitmq: a CA file is set but the URL is not amqps://")
	}
	uri, err := amqp.ParseURI(rawURL)
	if err != nil {
		return greyerr.Invalid("events.rabbitmq.url", "rabbitmq: %v", err)
	}
	if uri.CACertFile != "" {
		return greyerr.Invalid("events.rabbitmq.tls.ca_file", "rabbitmq: the URL names a cacertfile too: give one or the other")
	}
	s.tls.ServerName = uri.ServerName
	if uri.CertFile != "" || uri.KeyFile != "" {
		pair, err := tls.LoadX509KeyPair(uri.CertFile, uri.KeyFile)
		if err != nil {
			return greyerr.Invalid("events.rabbitmq.url", "rabbitmq: client certificate (certfile, keyfile): %v", err)
		}
		s.tls.Certificates = []tls.Certificate{pair}
	}
	return nil
}

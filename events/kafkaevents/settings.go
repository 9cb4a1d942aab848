package kafkaevents

import (
	"crypto/tls"
	"crypto/x509"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/greyerr"
)

// Setting names: the keys of the URL's query and of
// SourceOptions.Settings / SinkOptions.Settings. A key in Settings wins
// over the same key in the URL (the config block is the more deliberate
// place; keep passwords there, not in URLs).
const (
	// SettingBrokers is a comma-separated list of host:port seeds; it
	// replaces the URL's host list.
	SettingBrokers = events.SettingBrokers
	// SettingClientID is the client id the brokers log (default "grey").
	SettingClientID = "client_id"
	// SettingTopicsRegex is the source's subscription (default
	// ^grey\.tasks\..+$).
	SettingTopicsRegex = events.SettingTopicsRegex
	// SettingTasksPrefix is the prefix stripped from a topic's name to
	// find its tenant (default "grey.tasks.").
	SettingTasksPrefix = "tasks_prefix"
	// SettingDLQPrefix prefixes the tenant in dead-letter topics (default
	// "grey.dlq.").
	SettingDLQPrefix = "dlq_prefix"
	// SettingDLQMaxValueBytes bounds the body copied into a dead-letter
	// record (default 900000, under the brokers' default message size);
	// a longer body is dropped and its size is named in the
	// grey-dlq-truncated header.
	SettingDLQMaxValueBytes = "dlq_max_value_bytes"
	// SettingResultsPrefix prefixes the tenant in result topics (default
	// "grey.results.").
	SettingResultsPrefix = "results_prefix"
	// SettingEventsTopic is the lifecycle events topic (default
	// "grey.events").
	SettingEventsTopic = "events_topic"
	// SettingStart is where a new consumer group starts: "earliest"
	// (default: nothing published before Grey first ran is lost) or
	// "latest".
	SettingStart = "start"
	// SettingMetadataMaxAge is how often the client refreshes metadata,
	// which is how a regex subscription finds a new tenant's topic
	// (default 10s).
	SettingMetadataMaxAge = "metadata_max_age"
	// SettingPingInterval is how long Fetch waits for records before it
	// checks that a broker answers (default 5s); an unreachable cluster
	// makes Fetch return Unavailable.
	SettingPingInterval = "ping_interval"
	// SettingSessionTimeout is the consumer group's session timeout
	// (default 10s, franz-go's is 45s): when a leader dies without leaving
	// the group, its partitions go to the new leader's consumer once this
	// passes. The broker bounds it (group.min.session.timeout.ms, 6s by
	// default).
	SettingSessionTimeout = "session_timeout"
	// SettingFetchMaxWait is the longest a broker holds a fetch open
	// (default 500ms; lower means a Resume takes effect sooner).
	SettingFetchMaxWait = "fetch_max_wait"
	// SettingCompression is the sink's (and DLQ's) batch compression:
	// none, gzip, snappy, lz4 or zstd (default snappy).
	SettingCompression = events.SettingCompression
	// SettingLinger is how long the producer waits to fill a batch
	// (default 0: batches form while a previous one is in flight).
	SettingLinger = "linger"
	// SettingDeliveryTimeout bounds how long a record may wait to be
	// acknowledged by the brokers before Publish fails with Unavailable
	// (default 30s).
	SettingDeliveryTimeout = "delivery_timeout"
	// SettingTransactional turns on transactional publishing (true/false;
	// SinkOptions.Transactional does the same).
	SettingTransactional = "transactional"
	// SettingTransactionalID is the sink's transactional id (default
	// "grey-events"): one per Grey cluster, so that a new leader's sink
	// fences the old one's.
	SettingTransactionalID = "transactional_id"
	// SettingCreateTopics creates missing result, event and dead-letter
	// topics with kadm (default true).
	SettingCreateTopics = "create_topics"
	// SettingPartitions and SettingReplication size created topics
	// (default -1: the broker's num.partitions and
	// default.replication.factor).
	SettingPartitions  = "partitions"
	SettingReplication = "replication"
	// SettingSASLMechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	// (default: no SASL); SettingSASLUsername and SettingSASLPassword are
	// its credentials.
	SettingSASLMechanism = events.SettingSASLMechanism
	SettingSASLUsername  = events.SettingSASLUsername
	SettingSASLPassword  = events.SettingSASLPassword
	// SettingTLS turns on TLS (true/false); SettingTLSCAFile names a PEM
	// file of CAs (default: the system's), SettingTLSCert and
	// SettingTLSKey a client certificate, SettingTLSServerName the name
	// to verify, and SettingTLSInsecure skips verification (tests only).
	SettingTLS           = events.SettingTLS
	SettingTLSCAFile     = events.SettingTLSCAFile
	SettingTLSCert       = "tls_cert"
	SettingTLSKey        = "tls_key"
	SettingTLSServerName = "tls_server_name"
	SettingTLSInsecure   = "tls_insecure_skip_verify"
)

// Defaults of the topic names.
const (
	DefaultTopicsRegex   = `^grey\.tasks\..+$`
	DefaultTasksPrefix   = "grey.tasks."
	DefaultDLQPrefix     = "grey.dlq."
	DefaultResultsPrefix = "grey.results."
	DefaultEventsTopic   = "grey.events"
	DefaultTxnID         = "grey-events"
)

// knownSettings are the keys the driver reads. An unknown key in the
// URL's query is a mistake worth failing on; Settings carry the keys of
// every driver (the server fills them from the whole events block), so
// unknown keys there are ignored.
var knownSettings = []string{
	SettingBrokers, SettingClientID, SettingTopicsRegex, SettingTasksPrefix,
	SettingDLQPrefix, SettingDLQMaxValueBytes, SettingResultsPrefix,
	SettingEventsTopic, SettingStart, SettingMetadataMaxAge, SettingPingInterval,
	SettingFetchMaxWait, SettingSessionTimeout, SettingCompression, SettingLinger, SettingDeliveryTimeout,
	SettingTransactional, SettingTransactionalID, SettingCreateTopics,
	SettingPartitions, SettingReplication, SettingSASLMechanism, SettingSASLUsername,
	SettingSASLPassword, SettingTLS, SettingTLSCAFile, SettingTLSCert, SettingTLSKey,
	SettingTLSServerName, SettingTLSInsecure,
}

// config is a parsed URL plus settings.
type config struct {
	brokers         []string
	clientID        string
	topicsRegex     string
	tasksPrefix     string
	dlqPrefix       string
	dlqMaxValue     int
	resultsPrefix   string
	eventsTopic     string
	startLatest     bool
	metadataMaxAge  time.Duration
	pingInterval    time.Duration
	fetchMaxWait    time.Duration
	sessionTimeout  time.Duration
	compression     []kgo.CompressionCodec
	linger          time.Duration
	deliveryTimeout time.Duration
	transactional   bool
	txnID           string
	createTopics    bool
	partitions      int32
	replication     int16
	common          []kgo.Opt
}

// parseConfig reads u and settings into a config. Errors are
// InvalidArgument naming the setting.
func parseConfig(u *url.URL, settings map[string]string) (*config, error) {
	if u == nil {
		return nil, greyerr.Invalid("url", "kafka: no URL")
	}
	vals := map[string]string{}
	for k, vs := range u.Query() {
		if len(vs) > 0 {
			vals[k] = vs[len(vs)-1]
		}
	}
	for k := range vals {
		if !slices.Contains(knownSettings, k) {
			known := slices.Clone(knownSettings)
			sort.Strings(known)
			return nil, greyerr.Invalid(k, "kafka: unknown setting %q in the URL (known: %s)", k, strings.Join(known, ", "))
		}
	}
	for k, v := range settings {
		if slices.Contains(knownSettings, k) {
			vals[k] = v
		}
	}
	c := &config{
		clientID:        "grey",
		topicsRegex:     DefaultTopicsRegex,
		tasksPrefix:     DefaultTasksPrefix,
		dlqPrefix:       DefaultDLQPrefix,
		dlqMaxValue:     900_000,
		resultsPrefix:   DefaultResultsPrefix,
		eventsTopic:     DefaultEventsTopic,
		metadataMaxAge:  10 * time.Second,
		pingInterval:    5 * time.Second,
		fetchMaxWait:    500 * time.Millisecond,
		sessionTimeout:  10 * time.Second,
		compression:     []kgo.CompressionCodec{kgo.SnappyCompression(), kgo.NoCompression()},
		deliveryTimeout: 30 * time.Second,
		txnID:           DefaultTxnID,
		createTopics:    true,
		partitions:      -1,
		replication:     -1,
	}
	hosts := u.Host
	if v, ok := vals[SettingBrokers]; ok && strings.TrimSpace(v) != "" {
		hosts = v
	}
	for _, h := range strings.Split(hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			c.brokers = append(c.brokers, h)
		}
	}
	if len(c.brokers) == 0 {
		return nil, greyerr.Invalid(SettingBrokers, "kafka: no brokers (kafka://host:port,host:port/ or the brokers setting)")
	}
	str := func(key string, dst *string) {
		if v, ok := vals[key]; ok && v != "" {
			*dst = v
		}
	}
	str(SettingClientID, &c.clientID)
	str(SettingTopicsRegex, &c.topicsRegex)
	str(SettingTasksPrefix, &c.tasksPrefix)
	str(SettingDLQPrefix, &c.dlqPrefix)
	str(SettingResultsPrefix, &c.resultsPrefix)
	str(SettingEventsTopic, &c.eventsTopic)
	str(SettingTransactionalID, &c.txnID)
	if _, err := regexp.Compile(c.topicsRegex); err != nil {
		return nil, greyerr.Invalid(SettingTopicsRegex, "kafka: topics_regex %q does not compile: %v", c.topicsRegex, err)
	}
	dur := func(key string, dst *time.Duration) error {
		v, ok := vals[key]
		if !ok || v == "" {
			return nil
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return greyerr.Invalid(key, "kafka: %s %q is not a duration (e.g. 10s)", key, v)
		}
		*dst = d
		return nil
	}
	boolean := func(key string, dst *bool) error {
		v, ok := vals[key]
		if !ok || v == "" {
			return nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return greyerr.Invalid(key, "kafka: %s %q is not true or false", key, v)
		}
		*dst = b
		return nil
	}
	integer := func(key string, lo, hi int64, dst func(int64)) error {
		v, ok := vals[key]
		if !ok || v == "" {
			return nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < lo || n > hi {
			return greyerr.Invalid(key, "kafka: %s %q is not an integer in [%d, %d]", key, v, lo, hi)
		}
		dst(n)
		return nil
	}
	for _, err := range []error{
		dur(SettingMetadataMaxAge, &c.metadataMaxAge),
		dur(SettingPingInterval, &c.pingInterval),
		dur(SettingFetchMaxWait, &c.fetchMaxWait),
		dur(SettingSessionTimeout, &c.sessionTimeout),
		dur(SettingLinger, &c.linger),
		dur(SettingDeliveryTimeout, &c.deliveryTimeout),
		boolean(SettingTransactional, &c.transactional),
		boolean(SettingCreateTopics, &c.createTopics),
		integer(SettingPartitions, -1, 1<<20, func(n int64) { c.partitions = int32(n) }),
		integer(SettingReplication, -1, 1<<10, func(n int64) { c.replication = int16(n) }),
		integer(SettingDLQMaxValueBytes, 0, 1<<30, func(n int64) { c.dlqMaxValue = int(n) }),
	} {
		if err != nil {
			return nil, err
		}
	}
	if c.partitions == 0 || c.replication == 0 {
		return nil, greyerr.Invalid(SettingPartitions, "kafka: partitions and replication are at least 1 (or -1: the broker's default)")
	}
	if c.pingInterval == 0 {
		c.pingInterval = 5 * time.Second
	}
	if c.metadataMaxAge < 100*time.Millisecond {
		return nil, greyerr.Invalid(SettingMetadataMaxAge, "kafka: metadata_max_age is at least 100ms")
	}
	switch v := strings.ToLower(vals[SettingStart]); v {
	case "", "earliest":
	case "latest":
		c.startLatest = true
	default:
		return nil, greyerr.Invalid(SettingStart, "kafka: start %q is not earliest or latest", v)
	}
	if v, ok := vals[SettingCompression]; ok && v != "" {
		codec, err := parseCompression(v)
		if err != nil {
			return nil, err
		}
		c.compression = []kgo.CompressionCodec{codec}
	}

	c.common = []kgo.Opt{
		kgo.SeedBrokers(c.brokers...),
		kgo.ClientID(c.clientID),
		kgo.MetadataMaxAge(c.metadataMaxAge),
		// A write to a topic just created waits for a metadata refresh:
		// allow one a second rather than franz-go's five.
		kgo.MetadataMinAge(min(c.metadataMaxAge, time.Second)),
	}
	mech, err := parseSASL(vals)
	if err != nil {
		return nil, err
	}
	if mech != nil {
		c.common = append(c.common, kgo.SASL(mech...))
	}
	tc, err := parseTLS(vals)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		c.common = append(c.common, kgo.DialTLSConfig(tc))
	}
	return c, nil
}

func parseCompression(v string) (kgo.CompressionCodec, error) {
	switch strings.ToLower(v) {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, greyerr.Invalid(SettingCompression, "kafka: compression %q is not one of none, gzip, snappy, lz4, zstd", v)
}

// parseSASL returns the mechanism the settings name (nil: none).
func parseSASL(vals map[string]string) ([]saslMech, error) {
	m := strings.ToUpper(strings.TrimSpace(vals[SettingSASLMechanism]))
	user, pass := vals[SettingSASLUsername], vals[SettingSASLPassword]
	if m == "" {
		if user != "" || pass != "" {
			return nil, greyerr.Invalid(SettingSASLMechanism, "kafka: sasl_username or sasl_password without sasl_mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)")
		}
		return nil, nil
	}
	if user == "" {
		return nil, greyerr.Invalid(SettingSASLUsername, "kafka: sasl_mechanism %s needs sasl_username and sasl_password", m)
	}
	switch m {
	case "PLAIN":
		return []saslMech{plain.Auth{User: user, Pass: pass}.AsMechanism()}, nil
	case "SCRAM-SHA-256":
		return []saslMech{scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()}, nil
	case "SCRAM-SHA-512":
		return []saslMech{scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()}, nil
	}
	return nil, greyerr.Invalid(SettingSASLMechanism, "kafka: sasl_mechanism %q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", m)
}

// parseTLS returns the TLS configuration the settings ask for (nil: plain
// TCP). Naming a CA or client certificate turns TLS on.
func parseTLS(vals map[string]string) (*tls.Config, error) {
	on := false
	if v := vals[SettingTLS]; v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, greyerr.Invalid(SettingTLS, "kafka: tls %q is not true or false", v)
		}
		on = b
	}
	ca, cert, key := vals[SettingTLSCAFile], vals[SettingTLSCert], vals[SettingTLSKey]
	if !on && ca == "" && cert == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: vals[SettingTLSServerName]}
	if v := vals[SettingTLSInsecure]; v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, greyerr.Invalid(SettingTLSInsecure, "kafka: tls_insecure_skip_verify %q is not true or false", v)
		}
		tc.InsecureSkipVerify = b
	}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, greyerr.Invalid(SettingTLSCAFile, "kafka: tls_ca_file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, greyerr.Invalid(SettingTLSCAFile, "kafka: tls_ca_file %s holds no PEM certificate", ca)
		}
		tc.RootCAs = pool
	}
	if (cert == "") != (key == "") {
		return nil, greyerr.Invalid(SettingTLSCert, "kafka: tls_cert and tls_key go together")
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, greyerr.Invalid(SettingTLSCert, "kafka: client certificate: %v", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// saslMech is franz-go's SASL mechanism.
type saslMech = sasl.Mechanism

// brokerList names the brokers in error messages (broker lists hold no
// credentials).
func (c *config) brokerList() string { return strings.Join(c.brokers, ",") }

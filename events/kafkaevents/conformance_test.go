package kafkaevents_test

import (
	"context"
	"maps"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/events/eventstest"
	"github.com/grey-distributed/grey/events/kafkaevents"
	"github.com/grey-distributed/grey/internal/testenv"
)

// harnessBase holds what the conformance harnesses share: the broker and
// a run id that makes groups and the events topic unique.
type harnessBase struct {
	url     string
	brokers string
	run     string
}

func newHarnessBase(t *testing.T) harnessBase {
	raw := testenv.ServiceURL(t, "kafka")
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return harnessBase{url: raw, brokers: u.Host, run: uniq()}
}

func (b harnessBase) client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(strings.Split(b.brokers, ",")...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// read returns the records of topic whose header key (if key is not "")
// equals value, waiting until there are want or timeout passed.
func (b harnessBase) read(t testing.TB, topic, key, value string, want int, timeout time.Duration) []*kgo.Record {
	cl := b.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	defer cl.Close()
	var out []*kgo.Record
	deadline := time.Now().Add(timeout)
	for {
		wait := time.Until(deadline)
		if len(out) >= want {
			wait = 500 * time.Millisecond // anything more than want?
		}
		if wait <= 0 {
			return out
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			if key != "" {
				if v, _ := header(r, key); v != value {
					return
				}
			}
			out = append(out, r)
		})
		if n == 0 && (len(out) >= want || time.Now().After(deadline)) {
			return out
		}
	}
}

func headersOf(r *kgo.Record) map[string]string {
	m := map[string]string{}
	for _, h := range r.Headers {
		m[h.Key] = string(h.Value)
	}
	return m
}

func TestSourceConformance(t *testing.T) {
	runSourceConformance(t, newHarnessBase(t), nil)
}

// runSourceConformance runs the source suite on b.url with the settings
// extra adds (SASL, TLS); the harness itself produces and reads on
// b.brokers.
func runSourceConformance(t *testing.T, b harnessBase, extra map[string]string) {
	created := map[string]bool{}
	eventstest.RunSource(t, eventstest.SourceHarness{
		Open: func(t testing.TB, tenants []string) events.SourceDriver {
			quoted := make([]string, len(tenants))
			for i, tn := range tenants {
				quoted[i] = regexp.QuoteMeta(tn)
			}
			u, _ := url.Parse(b.url)
			// One group per test: drivers opened within a test resume
			// from one another.
			group := "eventstest-" + b.run + "-" + strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
			settings := map[string]string{
				kafkaevents.SettingTopicsRegex:    `^grey\.tasks\.(` + strings.Join(quoted, "|") + `)$`,
				kafkaevents.SettingMetadataMaxAge: "500ms",
				kafkaevents.SettingFetchMaxWait:   "100ms",
				kafkaevents.SettingPingInterval:   "2s",
			}
			maps.Copy(settings, extra)
			s, err := kafkaevents.OpenSource(context.Background(), u, events.SourceOptions{Group: group, Settings: settings})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Produce: func(t testing.TB, tenant string, p eventstest.Produced) {
			topic := kafkaevents.DefaultTasksPrefix + tenant
			cl := b.client(t, kgo.AllowAutoTopicCreation())
			defer cl.Close()
			rec := &kgo.Record{Topic: topic, Key: p.Key, Value: p.Value}
			for k, v := range p.Headers {
				rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
			}
			if p.ContentType != "" {
				rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: kafkaevents.HeaderContentType, Value: []byte(p.ContentType)})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
				t.Fatalf("produce to %s: %v", topic, err)
			}
			created[topic] = true
		},
		DeadLetters: func(t testing.TB, tenant string, want int) []eventstest.DeadLetter {
			var out []eventstest.DeadLetter
			for _, r := range b.read(t, kafkaevents.DefaultDLQPrefix+tenant, "", "", want, 20*time.Second) {
				out = append(out, eventstest.DeadLetter{Value: r.Value, Headers: headersOf(r)})
			}
			return out
		},
		Unreachable: func(t testing.TB) (events.SourceDriver, error) {
			u, _ := url.Parse("kafka://127.0.0.1:1/")
			return kafkaevents.OpenSource(context.Background(), u, events.SourceOptions{Group: "unreachable",
				Settings: map[string]string{kafkaevents.SettingPingInterval: "500ms"}})
		},
		// A new topic is found by the next metadata refresh, then the
		// group rebalances.
		Timeout: 30 * time.Second,
		Quiet:   2 * time.Second,
	})
}

func TestSinkConformance(t *testing.T) {
	runSinkConformance(t, newHarnessBase(t), nil)
}

// runSinkConformance runs the sink suite (idempotent and transactional)
// on b.url with the settings extra adds; the harness reads on b.brokers.
func runSinkConformance(t *testing.T, b harnessBase, extra map[string]string) {
	eventsTopic := "grey.events.test-" + b.run
	settings := map[string]string{
		kafkaevents.SettingEventsTopic:     eventsTopic,
		kafkaevents.SettingDeliveryTimeout: "5s",
	}
	maps.Copy(settings, extra)
	for _, txn := range []bool{false, true} {
		name := "Idempotent"
		if txn {
			name = "Transactional"
		}
		t.Run(name, func(t *testing.T) {
			eventstest.RunSink(t, eventstest.SinkHarness{
				Open: func(t testing.TB) events.SinkDriver {
					u, _ := url.Parse(b.url)
					s := map[string]string{kafkaevents.SettingTransactionalID: "eventstest-" + b.run}
					for k, v := range settings {
						s[k] = v
					}
					d, err := kafkaevents.OpenSink(context.Background(), u, events.SinkOptions{Transactional: txn, Settings: s})
					if err != nil {
						t.Fatal(err)
					}
					return d
				},
				Read: func(t testing.TB, kind events.EventKind, tenant string, want int) []events.Event {
					topic, key := kafkaevents.DefaultResultsPrefix+tenant, ""
					if kind == events.Lifecycle {
						topic, key = eventsTopic, events.HeaderTenant
					}
					var out []events.Event
					for _, r := range b.read(t, topic, key, tenant, want, 20*time.Second) {
						out = append(out, events.Event{Kind: kind, Tenant: tenant, Key: string(r.Key), Value: r.Value, Headers: headersOf(r)})
					}
					return out
				},
				Unreachable: func(t testing.TB) (events.SinkDriver, error) {
					u, _ := url.Parse("kafka://127.0.0.1:1/")
					return kafkaevents.OpenSink(context.Background(), u, events.SinkOptions{Transactional: txn,
						Settings: map[string]string{kafkaevents.SettingDeliveryTimeout: "2s"}})
				},
				Timeout: 30 * time.Second,
			})
		})
	}
}

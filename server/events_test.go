package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/events/memevents"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/blobtest"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/tenant"
)

// startEventsServer runs a greyd whose events.kafka block (source and
// sink) opens the in-memory broker b, registered under the kafka scheme:
// the configuration path a real Kafka takes, without a broker.
func startEventsServer(t testing.TB, open events.Opener, mutate ...func(*config.Config)) (*Server, func(string) *client.Client) {
	t.Helper()
	reg := events.NewRegistry()
	if err := reg.Register("kafka", open); err != nil {
		t.Fatal(err)
	}
	return startServerWith(t, "", 0, []Option{WithEventsRegistry(reg)}, append([]func(*config.Config){func(cfg *config.Config) {
		cfg.Events.Kafka.Brokers = []string{"127.0.0.1:9092"}
		cfg.Events.Kafka.Source = true
		cfg.Events.Kafka.Sink = true
		cfg.Monitoring.Prometheus.Enabled = true
		cfg.Monitoring.Prometheus.Host = "127.0.0.1"
		cfg.Monitoring.Prometheus.Port = 0
	}}, mutate...)...)
}

func produceMsg(t *testing.T, b *memevents.Broker, tenant, body string, headers map[string]string) string {
	t.Helper()
	pos, err := b.Produce(tenant, memevents.Message{Value: []byte(body), Headers: headers})
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

// counter sums a counter family's series whose labels include want.
func counter(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue metric
				}
			}
			if m.GetCounter() != nil {
				sum += m.GetCounter().GetValue()
			} else if m.GetGauge() != nil {
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// Messages in, tasks, results out: every message becomes exactly one task
// whose result (and lifecycle event) is published with its headers; bad
// messages go to the dead-letter list with their reason and the rest goes
// on; the status route and the metrics show it.
func TestEventsEndToEnd(t *testing.T) {
	b := memevents.New()
	s, mk := startEventsServer(t, memevents.Opener(b))
	ctx := context.Background()
	c := mk("acme")
	const n = 20
	positions := map[string]bool{}
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for i := range n {
		positions[produceMsg(t, b, "acme", fmt.Sprintf(`{"kind":"echo","payload":{"n":%d}}`, i), map[string]string{"traceparent": tp})] = true
	}
	produceMsg(t, b, "acme", `{"kind":"echo",`, nil)
	produceMsg(t, b, "acme", `{"kind":"nosuch"}`, nil)
	produceMsg(t, b, "acme", `{"kind":"echo"}`, map[string]string{events.HeaderTenant: "globex"})
	produceMsg(t, b, "globex", `{"kind":"echo","payload":"g"}`, nil)

	greytest.Eventually(t, 20*time.Second, func() bool { return len(b.Published(events.Result, "acme")) >= n })
	greytest.Eventually(t, 20*time.Second, func() bool { return len(b.Published(events.Result, "globex")) >= 1 })
	if p := b.Pending("acme"); p != 0 {
		t.Fatalf("%d of acme's messages not acknowledged", p)
	}
	page, err := c.List(ctx, client.ListOptions{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Tasks) != n {
		t.Fatalf("acme has %d tasks, want %d (one per good message)", len(page.Tasks), n)
	}
	for _, tk := range page.Tasks {
		if !positions[tk.IdempotencyKey] {
			t.Errorf("task %s has idempotency key %q, not a message position", tk.ID, tk.IdempotencyKey)
		}
		if !strings.HasPrefix(tk.Headers["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-") {
			t.Errorf("task %s does not continue the message's trace: %v", tk.ID, tk.Headers)
		}
	}
	seen := map[string]bool{}
	for _, e := range b.Published(events.Result, "acme") {
		var body events.ResultBody
		if err := json.Unmarshal(e.Value, &body); err != nil {
			t.Fatal(err)
		}
		if body.Status != task.Completed || body.TenantID != "acme" || !positions[body.IdempotencyKey] || len(body.Result) == 0 {
			t.Errorf("result %s", e.Value)
		}
		if e.Headers[events.HeaderTaskID] != body.TaskID || e.Headers[events.HeaderTenant] != "acme" || e.Headers[events.HeaderAttempt] != "1" ||
			!strings.HasPrefix(e.Headers["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-") {
			t.Errorf("result headers %v", e.Headers)
		}
		seen[body.TaskID] = true
	}
	if len(seen) != n {
		t.Fatalf("results of %d distinct tasks, want %d", len(seen), n)
	}
	if l := b.Published(events.Lifecycle, "acme"); len(l) < n {
		t.Fatalf("%d lifecycle events, want %d", len(l), n)
	}
	dl := b.DeadLetters("acme")
	if len(dl) != 3 {
		t.Fatalf("%d dead letters, want the 3 bad messages", len(dl))
	}
	reasons := map[string]bool{}
	for _, d := range dl {
		reasons[strings.SplitN(d.Reason, ":", 2)[0]] = true
		if d.Message.Headers[events.HeaderReason] != d.Reason {
			t.Errorf("dead letter without its reason header: %+v", d.Message.Headers)
		}
	}
	for _, r := range []events.Reason{events.ReasonMalformed, events.ReasonUnknownKind, events.ReasonTenantMismatch} {
		if !reasons[string(r)] {
			t.Errorf("no dead letter with reason %s (got %v)", r, reasons)
		}
	}
	// globex got its own message and nothing of acme's.
	if g, err := mk("globex").List(ctx, client.ListOptions{}); err != nil || len(g.Tasks) != 1 {
		t.Fatalf("globex tasks: %v %v", g, err)
	}

	// The status route: the source with its lag, the sink with its
	// watermark.
	var st *client.EventsStatus
	greytest.Eventually(t, 20*time.Second, func() bool {
		st, err = c.EventsStatus(ctx)
		return err == nil && len(st.Sinks) == 1 && st.Sinks[0].LagTasks == 0 && st.Sinks[0].Watermark > 0 &&
			len(st.Sources) == 1 && !st.Sources[0].LagAt.IsZero() && st.Sources[0].TotalLag == 0
	})
	src, sink := st.Sources[0], st.Sinks[0]
	if src.Name != "kafka" || !src.Running || src.Consumed != n+1 || src.DeadLettered != 3 || src.URL != "kafka://127.0.0.1:9092" {
		t.Errorf("source %+v", src)
	}
	if sink.Name != "kafka" || sink.Relay != "events_kafka" || sink.Failures != 0 {
		t.Errorf("sink %+v", sink)
	}
	if got := counter(t, s.registry, "grey_events_consumed_total", map[string]string{"source": "kafka"}); got != n+1 {
		t.Errorf("grey_events_consumed_total = %v, want %d", got, n+1)
	}
	if got := counter(t, s.registry, "grey_events_dead_lettered_total", map[string]string{"reason": "malformed"}); got != 1 {
		t.Errorf("grey_events_dead_lettered_total{reason=malformed} = %v", got)
	}
	if got := counter(t, s.registry, "grey_events_published_total", map[string]string{"sink": "kafka", "kind": "result"}); got < n+1 {
		t.Errorf("grey_events_published_total{kind=result} = %v", got)
	}
	if got := gauge(t, s.registry, "grey_events_kafka_lag_tasks"); got != 0 {
		t.Errorf("grey_events_kafka_lag_tasks = %v", got)
	}
	if r, err := c.Readiness(ctx); err != nil || r.Status != "ready" {
		t.Errorf("readiness %+v %v", r, err)
	}
}

// restarting wraps the in-memory broker so that the first acknowledgements
// fail and the consumer's group member is replaced, as when a consumer
// dies after its tasks were committed and before it acknowledged them:
// the messages come again to a new member.
type restarting struct {
	b        *memevents.Broker
	failAcks atomic.Int32
}

func (r *restarting) OpenSource(ctx context.Context, u *url.URL, o events.SourceOptions) (events.SourceDriver, error) {
	src, err := r.b.OpenSource()
	if err != nil {
		return nil, err
	}
	return &flakySource{r: r, cur: src}, nil
}

func (r *restarting) OpenSink(ctx context.Context, u *url.URL, o events.SinkOptions) (events.SinkDriver, error) {
	return r.b.OpenSink()
}

type flakySource struct {
	r  *restarting
	mu sync.Mutex
	events.SourceDriver
	cur *memevents.Source
}

func (f *flakySource) driver() *memevents.Source {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur
}

func (f *flakySource) Fetch(ctx context.Context, max int) ([]*events.Message, error) {
	return f.driver().Fetch(ctx, max)
}

func (f *flakySource) Ack(ctx context.Context, msgs []*events.Message) error {
	if f.r.failAcks.Add(-1) >= 0 {
		// The member dies: its unacknowledged messages go to the next one.
		f.mu.Lock()
		old := f.cur
		next, err := f.r.b.OpenSource()
		if err == nil {
			f.cur = next
		}
		f.mu.Unlock()
		_ = old.Close()
		return greyerr.New(greyerr.Unavailable, "consumer died before acknowledging")
	}
	return f.driver().Ack(ctx, msgs)
}

func (f *flakySource) Retry(ctx context.Context, msgs []*events.Message) error {
	return f.driver().Retry(ctx, msgs)
}

func (f *flakySource) DeadLetter(ctx context.Context, m *events.Message, reason string) error {
	return f.driver().DeadLetter(ctx, m, reason)
}

func (f *flakySource) Pause(t string)  { f.driver().Pause(t) }
func (f *flakySource) Resume(t string) { f.driver().Resume(t) }
func (f *flakySource) Lag(ctx context.Context) (map[string]int64, error) {
	return f.driver().Lag(ctx)
}
func (f *flakySource) As(any) bool  { return false }
func (f *flakySource) Close() error { return f.driver().Close() }

// A consumer that dies between the Raft commit and the acknowledgement
// makes no second task: the redelivered messages name their tasks by
// their positions.
func TestEventsRestartBeforeAckIsExactlyOnce(t *testing.T) {
	b := memevents.New()
	r := &restarting{b: b}
	r.failAcks.Store(3)
	_, mk := startEventsServer(t, r)
	ctx := context.Background()
	c := mk("acme")
	const n = 30
	for i := range n {
		produceMsg(t, b, "acme", fmt.Sprintf(`{"kind":"echo","payload":{"n":%d}}`, i), nil)
	}
	greytest.Eventually(t, 20*time.Second, func() bool { return b.Pending("acme") == 0 })
	if r.failAcks.Load() >= 0 {
		t.Fatalf("the consumer was not restarted before acknowledging (%d failures left)", r.failAcks.Load())
	}
	page, err := c.List(ctx, client.ListOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Tasks) != n {
		t.Fatalf("%d tasks for %d messages, each redelivered after a restart: want exactly one task per message", len(page.Tasks), n)
	}
	keys := map[string]bool{}
	for _, tk := range page.Tasks {
		keys[tk.IdempotencyKey] = true
	}
	if len(keys) != n {
		t.Fatalf("%d distinct idempotency keys, want %d", len(keys), n)
	}
	greytest.Eventually(t, 20*time.Second, func() bool { return len(b.Published(events.Result, "acme")) >= n })
	ids := map[string]bool{}
	for _, e := range b.Published(events.Result, "acme") {
		ids[e.Key+"/"+e.Headers[events.HeaderAttempt]] = true
	}
	if len(ids) != n {
		t.Fatalf("results deduplicated by (task id, attempt): %d, want %d", len(ids), n)
	}
}

// A broker that is down at start does not stop greyd: /readyz names the
// source as degraded, and consumption starts once the broker answers.
func TestEventsBrokerDownAtStart(t *testing.T) {
	b := memevents.New()
	b.SetUnavailable(errors.New("dial tcp 127.0.0.1:9092: connection refused"))
	_, mk := startEventsServer(t, memevents.Opener(b))
	ctx := context.Background()
	c := mk("acme")
	greytest.Eventually(t, 20*time.Second, func() bool {
		r, err := c.Readiness(ctx)
		return err == nil && r.Status == "degraded" && containsAll(r.Degraded["events_kafka_source"], "kafka", "connection refused")
	})
	st, err := c.EventsStatus(ctx)
	if err != nil || len(st.Sources) != 1 || st.Sources[0].Failures == 0 || !strings.Contains(st.Sources[0].LastError, "connection refused") {
		t.Fatalf("events status during the outage: %+v %v", st, err)
	}
	// Submissions through the API go on meanwhile.
	tk, err := c.Submit(ctx, task.Spec{Kind: "echo"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, tk.ID); err != nil {
		t.Fatal(err)
	}
	greytest.Eventually(t, 20*time.Second, func() bool {
		r, err := c.Readiness(ctx)
		return err == nil && r.Status == "degraded" && containsAll(r.Degraded["events_kafka"], "event sink kafka failing")
	})
	b.SetUnavailable(nil)
	produceMsg(t, b, "acme", `{"kind":"echo"}`, nil)
	greytest.Eventually(t, 30*time.Second, func() bool { return b.Pending("acme") == 0 })
	// The API task's result, held in Raft during the outage, is published.
	greytest.Eventually(t, 30*time.Second, func() bool { return len(b.Published(events.Result, "acme")) == 2 })
	greytest.Eventually(t, 20*time.Second, func() bool {
		r, err := c.Readiness(ctx)
		return err == nil && r.Status == "ready"
	})
}

// A build without the configured scheme's driver refuses to start, naming
// the block.
func TestEventsUnknownSchemeStopsStart(t *testing.T) {
	cfg := config.Default()
	cfg.Node.DataDir = t.TempDir()
	cfg.HTTP.Addr, cfg.Raft.Addr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Monitoring.Prometheus.Enabled = false
	cfg.Events.RabbitMQ.URL = "amqp://grey:pw@127.0.0.1:5672/"
	cfg.Events.RabbitMQ.Source = true
	reg := events.NewRegistry()
	_ = memevents.Register(reg, memevents.New())
	_, err := New(cfg, greytest.Logger(t), WithBlobRegistry(blobtest.Registry(t)), WithEventsRegistry(reg))
	if err == nil || !strings.Contains(err.Error(), "events.rabbitmq") || !strings.Contains(err.Error(), "amqp") || strings.Contains(err.Error(), "pw@") {
		t.Fatalf("start with an unlinked scheme: %v", err)
	}
	_, err = New(cfg, greytest.Logger(t), WithBlobRegistry(blobtest.Registry(t)))
	if err == nil || !strings.Contains(err.Error(), "links no event drivers") {
		t.Fatalf("start without an events registry: %v", err)
	}
}

// The events block becomes the drivers' URLs and settings.
func TestEventBlocks(t *testing.T) {
	cfg := config.Default()
	if b := eventBlocks(cfg); len(b) != 0 {
		t.Fatalf("default config has event streams: %+v", b)
	}
	k := &cfg.Events.Kafka
	k.Brokers, k.Source, k.Sink, k.Transactional, k.Group = []string{"k1:9092", "k2:9093"}, true, true, true, "grey-eu"
	k.SASL = config.KafkaSASLConfig{Mechanism: "SCRAM-SHA-512", Username: "u", Password: "p"}
	k.TLS = config.KafkaTLSConfig{Enabled: true, CAFile: "/ca.pem"}
	r := &cfg.Events.RabbitMQ
	r.URL, r.Sink, r.QueueType, r.MaxPriority, r.DeliveryLimit, r.Prefetch = "amqps://u:p@rabbit:5671/grey", true, config.QueueClassic, 10, 3, 50
	b := eventBlocks(cfg)
	if len(b) != 2 {
		t.Fatalf("%d blocks", len(b))
	}
	kb, rb := b[0], b[1]
	if kb.name != "kafka" || kb.url != "kafka://k1:9092" || !kb.source || !kb.sink || !kb.sinkOptions.Transactional || kb.sourceOptions.Group != "grey-eu" {
		t.Errorf("kafka %+v", kb)
	}
	for key, want := range map[string]string{events.SettingBrokers: "k1:9092,k2:9093", events.SettingTopicsRegex: `^grey\.tasks\..+$`, events.SettingCompression: "zstd",
		events.SettingSASLMechanism: "SCRAM-SHA-512", events.SettingSASLUsername: "u", events.SettingSASLPassword: "p", events.SettingTLS: "true", events.SettingTLSCAFile: "/ca.pem"} {
		if kb.sourceOptions.Settings[key] != want || kb.sinkOptions.Settings[key] != want {
			t.Errorf("kafka setting %s = %q, want %q", key, kb.sourceOptions.Settings[key], want)
		}
	}
	if rb.name != "rabbitmq" || rb.url != "amqps://u:p@rabbit:5671/grey" || rb.source || !rb.sink || rb.sourceOptions.Prefetch != 50 {
		t.Errorf("rabbitmq %+v", rb)
	}
	for key, want := range map[string]string{events.SettingQueueType: "classic", events.SettingMaxPriority: "10", events.SettingDeliveryLimit: "3"} {
		if rb.sinkOptions.Settings[key] != want {
			t.Errorf("rabbitmq setting %s = %q, want %q", key, rb.sinkOptions.Settings[key], want)
		}
	}
}

// Through the real engine: a message for a tenant that does not exist and
// one whose payload is over the tenant's limit go to the DLQ; a tenant at
// its max_queued is paused, not dropped, and its messages all become tasks
// as its running tasks finish.
func TestEventsTenantLimits(t *testing.T) {
	b := memevents.New()
	s, mk := startEventsServer(t, memevents.Opener(b), func(cfg *config.Config) {
		cfg.Tenants.AutoCreate = false
		cfg.Tenants.EnforceQuotas = true
	})
	ctx := context.Background()
	admin := mk("")
	if _, err := admin.CreateTenant(ctx, "acme", tenant.Quota{Weight: 1, MaxQueued: 2, MaxPayloadBytes: 64}); err != nil {
		t.Fatal(err)
	}
	produceMsg(t, b, "ghost", `{"kind":"echo"}`, nil)
	produceMsg(t, b, "acme", fmt.Sprintf(`{"kind":"echo","payload":%q}`, strings.Repeat("x", 100)), nil)
	const n = 8
	for i := range n {
		produceMsg(t, b, "acme", fmt.Sprintf(`{"kind":"sleep","payload":{"ms":%d}}`, 50+i), nil)
	}
	greytest.Eventually(t, 60*time.Second, func() bool { return b.Pending("acme") == 0 && b.Pending("ghost") == 0 })
	if dl := b.DeadLetters("ghost"); len(dl) != 1 || !strings.HasPrefix(dl[0].Reason, "unknown_tenant: ") {
		t.Fatalf("ghost's dead letters: %+v", dl)
	}
	if dl := b.DeadLetters("acme"); len(dl) != 1 || !strings.HasPrefix(dl[0].Reason, "payload_too_large: ") {
		t.Fatalf("acme's dead letters: %+v", dl)
	}
	page, err := mk("acme").List(ctx, client.ListOptions{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Tasks) != n {
		t.Fatalf("acme has %d tasks, want %d: quota refusals must hold messages back, not drop them", len(page.Tasks), n)
	}
	if got := counter(t, s.registry, "grey_events_retried_total", map[string]string{"reason": "quota"}); got < 1 {
		t.Errorf("no quota refusal was counted (grey_events_retried_total{reason=quota} = %v): the test did not reach the limit", got)
	}
}

// TestEventsLifecycleSetting: events.kafka.lifecycle reaches the sink
// through greyd. With [all] every task's non-terminal transitions are
// published besides the terminal one (lease and start may be one Raft
// entry, so "leased" may not show on its own); with [running, terminal]
// only those; tenants stay apart.
func TestEventsLifecycleSetting(t *testing.T) {
	for _, tc := range []struct {
		words   []string
		must    []string // statuses every task shows
		allowed map[string]bool
	}{
		{[]string{"all"}, []string{"pending", "completed"}, map[string]bool{"pending": true, "leased": true, "running": true, "completed": true}},
		{[]string{"running", "terminal"}, []string{"completed"}, map[string]bool{"running": true, "completed": true}},
	} {
		t.Run(strings.Join(tc.words, "_"), func(t *testing.T) {
			b := memevents.New()
			_, _ = startEventsServer(t, memevents.Opener(b), func(cfg *config.Config) { cfg.Events.Kafka.Lifecycle = tc.words })
			const n = 10
			for i := range n {
				produceMsg(t, b, "acme", fmt.Sprintf(`{"kind":"noop","payload":{"n":%d}}`, i), nil)
			}
			produceMsg(t, b, "globex", `{"kind":"noop"}`, nil)
			greytest.Eventually(t, 20*time.Second, func() bool { return len(b.Published(events.Result, "acme")) >= n })
			byTask := map[string]map[string]bool{}
			greytest.Eventually(t, 20*time.Second, func() bool {
				byTask = map[string]map[string]bool{}
				for _, e := range b.Published(events.Lifecycle, "acme") {
					if byTask[e.Key] == nil {
						byTask[e.Key] = map[string]bool{}
					}
					byTask[e.Key][e.Headers[events.HeaderEvent]] = true
				}
				if len(byTask) < n {
					return false
				}
				for _, seen := range byTask {
					for _, m := range tc.must {
						if !seen[m] {
							return false
						}
					}
				}
				return true
			})
			for id, seen := range byTask {
				for s := range seen {
					if !tc.allowed[s] {
						t.Errorf("task %s: lifecycle event %q published, lifecycle is %v", id, s, tc.words)
					}
				}
			}
			for _, e := range b.Published(events.Lifecycle, "globex") {
				if e.Tenant != "globex" || e.Headers[events.HeaderTenant] != "globex" {
					t.Errorf("globex lifecycle event of another tenant: %+v", e)
				}
			}
		})
	}
}

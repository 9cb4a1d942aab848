package events_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/trace"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/events/memevents"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// cluster is a stand-in for engine.Submit: it dedupes by idempotency key
// per tenant and refuses what the engine refuses.
type cluster struct {
	mu         sync.Mutex
	tasks      map[string]*task.Task // tenant/key → task
	calls      int
	tenants    map[string]bool
	kinds      map[string]bool
	maxBytes   int
	refuse     func(tenant string) error // quota or outage
	traces     []trace.TraceID
	batches    int
	specTraces []string
}

func newCluster(tenants ...string) *cluster {
	c := &cluster{tasks: map[string]*task.Task{}, tenants: map[string]bool{}, kinds: map[string]bool{"noop": true}, maxBytes: 1 << 10}
	for _, t := range tenants {
		c.tenants[t] = true
	}
	return c
}

func (c *cluster) submit(ctx context.Context, tenant string, spec task.Spec) (*task.Task, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		c.traces = append(c.traces, sc.TraceID())
	}
	if c.refuse != nil {
		if err := c.refuse(tenant); err != nil {
			return nil, err
		}
	}
	if err := spec.Validate("", task.Limits{MaxPayloadBytes: c.maxBytes}); err != nil {
		return nil, err
	}
	if !c.kinds[spec.Kind] {
		return nil, greyerr.Invalid("kind", "unknown kind %q: no executor or worker provides it", spec.Kind)
	}
	if !c.tenants[tenant] {
		e := greyerr.Invalid("tenant", "unknown tenant %q: create it first", tenant)
		e.Reason = "unknown_tenant"
		return nil, e
	}
	if spec.IdempotencyKey == "" {
		return nil, errors.New("no idempotency key")
	}
	k := tenant + "/" + spec.IdempotencyKey
	if t := c.tasks[k]; t != nil {
		return t, nil
	}
	id, _ := task.NewID()
	t := &task.Task{ID: id, TenantID: tenant, Spec: spec, Status: task.Pending}
	c.tasks[k] = t
	return t, nil
}

// submitBatch is engine.Submit of a batch: all or none.
func (c *cluster) submitBatch(ctx context.Context, tenant string, specs []task.Spec) ([]*task.Task, error) {
	c.mu.Lock()
	c.batches++
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		c.traces = append(c.traces, sc.TraceID())
	}
	for _, s := range specs {
		if tp := s.Headers["traceparent"]; tp != "" {
			c.specTraces = append(c.specTraces, tp)
		}
	}
	if c.refuse != nil {
		if err := c.refuse(tenant); err != nil {
			c.mu.Unlock()
			return nil, err
		}
	}
	for i := range specs {
		s := specs[i]
		if err := s.Validate(fmt.Sprintf("tasks[%d].", i), task.Limits{MaxPayloadBytes: c.maxBytes}); err != nil {
			c.mu.Unlock()
			return nil, err
		}
		if !c.kinds[s.Kind] {
			c.mu.Unlock()
			return nil, greyerr.Invalid(fmt.Sprintf("tasks[%d].kind", i), "unknown kind %q", s.Kind)
		}
	}
	c.mu.Unlock()
	out := make([]*task.Task, len(specs))
	for i, s := range specs {
		t, err := c.submit(ctx, tenant, s)
		if err != nil {
			return nil, err
		}
		out[i] = t
	}
	return out, nil
}

func (c *cluster) count(tenant string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k := range c.tasks {
		if strings.HasPrefix(k, tenant+"/") {
			n++
		}
	}
	return n
}

func (c *cluster) task(tenant, key string) *task.Task {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tasks[tenant+"/"+key]
}

func opts(c *cluster, m *events.Metrics, batched bool) events.ConsumerOptions {
	o := events.ConsumerOptions{Name: "mem", Submit: c.submit, MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		LagInterval: 20 * time.Millisecond, Metrics: m, MaxMessageBytes: 64 << 10}
	if batched {
		o.SubmitBatch, o.BatchSize = c.submitBatch, 4
	}
	return o
}

// forModes runs a consumer test with one submit per message and with
// batched submits.
func forModes(t *testing.T, test func(t *testing.T, batched bool)) {
	t.Run("single", func(t *testing.T) { test(t, false) })
	t.Run("batched", func(t *testing.T) { test(t, true) })
}

// run runs a consumer until the returned stop is called.
func run(t *testing.T, c *events.Consumer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Error("Run did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func produce(t *testing.T, b *memevents.Broker, tenant string, m memevents.Message) string {
	t.Helper()
	pos, err := b.Produce(tenant, m)
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

func TestConsumerSubmitsAndAcks(t *testing.T) { forModes(t, testConsumerSubmitsAndAcks) }

func testConsumerSubmitsAndAcks(t *testing.T, batched bool) {
	b := memevents.New()
	cl := newCluster("acme")
	reg := prometheus.NewRegistry()
	m, err := events.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	src, _ := b.OpenSource()
	c, err := events.NewConsumer(src, opts(cl, m, batched))
	if err != nil {
		t.Fatal(err)
	}
	var positions []string
	for i := range 20 {
		tp := fmt.Sprintf("00-4bf92f3577b34da6a3ce929d0e0e47%02d-00f067aa0ba902b7-01", i)
		positions = append(positions, produce(t, b, "acme", memevents.Message{Value: fmt.Appendf(nil, `{"kind":"noop","payload":{"i":%d},"idempotency_key":"mine"}`, i),
			Headers: map[string]string{"traceparent": tp}}))
	}
	run(t, c)
	eventually(t, "20 tasks acknowledged", func() bool { return b.Pending("acme") == 0 })
	if batched {
		cl.mu.Lock()
		batches, traces := cl.batches, len(cl.specTraces)
		cl.mu.Unlock()
		if batches != 5 {
			t.Errorf("%d batches for 20 messages in batches of 4, want 5", batches)
		}
		if traces != 20 {
			t.Errorf("%d batched specs carry their message's traceparent, want 20", traces)
		}
	}
	if n := cl.count("acme"); n != 20 {
		t.Fatalf("%d tasks, want 20", n)
	}
	for _, p := range positions {
		tk := cl.task("acme", p)
		if tk == nil {
			t.Fatalf("no task with idempotency key %s (the message's position)", p)
		}
	}
	if got := testutil.ToFloat64(m.Consumed("mem")); got != 20 {
		t.Errorf("grey_events_consumed_total = %v, want 20", got)
	}
	if st := c.Status(); !st.Running || st.Consumed != 20 || st.DeadLettered != 0 {
		t.Errorf("status %+v", st)
	}
	eventually(t, "lag 0 in status", func() bool {
		st := c.Status()
		return !st.LagAt.IsZero() && st.Lag["acme"] == 0
	})
}

// ackFails makes Ack fail as a crash between the Raft commit and the ack
// would leave things.
type ackFails struct {
	events.SourceDriver
	fail atomic.Bool
}

func (a *ackFails) Ack(ctx context.Context, msgs []*events.Message) error {
	if a.fail.Load() {
		return greyerr.New(greyerr.Unavailable, "broker connection lost")
	}
	return a.SourceDriver.Ack(ctx, msgs)
}

func TestConsumerRestartBeforeAckMakesNoSecondTask(t *testing.T) {
	forModes(t, testConsumerRestartBeforeAckMakesNoSecondTask)
}

func testConsumerRestartBeforeAckMakesNoSecondTask(t *testing.T, batched bool) {
	b := memevents.New()
	cl := newCluster("acme")
	src, _ := b.OpenSource()
	af := &ackFails{SourceDriver: src}
	af.fail.Store(true)
	c1, _ := events.NewConsumer(af, opts(cl, nil, batched))
	stop := run(t, c1)
	for i := range 10 {
		produce(t, b, "acme", memevents.Message{Value: fmt.Appendf(nil, `{"kind":"noop","payload":%d}`, i)})
	}
	eventually(t, "10 tasks submitted", func() bool { return cl.count("acme") == 10 })
	stop()
	if err := src.Close(); err != nil { // the old leader's driver goes away unacknowledged
		t.Fatal(err)
	}
	if p := b.Pending("acme"); p != 10 {
		t.Fatalf("pending %d, want 10 unacknowledged", p)
	}
	src2, _ := b.OpenSource()
	c2, _ := events.NewConsumer(src2, opts(cl, nil, batched))
	run(t, c2)
	eventually(t, "every message acknowledged", func() bool { return b.Pending("acme") == 0 })
	if n := cl.count("acme"); n != 10 {
		t.Fatalf("%d tasks after redelivery, want exactly 10 (one per message)", n)
	}
	if cl.calls < 20 {
		t.Fatalf("%d submits, want the 10 redelivered messages submitted again", cl.calls)
	}
}

func TestConsumerDeadLetters(t *testing.T) { forModes(t, testConsumerDeadLetters) }

func testConsumerDeadLetters(t *testing.T, batched bool) {
	b := memevents.New()
	cl := newCluster("acme", "other")
	reg := prometheus.NewRegistry()
	m, _ := events.NewMetrics(reg)
	src, _ := b.OpenSource()
	c, _ := events.NewConsumer(src, opts(cl, m, batched))
	run(t, c)

	wrongSchema := append([]byte{0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8}, 0x02, 'x')
	cases := []struct {
		name   string
		tenant string
		msg    memevents.Message
		reason events.Reason
	}{
		{"malformed JSON", "acme", memevents.Message{Value: []byte(`{"kind":"noop",`)}, events.ReasonMalformed},
		{"unknown field", "acme", memevents.Message{Value: []byte(`{"kind":"noop","colour":"red"}`)}, events.ReasonMalformed},
		{"tenant in body", "acme", memevents.Message{Value: []byte(`{"kind":"noop","tenant_id":"other"}`)}, events.ReasonMalformed},
		{"two values", "acme", memevents.Message{Value: []byte(`{"kind":"noop"}{"kind":"noop"}`)}, events.ReasonMalformed},
		{"wrong avro schema", "acme", memevents.Message{Value: wrongSchema, ContentType: events.ContentTypeAvro}, events.ReasonSchema},
		{"avro garbage", "acme", memevents.Message{Value: []byte{0x06, 'n', 'o', 'o', 'p', 0xff, 0xff, 0xff}, ContentType: events.ContentTypeAvro}, events.ReasonSchema},
		{"unknown content type", "acme", memevents.Message{Value: []byte(`kind=noop`), ContentType: "text/plain"}, events.ReasonContentType},
		{"unknown kind", "acme", memevents.Message{Value: []byte(`{"kind":"nosuch"}`)}, events.ReasonUnknownKind},
		{"payload over the limit", "acme", memevents.Message{Value: fmt.Appendf(nil, `{"kind":"noop","payload":%q}`, strings.Repeat("x", 2<<10))}, events.ReasonPayloadTooLarge},
		{"unknown tenant", "ghost", memevents.Message{Value: []byte(`{"kind":"noop"}`)}, events.ReasonUnknownTenant},
		{"invalid tenant", "Not A Tenant", memevents.Message{Value: []byte(`{"kind":"noop"}`)}, events.ReasonUnknownTenant},
		{"header names another tenant", "acme", memevents.Message{Value: []byte(`{"kind":"noop"}`), Headers: map[string]string{events.HeaderTenant: "other"}}, events.ReasonTenantMismatch},
		{"10 MB message", "acme", memevents.Message{Value: make([]byte, 10<<20)}, events.ReasonTooLarge},
		{"bad priority", "acme", memevents.Message{Value: []byte(`{"kind":"noop","priority":99}`)}, events.ReasonInvalid},
	}
	for _, tc := range cases {
		produce(t, b, tc.tenant, tc.msg)
	}
	// Good messages around them go through.
	produce(t, b, "acme", memevents.Message{Value: []byte(`{"kind":"noop"}`)})
	produce(t, b, "acme", memevents.Message{Value: []byte(`{"kind":"noop"}`), Headers: map[string]string{events.HeaderTenant: "acme"}})
	good, err := events.EncodeAvro(task.Spec{Kind: "noop", Payload: []byte(`{"a":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	produce(t, b, "acme", memevents.Message{Value: good, ContentType: events.ContentTypeAvro})
	produce(t, b, "other", memevents.Message{Value: []byte(`{"kind":"noop"}`)})

	eventually(t, "every message handled", func() bool {
		return b.Pending("acme")+b.Pending("ghost")+b.Pending("Not A Tenant")+b.Pending("other") == 0
	})
	if n := cl.count("acme"); n != 3 {
		t.Errorf("acme has %d tasks, want the 3 good messages'", n)
	}
	if n := cl.count("other"); n != 1 {
		t.Errorf("other has %d tasks, want 1 (a message naming it from acme's topic is not its task)", n)
	}
	dl := append(b.DeadLetters("acme"), b.DeadLetters("ghost")...)
	dl = append(dl, b.DeadLetters("Not A Tenant")...)
	if len(dl) != len(cases) {
		t.Fatalf("%d dead letters, want %d", len(dl), len(cases))
	}
	byBody := map[string]string{}
	for _, d := range dl {
		byBody[string(d.Message.Value)+"|"+d.Message.Tenant+"|"+d.Message.Headers[events.HeaderTenant]+"|"+d.Message.ContentType] = d.Reason
	}
	counts := map[events.Reason]int{}
	for _, tc := range cases {
		counts[tc.reason]++
		got := byBody[string(tc.msg.Value)+"|"+tc.tenant+"|"+tc.msg.Headers[events.HeaderTenant]+"|"+tc.msg.ContentType]
		if !strings.HasPrefix(got, string(tc.reason)+": ") || len(got) < len(tc.reason)+10 {
			t.Errorf("%s: dead-letter reason %q, want %q with a detail", tc.name, got, tc.reason)
		}
	}
	for r, n := range counts {
		if got := testutil.ToFloat64(m.DeadLettered("mem", r)); got != float64(n) {
			t.Errorf("grey_events_dead_lettered_total{reason=%q} = %v, want %d", r, got, n)
		}
	}
}

func TestConsumerQuotaPausesTenant(t *testing.T) { forModes(t, testConsumerQuotaPausesTenant) }

func testConsumerQuotaPausesTenant(t *testing.T, batched bool) {
	b := memevents.New()
	cl := newCluster("busy", "calm")
	var full atomic.Bool
	full.Store(true)
	cl.refuse = func(tenant string) error {
		if tenant == "busy" && full.Load() {
			e := greyerr.New(greyerr.ResourceExhausted, "tenant has 10 unfinished tasks; 1 more exceed max_queued 10")
			e.Reason = "max_queued"
			return e
		}
		return nil
	}
	src, _ := b.OpenSource()
	m, _ := events.NewMetrics(prometheus.NewRegistry())
	c, _ := events.NewConsumer(src, opts(cl, m, batched))
	run(t, c)
	for i := range 5 {
		produce(t, b, "busy", memevents.Message{Value: fmt.Appendf(nil, `{"kind":"noop","payload":%d}`, i)})
		produce(t, b, "calm", memevents.Message{Value: fmt.Appendf(nil, `{"kind":"noop","payload":%d}`, i)})
	}
	eventually(t, "calm's messages consumed while busy is refused", func() bool { return b.Pending("calm") == 0 })
	eventually(t, "busy paused", func() bool { return len(c.Status().Paused) == 1 })
	if st := c.Status(); st.Paused[0] != "busy" {
		t.Fatalf("paused %v", st.Paused)
	}
	if p := b.Pending("busy"); p != 5 {
		t.Fatalf("busy has %d pending, want all 5 kept (never dropped)", p)
	}
	if n := len(b.DeadLetters("busy")); n != 0 {
		t.Fatalf("%d of busy's messages dead-lettered on a quota refusal", n)
	}
	if testutil.ToFloat64(m.Retried("mem", "quota")) < 1 {
		t.Error("grey_events_retried_total{reason=quota} not counted")
	}
	full.Store(false)
	eventually(t, "busy's messages consumed once its quota has room", func() bool { return b.Pending("busy") == 0 })
	if n := cl.count("busy"); n != 5 {
		t.Fatalf("busy has %d tasks, want 5", n)
	}
	eventually(t, "busy resumed", func() bool { return len(c.Status().Paused) == 0 })
}

func TestConsumerRetriesWhileNoLeader(t *testing.T) { forModes(t, testConsumerRetriesWhileNoLeader) }

func testConsumerRetriesWhileNoLeader(t *testing.T, batched bool) {
	b := memevents.New()
	cl := newCluster("acme")
	var down atomic.Int32
	down.Store(3)
	cl.refuse = func(string) error {
		if down.Add(-1) >= 0 {
			return greyerr.New(greyerr.Unavailable, "not the leader; submit not applied")
		}
		return nil
	}
	src, _ := b.OpenSource()
	c, _ := events.NewConsumer(src, opts(cl, nil, batched))
	run(t, c)
	produce(t, b, "acme", memevents.Message{Value: []byte(`{"kind":"noop"}`)})
	eventually(t, "the message consumed after the leader came back", func() bool { return b.Pending("acme") == 0 })
	if n := cl.count("acme"); n != 1 {
		t.Fatalf("%d tasks, want 1", n)
	}
	if len(b.DeadLetters("acme")) != 0 {
		t.Fatal("a message dead-lettered for an unavailable cluster")
	}
}

func TestConsumerBrokerDownAtStart(t *testing.T) { forModes(t, testConsumerBrokerDownAtStart) }

func testConsumerBrokerDownAtStart(t *testing.T, batched bool) {
	b := memevents.New()
	b.SetUnavailable(errors.New("dial tcp 127.0.0.1:9092: connection refused"))
	cl := newCluster("acme")
	reg := events.NewRegistry()
	if err := memevents.Register(reg, b); err != nil {
		t.Fatal(err)
	}
	c, err := events.NewConsumerFunc(func(ctx context.Context) (events.SourceDriver, error) {
		return reg.OpenSource(ctx, "mem://", events.SourceOptions{})
	}, opts(cl, nil, batched))
	if err != nil {
		t.Fatal(err)
	}
	run(t, c)
	eventually(t, "the source reported degraded", func() bool { return c.Degraded() != "" })
	if d := c.Degraded(); !strings.Contains(d, "connection refused") || !strings.Contains(d, "mem") {
		t.Errorf("degraded %q does not say why", d)
	}
	b.SetUnavailable(nil)
	produce(t, b, "acme", memevents.Message{Value: []byte(`{"kind":"noop"}`)})
	eventually(t, "consumption once the broker is back", func() bool { return b.Pending("acme") == 0 })
	if d := c.Degraded(); d != "" {
		t.Errorf("still degraded: %s", d)
	}
	// An outage while running degrades it again, and it recovers.
	b.SetUnavailable(errors.New("broker restarting"))
	eventually(t, "degraded during the outage", func() bool { return c.Degraded() != "" })
	b.SetUnavailable(nil)
	produce(t, b, "acme", memevents.Message{Value: []byte(`{"kind":"noop"}`)})
	eventually(t, "consumption after the outage", func() bool { return b.Pending("acme") == 0 && c.Degraded() == "" })
}

func TestConsumerContinuesTrace(t *testing.T) { forModes(t, testConsumerContinuesTrace) }

func testConsumerContinuesTrace(t *testing.T, batched bool) {
	b := memevents.New()
	cl := newCluster("acme")
	src, _ := b.OpenSource()
	c, _ := events.NewConsumer(src, opts(cl, nil, batched))
	run(t, c)
	produce(t, b, "acme", memevents.Message{Value: []byte(`{"kind":"noop"}`),
		Headers: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}})
	eventually(t, "consumed", func() bool { return b.Pending("acme") == 0 })
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if len(cl.traces) != 1 || cl.traces[0].String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("submit saw traces %v, want the message's", cl.traces)
	}
}

func TestConsumerOptions(t *testing.T) {
	if _, err := events.NewConsumer(nil, events.ConsumerOptions{Submit: newCluster().submit}); err == nil {
		t.Error("nil driver accepted")
	}
	src, _ := memevents.New().OpenSource()
	if _, err := events.NewConsumer(src, events.ConsumerOptions{}); err == nil {
		t.Error("missing Submit accepted")
	}
	c, _ := events.NewConsumer(src, opts(newCluster(), nil, false))
	stop := run(t, c)
	time.Sleep(20 * time.Millisecond)
	if err := c.Run(context.Background()); err == nil {
		t.Error("a second concurrent Run was accepted")
	}
	stop()
}

func TestIdempotencyKey(t *testing.T) {
	if k := events.IdempotencyKey("kafka:grey.tasks.acme/3/1207"); k != "kafka:grey.tasks.acme/3/1207" {
		t.Errorf("key %q", k)
	}
	long := strings.Repeat("p", 300)
	k1, k2 := events.IdempotencyKey(long), events.IdempotencyKey(long+"x")
	if len(k1) > 200 || k1 == k2 || !strings.HasPrefix(k1, "evt:") {
		t.Errorf("long positions: %q %q", k1, k2)
	}
	if k := events.IdempotencyKey("a b"); strings.Contains(k, " ") {
		t.Errorf("key with a space: %q", k)
	}
}

// ackFailsN fails the first n acknowledgements.
type ackFailsN struct {
	events.SourceDriver
	n atomic.Int32
}

func (a *ackFailsN) Ack(ctx context.Context, msgs []*events.Message) error {
	if a.n.Add(-1) >= 0 {
		return greyerr.New(greyerr.Unavailable, "broker connection lost")
	}
	return a.SourceDriver.Ack(ctx, msgs)
}

// A failed acknowledgement gives the messages back: they come again to
// the same member, name their tasks and are acknowledged, with no second
// task.
func TestConsumerAckFailureRetries(t *testing.T) { forModes(t, testConsumerAckFailureRetries) }

func testConsumerAckFailureRetries(t *testing.T, batched bool) {
	b := memevents.New()
	cl := newCluster("acme")
	src, _ := b.OpenSource()
	af := &ackFailsN{SourceDriver: src}
	af.n.Store(2)
	for i := range 8 {
		produce(t, b, "acme", memevents.Message{Value: fmt.Appendf(nil, `{"kind":"noop","payload":%d}`, i)})
	}
	c, _ := events.NewConsumer(af, opts(cl, nil, batched))
	run(t, c)
	eventually(t, "every message acknowledged after the failed acks", func() bool { return b.Pending("acme") == 0 })
	if n := cl.count("acme"); n != 8 {
		t.Fatalf("%d tasks, want 8", n)
	}
	if af.n.Load() >= 0 {
		t.Fatal("no acknowledgement failed")
	}
}

// A consumer that stops while a tenant is paused resumes it in a driver
// it does not own, so the next Run (a later leadership) consumes it.
func TestConsumerStopResumesPausedTenant(t *testing.T) {
	b := memevents.New()
	cl := newCluster("busy")
	var full atomic.Bool
	full.Store(true)
	cl.refuse = func(string) error {
		if full.Load() {
			return greyerr.New(greyerr.ResourceExhausted, "max_queued")
		}
		return nil
	}
	src, _ := b.OpenSource()
	o := opts(cl, nil, false)
	o.MinBackoff, o.MaxBackoff = time.Hour, time.Hour // paused for good unless resumed
	c, _ := events.NewConsumer(src, o)
	stop := run(t, c)
	produce(t, b, "busy", memevents.Message{Value: []byte(`{"kind":"noop"}`)})
	eventually(t, "busy paused", func() bool { return len(c.Status().Paused) == 1 })
	stop()
	full.Store(false)
	run(t, c)
	eventually(t, "busy consumed by the next run", func() bool { return b.Pending("busy") == 0 })
}

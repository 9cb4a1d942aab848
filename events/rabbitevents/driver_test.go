package rabbitevents_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/events/rabbitevents"
	"github.com/grey-distributed/grey/greyerr"
)

// fetch fetches n messages of tenant from s.
func fetch(t testing.TB, s events.SourceDriver, n int) []*events.Message {
	t.Helper()
	c := ctxT(t, 15*time.Second)
	var got []*events.Message
	for len(got) < n {
		msgs, err := s.Fetch(c, n-len(got))
		if err != nil {
			t.Fatalf("Fetch: got %d of %d, then %v", len(got), n, err)
		}
		got = append(got, msgs...)
	}
	return got
}

// fetchNothing fails when s returns a message within d.
func fetchNothing(t testing.TB, s events.SourceDriver, d time.Duration, why string) {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	msgs, err := s.Fetch(c, 10)
	if len(msgs) > 0 {
		t.Fatalf("%s: got %d messages (%s: %q)", why, len(msgs), msgs[0].Position, msgs[0].Value)
	}
	if err != nil && c.Err() == nil {
		t.Fatalf("%s: Fetch: %v", why, err)
	}
}

func TestPositionFromMessageIDAndRedelivery(t *testing.T) {
	e := newEnv(t, nil)
	s := e.open(t, []string{"acme"}, 0)
	e.publish(t, "acme.resize", amqp.Publishing{MessageId: "order-17", Body: []byte(`{"kind":"resize"}`)})
	first := fetch(t, s, 1)[0]
	want := "amqp:" + e.group + ".acme/order-17"
	if first.Position != want || first.Tenant != "acme" || string(first.Key) != "acme.resize" || first.Attempt != 1 {
		t.Fatalf("first delivery: position %q tenant %q key %q attempt %d; want %q acme acme.resize 1", first.Position, first.Tenant, first.Key, first.Attempt, want)
	}
	// The consumer dies between the submit and the ack.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := e.open(t, []string{"acme"}, 0)
	defer s2.Close()
	again := fetch(t, s2, 1)[0]
	if again.Position != want {
		t.Fatalf("redelivered position %q, want %q", again.Position, want)
	}
	if again.Attempt != 2 {
		t.Errorf("redelivered Attempt %d, want 2 (x-delivery-count 1)", again.Attempt)
	}
	// An ack of the old driver's message cannot ack this delivery.
	if err := s2.Ack(ctxT(t, 5*time.Second), []*events.Message{first}); !greyerr.Is(err, greyerr.InvalidArgument) && !greyerr.Is(err, greyerr.Unavailable) {
		t.Errorf("Ack of another driver's message: %v, want InvalidArgument or Unavailable", err)
	}
	if err := s2.Ack(ctxT(t, 5*time.Second), []*events.Message{again}); err != nil {
		t.Fatal(err)
	}
	// Acknowledged after the commit: nothing comes back to a new consumer.
	_ = s2.Close()
	s3 := e.open(t, []string{"acme"}, 0)
	defer s3.Close()
	fetchNothing(t, s3, 700*time.Millisecond, "after the ack")
}

func TestPositionWithoutMessageID(t *testing.T) {
	e := newEnv(t, nil)
	s := e.open(t, []string{"acme"}, 0)
	defer s.Close()
	body := []byte(`{"kind":"noop"}`)
	e.publish(t, "acme.noop", amqp.Publishing{Body: body, Headers: amqp.Table{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}})
	e.publish(t, "acme.noop", amqp.Publishing{Body: body, Headers: amqp.Table{"traceparent": "00-5bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}})
	e.publish(t, "acme.noop", amqp.Publishing{Body: body, Headers: amqp.Table{"customer": "7"}})
	e.publish(t, "acme.other", amqp.Publishing{Body: body})
	got := fetch(t, s, 4)
	p := map[string]int{}
	for _, m := range got {
		if !strings.HasPrefix(m.Position, "amqp:"+e.group+".acme/sha256:") {
			t.Errorf("position %q: want amqp:<queue>/sha256:<hex>", m.Position)
		}
		p[m.Position]++
	}
	// The same body and routing key with another trace context is the same
	// message (a producer's retry); other headers or another key are not.
	if len(p) != 3 {
		t.Fatalf("positions %v: want 3 distinct (two identical messages share one)", p)
	}
	if err := s.Ack(ctxT(t, 5*time.Second), got); err != nil {
		t.Fatal(err)
	}
}

func TestDeadLetterReasonVisible(t *testing.T) {
	e := newEnv(t, nil)
	s := e.open(t, []string{"acme"}, 0)
	defer s.Close()
	e.publish(t, "acme.noop", amqp.Publishing{MessageId: "m1", Body: []byte(`{"kind":`), Headers: amqp.Table{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}})
	m := fetch(t, s, 1)[0]
	if err := s.DeadLetter(ctxT(t, 5*time.Second), m, "malformed: unexpected end of JSON input"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeadLetter(ctxT(t, 5*time.Second), m, "again"); err != nil {
		t.Fatalf("a second DeadLetter of a settled message: %v", err)
	}
	dl := e.deadLetters(t, "acme", 1, 5*time.Second)
	if len(dl) != 1 {
		t.Fatalf("DLQ holds %d messages of acme, want 1", len(dl))
	}
	h := stringTable(dl[0].Headers)
	for k, v := range map[string]string{
		"grey-dlq-reason":   "malformed: unexpected end of JSON input",
		"grey-tenant-id":    "acme",
		"grey-routing-key":  "acme.noop",
		"grey-source-queue": e.group + ".acme",
		"grey-position":     "amqp:" + e.group + ".acme/m1",
		"traceparent":       "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	} {
		if h[k] != v {
			t.Errorf("DLQ header %s = %q, want %q", k, h[k], v)
		}
	}
	if dl[0].RoutingKey != "acme.noop" || string(dl[0].Body) != `{"kind":` {
		t.Errorf("DLQ message: key %q body %q", dl[0].RoutingKey, dl[0].Body)
	}
	_ = s.Close()
	s2 := e.open(t, []string{"acme"}, 0)
	defer s2.Close()
	fetchNothing(t, s2, 500*time.Millisecond, "a dead-lettered message is acknowledged")
}

func TestDeliveryLimitDeadLetters(t *testing.T) {
	e := newEnv(t, map[string]string{"delivery_limit": "2"})
	e.open(t, []string{"acme"}, 0).Close()
	e.publish(t, "acme.noop", amqp.Publishing{MessageId: "poison", Body: []byte(`{"kind":"noop"}`)})
	// A message that kills its consumer: delivered, never acknowledged,
	// the consumer's connection closes. After the limit, the broker
	// dead-letters it.
	deliveries := 0
	for i := 0; i < 6; i++ {
		s := e.open(t, []string{"acme"}, 0)
		c, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		msgs, _ := s.Fetch(c, 1)
		cancel()
		_ = s.Close()
		if len(msgs) == 0 {
			break
		}
		deliveries++
		if msgs[0].Attempt != deliveries {
			t.Errorf("delivery %d: Attempt %d", deliveries, msgs[0].Attempt)
		}
	}
	if deliveries != 3 {
		t.Errorf("the poison message was delivered %d times with delivery_limit 2, want 3 (the first delivery and 2 redeliveries)", deliveries)
	}
	dl := e.deadLetters(t, "acme", 1, 5*time.Second)
	if len(dl) != 1 {
		t.Fatalf("DLQ holds %d messages, want the poison message", len(dl))
	}
	if r := fmt.Sprint(dl[0].Headers["x-first-death-reason"]); r != "delivery_limit" {
		t.Errorf("x-first-death-reason = %q, want delivery_limit (headers %v)", r, dl[0].Headers)
	}
	if dl[0].MessageId != "poison" {
		t.Errorf("DLQ message id %q", dl[0].MessageId)
	}
}

func TestRetryDoesNotCountAsDelivery(t *testing.T) {
	e := newEnv(t, map[string]string{"delivery_limit": "1"})
	s := e.open(t, []string{"acme"}, 0)
	defer s.Close()
	e.publish(t, "acme.noop", amqp.Publishing{MessageId: "q1", Body: []byte(`{"kind":"noop"}`)})
	for i := 0; i < 5; i++ {
		m := fetch(t, s, 1)[0]
		if m.Position != "amqp:"+e.group+".acme/q1" || m.Attempt != 1 {
			t.Fatalf("round %d: %s attempt %d", i, m.Position, m.Attempt)
		}
		if i == 4 {
			if err := s.Ack(ctxT(t, 5*time.Second), []*events.Message{m}); err != nil {
				t.Fatal(err)
			}
			break
		}
		s.Pause("acme")
		if err := s.Retry(ctxT(t, 5*time.Second), []*events.Message{m}); err != nil {
			t.Fatal(err)
		}
		s.Resume("acme")
	}
	if dl := e.deadLetters(t, "acme", 0, 0); len(dl) != 0 {
		t.Fatalf("quota retries dead-lettered the message: %v", dl[0].Headers)
	}
}

func TestPriorityOnClassicQueues(t *testing.T) {
	e := newEnv(t, map[string]string{"queue_type": "classic"})
	e.open(t, []string{"acme"}, 0).Close()
	for i := 0; i < 5; i++ {
		e.publish(t, "acme.noop", amqp.Publishing{Priority: 1, Body: []byte(fmt.Sprintf(`{"kind":"noop","n":"low%d"}`, i))})
	}
	for i := 0; i < 5; i++ {
		e.publish(t, "acme.noop", amqp.Publishing{Priority: 9, Body: []byte(fmt.Sprintf(`{"kind":"noop","n":"high%d"}`, i))})
	}
	s := e.open(t, []string{"acme"}, 0)
	defer s.Close()
	got := fetch(t, s, 10)
	for i, m := range got {
		high := strings.Contains(string(m.Value), "high")
		if (i < 5) != high {
			t.Fatalf("message %d is %s: want the 5 priority-9 messages before the 5 priority-1 ones", i, m.Value)
		}
	}
	if err := s.Ack(ctxT(t, 5*time.Second), got); err != nil {
		t.Fatal(err)
	}
}

func TestUnroutedTenant(t *testing.T) {
	e := newEnv(t, nil)
	s := e.open(t, []string{"acme"}, 0)
	defer s.Close()
	e.publish(t, "ghost.noop", amqp.Publishing{Body: []byte(`{"kind":"noop"}`)})
	m := fetch(t, s, 1)[0]
	if m.Tenant != "ghost" || m.Source != e.group+"._unrouted" {
		t.Fatalf("a message for a tenant without queue: tenant %q source %q; want ghost from %s._unrouted", m.Tenant, m.Source, e.group)
	}
	// The consumer dead-letters an unknown tenant.
	if err := s.DeadLetter(ctxT(t, 5*time.Second), m, "unknown_tenant: ghost"); err != nil {
		t.Fatal(err)
	}
	if dl := e.deadLetters(t, "ghost", 1, 5*time.Second); len(dl) != 1 || fmt.Sprint(dl[0].Headers["grey-dlq-reason"]) != "unknown_tenant: ghost" {
		t.Fatalf("DLQ: %d messages of ghost", len(dl))
	}
}

func TestPrefetchBoundsInFlight(t *testing.T) {
	e := newEnv(t, nil)
	s := e.open(t, []string{"acme"}, 3)
	defer s.Close()
	for i := 0; i < 10; i++ {
		e.publish(t, "acme.noop", amqp.Publishing{Body: []byte(fmt.Sprintf(`{"kind":"noop","n":%d}`, i))})
	}
	got := fetch(t, s, 3)
	fetchNothing(t, s, 500*time.Millisecond, "prefetch 3 with 3 unacknowledged")
	lag, err := s.Lag(ctxT(t, 5*time.Second))
	if err != nil || lag["acme"] != 10 {
		t.Fatalf("Lag = %v, %v; want acme: 10 (7 ready + 3 in flight)", lag, err)
	}
	if err := s.Ack(ctxT(t, 5*time.Second), got); err != nil {
		t.Fatal(err)
	}
	more := fetch(t, s, 3)
	if err := s.Ack(ctxT(t, 5*time.Second), more); err != nil {
		t.Fatal(err)
	}
}

func TestBadCredentials(t *testing.T) {
	e := newEnv(t, nil)
	u := strings.Replace(e.url, "guest:guest@", "guest:wrong-password@", 1)
	if u == e.url {
		t.Skip("the test broker URL has no guest:guest credentials to spoil")
	}
	s, err := rabbitevents.OpenSource(u, events.SourceOptions{Settings: map[string]string{"tenants": "acme"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Fetch(ctxT(t, 10*time.Second), 1)
	if !greyerr.Is(err, greyerr.PermissionDenied) {
		t.Fatalf("Fetch with a wrong password: %v (code %s), want PermissionDenied", err, greyerr.CodeOf(err))
	}
	if strings.Contains(err.Error(), "wrong-password") {
		t.Fatalf("the error shows the password: %v", err)
	}
}

func TestQueueTypeMismatchIsFailedPrecondition(t *testing.T) {
	e := newEnv(t, nil)
	e.open(t, []string{"acme"}, 0).Close()
	e.extra = map[string]string{"queue_type": "classic"}
	s, err := rabbitevents.OpenSource(e.url, events.SourceOptions{Group: e.group, Settings: e.settings([]string{"acme"})})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Fetch(ctxT(t, 10*time.Second), 1)
	if !greyerr.Is(err, greyerr.FailedPrecondition) {
		t.Fatalf("a classic source over existing quorum queues: %v (code %s), want FailedPrecondition", err, greyerr.CodeOf(err))
	}
}

func TestSinkRoutesAndConfirms(t *testing.T) {
	e := newEnv(t, nil)
	h := e.sinkHarness(t)
	k := h.Open(t)
	defer k.Close()
	evs := []events.Event{
		{Kind: events.Result, Tenant: "acme", Key: "t1", Value: []byte(`{"status":"completed"}`), Headers: map[string]string{"grey-task-id": "t1", "grey-attempt": "2"}},
		{Kind: events.Lifecycle, Tenant: "acme", Key: "t1", Value: []byte(`{"status":"completed"}`), Headers: map[string]string{"grey-task-id": "t1", "grey-attempt": "2", "grey-event": "completed"}},
	}
	if err := k.Publish(ctxT(t, 10*time.Second), evs); err != nil {
		t.Fatal(err)
	}
	res := e.waitFor(t, "greytest.q.results."+e.sfx, 1, 5*time.Second, func(amqp.Delivery) bool { return true })
	life := e.waitFor(t, "greytest.q.events."+e.sfx, 1, 5*time.Second, func(amqp.Delivery) bool { return true })
	if len(res) != 1 || res[0].RoutingKey != "acme" || res[0].MessageId != "t1/2" || res[0].DeliveryMode != amqp.Persistent || res[0].Type != "result" {
		t.Fatalf("result: %+v", res)
	}
	if len(life) != 1 || life[0].RoutingKey != "acme.completed" || fmt.Sprint(life[0].Headers["grey-tenant-id"]) != "acme" {
		t.Fatalf("lifecycle: %+v", life)
	}
	bad := []events.Event{{Kind: events.Result, Tenant: "Not A Tenant", Key: "t2"}}
	if err := k.Publish(ctxT(t, 5*time.Second), bad); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Fatalf("Publish for an invalid tenant: %v, want InvalidArgument", err)
	}
	if _, err := rabbitevents.OpenSink(e.url, events.SinkOptions{Transactional: true}); !greyerr.Is(err, greyerr.Unimplemented) {
		t.Fatalf("transactional sink: %v, want Unimplemented", err)
	}
}

func TestSettingsRefused(t *testing.T) {
	for name, set := range map[string]map[string]string{
		"unknown key":             {"queue_typ": "classic"},
		"bad queue type":          {"queue_type": "stream"},
		"priority on quorum":      {"max_priority": "5"},
		"priority out of range":   {"queue_type": "classic", "max_priority": "300"},
		"limit not a number":      {"delivery_limit": "many"},
		"bad tenant":              {"tenants": "acme,Bad.Tenant"},
		"reserved exchange name":  {"tasks_exchange": "amq.topic"},
		"empty dead-letter queue": {"dead_letter_queue": ""},
		"confirm timeout no unit": {"confirm_timeout": "30"},
		"confirm timeout zero":    {"confirm_timeout": "0s"},
		"confirm timeout over 1h": {"confirm_timeout": "2h"},
	} {
		if _, err := rabbitevents.OpenSource("amqp://guest:guest@127.0.0.1:1/", events.SourceOptions{Settings: set}); !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
	if _, err := rabbitevents.OpenSource("amqp://guest:guest@127.0.0.1:1/", events.SourceOptions{Prefetch: 70000}); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Errorf("prefetch 70000: %v, want InvalidArgument", err)
	}
	reg := events.NewRegistry()
	if err := rabbitevents.Register(reg); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(reg.Schemes(), ","); got != "amqp,amqps" {
		t.Fatalf("schemes %s", got)
	}
	_, err := reg.OpenSource(context.Background(), "amqp://guest:secret@127.0.0.1:1/?heartbeat=x", events.SourceOptions{})
	if !greyerr.Is(err, greyerr.InvalidArgument) || strings.Contains(err.Error(), "secret") {
		t.Errorf("bad URL: %v, want InvalidArgument without the password", err)
	}
}

func TestServerSettingsAccepted(t *testing.T) {
	// what the server passes from the events block, for both queue types
	for _, set := range []map[string]string{
		{events.SettingQueueType: "quorum", events.SettingDeliveryLimit: "5", events.SettingMaxPriority: "0", events.SettingTenants: "acme,beta"},
		{events.SettingQueueType: "classic", events.SettingDeliveryLimit: "5", events.SettingMaxPriority: "10", events.SettingTenants: ""},
		{events.SettingQueueType: "classic", events.SettingDeliveryLimit: "5", events.SettingMaxPriority: "0", events.SettingBrokers: "k:9092"},
	} {
		s, err := rabbitevents.OpenSource("amqp://guest:guest@127.0.0.1:1/", events.SourceOptions{Settings: set})
		if err != nil {
			t.Errorf("settings %v: %v", set, err)
			continue
		}
		_ = s.Close()
		k, err := rabbitevents.OpenSink("amqp://guest:guest@127.0.0.1:1/", events.SinkOptions{Settings: set})
		if err != nil {
			t.Errorf("sink settings %v: %v", set, err)
			continue
		}
		_ = k.Close()
	}
}

func TestOpenDoesNotWaitForTheBroker(t *testing.T) {
	start := time.Now()
	reg := events.NewRegistry()
	_ = rabbitevents.Register(reg)
	s, err := reg.OpenSource(context.Background(), closedURL(t), events.SourceOptions{Settings: map[string]string{"tenants": "acme"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("OpenSource took %v with no broker", d)
	}
	if _, err := s.Fetch(ctxT(t, 10*time.Second), 1); !greyerr.Is(err, greyerr.Unavailable) {
		t.Fatalf("Fetch: %v, want Unavailable", err)
	}
	if _, err := s.Lag(ctxT(t, 10*time.Second)); !greyerr.Is(err, greyerr.Unavailable) {
		t.Fatalf("Lag: %v, want Unavailable", err)
	}
}

func TestTenantLearntFromAcceptedUnroutedMessage(t *testing.T) {
	e := newEnv(t, nil)
	e.settings([]string{"newco"}) // for cleanup: the queue the driver will declare
	s := e.open(t, []string{"acme"}, 0)
	defer s.Close()
	e.publish(t, "newco.noop", amqp.Publishing{MessageId: "n1", Body: []byte(`{"kind":"noop"}`)})
	m := fetch(t, s, 1)[0]
	if m.Tenant != "newco" || m.Source != e.group+"._unrouted" {
		t.Fatalf("first message: tenant %q from %s", m.Tenant, m.Source)
	}
	// The Consumer accepted it (the tenant exists): the driver gives the
	// tenant its own queue.
	if err := s.Ack(ctxT(t, 5*time.Second), []*events.Message{m}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		lag, err := s.Lag(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := lag["newco"]; ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("newco has no queue after its message was accepted: lag %v", lag)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.publish(t, "newco.noop", amqp.Publishing{MessageId: "n2", Body: []byte(`{"kind":"noop"}`)})
	m2 := fetch(t, s, 1)[0]
	if m2.Tenant != "newco" || m2.Source != e.group+".newco" || m2.Position != "amqp:"+e.group+".newco/n2" {
		t.Fatalf("second message: tenant %q from %s at %s, want newco's own queue", m2.Tenant, m2.Source, m2.Position)
	}
	// Pausing it now cancels its consumer like any tenant's.
	s.Pause("newco")
	e.publish(t, "newco.noop", amqp.Publishing{MessageId: "n3", Body: []byte(`{"kind":"noop"}`)})
	fetchNothing(t, s, 500*time.Millisecond, "newco paused")
	s.Resume("newco")
	m3 := fetch(t, s, 1)[0]
	if m3.Position != "amqp:"+e.group+".newco/n3" {
		t.Fatalf("after Resume: %s", m3.Position)
	}
	if err := s.Ack(ctxT(t, 5*time.Second), []*events.Message{m2, m3}); err != nil {
		t.Fatal(err)
	}
	// A dead-lettered unknown tenant gets no queue.
	e.publish(t, "ghost.noop", amqp.Publishing{Body: []byte(`{"kind":"noop"}`)})
	g := fetch(t, s, 1)[0]
	if err := s.DeadLetter(ctxT(t, 5*time.Second), g, "unknown_tenant: ghost"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if lag, _ := s.Lag(ctxT(t, 5*time.Second)); lag != nil {
		if _, ok := lag["ghost"]; ok {
			t.Fatal("a dead-lettered tenant got a queue")
		}
	}
}

func TestAckLeavesOthersUnacknowledged(t *testing.T) {
	// Acks may be sent as one basic.ack with multiple set: it must never
	// cover a delivery not acknowledged yet.
	e := newEnv(t, nil)
	s := e.open(t, []string{"acme", "beta"}, 0)
	for i := 0; i < 20; i++ {
		tn := []string{"acme", "beta"}[i%2]
		e.publish(t, tn+".noop", amqp.Publishing{MessageId: fmt.Sprintf("%s-%d", tn, i), Body: []byte(`{"kind":"noop"}`)})
	}
	got := fetch(t, s, 20)
	var acme, beta []*events.Message
	for _, m := range got {
		if m.Tenant == "acme" {
			acme = append(acme, m)
		} else {
			beta = append(beta, m)
		}
	}
	// beta's in two batches, and half of acme's
	if err := s.Ack(ctxT(t, 5*time.Second), beta[:5]); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(ctxT(t, 5*time.Second), append(beta[5:], acme[:5]...)); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	s2 := e.open(t, []string{"acme", "beta"}, 0)
	defer s2.Close()
	again := fetch(t, s2, 5)
	fetchNothing(t, s2, 500*time.Millisecond, "only acme's 5 unacknowledged messages come again")
	want := map[string]bool{}
	for _, m := range acme[5:] {
		want[m.Position] = true
	}
	for _, m := range again {
		if !want[m.Position] {
			t.Fatalf("redelivered %s, which was acknowledged", m.Position)
		}
	}
}

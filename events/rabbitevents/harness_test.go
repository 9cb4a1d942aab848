package rabbitevents_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/events/eventstest"
	"github.com/grey-distributed/grey/events/rabbitevents"
	"github.com/grey-distributed/grey/internal/testenv"
)

// env is one test's private set of RabbitMQ names (every exchange and
// queue has a random suffix) and an admin connection that publishes,
// reads the dead-letter queue and deletes everything at the end.
type env struct {
	t      testing.TB
	url    string
	driver string // the drivers' URL (default url, the harness's own)
	sfx    string
	group  string
	names  map[string]string // the driver's name settings
	extra  map[string]string // more settings (queue_type, ...)
	conn   *amqp.Connection
	pub    *amqp.Channel
	mu     sync.Mutex
	queues map[string]bool // queues to delete
	dead   []amqp.Delivery // read from the DLQ so far
	read   map[string][]amqp.Delivery
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newEnv(t testing.TB, extra map[string]string) *env {
	t.Helper()
	u := testenv.ServiceURL(t, "rabbitmq")
	return newEnvURL(t, u, extra)
}

func newEnvURL(t testing.TB, u string, extra map[string]string) *env {
	t.Helper()
	sfx := randHex(4)
	e := &env{
		t: t, url: u, sfx: sfx, group: "greytest." + sfx,
		names: map[string]string{
			"tasks_exchange":       "greytest.tasks." + sfx,
			"dead_letter_exchange": "greytest.dlx." + sfx,
			"dead_letter_queue":    "greytest.dlq." + sfx,
			"results_exchange":     "greytest.results." + sfx,
			"events_exchange":      "greytest.events." + sfx,
		},
		extra:  extra,
		queues: map[string]bool{},
		read:   map[string][]amqp.Delivery{},
	}
	conn, err := amqp.Dial(u)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	e.conn = conn
	pub, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Confirm(false); err != nil {
		t.Fatal(err)
	}
	e.pub = pub
	e.queues[e.names["dead_letter_queue"]] = true
	e.queues[e.group+"._unrouted"] = true
	t.Cleanup(e.cleanup)
	return e
}

func (e *env) cleanup() {
	if e.conn.IsClosed() {
		c, err := amqp.Dial(e.url)
		if err != nil {
			e.t.Logf("cleanup: dial: %v", err)
			return
		}
		e.conn = c
	}
	defer e.conn.Close()
	e.mu.Lock()
	qs := make([]string, 0, len(e.queues))
	for q := range e.queues {
		qs = append(qs, q)
	}
	e.mu.Unlock()
	ch, err := e.conn.Channel()
	if err != nil {
		return
	}
	for _, q := range qs {
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			ch, _ = e.conn.Channel()
			if ch == nil {
				return
			}
		}
	}
	for _, x := range []string{"tasks_exchange", "dead_letter_exchange", "results_exchange", "events_exchange"} {
		_ = ch.ExchangeDelete(e.names[x], false, false)
	}
	_ = ch.ExchangeDelete(e.names["tasks_exchange"]+".unrouted", false, false)
}

// settings returns the driver's settings for tenants.
// driverURL is the URL the drivers open.
func (e *env) driverURL() string {
	if e.driver != "" {
		return e.driver
	}
	return e.url
}

func (e *env) settings(tenants []string) map[string]string {
	m := map[string]string{}
	for k, v := range e.names {
		m[k] = v
	}
	for k, v := range e.extra {
		m[k] = v
	}
	m["tenants"] = strings.Join(tenants, ",")
	e.mu.Lock()
	for _, t := range tenants {
		e.queues[e.group+"."+t] = true
	}
	e.mu.Unlock()
	return m
}

// open opens a source for tenants and waits until it declared its
// topology (Lag waits for the first connection).
func (e *env) open(t testing.TB, tenants []string, prefetch int) *rabbitevents.Source {
	t.Helper()
	s, err := rabbitevents.OpenSource(e.driverURL(), events.SourceOptions{Group: e.group, Prefetch: prefetch, Settings: e.settings(tenants)})
	if err != nil {
		t.Fatalf("OpenSource: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := s.Lag(ctx); err != nil {
		_ = s.Close()
		t.Fatalf("source did not connect: %v", err)
	}
	return s
}

// publish sends one message to the tasks exchange and waits for the
// broker's confirm.
func (e *env) publish(t testing.TB, key string, p amqp.Publishing) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if p.DeliveryMode == 0 {
		p.DeliveryMode = amqp.Persistent
	}
	dc, err := e.pub.PublishWithDeferredConfirmWithContext(ctx, e.names["tasks_exchange"], key, false, false, p)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if ok, err := dc.WaitContext(ctx); err != nil || !ok {
		t.Fatalf("publish confirm: ok=%v err=%v", ok, err)
	}
}

func headerTable(h map[string]string) amqp.Table {
	if h == nil {
		return nil
	}
	t := amqp.Table{}
	for k, v := range h {
		t[k] = v
	}
	return t
}

func stringTable(h amqp.Table) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		switch x := v.(type) {
		case string:
			out[k] = x
		case []byte:
			out[k] = string(x)
		default:
			out[k] = fmt.Sprint(x)
		}
	}
	return out
}

// drain moves whatever queue q holds into e.read[q] (basic.get, acked).
func (e *env) drain(t testing.TB, q string) []amqp.Delivery {
	t.Helper()
	ch, err := e.conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	defer ch.Close()
	for {
		d, ok, err := ch.Get(q, true)
		if err != nil {
			t.Fatalf("basic.get %s: %v", q, err)
		}
		if !ok {
			break
		}
		e.mu.Lock()
		e.read[q] = append(e.read[q], d)
		e.mu.Unlock()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]amqp.Delivery(nil), e.read[q]...)
}

// waitFor drains q until match selects at least want messages or the
// timeout passes.
func (e *env) waitFor(t testing.TB, q string, want int, timeout time.Duration, match func(amqp.Delivery) bool) []amqp.Delivery {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var got []amqp.Delivery
		for _, d := range e.drain(t, q) {
			if match(d) {
				got = append(got, d)
			}
		}
		if len(got) >= want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// deadLetters reads the DLQ's messages of tenant (Grey's header, or the
// routing key's first word for what the broker dead-lettered).
func (e *env) deadLetters(t testing.TB, tenant string, want int, timeout time.Duration) []amqp.Delivery {
	return e.waitFor(t, e.names["dead_letter_queue"], want, timeout, func(d amqp.Delivery) bool {
		if v, ok := d.Headers["grey-tenant-id"]; ok {
			return fmt.Sprint(v) == tenant
		}
		first, _, _ := strings.Cut(d.RoutingKey, ".")
		return first == tenant
	})
}

// closedURL is a broker URL on a port nothing listens on.
func closedURL(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	return "amqp://guest:guest@127.0.0.1:" + strconv.Itoa(port) + "/"
}

// sourceHarness is the conformance suite's view of the driver.
func (e *env) sourceHarness() eventstest.SourceHarness {
	return eventstest.SourceHarness{
		Open: func(t testing.TB, tenants []string) events.SourceDriver {
			return e.open(t, tenants, 0)
		},
		Produce: func(t testing.TB, tenant string, p eventstest.Produced) {
			e.publish(t, tenant+".noop", amqp.Publishing{
				Body: p.Value, Headers: headerTable(p.Headers), ContentType: p.ContentType,
			})
		},
		DeadLetters: func(t testing.TB, tenant string, want int) []eventstest.DeadLetter {
			var out []eventstest.DeadLetter
			for _, d := range e.deadLetters(t, tenant, want, 10*time.Second) {
				out = append(out, eventstest.DeadLetter{Value: d.Body, Headers: stringTable(d.Headers)})
			}
			return out
		},
		Unreachable: func(t testing.TB) (events.SourceDriver, error) {
			return rabbitevents.OpenSource(closedURL(t), events.SourceOptions{Settings: map[string]string{"tenants": "acme"}})
		},
	}
}

// sinkHarness binds a queue to each of the sink's exchanges (declared
// here first, as the driver declares them) and reads them back.
func (e *env) sinkHarness(t testing.TB) eventstest.SinkHarness {
	ch, err := e.conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	rq, lq := "greytest.q.results."+e.sfx, "greytest.q.events."+e.sfx
	for _, b := range []struct{ ex, q string }{{e.names["results_exchange"], rq}, {e.names["events_exchange"], lq}} {
		if err := ch.ExchangeDeclare(b.ex, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := ch.QueueDeclare(b.q, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		if err := ch.QueueBind(b.q, "#", b.ex, false, nil); err != nil {
			t.Fatal(err)
		}
		e.queues[b.q] = true
	}
	return eventstest.SinkHarness{
		Open: func(t testing.TB) events.SinkDriver {
			k, err := rabbitevents.OpenSink(e.driverURL(), events.SinkOptions{Settings: e.settings(nil)})
			if err != nil {
				t.Fatalf("OpenSink: %v", err)
			}
			return k
		},
		Read: func(t testing.TB, kind events.EventKind, tenant string, want int) []events.Event {
			q, match := rq, func(d amqp.Delivery) bool { return d.RoutingKey == tenant }
			if kind == events.Lifecycle {
				q = lq
				match = func(d amqp.Delivery) bool { return fmt.Sprint(d.Headers["grey-tenant-id"]) == tenant }
			}
			var out []events.Event
			for _, d := range e.waitFor(t, q, want, 10*time.Second, match) {
				first, _, _ := strings.Cut(d.RoutingKey, ".")
				h := stringTable(d.Headers)
				out = append(out, events.Event{Kind: events.EventKind(d.Type), Tenant: first, Key: h["grey-task-id"], Value: d.Body, Headers: h})
			}
			return out
		},
		Unreachable: func(t testing.TB) (events.SinkDriver, error) {
			return rabbitevents.OpenSink(closedURL(t), events.SinkOptions{})
		},
	}
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

package rabbitevents_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/events/rabbitevents"
	"github.com/grey-distributed/grey/task"
)

// collect consumes queue q (auto-ack) until it stays quiet for quiet.
func collect(t testing.TB, conn *amqp.Connection, q string, quiet time.Duration) []amqp.Delivery {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.Qos(1000, 0, false); err != nil {
		t.Fatal(err)
	}
	dels, err := ch.Consume(q, "", false, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume %s: %v", q, err)
	}
	var out []amqp.Delivery
	for {
		select {
		case d := <-dels:
			out = append(out, d)
			_ = d.Ack(false)
		case <-time.After(quiet):
			return out
		}
	}
}

// fakeCluster stands in for the Raft submit path and the relay: Submit
// creates a task per idempotency key (a second submit of the key returns
// the first task, as engine.Submit does), and the relay publishes each
// created task's result through the sink from a cursor that only moves
// when Publish returned nil.
type fakeCluster struct {
	mu      sync.Mutex
	byKey   map[string]*task.Task
	byN     map[int]string // payload n -> idempotency key
	dupN    []int          // payload n submitted under a second key
	feed    []*task.Task   // created tasks, in order
	cursor  int
	submits int
	pubErrs int
	lastErr error
	wedged  int // publishes that ran out of confirm_timeout (connection replaced)
}

func (c *fakeCluster) submit(_ context.Context, tenant string, spec task.Spec) (*task.Task, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.submits++
	if t, ok := c.byKey[spec.IdempotencyKey]; ok {
		return t, nil
	}
	var p struct {
		N int `json:"n"`
	}
	_ = json.Unmarshal(spec.Payload, &p)
	if k, ok := c.byN[p.N]; ok && k != spec.IdempotencyKey {
		c.dupN = append(c.dupN, p.N)
	}
	c.byN[p.N] = spec.IdempotencyKey
	id, err := task.NewID()
	if err != nil {
		return nil, err
	}
	t := &task.Task{ID: id, TenantID: tenant, Spec: spec, Status: task.Completed, Attempt: 1}
	c.byKey[spec.IdempotencyKey] = t
	c.feed = append(c.feed, t)
	return t, nil
}

func (c *fakeCluster) relay(ctx context.Context, k events.SinkDriver) {
	for ctx.Err() == nil {
		c.mu.Lock()
		batch := c.feed[c.cursor:min(c.cursor+500, len(c.feed))]
		c.mu.Unlock()
		if len(batch) == 0 {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		evs := make([]events.Event, len(batch))
		for i, t := range batch {
			evs[i] = events.Event{Kind: events.Result, Tenant: t.TenantID, Key: t.ID, Value: []byte(`{"status":"completed"}`),
				Headers: map[string]string{events.HeaderTaskID: t.ID, events.HeaderAttempt: "1"}}
		}
		// no deadline of its own, as relay.Relay: the driver must bound
		// the wait for confirms itself
		err := k.Publish(ctx, evs)
		if err != nil {
			c.mu.Lock()
			c.pubErrs++
			c.lastErr = err
			if strings.Contains(err.Error(), "confirmed nothing") {
				c.wedged++
			}
			c.mu.Unlock()
			time.Sleep(200 * time.Millisecond)
			continue
		}
		c.mu.Lock()
		c.cursor += len(batch)
		c.mu.Unlock()
	}
}

func (c *fakeCluster) publishErrors() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pubErrs, c.lastErr
}

func (c *fakeCluster) progress() (tasks, published, submits int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.feed), c.cursor, c.submits
}

// TestFaultBrokerKilled kills -9 a private RabbitMQ in the middle of
// 10,000 task messages (and 100 malformed ones) and restarts it. It runs
// at the Consumer level: the real events.Consumer over this driver, with
// an in-process submit that keeps one task per idempotency key and a
// relay-like loop publishing results through this driver's sink.
// brokerSettle is how long TestFaultBrokerKilled lets a fresh broker
// settle its new quorum queues before the load.
const brokerSettle = 10 * time.Second

func TestFaultBrokerKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills a private RabbitMQ")
	}
	// This test once failed two runs in three under load (full make test,
	// load 8-26): the goroutine dump of the hung run showed the sink's
	// connection to the restarted broker alive (reader waiting, broker
	// heartbeats coming) while its Close waited 18 minutes for a
	// close-ok: the broker no longer read that connection, so no confirm
	// came, and every Publish waited on it. The sink now closes a
	// connection that confirms nothing within confirm_timeout and
	// publishes on a new one; TestSinkWedgedConnection reproduces that
	// broker behaviour on purpose (the real one was not reproduced since,
	// with or without a starved broker).
	//
	// A second failure, in 2 of 14 runs: RabbitMQ 3.10.8 itself came back
	// from the kill without the results quorum queue's contents (listed
	// running with 0 messages after thousands were confirmed into it) and
	// never confirmed a publish to it again, on any connection. No client
	// can publish through that, so the scenario checks the broker kept
	// what it confirmed; when it did not, it says so and runs once more
	// on a fresh broker. Any other failure fails the test at once.
	for attempt := 1; ; attempt++ {
		var brokerLost string
		t.Run(fmt.Sprintf("attempt%d", attempt), func(t *testing.T) { brokerLost = faultBrokerKilled(t) })
		if brokerLost == "" || t.Failed() {
			return
		}
		if attempt == 2 {
			t.Fatalf("the broker lost confirmed messages at kill -9 twice in a row: %s", brokerLost)
		}
		t.Logf("RabbitMQ lost confirmed messages at kill -9 (not the driver's doing): %s; running the scenario again on a fresh broker", brokerLost)
	}
}

// faultBrokerKilled runs TestFaultBrokerKilled's scenario once. It
// returns why, when the restarted broker lost results it had confirmed
// before the kill; it fails t for anything else.
func faultBrokerKilled(t *testing.T) string {
	b := startPrivateBroker(t, false)
	e := newEnvURL(t, b.URL(), nil)
	const good, every = 10000, 100 // a malformed message after every 100 good ones
	tenants := []string{"acme", "beta"}

	src, err := rabbitevents.OpenSource(b.URL(), events.SourceOptions{Group: e.group, Prefetch: 512, Settings: e.settings(tenants)})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Lag(ctxT(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	sinkSet := e.settings(nil)
	sinkSet[rabbitevents.SettingConfirmTimeout] = "5s"
	sink, err := rabbitevents.OpenSink(b.URL(), events.SinkOptions{Settings: sinkSet})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	// the results queue a downstream consumer reads: durable quorum
	resultsQ := "greytest.q.results." + e.sfx
	{
		ch, err := e.conn.Channel()
		must(t, err)
		must(t, ch.ExchangeDeclare(e.names["results_exchange"], amqp.ExchangeTopic, true, false, false, false, nil))
		_, err = ch.QueueDeclare(resultsQ, true, false, false, false, amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum})
		must(t, err)
		must(t, ch.QueueBind(resultsQ, "#", e.names["results_exchange"], false, nil))
		ch.Close()
		e.queues[resultsQ] = true
	}

	// RabbitMQ 3.10.8 (Ra 2.2) killed within seconds of creating its
	// quorum queues came back with all of them empty (the Ra directory
	// listed fewer servers than queues), in most runs on this machine: the
	// broker settles its new queues before the load and the kill.
	time.Sleep(brokerSettle)

	// Produce everything with publisher confirms.
	malformed := map[string]bool{}
	var confs []*amqp.DeferredConfirmation
	ctx := ctxT(t, 5*time.Minute)
	n := 0
	for i := 0; i < good; i++ {
		tn := tenants[i%2]
		p := amqp.Publishing{DeliveryMode: amqp.Persistent, ContentType: "application/json",
			Body: []byte(fmt.Sprintf(`{"kind":"noop","payload":{"n":%d}}`, i))}
		if i%2 == 0 {
			p.MessageId = fmt.Sprintf("m-%d", i)
		}
		dc, err := e.pub.PublishWithDeferredConfirmWithContext(ctx, e.names["tasks_exchange"], tn+".noop", false, false, p)
		must(t, err)
		confs = append(confs, dc)
		if (i+1)%every == 0 {
			body := fmt.Sprintf(`{"kind":"noop","payload":{"n":%d}`, good+n)
			n++
			malformed[body] = true
			dc, err := e.pub.PublishWithDeferredConfirmWithContext(ctx, e.names["tasks_exchange"], tn+".noop", false, false,
				amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(body)})
			must(t, err)
			confs = append(confs, dc)
		}
	}
	for _, dc := range confs {
		if ok, err := dc.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("producer confirm: %v %v", ok, err)
		}
	}
	t.Logf("published %d good and %d malformed messages", good, len(malformed))

	fc := &fakeCluster{byKey: map[string]*task.Task{}, byN: map[int]string{}}
	cons, err := events.NewConsumer(src, events.ConsumerOptions{Name: "rabbitmq", Submit: fc.submit, MaxBackoff: time.Second})
	must(t, err)
	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = cons.Run(runCtx) }()
	go func() { defer wg.Done(); fc.relay(runCtx, sink) }()
	defer func() { stop(); wg.Wait() }()

	waitUntil := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !cond() {
			if time.Now().After(deadline) {
				tasks, pub, subs := fc.progress()
				n, err := fc.publishErrors()
				b.diagnose()
				t.Fatalf("%s: not after %v (tasks %d, published %d, submits %d; %d publish errors, the last: %v)", what, d, tasks, pub, subs, n, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitUntil("half the tasks", 2*time.Minute, func() bool { tasks, _, _ := fc.progress(); return tasks >= good/2 })
	tasks, pub, _ := fc.progress()
	t.Logf("kill -9 the broker at %d tasks, %d results published", tasks, pub)
	killedAt := time.Now()
	b.kill9()
	time.Sleep(time.Second)
	b.start()
	t.Logf("broker back after %v", time.Since(killedAt).Round(time.Millisecond))
	if lost := b.kept(resultsQ, pub, time.Minute); lost != "" {
		b.diagnose()
		return lost
	}
	waitUntil("every task and result", 3*time.Minute, func() bool {
		tasks, pub, _ := fc.progress()
		return tasks >= good && pub >= tasks
	})
	t.Logf("all %d tasks created and published %v after the kill", good, time.Since(killedAt).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // late redeliveries would show here
	stop()
	wg.Wait()

	tasks, pub, submits := fc.progress()
	if tasks != good || len(fc.dupN) > 0 {
		t.Fatalf("%d tasks for %d messages; messages that became a second task: %v", tasks, good, fc.dupN)
	}
	for i := 0; i < good; i++ {
		if _, ok := fc.byN[i]; !ok {
			t.Fatalf("message %d became no task", i)
		}
	}
	t.Logf("every message became exactly one task (%d submits: %d redeliveries deduplicated by position); sink publish errors retried: %d (%d ran out of confirm_timeout: connection replaced)", submits, submits-tasks, fc.pubErrs, fc.wedged)

	conn, err := amqp.Dial(b.URL())
	must(t, err)
	defer conn.Close()
	results := collect(t, conn, resultsQ, 2*time.Second)
	seen := map[string]int{}
	for _, d := range results {
		seen[fmt.Sprint(d.Headers[events.HeaderTaskID])]++
	}
	for _, tk := range fc.feed {
		if seen[tk.ID] == 0 {
			t.Fatalf("task %s: result never published", tk.ID)
		}
	}
	t.Logf("results: %d messages for %d tasks (every one at least once; %d duplicates, deduplicated by (task id, attempt))", len(results), pub, len(results)-len(seen))

	dlq := collect(t, conn, e.names["dead_letter_queue"], 2*time.Second)
	byPos := map[string]int{}
	for _, d := range dlq {
		if !malformed[string(d.Body)] {
			t.Errorf("DLQ holds a message that is not malformed: %q (reason %v)", d.Body, d.Headers["grey-dlq-reason"])
		}
		if d.Headers["grey-dlq-reason"] == nil {
			t.Errorf("DLQ message without grey-dlq-reason: %q", d.Body)
		}
		byPos[fmt.Sprint(d.Headers["grey-position"])]++
	}
	bodies := map[string]bool{}
	for _, d := range dlq {
		bodies[string(d.Body)] = true
	}
	if len(bodies) != len(malformed) {
		t.Fatalf("DLQ holds %d distinct malformed messages, want %d", len(bodies), len(malformed))
	}
	if len(byPos) != len(malformed) {
		t.Fatalf("DLQ holds %d distinct positions for %d malformed messages", len(byPos), len(malformed))
	}
	// Dead-lettering is publish-then-ack: a message whose ack the killed
	// broker lost comes again and is dead-lettered again, a copy with the
	// same grey-position (RabbitMQ has no atomic publish-and-ack).
	t.Logf("DLQ: %d messages, %d distinct positions = the %d malformed ones (%d copies dead-lettered again after the kill)", len(dlq), len(byPos), len(malformed), len(dlq)-len(byPos))
	return ""
}

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/internal/testenv"
)

// TestEventsRabbitMQLeaderKill: a 3-server cluster consumes 10,000
// messages (1% malformed) from the real RabbitMQ's grey.tasks exchange and
// publishes results to grey.results; the Raft leader, which runs the
// consumer and the relay, is SIGKILLed a third of the way through and
// restarted. Afterwards every good message is exactly one task (its
// position, from the message_id, is the idempotency key), every task's
// result was published at least once and exactly once after deduplication
// by (task id, attempt), and the dead letters of the tenant are exactly the
// malformed messages.
//
//	GREY_E2E=1 go test -count=1 -run TestEventsRabbitMQLeaderKill -v ./e2e/
func TestEventsRabbitMQLeaderKill(t *testing.T) {
	requireE2E(t)
	amqpURL := testenv.ServiceURL(t, "rabbitmq")
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	tenant := "rk" + hex.EncodeToString(rb[:])
	const total, badEvery = 10_000, 100
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	// Our own queues for the tenant's results and dead letters, bound
	// before anything is published (the exchanges are declared with
	// greyd's arguments, as docs/EVENTS.md says a consumer does).
	resultsQ, dlqQ := "e2e.results."+tenant, "e2e.dlq."+tenant
	for _, step := range []func() error{
		func() error {
			return ch.ExchangeDeclare("grey.results", amqp.ExchangeTopic, true, false, false, false, nil)
		},
		func() error {
			return ch.ExchangeDeclare("grey.dlx", amqp.ExchangeFanout, true, false, false, false, nil)
		},
		func() error { _, err := ch.QueueDeclare(resultsQ, false, false, false, false, nil); return err },
		func() error { return ch.QueueBind(resultsQ, tenant, "grey.results", false, nil) },
		func() error { _, err := ch.QueueDeclare(dlqQ, false, false, false, false, nil); return err },
		func() error { return ch.QueueBind(dlqQ, "#", "grey.dlx", false, nil) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if c, err := amqp.Dial(amqpURL); err == nil {
			if ch, err := c.Channel(); err == nil {
				for _, q := range []string{resultsQ, dlqQ, "grey.tasks." + tenant} {
					_, _ = ch.QueueDelete(q, false, false, false)
				}
			}
			_ = c.Close()
		}
	})

	cfg := clusterServerConfig + fmt.Sprintf("events:\n  rabbitmq:\n    url: %q\n    source: true\n    sink: true\n", amqpURL)
	c := startClusterWith(t, nil, 2, cfg)
	// greyd declares grey.tasks when its source connects; publishing to a
	// missing exchange would close our channel.
	for {
		if probe, err := conn.Channel(); err == nil {
			err = probe.ExchangeDeclarePassive("grey.tasks", amqp.ExchangeTopic, true, false, false, false, nil)
			if err == nil {
				_ = probe.Close()
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatal("greyd never declared grey.tasks")
		}
		time.Sleep(200 * time.Millisecond)
	}

	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	good, bad := map[string]bool{}, map[string]bool{}
	queue := "grey.tasks." + tenant
	for i := range total {
		body := fmt.Appendf(nil, `{"kind":"noop","payload":{"n":%d}}`, i)
		pos := fmt.Sprintf("m%d", i) // the message_id; see msgID
		if i%badEvery == badEvery-1 {
			body = fmt.Appendf(nil, `{"kind":"noop","payload":{"n":%d}`, i)
			bad[pos] = true
		} else {
			good[pos] = true
		}
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "grey.tasks", tenant+".noop", false, false, amqp.Publishing{
			ContentType: "application/json", DeliveryMode: amqp.Persistent, MessageId: fmt.Sprintf("m%d", i), Body: body})
		if err != nil {
			t.Fatal(err)
		}
		if i%500 == 499 || i == total-1 {
			if ok, err := dc.WaitContext(ctx); err != nil || !ok {
				t.Fatalf("publish %d not confirmed: %v", i, err)
			}
		}
	}
	// ready returns the messages waiting in the tenant's queue (0 until
	// greyd declared it: its first messages route through _unrouted).
	ready := func() int {
		probe, err := conn.Channel()
		if err != nil {
			return total
		}
		defer probe.Close()
		q, err := probe.QueueDeclarePassive(queue, true, false, false, false, nil)
		if err != nil {
			return total
		}
		return q.Messages
	}
	began := time.Now()
	cl := c.Client(tenant)
	count := func() int {
		n := 0
		for _, err := range cl.ListAll(ctx, client.ListOptions{Limit: 1000}) {
			if err != nil {
				return n
			}
			n++
		}
		return n
	}
	for count() < total/3 {
		if ctx.Err() != nil {
			t.Fatal("the cluster consumed nothing")
		}
		time.Sleep(200 * time.Millisecond)
	}
	leader := c.waitLeader(c.Servers, 10*time.Second)
	leader.Kill()
	t.Logf("SIGKILLed leader %s with %d messages still ready (%s after the start)", leader.ID, ready(), time.Since(began).Round(time.Millisecond))
	next := c.waitLeader(c.others(leader), 15*time.Second)
	t.Logf("new leader %s", next.ID)
	time.Sleep(3 * time.Second)
	leader.Start()
	c.waitReady(leader, 30*time.Second)

	// Drain our results and dead-letter queues until every good message
	// has a result and every malformed one a dead letter.
	results := map[string]map[string]int{}
	resultMsgs := 0
	dlq := map[string]int{}
	dlqMsgs := 0
	header := func(d amqp.Delivery, k string) string {
		if v, ok := d.Headers[k]; ok {
			return fmt.Sprint(v)
		}
		return ""
	}
	lastProgress, lastCount := time.Now(), 0
	for len(results) < len(good) || len(dlq) < len(bad) {
		if n := len(results) + len(dlq); n != lastCount {
			lastProgress, lastCount = time.Now(), n
		}
		if time.Since(lastProgress) > 90*time.Second {
			missing := 0
			for tk, err := range cl.ListAll(ctx, client.ListOptions{Limit: 1000}) {
				if err != nil {
					t.Fatal(err)
				}
				if len(results[string(tk.ID)]) == 0 && missing < 20 {
					missing++
					t.Logf("no result for task %s: status %s, attempt %d, index %d, finished %v, key %s", tk.ID, tk.Status, tk.Attempt, tk.Index, tk.FinishedAt, tk.IdempotencyKey)
				}
			}
			if r := greyctl(t, next.URL, 30*time.Second, "events", "status", "-o", "json"); true {
				t.Logf("greyctl events status: %s %s", r.Stdout, r.Stderr)
			}
			t.Fatalf("no progress for 90 s: results for %d of %d tasks, %d of %d dead letters, %d still ready", len(results), len(good), len(dlq), len(bad), ready())
		}
		if ctx.Err() != nil {
			t.Fatalf("timed out: results for %d of %d tasks, %d of %d dead letters, %d still ready", len(results), len(good), len(dlq), len(bad), ready())
		}
		got := false
		for _, q := range []string{resultsQ, dlqQ} {
			d, ok, err := ch.Get(q, true)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				continue
			}
			got = true
			if q == resultsQ {
				resultMsgs++
				id, att := header(d, "grey-task-id"), header(d, "grey-attempt")
				if results[id] == nil {
					results[id] = map[string]int{}
				}
				results[id][att]++
				continue
			}
			if header(d, "grey-tenant-id") != tenant {
				continue // another test's dead letter: the fanout copies all
			}
			dlqMsgs++
			dlq[msgID(header(d, "grey-position"), queue)]++
			if header(d, "grey-dlq-reason") == "" {
				t.Errorf("dead letter %s without a reason", header(d, "grey-position"))
			}
		}
		if !got {
			time.Sleep(500 * time.Millisecond)
		}
	}
	t.Logf("all consumed and published %s after the start", time.Since(began).Round(time.Millisecond))

	tasks, pairs := checkOneTaskPerMessage(ctx, t, cl, func(key string) string { return msgID(key, queue) }, good, bad, results, dlq)
	t.Logf("%d tasks; %d result messages (%d distinct task/attempt); %d dead letters for %d malformed messages",
		tasks, resultMsgs, pairs, dlqMsgs, len(bad))
}

// msgID returns the message_id of an AMQP position, amqp:<queue>/<id>,
// where the queue is the tenant's or, for a message published before greyd
// declared the tenant's queue, grey.tasks._unrouted (each message passes
// through one of them); "" for a position of another queue.
func msgID(pos, tenantQueue string) string {
	for _, q := range []string{tenantQueue, "grey.tasks._unrouted"} {
		if id, ok := strings.CutPrefix(pos, "amqp:"+q+"/"); ok {
			return id
		}
	}
	return ""
}

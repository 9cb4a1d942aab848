// Command eventsrabbit measures the RabbitMQ event path of Grey on a real
// broker: messages in a task queue → events.Consumer over the rabbitevents
// source (ack after the submit returned) → tasks → results published
// through the rabbitevents sink with publisher confirms from a
// relay-like cursor. The submit is in process (a map of idempotency keys
// standing in for the Raft commit), so the number is the event path's
// ceiling, not greyd's.
//
// It prints one JSON line per run:
//
//	{"run":"grey", "tasks":…, "seconds":…, "tasks_per_second":…, …}
//	{"run":"raw", …}
//
// "raw" (with -baseline) is the same broker work without Grey: a plain
// amqp091 consumer acking each message and publishing a result per
// message with confirms in batches, the broker's own ceiling in the same
// run. Every run uses fresh exchanges and queues (random suffix) and
// deletes them at the end.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/events/rabbitevents"
	"github.com/grey-distributed/grey/task"
)

type opts struct {
	url, queueType                  string
	tasks, tenants, prefetch, fetch int
	batch                           int
	baseline                        bool
	greyd                           bool
}

type result struct {
	Run            string  `json:"run"`
	QueueType      string  `json:"queue_type"`
	Tasks          int     `json:"tasks"`
	Tenants        int     `json:"tenants"`
	Seconds        float64 `json:"seconds"`
	TasksPerSecond float64 `json:"tasks_per_second"`
	ProducePerSec  float64 `json:"produce_per_second"`
	ConsumedSecs   float64 `json:"consumed_seconds,omitempty"`
	Redelivered    int     `json:"redelivered,omitempty"`
	Results        int     `json:"results"`
}

func main() {
	var o opts
	flag.StringVar(&o.url, "url", os.Getenv("GREY_TEST_RABBITMQ_URL"), "broker URL (default $GREY_TEST_RABBITMQ_URL)")
	flag.StringVar(&o.queueType, "queue-type", "quorum", "quorum or classic")
	flag.IntVar(&o.tasks, "tasks", 50000, "messages")
	flag.IntVar(&o.tenants, "tenants", 4, "tenants (one queue each)")
	flag.IntVar(&o.prefetch, "prefetch", 1024, "basic.qos per tenant consumer")
	flag.IntVar(&o.fetch, "fetch", 512, "Consumer FetchMax")
	flag.IntVar(&o.batch, "batch", 1000, "results per sink Publish (the relay's batch)")
	flag.BoolVar(&o.baseline, "baseline", false, "also run the raw amqp091 baseline")
	flag.BoolVar(&o.greyd, "greyd", false, "through a running greyd consuming from the broker (events.rabbitmq source and sink on, default names)")
	flag.Parse()
	if o.url == "" {
		log.Fatal("eventsrabbit: no -url and GREY_TEST_RABBITMQ_URL unset")
	}
	enc := json.NewEncoder(os.Stdout)
	if o.greyd {
		r, err := runGreyd(o)
		if err != nil {
			log.Fatal(err)
		}
		_ = enc.Encode(r)
		return
	}
	r, err := runGrey(o)
	if err != nil {
		log.Fatal(err)
	}
	_ = enc.Encode(r)
	if o.baseline {
		r, err := runRaw(o)
		if err != nil {
			log.Fatal(err)
		}
		_ = enc.Encode(r)
	}
}

func suffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type names struct {
	sfx, group, tasksEx, dlx, dlq, resultsEx, eventsEx, resultsQ string
	tenants                                                      []string
}

func newNames(n int) names {
	s := suffix()
	nm := names{sfx: s, group: "greybench." + s, tasksEx: "greybench.tasks." + s, dlx: "greybench.dlx." + s,
		dlq: "greybench.dlq." + s, resultsEx: "greybench.results." + s, eventsEx: "greybench.events." + s,
		resultsQ: "greybench.q.results." + s}
	for i := range n {
		nm.tenants = append(nm.tenants, fmt.Sprintf("bench-%d", i+1))
	}
	return nm
}

func (n names) settings(o opts) map[string]string {
	return map[string]string{
		"tenants": strings.Join(n.tenants, ","), "queue_type": o.queueType,
		"tasks_exchange": n.tasksEx, "dead_letter_exchange": n.dlx, "dead_letter_queue": n.dlq,
		"results_exchange": n.resultsEx, "events_exchange": n.eventsEx,
	}
}

// cleanup deletes what a run declared.
func (n names) cleanup(url string) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	qs := []string{n.dlq, n.group + "._unrouted", n.resultsQ}
	for _, t := range n.tenants {
		qs = append(qs, n.group+"."+t)
	}
	for _, q := range qs {
		_, _ = ch.QueueDelete(q, false, false, false)
	}
	for _, x := range []string{n.tasksEx, n.tasksEx + ".unrouted", n.dlx, n.resultsEx, n.eventsEx} {
		_ = ch.ExchangeDelete(x, false, false)
	}
}

// declareResults binds a queue to the results exchange, as a downstream
// consumer would.
func declareResults(conn *amqp.Connection, n names, queueType string) error {
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	if err := ch.ExchangeDeclare(n.resultsEx, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		return err
	}
	if _, err := ch.QueueDeclare(n.resultsQ, true, false, false, false, amqp.Table{amqp.QueueTypeArg: queueType}); err != nil {
		return err
	}
	return ch.QueueBind(n.resultsQ, "#", n.resultsEx, false, nil)
}

// produce publishes o.tasks noop submissions round-robin over the tenants
// with confirms (windows of 1000) and returns the rate.
func produce(conn *amqp.Connection, n names, o opts, exchange string, key func(i int) string) (float64, error) {
	ch, err := conn.Channel()
	if err != nil {
		return 0, err
	}
	defer ch.Close()
	if err := ch.Confirm(false); err != nil {
		return 0, err
	}
	ctx := context.Background()
	start := time.Now()
	var window []*amqp.DeferredConfirmation
	flush := func() error {
		for _, dc := range window {
			if ok, err := dc.WaitContext(ctx); err != nil || !ok {
				return fmt.Errorf("producer confirm: %v %v", ok, err)
			}
		}
		window = window[:0]
		return nil
	}
	for i := range o.tasks {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key(i), false, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent, ContentType: "application/json", MessageId: fmt.Sprintf("b-%s-%d", n.sfx, i),
			Body: []byte(fmt.Sprintf(`{"kind":"noop","payload":{"n":%d}}`, i)),
		})
		if err != nil {
			return 0, err
		}
		window = append(window, dc)
		if len(window) == 1000 {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	if err := flush(); err != nil {
		return 0, err
	}
	return float64(o.tasks) / time.Since(start).Seconds(), nil
}

func runGrey(o opts) (result, error) {
	n := newNames(o.tenants)
	defer n.cleanup(o.url)
	set := n.settings(o)
	src, err := rabbitevents.OpenSource(o.url, events.SourceOptions{Group: n.group, Prefetch: o.prefetch, Settings: set})
	if err != nil {
		return result{}, err
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	_, err = src.Lag(ctx) // waits until the topology is declared
	cancel()
	if err != nil {
		return result{}, err
	}
	sink, err := rabbitevents.OpenSink(o.url, events.SinkOptions{Settings: set})
	if err != nil {
		return result{}, err
	}
	defer sink.Close()
	conn, err := amqp.Dial(o.url)
	if err != nil {
		return result{}, err
	}
	defer conn.Close()
	if err := declareResults(conn, n, o.queueType); err != nil {
		return result{}, err
	}
	// Pause every tenant while producing, so the backlog is in the queues
	// when the clock starts.
	for _, t := range n.tenants {
		src.Pause(t)
	}
	rate, err := produce(conn, n, o, n.tasksEx, func(i int) string { return n.tenants[i%len(n.tenants)] + ".noop" })
	if err != nil {
		return result{}, err
	}
	log.Printf("grey: %d messages in %d queues (%.0f/s with confirms)", o.tasks, o.tenants, rate)

	var mu sync.Mutex
	keys := map[string]*task.Task{}
	var feed []*task.Task
	submits := 0
	var allIn time.Time
	submit := func(_ context.Context, tenant string, spec task.Spec) (*task.Task, error) {
		mu.Lock()
		defer mu.Unlock()
		submits++
		if t, ok := keys[spec.IdempotencyKey]; ok {
			return t, nil
		}
		id, err := task.NewID()
		if err != nil {
			return nil, err
		}
		t := &task.Task{ID: id, TenantID: tenant, Spec: spec, Status: task.Completed, Attempt: 1}
		keys[spec.IdempotencyKey] = t
		feed = append(feed, t)
		if len(feed) == o.tasks {
			allIn = time.Now()
		}
		return t, nil
	}
	cons, err := events.NewConsumer(src, events.ConsumerOptions{Name: "rabbitmq", Submit: submit, FetchMax: o.fetch})
	if err != nil {
		return result{}, err
	}
	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	published := 0
	done := make(chan struct{})
	wg.Add(2)
	go func() { defer wg.Done(); _ = cons.Run(runCtx) }()
	go func() { // the relay: a cursor over created tasks, batches of o.batch
		defer wg.Done()
		for runCtx.Err() == nil {
			mu.Lock()
			batch := feed[published:min(published+o.batch, len(feed))]
			mu.Unlock()
			if len(batch) == 0 {
				time.Sleep(2 * time.Millisecond)
				continue
			}
			evs := make([]events.Event, len(batch))
			for i, t := range batch {
				evs[i] = events.Event{Kind: events.Result, Tenant: t.TenantID, Key: t.ID, Value: []byte(`{"status":"completed","result":null}`),
					Headers: map[string]string{events.HeaderTaskID: t.ID, events.HeaderAttempt: "1", events.HeaderTenant: t.TenantID}}
			}
			if err := sink.Publish(runCtx, evs); err != nil {
				log.Printf("publish: %v (retrying the batch)", err)
				time.Sleep(100 * time.Millisecond)
				continue
			}
			published += len(batch)
			if published == o.tasks {
				close(done)
				return
			}
		}
	}()
	start := time.Now()
	for _, t := range n.tenants {
		src.Resume(t)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
		return result{}, fmt.Errorf("timed out: %d of %d results published", published, o.tasks)
	}
	secs := time.Since(start).Seconds()
	stop()
	wg.Wait()
	mu.Lock()
	consumed := allIn.Sub(start).Seconds()
	mu.Unlock()
	return result{Run: "grey", QueueType: o.queueType, Tasks: o.tasks, Tenants: o.tenants, Seconds: round(secs), ConsumedSecs: round(consumed),
		TasksPerSecond: round(float64(o.tasks) / secs), ProducePerSec: round(rate), Redelivered: submits - len(feed), Results: published}, nil
}

// runRaw is the baseline: the same queues (declared like the driver
// does, through a source opened and closed first), consumed by plain
// amqp091 consumers with manual acks, one result per message published
// with confirms in batches of o.batch.
func runRaw(o opts) (result, error) {
	n := newNames(o.tenants)
	defer n.cleanup(o.url)
	src, err := rabbitevents.OpenSource(o.url, events.SourceOptions{Group: n.group, Prefetch: o.prefetch, Settings: n.settings(o)})
	if err != nil {
		return result{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	_, err = src.Lag(ctx)
	cancel()
	for _, t := range n.tenants {
		src.Pause(t)
	}
	_ = src.Close()
	if err != nil {
		return result{}, err
	}
	conn, err := amqp.Dial(o.url)
	if err != nil {
		return result{}, err
	}
	defer conn.Close()
	if err := declareResults(conn, n, o.queueType); err != nil {
		return result{}, err
	}
	rate, err := produce(conn, n, o, n.tasksEx, func(i int) string { return n.tenants[i%len(n.tenants)] + ".noop" })
	if err != nil {
		return result{}, err
	}
	log.Printf("raw: %d messages in %d queues (%.0f/s with confirms)", o.tasks, o.tenants, rate)
	cc, err := amqp.Dial(o.url)
	if err != nil {
		return result{}, err
	}
	defer cc.Close()
	ch, err := cc.Channel()
	if err != nil {
		return result{}, err
	}
	if err := ch.Qos(o.prefetch, 0, false); err != nil {
		return result{}, err
	}
	pc, err := cc.Channel()
	if err != nil {
		return result{}, err
	}
	if err := pc.Confirm(false); err != nil {
		return result{}, err
	}
	merged := make(chan amqp.Delivery, 4096)
	start := time.Now()
	for _, t := range n.tenants {
		d, err := ch.Consume(n.group+"."+t, "", false, false, false, false, nil)
		if err != nil {
			return result{}, err
		}
		go func() {
			for m := range d {
				merged <- m
			}
		}()
	}
	bg := context.Background()
	var window []*amqp.DeferredConfirmation
	var tags []uint64
	flush := func() error {
		for _, dc := range window {
			if ok, err := dc.WaitContext(bg); err != nil || !ok {
				return fmt.Errorf("confirm: %v %v", ok, err)
			}
		}
		for _, tg := range tags {
			if err := ch.Ack(tg, false); err != nil {
				return err
			}
		}
		window, tags = window[:0], tags[:0]
		return nil
	}
	for got := 0; got < o.tasks; got++ {
		var m amqp.Delivery
		select {
		case m = <-merged:
		case <-time.After(200 * time.Millisecond):
			if err := flush(); err != nil {
				return result{}, err
			}
			m = <-merged
		}
		tenant, _, _ := strings.Cut(m.RoutingKey, ".")
		// the same properties and headers as the sink's results: headers
		// cost the broker as much as the rest of the message
		dc, err := pc.PublishWithDeferredConfirmWithContext(bg, n.resultsEx, tenant, false, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent, ContentType: "application/json", MessageId: m.MessageId + "/1",
			Type: "result", Timestamp: time.Now(),
			Headers: amqp.Table{events.HeaderTaskID: m.MessageId, events.HeaderAttempt: "1", events.HeaderTenant: tenant,
				events.HeaderContentType: "application/json"},
			Body: []byte(`{"status":"completed","result":null}`)})
		if err != nil {
			return result{}, err
		}
		window = append(window, dc)
		tags = append(tags, m.DeliveryTag)
		if len(window) >= o.batch || len(window) >= o.prefetch*o.tenants/2 {
			if err := flush(); err != nil {
				return result{}, err
			}
		}
	}
	if err := flush(); err != nil {
		return result{}, err
	}
	secs := time.Since(start).Seconds()
	return result{Run: "raw", QueueType: o.queueType, Tasks: o.tasks, Tenants: o.tenants, Seconds: round(secs),
		TasksPerSecond: round(float64(o.tasks) / secs), ProducePerSec: round(rate), Results: o.tasks}, nil
}

func round(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

// runGreyd measures a greyd that consumes grey.tasks and publishes to
// grey.results on this broker: it binds a queue of its own to
// grey.results for fresh tenants, publishes o.tasks noop submissions
// (with confirms, message_id set) and waits until every result arrived.
// The clock runs from the first publish to the last result.
func runGreyd(o opts) (result, error) {
	sfx := suffix()
	var tenants []string
	for i := range o.tenants {
		tenants = append(tenants, fmt.Sprintf("rb%s-%d", sfx, i+1))
	}
	conn, err := amqp.Dial(o.url)
	if err != nil {
		return result{}, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return result{}, err
	}
	q := "greybench.results." + sfx
	if err := ch.ExchangeDeclare("grey.results", amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		return result{}, err
	}
	if _, err := ch.QueueDeclare(q, false, false, false, false, nil); err != nil {
		return result{}, err
	}
	defer func() { _, _ = ch.QueueDelete(q, false, false, false) }()
	for _, t := range tenants {
		if err := ch.QueueBind(q, t, "grey.results", false, nil); err != nil {
			return result{}, err
		}
	}
	if err := ch.Qos(2000, 0, false); err != nil {
		return result{}, err
	}
	dels, err := ch.Consume(q, "", false, false, false, false, nil)
	if err != nil {
		return result{}, err
	}
	got := make(chan int, 1)
	go func() {
		seen := map[string]bool{}
		for d := range dels {
			_ = d.Ack(false)
			seen[fmt.Sprint(d.Headers["grey-task-id"])] = true
			if len(seen) == o.tasks {
				got <- len(seen)
				return
			}
		}
	}()
	start := time.Now()
	rate, err := produce(conn, names{sfx: sfx}, o, "grey.tasks", func(i int) string { return tenants[i%len(tenants)] + ".noop" })
	if err != nil {
		return result{}, err
	}
	log.Printf("greyd: %d messages published (%.0f/s with confirms)", o.tasks, rate)
	select {
	case <-got:
	case <-time.After(10 * time.Minute):
		return result{}, fmt.Errorf("timed out waiting for %d results", o.tasks)
	}
	secs := time.Since(start).Seconds()
	return result{Run: "greyd", QueueType: o.queueType, Tasks: o.tasks, Tenants: o.tenants, Seconds: round(secs),
		TasksPerSecond: round(float64(o.tasks) / secs), ProducePerSec: round(rate), Results: o.tasks}, nil
}

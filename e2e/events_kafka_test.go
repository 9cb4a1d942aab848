package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/internal/testenv"
	"github.com/grey-distributed/grey/task"
)

// TestEventsKafkaLeaderKill: a 3-server cluster consumes 10,000 messages
// (1% malformed) from the real Kafka's grey.tasks.<tenant> and publishes
// results to grey.results.<tenant>; the Raft leader, which runs the
// consumer and the relay, is SIGKILLed a third of the way through and
// restarted. Afterwards every good message is exactly one task (its
// position is the idempotency key), every task's result was published at
// least once and exactly once after deduplication by (task id, attempt),
// and grey.dlq.<tenant> holds exactly the malformed messages.
//
//	GREY_E2E=1 go test -count=1 -run TestEventsKafkaLeaderKill -v ./e2e/
func TestEventsKafkaLeaderKill(t *testing.T) {
	requireE2E(t)
	raw := testenv.ServiceURL(t, "kafka")
	ku, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	brokers := strings.Split(ku.Host, ",")
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	tenant := "ek" + hex.EncodeToString(rb[:])
	group := "grey-e2e-" + tenant
	topic := "grey.tasks." + tenant
	const total, badEvery = 10_000, 100

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if _, err := adm.CreateTopic(ctx, 4, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(c, topic, "grey.results."+tenant, "grey.dlq."+tenant)
		_, _ = adm.DeleteGroup(c, group)
	})

	cfg := clusterServerConfig + fmt.Sprintf(`events:
  kafka:
    brokers: [%q]
    group: %s
    source: true
    sink: true
    topics_regex: '^grey\.tasks\.%s$'
`, brokers[0], group, tenant)
	c := startClusterWith(t, nil, 2, cfg)

	// Produce everything: the good and the malformed positions are known.
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]*kgo.Record, total)
	for i := range recs {
		v := fmt.Appendf(nil, `{"kind":"noop","payload":{"n":%d}}`, i)
		if i%badEvery == badEvery-1 {
			v = fmt.Appendf(nil, `{"kind":"noop","payload":{"n":%d}`, i)
		}
		recs[i] = &kgo.Record{Topic: topic, Value: v}
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	prod.Close()
	good, bad := map[string]bool{}, map[string]bool{}
	for i, r := range recs {
		pos := fmt.Sprintf("kafka:%s/%d/%d", r.Topic, r.Partition, r.Offset)
		if i%badEvery == badEvery-1 {
			bad[pos] = true
		} else {
			good[pos] = true
		}
	}
	committed := func() int64 {
		offs, err := adm.FetchOffsetsForTopics(ctx, group, topic)
		if err != nil {
			return 0
		}
		var n int64
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Err == nil && o.At > 0 {
				n += o.At
			}
		})
		return n
	}
	began := time.Now()
	for committed() < total/3 {
		if ctx.Err() != nil {
			t.Fatal("the cluster consumed nothing")
		}
		time.Sleep(50 * time.Millisecond)
	}
	leader := c.waitLeader(c.Servers, 10*time.Second)
	at := committed()
	leader.Kill()
	t.Logf("SIGKILLed leader %s with %d of %d messages committed (%s after the start)", leader.ID, at, total, time.Since(began).Round(time.Millisecond))
	next := c.waitLeader(c.others(leader), 15*time.Second)
	t.Logf("new leader %s", next.ID)
	time.Sleep(3 * time.Second)
	leader.Start()
	c.waitReady(leader, 30*time.Second)

	// Wait until every message is committed, every result published and
	// every malformed message dead-lettered.
	resultIDs := func() (map[string]map[string]int, int) {
		recs := readTopicAll(t, brokers, "grey.results."+tenant)
		out := map[string]map[string]int{}
		for _, r := range recs {
			id, att := recHeader(r, "grey-task-id"), recHeader(r, "grey-attempt")
			if out[id] == nil {
				out[id] = map[string]int{}
			}
			out[id][att]++
		}
		return out, len(recs)
	}
	var results map[string]map[string]int
	var resultRecs int
	for {
		results, resultRecs = resultIDs()
		if committed() >= total && len(results) >= len(good) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("timed out: %d of %d messages committed, results for %d of %d tasks", committed(), total, len(results), len(good))
		}
		time.Sleep(2 * time.Second)
	}
	t.Logf("all consumed and published %s after the start", time.Since(began).Round(time.Millisecond))

	dlq := map[string]int{}
	dlqRecs := readTopicAll(t, brokers, "grey.dlq."+tenant)
	for _, r := range dlqRecs {
		dlq[recHeader(r, "grey-dlq-position")]++
		if recHeader(r, "grey-dlq-reason") == "" {
			t.Errorf("dead letter %s without a reason", recHeader(r, "grey-dlq-position"))
		}
	}
	tasks, pairs := checkOneTaskPerMessage(ctx, t, c.Client(tenant), func(key string) string { return key }, good, bad, results, dlq)
	t.Logf("%d tasks; %d result records (%d distinct task/attempt); %d dead-letter records for %d malformed messages",
		tasks, resultRecs, pairs, len(dlqRecs), len(bad))
}

// readTopicAll reads a topic from the start until a poll of a second
// returns nothing.
func readTopicAll(t *testing.T, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r); n++ })
		if n == 0 {
			return out
		}
	}
}

func recHeader(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// TestEventsKafkaBrokerDownAtStart: greyd starts with events.kafka naming
// a broker that does not answer; it becomes ready, /readyz names the Kafka
// source as degraded (the consumer retries with backoff), and tasks are
// still served through the API.
func TestEventsKafkaBrokerDownAtStart(t *testing.T) {
	requireE2E(t)
	closed := freePorts(t, 1)[0] // nothing listens there
	g := newGreyd(t, fmt.Sprintf("events:\n  kafka:\n    brokers: [\"127.0.0.1:%d\"]\n    source: true\n    sink: true\n", closed))
	g.Start()
	g.WaitReady(30 * time.Second)
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		resp, err := hc.Get(g.URL() + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, b)
			if resp.StatusCode == http.StatusOK && strings.Contains(string(b), "events_kafka_source") && strings.Contains(string(b), "unavailable") {
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(last, "events_kafka_source") {
		t.Fatalf("/readyz never named the Kafka source as degraded; last: %s", last)
	}
	t.Logf("/readyz: %s", last)
	c, err := client.New(g.URL(), client.WithTenant("acme"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tk, err := c.Submit(ctx, task.Spec{Kind: "noop"})
	if err != nil {
		t.Fatalf("submit through the API with Kafka down: %v", err)
	}
	if _, err := c.Wait(ctx, tk.ID); err != nil {
		t.Fatalf("wait: %v", err)
	}
}

// TestEventsKafkaConsoleTools runs the Kafka examples of docs/EVENTS.md as
// a user would, with the Kafka distribution's console tools: tasks written
// by kafka-console-producer.sh into grey.tasks.<tenant> (one with headers,
// one malformed) come back as results that kafka-console-consumer.sh reads
// from grey.results.<tenant>, and the malformed one from grey.dlq.<tenant>
// with its reason.
func TestEventsKafkaConsoleTools(t *testing.T) {
	requireE2E(t)
	raw := testenv.ServiceURL(t, "kafka")
	bin := os.Getenv("GREY_TEST_KAFKA_BIN")
	if bin == "" {
		msg := "GREY_TEST_KAFKA_BIN is not set: the Kafka console tools (eval \"$(scripts/services.sh env)\" exports it)"
		if testenv.InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ku, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	broker := strings.Split(ku.Host, ",")[0]
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	tenant := "kc" + hex.EncodeToString(rb[:])
	g := newGreyd(t, fmt.Sprintf("events:\n  kafka:\n    brokers: [%q]\n    group: grey-e2e-%s\n    source: true\n    sink: true\n    topics_regex: '^grey\\.tasks\\.%s$'\n", broker, tenant, tenant))
	g.Start()
	g.WaitReady(60 * time.Second)

	tool := func(stdin, name string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(bin, name), append([]string{"--bootstrap-server", broker}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %q: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	tool(`{"kind":"echo","payload":{"hello":"world"}}`+"\n"+`{"kind":"echo","payload":{"n":2}`+"\n",
		"kafka-console-producer.sh", "--topic", "grey.tasks."+tenant)
	tool("content-type:application/json,traceparent:00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\t{\"kind\":\"echo\",\"payload\":{\"n\":3}}\n",
		"kafka-console-producer.sh", "--topic", "grey.tasks."+tenant, "--property", "parse.headers=true")

	results := tool("", "kafka-console-consumer.sh", "--topic", "grey.results."+tenant, "--from-beginning",
		"--max-messages", "2", "--timeout-ms", "90000", "--property", "print.key=true", "--property", "print.headers=true")
	for _, want := range []string{`"hello":"world"`, `"n":3`, "grey-tenant-id:" + tenant, "grey-task-id:", `"status":"completed"`} {
		if !strings.Contains(results, want) {
			t.Errorf("kafka-console-consumer.sh of grey.results.%s lacks %q:\n%s", tenant, want, results)
		}
	}
	dlq := tool("", "kafka-console-consumer.sh", "--topic", "grey.dlq."+tenant, "--from-beginning",
		"--max-messages", "1", "--timeout-ms", "90000", "--property", "print.headers=true")
	if !strings.Contains(dlq, "grey-dlq-reason:malformed") || !strings.Contains(dlq, `{"kind":"echo","payload":{"n":2}`) {
		t.Errorf("kafka-console-consumer.sh of grey.dlq.%s:\n%s", tenant, dlq)
	}
}

// checkOneTaskPerMessage checks what an event source and sink promise
// after a fault: every good message became exactly one task (idOf maps a
// task's idempotency key to the message's identity in good and bad), every
// task's result was published, once per (task id, attempt) after
// deduplication (results: task id -> attempt -> copies), and the dead
// letters (message identity -> copies) are exactly the bad messages. It
// returns the tasks and the distinct results seen.
func checkOneTaskPerMessage(ctx context.Context, t *testing.T, cl *client.Client, idOf func(key string) string,
	good, bad map[string]bool, results map[string]map[string]int, dlq map[string]int) (tasks, pairs int) {
	t.Helper()
	byKey := map[string]string{}
	for tk, err := range cl.ListAll(ctx, client.ListOptions{Limit: 1000}) {
		if err != nil {
			t.Fatal(err)
		}
		tasks++
		id := idOf(tk.IdempotencyKey)
		if !good[id] {
			t.Errorf("task %s has key %q, not a good message's position", tk.ID, tk.IdempotencyKey)
		}
		if old, dup := byKey[id]; dup {
			t.Errorf("message %s became two tasks: %s and %s", id, old, tk.ID)
		}
		byKey[id] = string(tk.ID)
	}
	if tasks != len(good) || len(byKey) != len(good) {
		t.Errorf("%d tasks (%d keys) for %d good messages", tasks, len(byKey), len(good))
	}
	for _, id := range byKey {
		if len(results[id]) == 0 {
			t.Errorf("task %s: no result published", id)
		}
		pairs += len(results[id])
	}
	if pairs != len(good) {
		t.Errorf("%d distinct (task id, attempt) results for %d tasks", pairs, len(good))
	}
	for p := range dlq {
		if !bad[p] {
			t.Errorf("dead letter %s is not a malformed message", p)
		}
	}
	for p := range bad {
		if dlq[p] == 0 {
			t.Errorf("malformed message %s is not among the dead letters", p)
		}
	}
	return tasks, pairs
}

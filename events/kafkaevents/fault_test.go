package kafkaevents_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/events/kafkaevents"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
)

// fakeCluster stands in for the Raft leader in the broker fault test: a
// submit with an idempotency key already known returns the task it
// became (as engine.Submit does), and every new task finishes at once
// and joins an ordered feed of finished tasks (as the state store's).
type fakeCluster struct {
	mu       sync.Mutex
	byKey    map[string]*task.Task
	submits  map[string]int
	finished []*task.Task
}

func newFakeCluster() *fakeCluster {
	return &fakeCluster{byKey: map[string]*task.Task{}, submits: map[string]int{}}
}

func (c *fakeCluster) submit(_ context.Context, tenant string, spec task.Spec) (*task.Task, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.submits[spec.IdempotencyKey]++
	if t := c.byKey[spec.IdempotencyKey]; t != nil {
		return t, nil
	}
	id, err := task.NewID()
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	t := &task.Task{ID: id, TenantID: tenant, Spec: spec, Status: task.Completed, Attempt: 1,
		CreatedAt: now, UpdatedAt: now, FinishedAt: &now, Result: []byte(`{"ok":true}`)}
	c.byKey[spec.IdempotencyKey] = t
	c.finished = append(c.finished, t)
	return t, nil
}

func (c *fakeCluster) counts() (tasks, finished int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byKey), len(c.finished)
}

// relay delivers the feed of finished tasks to p from a cursor, retrying
// a batch until it is delivered (relay.Relay's contract, without Raft).
func (c *fakeCluster) relay(ctx context.Context, p *events.Publisher, cursor *int, mu *sync.Mutex) {
	for ctx.Err() == nil {
		mu.Lock()
		from := *cursor
		mu.Unlock()
		c.mu.Lock()
		batch := c.finished[from:min(from+1000, len(c.finished))]
		c.mu.Unlock()
		if len(batch) == 0 {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if err := p.Deliver(ctx, state.FeedBatch{Tasks: batch, Through: uint64(from + len(batch))}); err != nil {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		mu.Lock()
		*cursor = from + len(batch)
		mu.Unlock()
	}
}

// TestFaultBrokerKilled kills -9 the (private) broker in the middle of
// 10,000 messages and restarts it, with the portable Consumer and
// Publisher on the Kafka drivers and a stand-in for the cluster. Every
// message becomes exactly one task, every task's result is published at
// least once (exactly once after deduplication by task id and attempt),
// and the DLQ holds exactly the malformed messages.
func TestFaultBrokerKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: starts, kills and restarts a Kafka broker")
	}
	pk := startPrivateKafka(t)
	for i, txn := range []bool{false, true} {
		name := "Idempotent"
		if txn {
			name = "Transactional"
		}
		t.Run(name, func(t *testing.T) { brokerKilled(t, pk, fmt.Sprintf("acme%d", i), txn) })
	}
}

func brokerKilled(t *testing.T, pk *privateKafka, tenant string, txn bool) {
	const total, badEvery = 10_000, 100
	topic := kafkaevents.DefaultTasksPrefix + tenant
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	admCl, err := kgo.NewClient(kgo.SeedBrokers(pk.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if _, err := adm.CreateTopic(ctx, 4, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	// Produce everything first: the positions of good and bad messages
	// are known before the consumer starts.
	prod, err := kgo.NewClient(kgo.SeedBrokers(pk.Addr()), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]*kgo.Record, total)
	for i := range recs {
		v := fmt.Appendf(nil, `{"kind":"noop","payload":{"n":%d}}`, i)
		if i%badEvery == badEvery-1 {
			v = fmt.Appendf(nil, `{"kind":"noop","payload":{"n":%d}`, i) // truncated JSON
		}
		recs[i] = &kgo.Record{Topic: topic, Value: v}
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	prod.Close()
	good, bad := map[string]bool{}, map[string]bool{}
	for i, r := range recs {
		pos := kafkaevents.Position(r.Topic, r.Partition, r.Offset)
		if i%badEvery == badEvery-1 {
			bad[pos] = true
		} else {
			good[pos] = true
		}
	}

	cluster := newFakeCluster()
	u, _ := url.Parse(pk.URL())
	settings := map[string]string{
		kafkaevents.SettingTopicsRegex:     `^grey\.tasks\.` + tenant + `$`,
		kafkaevents.SettingPingInterval:    "1s",
		kafkaevents.SettingMetadataMaxAge:  "2s",
		kafkaevents.SettingFetchMaxWait:    "200ms",
		kafkaevents.SettingDeliveryTimeout: "5s",
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	cons, err := events.NewConsumerFunc(func(ctx context.Context) (events.SourceDriver, error) {
		return kafkaevents.Opener{}.OpenSource(ctx, u, events.SourceOptions{Group: "grey-fault-" + tenant, Settings: settings})
	}, events.ConsumerOptions{Name: "kafka", Submit: cluster.submit, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second,
		LagInterval: time.Second, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := events.NewPublisherFunc(func(ctx context.Context) (events.SinkDriver, error) {
		return kafkaevents.Opener{}.OpenSink(ctx, u, events.SinkOptions{Transactional: txn, Settings: settings})
	}, events.PublisherOptions{Name: "kafka", Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = cons.Run(runCtx) }()
	var cursorMu sync.Mutex
	cursor := 0
	go func() { defer wg.Done(); cluster.relay(runCtx, pub, &cursor, &cursorMu) }()

	// Kill the broker once a third of the tasks exist.
	for {
		if n, _ := cluster.counts(); n >= total/3 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("no progress before the kill")
		}
		time.Sleep(10 * time.Millisecond)
	}
	atKill, _ := cluster.counts()
	pk.kill9()
	t.Logf("broker killed at %d tasks", atKill)
	time.Sleep(3 * time.Second)
	// Records the client fetched before the kill still become tasks; their
	// acknowledgements fail and they come again after the restart, naming
	// the same tasks.
	n, _ := cluster.counts()
	t.Logf("%d tasks created while the broker was down", n-atKill)
	pk.start()
	t.Logf("broker restarted")

	// Wait for every good message to be a task, every task's result
	// published (the relay's cursor at the end of the feed) and the lag 0.
	wantTasks := len(good)
	for {
		n, _ := cluster.counts()
		cursorMu.Lock()
		c := cursor
		cursorMu.Unlock()
		st := cons.Status()
		if n == wantTasks && c == wantTasks && st.Lag[tenant] == 0 && !st.LagAt.IsZero() && st.DeadLettered > 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("timed out: %d/%d tasks, relay cursor %d, lag %v, dead-lettered %d, last error %q", n, wantTasks, c, st.Lag, st.DeadLettered, st.LastError)
		}
		time.Sleep(200 * time.Millisecond)
	}
	stop()
	wg.Wait()

	// Every message became exactly one task.
	cluster.mu.Lock()
	redelivered := 0
	for key, n := range cluster.submits {
		if !good[key] {
			t.Errorf("a task was submitted for %s, not a good message", key)
		}
		redelivered += n - 1
	}
	for pos := range good {
		if cluster.byKey[pos] == nil {
			t.Errorf("message %s became no task", pos)
		}
	}
	taskIDs := map[string]bool{}
	for _, tk := range cluster.byKey {
		taskIDs[string(tk.ID)] = true
	}
	cluster.mu.Unlock()
	if len(taskIDs) != len(good) {
		t.Errorf("%d tasks for %d good messages", len(taskIDs), len(good))
	}

	// Every result published at least once, once after deduplication.
	iso := kgo.ReadUncommitted()
	if txn {
		iso = kgo.ReadCommitted()
	}
	results := readTopic(t, pk.Addr(), kafkaevents.DefaultResultsPrefix+tenant, len(good), iso)
	dedup := map[string]int{}
	for _, r := range results {
		id, _ := header(r, events.HeaderTaskID)
		att, _ := header(r, events.HeaderAttempt)
		dedup[id+"/"+att]++
	}
	for id := range taskIDs {
		if dedup[id+"/1"] == 0 {
			t.Errorf("task %s: no result published", id)
		}
	}
	if len(dedup) != len(taskIDs) {
		t.Errorf("%d distinct (task id, attempt) results for %d tasks", len(dedup), len(taskIDs))
	}

	// The DLQ holds exactly the malformed messages.
	dlq := readTopic(t, pk.Addr(), kafkaevents.DefaultDLQPrefix+tenant, len(bad), kgo.ReadUncommitted())
	dlqPos := map[string]int{}
	for _, r := range dlq {
		p, _ := header(r, kafkaevents.HeaderDLQPosition)
		if reason, _ := header(r, events.HeaderReason); reason == "" {
			t.Errorf("dead letter %s without a reason", p)
		}
		dlqPos[p]++
	}
	for p := range dlqPos {
		if !bad[p] {
			t.Errorf("dead letter %s is not a malformed message", p)
		}
	}
	for p := range bad {
		if dlqPos[p] == 0 {
			t.Errorf("malformed message %s not dead-lettered", p)
		}
	}
	t.Logf("%d tasks from %d messages (%d submits repeated after redelivery); %d result records for %d tasks; %d dead letters for %d malformed messages",
		len(taskIDs), total, redelivered, len(results), len(taskIDs), len(dlq), len(bad))
}

// readTopic reads a topic from the start until it holds at least want
// records and a second passes without more.
func readTopic(t *testing.T, addr, topic string, want int, iso kgo.IsolationLevel) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond), kgo.FetchIsolationLevel(iso))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		wait := time.Until(deadline)
		if len(out) >= want {
			wait = time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r); n++ })
		if n == 0 && len(out) >= want {
			break
		}
	}
	return out
}

// TestFaultBrokerDownThenClose: with the broker killed after the group
// was joined, Fetch reports Unavailable, Close returns in bounded time,
// and after the restart the messages never acknowledged come again.
func TestFaultBrokerDownThenClose(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: starts, kills and restarts a Kafka broker")
	}
	pk := startPrivateKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	topic := kafkaevents.DefaultTasksPrefix + "down"
	cl, err := kgo.NewClient(kgo.SeedBrokers(pk.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i := range 10 {
		recs = append(recs, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "m%d", i)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	u, _ := url.Parse(pk.URL())
	opts := events.SourceOptions{Group: "down", Settings: map[string]string{kafkaevents.SettingPingInterval: "1s"}}
	s, err := kafkaevents.OpenSource(ctx, u, opts)
	if err != nil {
		t.Fatal(err)
	}
	got := fetchN(t, s, 10, 60*time.Second)
	if err := s.Ack(ctx, got[:4]); err != nil {
		t.Fatal(err)
	}
	pk.kill9()
	fctx, fcancel := context.WithTimeout(ctx, 20*time.Second)
	_, err = s.Fetch(fctx, 10)
	fcancel()
	if !greyerr.Is(err, greyerr.Unavailable) {
		t.Errorf("fetch with the broker down: %v, want Unavailable", err)
	}
	start := time.Now()
	_ = s.Close()
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Close with the broker down took %s", d)
	} else {
		t.Logf("Close with the broker down took %s", d.Round(time.Millisecond))
	}
	pk.start()
	s2, err := kafkaevents.OpenSource(ctx, u, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	again := fetchN(t, s2, 6, 90*time.Second)
	if len(again) != 6 || again[0].Position != got[4].Position {
		t.Fatalf("after the restart: %d messages from %v, want the 6 from %s", len(again), positions(again), got[4].Position)
	}
}

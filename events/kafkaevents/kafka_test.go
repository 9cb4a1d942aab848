package kafkaevents_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/events/kafkaevents"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/testenv"
)

// kafka is one test's view of the real broker: a unique tenant prefix so
// that the subscription sees only this test's topics, and a unique group.
type kafka struct {
	t       testing.TB
	url     string
	brokers string
	run     string // unique per test: tenants are run+"a", run+"b", ...
	group   string
	admCl   *kgo.Client
	adm     *kadm.Client
}

func newKafka(t *testing.T) *kafka { return newKafkaB(t) }

func newKafkaB(t testing.TB) *kafka {
	t.Helper()
	raw := testenv.ServiceURL(t, "kafka")
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	k := &kafka{t: t, url: raw, brokers: u.Host, run: "kt" + uniq(), group: "grey-test-" + uniq()}
	k.admCl, err = kgo.NewClient(kgo.SeedBrokers(strings.Split(u.Host, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	k.adm = kadm.NewClient(k.admCl)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if ts, err := k.adm.ListTopics(ctx); err == nil {
			var mine []string
			for _, n := range ts.Names() {
				if strings.Contains(n, k.run) {
					mine = append(mine, n)
				}
			}
			if len(mine) > 0 {
				_, _ = k.adm.DeleteTopics(ctx, mine...)
			}
		}
		_, _ = k.adm.DeleteGroup(ctx, k.group)
		k.admCl.Close()
	})
	return k
}

func uniq() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func (k *kafka) tenant(s string) string { return k.run + s }
func (k *kafka) topic(tenant string) string {
	return kafkaevents.DefaultTasksPrefix + tenant
}

// settings scope the subscription to this test's topics.
func (k *kafka) settings(extra ...string) map[string]string {
	m := map[string]string{
		kafkaevents.SettingTopicsRegex:    `^grey\.tasks\.` + k.run + `.*$`,
		kafkaevents.SettingPingInterval:   "2s",
		kafkaevents.SettingFetchMaxWait:   "100ms",
		kafkaevents.SettingMetadataMaxAge: "1s",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

func (k *kafka) createTopic(topic string, partitions int32) {
	k.t.Helper()
	ctx := ctxFor(k.t, 20*time.Second)
	if _, err := k.adm.CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		k.t.Fatalf("create topic %s: %v", topic, err)
	}
}

// produce writes n records to topic (values "<prefix>-<i>"), round-robin
// over its partitions, and returns the values.
func (k *kafka) produce(topic, prefix string, n int, headers ...kgo.RecordHeader) []string {
	k.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.brokers), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		k.t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	var vals []string
	for i := 0; i < n; i++ {
		v := fmt.Sprintf("%s-%d", prefix, i)
		vals = append(vals, v)
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(v), Value: []byte(v), Headers: headers})
	}
	if err := cl.ProduceSync(ctxFor(k.t, 30*time.Second), recs...).FirstErr(); err != nil {
		k.t.Fatalf("produce: %v", err)
	}
	return vals
}

func (k *kafka) source(extra ...string) *kafkaevents.Source {
	k.t.Helper()
	u, _ := url.Parse(k.url)
	s, err := kafkaevents.OpenSource(context.Background(), u, events.SourceOptions{Group: k.group, Settings: k.settings(extra...)})
	if err != nil {
		k.t.Fatal(err)
	}
	k.t.Cleanup(func() { _ = s.Close() })
	return s
}

func (k *kafka) sink(transactional bool, extra ...string) *kafkaevents.Sink {
	k.t.Helper()
	u, _ := url.Parse(k.url)
	s, err := kafkaevents.OpenSink(context.Background(), u, events.SinkOptions{Transactional: transactional, Settings: k.settings(extra...)})
	if err != nil {
		k.t.Fatal(err)
	}
	k.t.Cleanup(func() { _ = s.Close() })
	return s
}

// fetchN fetches until n messages came or d passed.
func fetchN(t *testing.T, s events.SourceDriver, n int, d time.Duration) []*events.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var out []*events.Message
	for len(out) < n {
		msgs, err := s.Fetch(ctx, n-len(out))
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			t.Fatalf("fetch: %v", err)
		}
		out = append(out, msgs...)
	}
	return out
}

func values(msgs []*events.Message) []string {
	var v []string
	for _, m := range msgs {
		v = append(v, string(m.Value))
	}
	sort.Strings(v)
	return v
}

// readAll reads the records of topics from the start: until want came
// (then a little longer, to see any extra) or, with want 0, until quiet
// passes without a new one.
func (k *kafka) readAll(isolation kgo.IsolationLevel, want int, topics ...string) []*kgo.Record {
	k.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.brokers), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(isolation), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		k.t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	deadline := time.Now().Add(30 * time.Second)
	quiet := 3 * time.Second
	for time.Now().Before(deadline) {
		wait := quiet
		if want > 0 && len(out) < want {
			wait = time.Until(deadline)
		} else if want > 0 {
			wait = time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r); n++ })
		if n == 0 {
			return out
		}
	}
	return out
}

func header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

func TestSourceCommitsOnlyAcknowledgedPrefix(t *testing.T) {
	k := newKafka(t)
	tenant := k.tenant("a")
	k.createTopic(k.topic(tenant), 1)
	all := k.produce(k.topic(tenant), "m", 10)

	s := k.source()
	got := fetchN(t, s, 10, 30*time.Second)
	if !slices.Equal(values(got), sortedCopy(all)) {
		t.Fatalf("fetched %v", values(got))
	}
	for i, m := range got {
		want := kafkaevents.Position(k.topic(tenant), 0, int64(i))
		if m.Position != want || m.Tenant != tenant || m.Source != k.topic(tenant) || m.ContentType != kafkaevents.ContentTypeJSON {
			t.Fatalf("message %d: position %q tenant %q source %q ct %q", i, m.Position, m.Tenant, m.Source, m.ContentType)
		}
	}
	ctx := ctxFor(t, 30*time.Second)
	// Acknowledge 0-4 and 6, not 5: the commit must stop at 5.
	if err := s.Ack(ctx, append(slices.Clone(got[:5]), got[6])); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(ctx, got[:2]); err != nil { // twice is harmless
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	offs, err := k.adm.FetchOffsetsForTopics(ctx, k.group, k.topic(tenant))
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := offs.Lookup(k.topic(tenant), 0); o.At != 5 {
		t.Fatalf("committed offset %d, want 5", o.At)
	}

	// A new consumer of the group gets 5..9 (6 again: it was acked after a gap).
	s2 := k.source()
	again := fetchN(t, s2, 5, 30*time.Second)
	if want := sortedCopy(all[5:]); !slices.Equal(values(again), want) {
		t.Fatalf("redelivered %v, want %v", values(again), want)
	}
	if extra := fetchN(t, s2, 1, 2*time.Second); len(extra) != 0 {
		t.Fatalf("acknowledged messages came again: %v", values(extra))
	}
	if err := s2.Ack(ctx, again); err != nil {
		t.Fatal(err)
	}
	lag, err := s2.Lag(ctx)
	if err != nil || lag[tenant] != 0 {
		t.Fatalf("lag after every ack: %v %v", lag, err)
	}
	_ = s2.Close()
	s3 := k.source()
	if extra := fetchN(t, s3, 1, 3*time.Second); len(extra) != 0 {
		t.Fatalf("after acking everything, got %v", values(extra))
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	sort.Strings(c)
	return c
}

func TestSourceRetryRedelivers(t *testing.T) {
	k := newKafka(t)
	tenant := k.tenant("a")
	k.createTopic(k.topic(tenant), 2)
	k.produce(k.topic(tenant), "m", 6)
	s := k.source()
	got := fetchN(t, s, 6, 30*time.Second)
	if len(got) != 6 {
		t.Fatalf("fetched %d", len(got))
	}
	ctx := ctxFor(t, 30*time.Second)
	if err := s.Retry(ctx, got[:3]); err != nil {
		t.Fatal(err)
	}
	again := fetchN(t, s, 3, 10*time.Second)
	if !slices.Equal(positions(again), sortedCopy(positions(got[:3]))) {
		t.Fatalf("retried %v, got back %v", positions(got[:3]), positions(again))
	}
	if err := s.Ack(ctx, got); err != nil {
		t.Fatal(err)
	}
	lag, err := s.Lag(ctx)
	if err != nil || lag[tenant] != 0 {
		t.Fatalf("lag %v %v", lag, err)
	}
}

func positions(msgs []*events.Message) []string {
	var p []string
	for _, m := range msgs {
		p = append(p, m.Position)
	}
	sort.Strings(p)
	return p
}

func TestSourcePauseResume(t *testing.T) {
	k := newKafka(t)
	a, b := k.tenant("a"), k.tenant("b")
	k.createTopic(k.topic(a), 1)
	k.createTopic(k.topic(b), 1)
	s := k.source()
	ctx := ctxFor(t, 60*time.Second)

	// Held messages of a paused tenant stay held.
	k.produce(k.topic(a), "a0", 2)
	first := fetchN(t, s, 2, 30*time.Second)
	s.Pause(a)
	if err := s.Retry(ctx, first); err != nil {
		t.Fatal(err)
	}
	k.produce(k.topic(a), "a1", 3)
	k.produce(k.topic(b), "b", 3)
	got := fetchN(t, s, 3, 10*time.Second)
	got = append(got, fetchN(t, s, 1, 2*time.Second)...)
	for _, m := range got {
		if m.Tenant != b {
			t.Fatalf("paused tenant's message delivered: %s", m.Position)
		}
	}
	if len(got) != 3 {
		t.Fatalf("got %d of b's 3 messages", len(got))
	}
	if err := s.Ack(ctx, got); err != nil {
		t.Fatal(err)
	}
	lag, err := s.Lag(ctx)
	if err != nil || lag[a] != 5 || lag[b] != 0 {
		t.Fatalf("lag while paused: %v %v (want a=5 b=0)", lag, err)
	}
	s.Resume(a)
	got = fetchN(t, s, 5, 30*time.Second)
	if want := []string{"a0-0", "a0-1", "a1-0", "a1-1", "a1-2"}; !slices.Equal(values(got), want) {
		t.Fatalf("after resume: %v, want %v", values(got), want)
	}
	if err := s.Ack(ctx, got); err != nil {
		t.Fatal(err)
	}
	if lag, err := s.Lag(ctx); err != nil || lag[a] != 0 {
		t.Fatalf("lag after resume: %v %v", lag, err)
	}
}

func TestSourceDeadLetter(t *testing.T) {
	k := newKafka(t)
	tenant := k.tenant("a")
	k.createTopic(k.topic(tenant), 1)
	k.produce(k.topic(tenant), "m", 3, kgo.RecordHeader{Key: "traceparent", Value: []byte("00-abc-def-01")})
	s := k.source()
	got := fetchN(t, s, 3, 30*time.Second)
	ctx := ctxFor(t, 60*time.Second)
	if err := s.DeadLetter(ctx, got[1], "malformed: unexpected end of JSON input"); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(ctx, []*events.Message{got[0], got[2]}); err != nil {
		t.Fatal(err)
	}
	recs := k.readAll(kgo.ReadUncommitted(), 1, "grey.dlq."+tenant)
	if len(recs) != 1 {
		t.Fatalf("%d dead letters, want 1", len(recs))
	}
	r := recs[0]
	want := map[string]string{
		kafkaevents.HeaderDLQReason:    "malformed: unexpected end of JSON input",
		kafkaevents.HeaderDLQTopic:     k.topic(tenant),
		kafkaevents.HeaderDLQPartition: "0",
		kafkaevents.HeaderDLQOffset:    "1",
		kafkaevents.HeaderDLQPosition:  got[1].Position,
		"traceparent":                  "00-abc-def-01",
	}
	for key, v := range want {
		if g, _ := header(r, key); g != v {
			t.Errorf("header %s = %q, want %q", key, g, v)
		}
	}
	if string(r.Value) != "m-1" || string(r.Key) != "m-1" {
		t.Fatalf("dead letter %q/%q", r.Key, r.Value)
	}
	// Dead-lettering acknowledged the message: nothing comes again.
	_ = s.Close()
	s2 := k.source()
	if again := fetchN(t, s2, 1, 3*time.Second); len(again) != 0 {
		t.Fatalf("redelivered after DLQ and acks: %v", values(again))
	}
}

func TestSourceLag(t *testing.T) {
	k := newKafka(t)
	a := k.tenant("a")
	k.createTopic(k.topic(a), 3)
	k.produce(k.topic(a), "m", 9)
	s := k.source()
	ctx := ctxFor(t, 60*time.Second)
	lag, err := s.Lag(ctx)
	if err != nil || lag[a] != 9 {
		t.Fatalf("lag before consuming: %v %v", lag, err)
	}
	got := fetchN(t, s, 9, 30*time.Second)
	if err := s.Ack(ctx, got[:4]); err != nil {
		t.Fatal(err)
	}
	lag, err = s.Lag(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Acks commit per partition only up to the first gap: the lag is at
	// most 9-4 and at least what the in-order acks allow.
	if lag[a] > 5 || lag[a] < 0 {
		t.Fatalf("lag %d after 4 acks of 9", lag[a])
	}
}

// TestSourceRebalance runs two members of one group: the second's arrival
// takes partitions from the first, whose late acknowledgements of revoked
// partitions are ignored; every message is consumed by one member or the
// other (a message in flight during the rebalance may come to both).
func TestSourceRebalance(t *testing.T) {
	k := newKafka(t)
	a := k.tenant("a")
	k.createTopic(k.topic(a), 4)
	all := k.produce(k.topic(a), "m", 40)
	s1 := k.source()
	ctx := ctxFor(t, 90*time.Second)
	first := fetchN(t, s1, 20, 30*time.Second)
	if err := s1.Ack(ctx, first[:10]); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	record := func(msgs []*events.Message) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			seen[string(m.Value)]++
		}
	}
	covered := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, v := range all {
			if seen[v] == 0 {
				return false
			}
		}
		return true
	}
	record(first[:10])
	s2 := k.source()
	consume := func(s *kafkaevents.Source, got *int) {
		for ctx.Err() == nil && !covered() {
			c, cancel := context.WithTimeout(ctx, time.Second)
			msgs, err := s.Fetch(c, 100)
			cancel()
			if err != nil {
				continue
			}
			_ = s.Ack(ctx, msgs)
			record(msgs)
			*got += len(msgs)
		}
	}
	// The second member alone until the group gave it partitions.
	var n1, n2 int
	for n2 == 0 && ctx.Err() == nil {
		c, cancel := context.WithTimeout(ctx, time.Second)
		msgs, err := s2.Fetch(c, 100)
		cancel()
		if err == nil {
			_ = s2.Ack(ctx, msgs)
			record(msgs)
			n2 += len(msgs)
		}
	}
	// The unacknowledged half of the first fetch is acknowledged late,
	// after the rebalance: what was revoked is not committed by s1 and
	// comes to s2 again.
	if err := s1.Ack(ctx, first[10:]); err != nil {
		t.Fatal(err)
	}
	record(first[10:])
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); consume(s1, &n1) }()
	go func() { defer wg.Done(); consume(s2, &n2) }()
	wg.Wait()
	if !covered() {
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("messages lost in the rebalance: seen %v", seen)
	}
	if n2 == 0 {
		t.Fatal("the second member got nothing: no rebalance happened")
	}
	t.Logf("first member %d more, second %d", n1, n2)
}

func TestUnreachableBrokerIsUnavailable(t *testing.T) {
	u, _ := url.Parse("kafka://127.0.0.1:1/")
	settings := map[string]string{"ping_interval": "300ms", "delivery_timeout": "1s"}
	start := time.Now()
	s, err := kafkaevents.OpenSource(context.Background(), u, events.SourceOptions{Group: "g", Settings: settings})
	if err != nil {
		t.Fatalf("open must not need the broker: %v", err)
	}
	defer s.Close()
	sk, err := kafkaevents.OpenSink(context.Background(), u, events.SinkOptions{Settings: settings})
	if err != nil {
		t.Fatalf("open sink must not need the broker: %v", err)
	}
	defer sk.Close()
	if time.Since(start) > 2*time.Second {
		t.Fatalf("opening took %v", time.Since(start))
	}
	ctx := ctxFor(t, 30*time.Second)
	if _, err := s.Fetch(ctx, 10); !greyerr.Is(err, greyerr.Unavailable) {
		t.Fatalf("fetch = %v, want Unavailable", err)
	}
	lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := s.Lag(lctx); err == nil {
		t.Fatal("lag without a broker succeeded")
	}
	err = sk.Publish(ctx, []events.Event{{Kind: events.Lifecycle, Tenant: "t", Key: "x", Value: []byte("{}")}})
	if !greyerr.Is(err, greyerr.Unavailable) {
		t.Fatalf("publish = %v, want Unavailable", err)
	}
}

func TestSinkPublishes(t *testing.T) {
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			k := newKafka(t)
			tenant := k.tenant("a")
			sk := k.sink(false, kafkaevents.SettingCompression, codec,
				kafkaevents.SettingEventsTopic, "grey.events."+k.run, kafkaevents.SettingPartitions, "2")
			ctx := ctxFor(t, 60*time.Second)
			var evs []events.Event
			for i := 0; i < 20; i++ {
				id := "task-" + strconv.Itoa(i)
				hs := map[string]string{"grey-tenant-id": tenant, "grey-task-id": id, "grey-attempt": "1", "traceparent": "00-t-s-01"}
				evs = append(evs,
					events.Event{Kind: events.Result, Tenant: tenant, Key: id, Value: []byte(`{"id":"` + id + `"}`), Headers: hs},
					events.Event{Kind: events.Lifecycle, Tenant: tenant, Key: id, Value: []byte(`{"state":"succeeded"}`), Headers: hs})
			}
			if err := sk.Publish(ctx, evs); err != nil {
				t.Fatal(err)
			}
			res := k.readAll(kgo.ReadUncommitted(), 20, "grey.results."+tenant)
			life := k.readAll(kgo.ReadUncommitted(), 20, "grey.events."+k.run)
			if len(res) != 20 || len(life) != 20 {
				t.Fatalf("%d results, %d lifecycle events; want 20 each", len(res), len(life))
			}
			parts := map[string]int32{}
			for _, r := range append(res, life...) {
				id, _ := header(r, "grey-task-id")
				if string(r.Key) != id {
					t.Fatalf("key %q, task header %q", r.Key, id)
				}
				if tn, _ := header(r, "grey-tenant-id"); tn != tenant {
					t.Fatalf("tenant header %q", tn)
				}
				if tp, _ := header(r, "traceparent"); tp != "00-t-s-01" {
					t.Fatalf("traceparent %q", tp)
				}
				if r.Topic == "grey.results."+tenant {
					parts[id] = r.Partition
				}
			}
			d, err := k.adm.ListTopics(ctx, "grey.results."+tenant)
			if err != nil || len(d["grey.results."+tenant].Partitions) != 2 {
				t.Fatalf("created topic: %v %v", d, err)
			}
		})
	}
}

func TestSinkRejectsBadEvents(t *testing.T) {
	u, _ := url.Parse("kafka://127.0.0.1:1/")
	sk, err := kafkaevents.OpenSink(context.Background(), u, events.SinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sk.Close()
	ctx := context.Background()
	for _, ev := range []events.Event{
		{Kind: "bogus", Tenant: "t", Key: "k"},
		{Kind: events.Result, Key: "k"},
	} {
		if err := sk.Publish(ctx, []events.Event{ev}); !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Errorf("publish %+v = %v, want InvalidArgument", ev, err)
		}
	}
}

// TestSinkTransactionalExactlyOnce publishes batches in transactions and
// reads them with read_committed: each event once, in order per key.
// A second sink with the same transactional id fences the first (a new
// leader's sink); the first recovers on its next Publish, and nothing
// aborted is ever visible.
func TestSinkTransactionalExactlyOnce(t *testing.T) {
	k := newKafka(t)
	tenant := k.tenant("a")
	txnID := "grey-test-" + k.run
	topicSettings := []string{kafkaevents.SettingTransactionalID, txnID, kafkaevents.SettingEventsTopic, "grey.events." + k.run}
	s1 := k.sink(true, topicSettings...)
	if !s1.Transactional() {
		t.Fatal("sink not transactional")
	}
	ctx := ctxFor(t, 90*time.Second)
	batch := func(from, n int) []events.Event {
		var evs []events.Event
		for i := from; i < from+n; i++ {
			id := fmt.Sprintf("task-%03d", i)
			evs = append(evs, events.Event{Kind: events.Result, Tenant: tenant, Key: id, Value: []byte(id),
				Headers: map[string]string{"grey-task-id": id, "grey-attempt": "1"}})
		}
		return evs
	}
	for b := 0; b < 5; b++ {
		if err := s1.Publish(ctx, batch(b*10, 10)); err != nil {
			t.Fatalf("batch %d: %v", b, err)
		}
	}
	// A new leader's sink takes the transactional id.
	s2 := k.sink(true, topicSettings...)
	if err := s2.Publish(ctx, batch(50, 10)); err != nil {
		t.Fatal(err)
	}
	// The fenced sink fails once, then starts over with a new epoch.
	var fencedErr error
	for i := 0; i < 3; i++ {
		if fencedErr = s1.Publish(ctx, batch(60, 10)); fencedErr == nil {
			break
		}
		t.Logf("fenced sink: %v", fencedErr)
	}
	if fencedErr != nil {
		t.Fatalf("fenced sink never recovered: %v", fencedErr)
	}
	committed := k.readAll(kgo.ReadCommitted(), 70, "grey.results."+tenant)
	count := map[string]int{}
	for _, r := range committed {
		count[string(r.Value)]++
	}
	for i := 0; i < 70; i++ {
		id := fmt.Sprintf("task-%03d", i)
		if count[id] < 1 {
			t.Fatalf("%s not visible to read_committed", id)
		}
		if i < 60 && count[id] != 1 {
			t.Fatalf("%s seen %d times by read_committed", id, count[id])
		}
	}
	if len(committed) > 80 {
		t.Fatalf("%d committed records for 70 events (at most one batch may repeat)", len(committed))
	}
}

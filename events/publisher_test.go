package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/events/eventstest"
	"github.com/grey-distributed/grey/events/memevents"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/relay"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
)

var _ relay.Sink = (*events.Publisher)(nil)

func TestPublisherDeliver(t *testing.T) {
	b := memevents.New()
	sink, _ := b.OpenSink()
	m, _ := events.NewMetrics(prometheus.NewRegistry())
	p, err := events.NewPublisher(sink, events.PublisherOptions{Name: "kafka", Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != "events_kafka" {
		t.Fatalf("Name %q", p.Name())
	}
	done := eventstest.FinishedTask("acme", 0, task.Completed)
	done.ProofID = "abc"
	failed := eventstest.FinishedTask("acme", 1, task.Failed)
	other := eventstest.FinishedTask("globex", 2, task.Cancelled)
	pending := eventstest.FinishedTask("acme", 3, task.Completed)
	pending.Status = task.Running // not finished: never published
	batch := state.FeedBatch{Tasks: []*task.Task{done, failed, other, pending}, Through: 7}
	if err := p.Deliver(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	res := b.Published(events.Result, "acme")
	if len(res) != 2 {
		t.Fatalf("acme results: %d, want 2", len(res))
	}
	var body events.ResultBody
	if err := json.Unmarshal(res[0].Value, &body); err != nil {
		t.Fatal(err)
	}
	if body.TaskID != done.ID || body.TenantID != "acme" || body.Status != task.Completed || body.Attempt != done.Attempt ||
		string(body.Result) != string(done.Result) || body.ProofID != "abc" || body.FinishedAt == nil || body.IdempotencyKey != done.IdempotencyKey {
		t.Errorf("result body %+v", body)
	}
	if res[0].Key != done.ID || res[0].Headers[events.HeaderTaskID] != done.ID || res[0].Headers[events.HeaderTenant] != "acme" ||
		res[0].Headers[events.HeaderAttempt] != "1" || res[0].Headers["traceparent"] != done.Headers["traceparent"] {
		t.Errorf("result event %+v", res[0])
	}
	if err := json.Unmarshal(res[1].Value, &body); err != nil || body.Error == nil || body.Error.Message != "boom" {
		t.Errorf("failed task's result %s", res[1].Value)
	}
	if g := b.Published(events.Result, "globex"); len(g) != 1 || g[0].Headers[events.HeaderTenant] != "globex" {
		t.Errorf("globex results %v", g)
	}
	life := b.Published(events.Lifecycle, "acme")
	if len(life) != 2 {
		t.Fatalf("acme lifecycle events: %d, want 2", len(life))
	}
	var lb events.LifecycleBody
	if life[1].Headers[events.HeaderEvent] != "failed" || life[0].Headers[events.HeaderEvent] != "completed" {
		t.Errorf("lifecycle %s headers %v %v", events.HeaderEvent, life[0].Headers, life[1].Headers)
	}
	if err := json.Unmarshal(life[1].Value, &lb); err != nil || lb.Type != "task.failed" || lb.TaskID != failed.ID {
		t.Errorf("lifecycle %s", life[1].Value)
	}
	if got := testutil.ToFloat64(m.Published("kafka", events.Result)); got != 3 {
		t.Errorf("published results %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.Published("kafka", events.Lifecycle)); got != 3 {
		t.Errorf("published lifecycle %v, want 3", got)
	}
}

func TestPublisherOutage(t *testing.T) {
	b := memevents.New()
	b.SetUnavailable(errors.New("connection refused"))
	opened := 0
	p, err := events.NewPublisherFunc(func(ctx context.Context) (events.SinkDriver, error) {
		opened++
		return b.OpenSink()
	}, events.PublisherOptions{Name: "rabbitmq", NoLifecycle: true, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	batch := state.FeedBatch{Tasks: []*task.Task{eventstest.FinishedTask("acme", 0, task.Completed)}, Through: 3}
	err = p.Deliver(context.Background(), batch)
	if !greyerr.Is(err, greyerr.Unavailable) {
		t.Fatalf("Deliver while the broker is down: %v, want Unavailable (the relay retries)", err)
	}
	if st := p.Status(); st.Failures == 0 || st.LastError == "" {
		t.Errorf("status %+v", st)
	}
	b.SetUnavailable(nil)
	if err := p.Deliver(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	// The same batch again (a new leader resumes from the cursor): a
	// duplicate consumers drop by (task id, attempt).
	if err := p.Deliver(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if n := len(b.Published(events.Result, "acme")); n != 2 {
		t.Fatalf("%d results, want 2 (one per delivery)", n)
	}
	if n := len(b.Published(events.Lifecycle, "acme")); n != 0 {
		t.Fatalf("%d lifecycle events with NoLifecycle", n)
	}
	if st := p.Status(); st.Failures != 0 || !st.Connected {
		t.Errorf("status after recovery %+v", st)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	// A result over MaxResultBytes is left out of the event, saying so.
	big := eventstest.FinishedTask("big", 0, task.Completed)
	big.Result = []byte(`"` + strings.Repeat("r", 2000) + `"`)
	small, _ := events.NewPublisher(func() events.SinkDriver { d, _ := b.OpenSink(); return d }(), events.PublisherOptions{Name: "x", MaxResultBytes: 1000})
	if err := small.Deliver(context.Background(), state.FeedBatch{Tasks: []*task.Task{big}}); err != nil {
		t.Fatal(err)
	}
	var rb events.ResultBody
	if got := b.Published(events.Result, "big"); len(got) != 1 || json.Unmarshal(got[0].Value, &rb) != nil || !rb.ResultOmitted || rb.ResultBytes != 2002 || rb.Result != nil {
		t.Fatalf("big result event %+v", rb)
	}
	if _, err := events.NewPublisherFunc(func(context.Context) (events.SinkDriver, error) { return nil, nil }, events.PublisherOptions{Name: "Bad-Name"}); err == nil {
		t.Error("a sink name that is not a metric name accepted")
	}
}

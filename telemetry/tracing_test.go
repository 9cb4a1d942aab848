package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/grey-distributed/grey/api"
	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/telemetry"
	"github.com/grey-distributed/grey/telemetry/tracing"
	"github.com/grey-distributed/grey/worker"
)

// The client's trace context on the submit request.
const (
	clientTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpanID  = "00f067aa0ba902b7"
	traceparent   = "00-" + clientTraceID + "-" + clientSpanID + "-01"
)

// useRecorder installs an always-sampling (parent-based) SDK provider that
// records spans in memory, for the rest of the test. Tests using it must
// not run in parallel (the provider is global).
func useRecorder(t *testing.T) *tracetest.SpanRecorder {
	t.Helper()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
	otel.SetTracerProvider(tp)
	t.Cleanup(func() {
		otel.SetTracerProvider(noop.NewTracerProvider())
		_ = tp.Shutdown(context.Background())
	})
	if !tracing.Enabled() {
		t.Fatal("tracing.Enabled() is false with an SDK provider installed")
	}
	return sr
}

// seen is what the handler of kind "traced" observed.
type seen struct {
	mu      sync.Mutex
	sc      trace.SpanContext
	baggage baggage.Baggage
	headers map[string]string
}

func (s *seen) get() (trace.SpanContext, baggage.Baggage, map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sc, s.baggage, s.headers
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tracedNode is an engine with the API on an httptest server; kind
// "traced" records what its handler sees and logs through a
// telemetry.NewLogHandler logger.
type tracedNode struct {
	node *greytest.Node
	url  string
	seen *seen
	logs *syncBuffer
	log  *slog.Logger
}

func newTracedNode(t *testing.T) *tracedNode {
	t.Helper()
	n := greytest.NewNode(t, engine.Config{Kinds: []string{"traced"}})
	srv := httptest.NewServer(api.New(n.Engine, api.Options{Logger: greytest.Logger(t)}))
	t.Cleanup(srv.Close)
	logs := &syncBuffer{}
	return &tracedNode{
		node: n, url: srv.URL, seen: &seen{}, logs: logs,
		log: slog.New(telemetry.NewLogHandler(slog.NewTextHandler(logs, nil))),
	}
}

func (n *tracedNode) handlers() map[string]worker.Handler {
	return map[string]worker.Handler{"traced": worker.HandlerFunc(func(ctx context.Context, j *worker.Job) (any, error) {
		n.seen.mu.Lock()
		n.seen.sc = trace.SpanContextFromContext(ctx)
		n.seen.baggage = baggage.FromContext(ctx)
		n.seen.headers = j.Headers
		n.seen.mu.Unlock()
		n.log.InfoContext(ctx, "working")
		return map[string]string{"ok": "yes"}, nil
	})}
}

type submitted struct {
	ID      string            `json:"id"`
	Status  string            `json:"status"`
	Headers map[string]string `json:"headers"`
}

// submit posts one "traced" task for tenant acme with the given extra
// request headers and waits until it is terminal.
func (n *tracedNode) submit(t *testing.T, hdr map[string]string) submitted {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, n.url+"/api/v1/tasks", strings.NewReader(`{"kind":"traced","payload":{"x":1}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(api.TenantHeader, "acme")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("submit: %s %s", resp.Status, body)
	}
	var s submitted
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tk, err := n.node.Engine.Wait(ctx, "acme", s.ID, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if tk.Status != "completed" {
		t.Fatalf("task %s is %s, want completed", s.ID, tk.Status)
	}
	return s
}

func attr(s sdktrace.ReadOnlySpan, k attribute.Key) (string, bool) {
	for _, a := range s.Attributes() {
		if a.Key == k {
			return a.Value.Emit(), true
		}
	}
	return "", false
}

// spansOf waits until the trace holds every name in want, and returns its
// spans by name (the last of each name).
func spansOf(t *testing.T, sr *tracetest.SpanRecorder, traceID string, want ...string) map[string]sdktrace.ReadOnlySpan {
	t.Helper()
	var got map[string]sdktrace.ReadOnlySpan
	deadline := time.Now().Add(10 * time.Second)
	for {
		got = map[string]sdktrace.ReadOnlySpan{}
		for _, s := range sr.Ended() {
			if s.SpanContext().TraceID().String() == traceID {
				got[s.Name()] = s
			}
		}
		missing := []string{}
		for _, w := range want {
			if got[w] == nil {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			names := []string{}
			for n := range got {
				names = append(names, n)
			}
			t.Fatalf("trace %s lacks %v; has %v", traceID, missing, names)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func checkParent(t *testing.T, spans map[string]sdktrace.ReadOnlySpan, child, parent string) {
	t.Helper()
	c, p := spans[child], spans[parent]
	if got, want := c.Parent().SpanID(), p.SpanContext().SpanID(); got != want {
		t.Errorf("%s: parent span %s, want %s (%s)", child, got, want, parent)
	}
}

func checkTaskAttrs(t *testing.T, s sdktrace.ReadOnlySpan, taskID string) {
	t.Helper()
	for k, want := range map[attribute.Key]string{tracing.TenantID: "acme", tracing.TaskID: taskID, tracing.Kind: "traced"} {
		if got, _ := attr(s, k); got != want {
			t.Errorf("%s: %s = %q, want %q", s.Name(), k, got, want)
		}
	}
}

// checkTree asserts the span tree of one task submitted with traceparent:
//
//	client span (remote)
//	└─ POST /api/v1/tasks (server)
//	   └─ grey.submit
//	      ├─ grey.raft.apply (submit)
//	      ├─ grey.lease
//	      │  └─ grey.execute
//	      └─ grey.complete
func checkTree(t *testing.T, n *tracedNode, sr *tracetest.SpanRecorder, s submitted) {
	t.Helper()
	spans := spansOf(t, sr, clientTraceID, "POST /api/v1/tasks", tracing.SpanSubmit, tracing.SpanRaftApply,
		tracing.SpanLease, tracing.SpanExecute, tracing.SpanComplete)
	httpSpan := spans["POST /api/v1/tasks"]
	if httpSpan.SpanKind() != trace.SpanKindServer || httpSpan.Parent().SpanID().String() != clientSpanID || !httpSpan.Parent().IsRemote() {
		t.Errorf("server span: kind %v parent %v (remote %v), want server span under the client's %s",
			httpSpan.SpanKind(), httpSpan.Parent().SpanID(), httpSpan.Parent().IsRemote(), clientSpanID)
	}
	if code, _ := attr(httpSpan, "http.response.status_code"); code != "201" {
		t.Errorf("server span status code %q", code)
	}
	checkParent(t, spans, tracing.SpanSubmit, "POST /api/v1/tasks")
	checkParent(t, spans, tracing.SpanRaftApply, tracing.SpanSubmit)
	checkParent(t, spans, tracing.SpanLease, tracing.SpanSubmit)
	checkParent(t, spans, tracing.SpanExecute, tracing.SpanLease)
	checkParent(t, spans, tracing.SpanComplete, tracing.SpanExecute)
	for _, name := range []string{tracing.SpanSubmit, tracing.SpanLease, tracing.SpanExecute, tracing.SpanComplete} {
		checkTaskAttrs(t, spans[name], s.ID)
	}
	if mt, _ := attr(spans[tracing.SpanRaftApply], tracing.RaftMsgType); mt != "submit" {
		t.Errorf("grey.raft.apply msg_type %q, want submit", mt)
	}
	if st, _ := attr(spans[tracing.SpanComplete], tracing.Status); st != "completed" {
		t.Errorf("grey.complete status %q", st)
	}
	// In time order.
	order := []string{tracing.SpanSubmit, tracing.SpanLease, tracing.SpanExecute, tracing.SpanComplete}
	for i := 1; i < len(order); i++ {
		if spans[order[i]].StartTime().Before(spans[order[i-1]].StartTime()) {
			t.Errorf("%s starts before %s", order[i], order[i-1])
		}
	}

	// The stored task carries the submit span's context and the client's
	// baggage.
	if tp := s.Headers[tracing.HeaderTraceparent]; tp != "00-"+clientTraceID+"-"+spans[tracing.SpanSubmit].SpanContext().SpanID().String()+"-01" {
		t.Errorf("stored traceparent %q, want the grey.submit span's", tp)
	}
	if b := s.Headers[tracing.HeaderBaggage]; b != "user=alice" {
		t.Errorf("stored baggage %q, want user=alice", b)
	}
	// The handler ran inside grey.execute, with the baggage and the tenant.
	sc, bag, _ := n.seen.get()
	if sc.SpanID() != spans[tracing.SpanExecute].SpanContext().SpanID() {
		t.Errorf("handler's span %s, want grey.execute's %s", sc.SpanID(), spans[tracing.SpanExecute].SpanContext().SpanID())
	}
	if bag.Member(tracing.BaggageTenant).Value() != "acme" || bag.Member("user").Value() != "alice" {
		t.Errorf("handler's baggage %q", bag.String())
	}
	// Its log line names the trace, the span and the task.
	line := n.logs.String()
	for _, want := range []string{"trace_id=" + clientTraceID, "span_id=" + sc.SpanID().String(), "tenant_id=acme", "task_id=" + s.ID} {
		if !strings.Contains(line, want) {
			t.Errorf("handler log %q lacks %s", line, want)
		}
	}
}

// TestTraceOfOneTask: a submit carrying a traceparent yields one trace
// from the API through Raft, the lease, the in-process worker's execution
// and the completion.
func TestTraceOfOneTask(t *testing.T) {
	sr := useRecorder(t)
	n := newTracedNode(t)
	n.node.StartWorkers(t, worker.Options{Concurrency: 2}, n.handlers())
	s := n.submit(t, map[string]string{"traceparent": traceparent, "baggage": "user=alice"})
	checkTree(t, n, sr, s)
}

// TestTraceOfOneTaskRemoteWorker: the same through a worker that leases
// over HTTP (the Go client): the trace context travels in
// Assignment.Headers.
func TestTraceOfOneTaskRemoteWorker(t *testing.T) {
	sr := useRecorder(t)
	n := newTracedNode(t)
	c, err := client.New(n.url)
	if err != nil {
		t.Fatal(err)
	}
	p := worker.NewPool(c, worker.Options{Concurrency: 2, LeaseWait: time.Second, Logger: greytest.Logger(t)})
	for k, h := range n.handlers() {
		p.Handle(k, h)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	s := n.submit(t, map[string]string{"traceparent": traceparent, "baggage": "user=alice"})
	checkTree(t, n, sr, s)
	// The lease span links to the worker's lease request (its own trace).
	spans := spansOf(t, sr, clientTraceID, tracing.SpanLease)
	links := spans[tracing.SpanLease].Links()
	if len(links) != 1 || !links[0].SpanContext.IsValid() || links[0].SpanContext.TraceID().String() == clientTraceID {
		t.Errorf("grey.lease links %+v, want the lease request's span", links)
	}
	if w, _ := attr(spans[tracing.SpanLease], tracing.WorkerID); w != p.WorkerID() {
		t.Errorf("grey.lease worker %q, want %q", w, p.WorkerID())
	}
}

// TestTraceBatchSubmit: every task of a batch joins the submit's trace.
func TestTraceBatchSubmit(t *testing.T) {
	sr := useRecorder(t)
	n := newTracedNode(t)
	n.node.StartWorkers(t, worker.Options{Concurrency: 4}, n.handlers())
	req, _ := http.NewRequest(http.MethodPost, n.url+"/api/v1/tasks/batch",
		strings.NewReader(`{"tasks":[{"kind":"traced"},{"kind":"traced"},{"kind":"traced","headers":{"traceparent":"00-11111111111111111111111111111111-2222222222222222-01"}}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", traceparent)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Tasks []submitted }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Tasks) != 3 {
		t.Fatalf("batch: %s %v %+v", resp.Status, err, out)
	}
	spans := spansOf(t, sr, clientTraceID, tracing.SpanSubmit)
	if c, _ := attr(spans[tracing.SpanSubmit], tracing.TaskCount); c != "3" {
		t.Errorf("grey.submit task_count %q", c)
	}
	want := "00-" + clientTraceID + "-" + spans[tracing.SpanSubmit].SpanContext().SpanID().String() + "-01"
	for i, tk := range out.Tasks[:2] {
		if got := tk.Headers[tracing.HeaderTraceparent]; got != want {
			t.Errorf("task %d traceparent %q, want %q", i, got, want)
		}
	}
	// A spec's own traceparent wins.
	if got := out.Tasks[2].Headers[tracing.HeaderTraceparent]; got != "00-11111111111111111111111111111111-2222222222222222-01" {
		t.Errorf("task 2 traceparent %q, want its own", got)
	}
	// Three executions in the client's trace, each under its own lease.
	greytest.Eventually(t, 10*time.Second, func() bool {
		leases := map[trace.SpanID]bool{}
		execs := 0
		for _, s := range sr.Ended() {
			if s.SpanContext().TraceID().String() != clientTraceID {
				continue
			}
			switch s.Name() {
			case tracing.SpanLease:
				leases[s.SpanContext().SpanID()] = true
			case tracing.SpanExecute:
				if leases[s.Parent().SpanID()] {
					execs++
				}
			}
		}
		return execs == 2
	})
}

// TestTracingOffPassesContextThrough: with no provider installed nothing
// is recorded, but a client's traceparent still reaches the handler
// unchanged, and a submit without one stores no trace headers.
func TestTracingOffPassesContextThrough(t *testing.T) {
	otel.SetTracerProvider(noop.NewTracerProvider())
	if tracing.Enabled() {
		t.Fatal("tracing.Enabled() with the no-op provider")
	}
	n := newTracedNode(t)
	n.node.StartWorkers(t, worker.Options{Concurrency: 2}, n.handlers())

	s := n.submit(t, map[string]string{"traceparent": traceparent})
	if got := s.Headers[tracing.HeaderTraceparent]; got != traceparent {
		t.Errorf("stored traceparent %q, want the client's %q", got, traceparent)
	}
	if got, ok := s.Headers[tracing.HeaderBaggage]; ok {
		t.Errorf("stored baggage %q, want none", got)
	}
	sc, bag, _ := n.seen.get()
	if sc.TraceID().String() != clientTraceID || sc.SpanID().String() != clientSpanID {
		t.Errorf("handler's span context %v, want the client's", sc)
	}
	if bag.Member(tracing.BaggageTenant).Value() != "acme" {
		t.Errorf("handler's baggage %q", bag.String())
	}

	s = n.submit(t, nil)
	if len(s.Headers) != 0 {
		t.Errorf("untraced submit stored headers %v", s.Headers)
	}
	if _, _, h := n.seen.get(); len(h) != 0 {
		t.Errorf("untraced assignment headers %v", h)
	}
}

func TestOTLPProtocol(t *testing.T) {
	for _, tc := range []struct{ endpoint, want string }{
		{"http://collector:4317", telemetry.ProtocolGRPC},
		{"https://collector", telemetry.ProtocolGRPC},
		{"http://collector:4318", telemetry.ProtocolHTTP},
		{"https://collector:4318/", telemetry.ProtocolHTTP},
		{"https://otlp.example.com/v1/traces", telemetry.ProtocolHTTP},
		{"http://127.0.0.1:14318/v1/traces/", telemetry.ProtocolHTTP},
		{"http://127.0.0.1:14317", telemetry.ProtocolGRPC},
	} {
		got, err := telemetry.OTLPProtocol(tc.endpoint)
		if err != nil || got != tc.want {
			t.Errorf("OTLPProtocol(%q) = %q, %v; want %q", tc.endpoint, got, err, tc.want)
		}
	}
	for _, bad := range []string{"collector:4317", "grpc://collector:4317", "/v1/traces"} {
		if _, err := telemetry.OTLPProtocol(bad); err == nil {
			t.Errorf("OTLPProtocol(%q): no error", bad)
		}
	}
}

func TestSetupTracing(t *testing.T) {
	otel.SetTracerProvider(noop.NewTracerProvider())
	// No endpoint: off, nothing global changes.
	before := otel.GetTracerProvider()
	stop, err := telemetry.SetupTracing(context.Background(), telemetry.TracingOptions{SampleRate: 1})
	if err != nil || otel.GetTracerProvider() != before || tracing.Enabled() {
		t.Fatalf("SetupTracing without endpoint: %v, provider changed %v", err, otel.GetTracerProvider() != before)
	}
	if err := stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, o := range []telemetry.TracingOptions{
		{Endpoint: "collector:4317"},
		{Endpoint: "http://collector:4317", Protocol: "thrift"},
		{Endpoint: "http://collector:4317", SampleRate: 2},
	} {
		if _, err := telemetry.SetupTracing(context.Background(), o); err == nil {
			t.Errorf("SetupTracing(%+v): no error", o)
		}
	}
	// Both protocols install a provider; shutdown restores a no-op one.
	// Nothing listens on the port: the export fails, quietly, at flush.
	for _, proto := range []string{telemetry.ProtocolGRPC, telemetry.ProtocolHTTP} {
		stop, err := telemetry.SetupTracing(context.Background(), telemetry.TracingOptions{Endpoint: "http://127.0.0.1:1", Protocol: proto, SampleRate: 0.5, NodeID: "n1"})
		if err != nil {
			t.Fatalf("%s: %v", proto, err)
		}
		if !tracing.Enabled() {
			t.Errorf("%s: tracing not enabled", proto)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_ = stop(ctx) // the flush of nothing succeeds; a failed export is only logged
		cancel()
		if tracing.Enabled() {
			t.Errorf("%s: tracing still enabled after shutdown", proto)
		}
	}
}

func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "test")
	tid, _ := trace.TraceIDFromHex(clientTraceID)
	sid, _ := trace.SpanIDFromHex(clientSpanID)
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	ctx = tracing.WithTask(ctx, "acme", "task-1")

	decode := func() map[string]any {
		var m map[string]any
		if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
			t.Fatalf("%v: %s", err, buf.Bytes())
		}
		buf.Reset()
		return m
	}
	log.InfoContext(ctx, "hello")
	m := decode()
	for k, want := range map[string]string{"trace_id": clientTraceID, "span_id": clientSpanID, "tenant_id": "acme", "task_id": "task-1", "component": "test"} {
		if m[k] != want {
			t.Errorf("%s = %v, want %s (%v)", k, m[k], want, m)
		}
	}
	// Attributes the call names are not repeated.
	log.InfoContext(ctx, "explicit", "task_id", "task-2")
	line := buf.String()
	if strings.Count(line, "task_id") != 1 || !strings.Contains(line, `"task_id":"task-2"`) {
		t.Errorf("explicit task_id: %s", line)
	}
	buf.Reset()
	// No context: nothing added.
	log.Info("plain")
	m = decode()
	if _, ok := m["trace_id"]; ok {
		t.Errorf("trace_id without a context: %v", m)
	}
	log.WithGroup("g").InfoContext(ctx, "grouped", "a", 1)
	if line := buf.String(); !strings.Contains(line, clientTraceID) {
		t.Errorf("grouped: %s", line)
	}
}

// TestUnsampledTraceRecordsNothing: a submit whose traceparent says "not
// sampled" records no Grey span anywhere (parent-based sampling, and the
// leader and worker skip the spans), yet the handler still sees the
// client's trace.
func TestUnsampledTraceRecordsNothing(t *testing.T) {
	sr := useRecorder(t)
	n := newTracedNode(t)
	n.node.StartWorkers(t, worker.Options{Concurrency: 2}, n.handlers())
	s := n.submit(t, map[string]string{"traceparent": "00-" + clientTraceID + "-" + clientSpanID + "-00"})
	if tp := s.Headers[tracing.HeaderTraceparent]; !strings.HasPrefix(tp, "00-"+clientTraceID+"-") || !strings.HasSuffix(tp, "-00") {
		t.Errorf("stored traceparent %q, want the client's trace, not sampled", tp)
	}
	sc, bag, _ := n.seen.get()
	if sc.TraceID().String() != clientTraceID || sc.IsSampled() {
		t.Errorf("handler's span context %v", sc)
	}
	if bag.Member(tracing.BaggageTenant).Value() != "acme" {
		t.Errorf("handler's baggage %q", bag.String())
	}
	time.Sleep(100 * time.Millisecond) // let the completion be applied
	for _, sp := range sr.Ended() {
		if sp.SpanContext().TraceID().String() == clientTraceID && sp.SpanContext().IsSampled() {
			t.Errorf("span %s recorded in an unsampled trace", sp.Name())
		}
	}
}

// TestUnsampledRootStoresNothing: with tracing on, a submit without a
// traceparent whose new trace is not sampled stores no trace context, and
// its task gets no spans (the cost of tracing stays with sampled tasks).
func TestUnsampledRootStoresNothing(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
	otel.SetTracerProvider(tp)
	t.Cleanup(func() {
		otel.SetTracerProvider(noop.NewTracerProvider())
		_ = tp.Shutdown(context.Background())
	})
	n := newTracedNode(t)
	n.node.StartWorkers(t, worker.Options{Concurrency: 2}, n.handlers())
	s := n.submit(t, nil)
	if len(s.Headers) != 0 {
		t.Errorf("stored headers %v, want none", s.Headers)
	}
	if sc, _, h := n.seen.get(); sc.IsValid() || len(h) != 0 {
		t.Errorf("handler saw span context %v, headers %v", sc, h)
	}
	time.Sleep(100 * time.Millisecond)
	if spans := sr.Ended(); len(spans) != 0 {
		t.Errorf("%d spans recorded, first %s", len(spans), spans[0].Name())
	}
}

// Package tracing holds what Grey's packages share to emit OpenTelemetry
// spans (issue #6): the tracer, span names, attribute keys, the W3C
// propagator (TraceContext + Baggage), helpers that carry a trace context
// in a task's headers, the HTTP server middleware and the task ids a
// context carries for logs.
//
// It depends on the OpenTelemetry API only, so that low-level packages
// (cluster, worker, the client's worker SDK) can use it; the SDK, the OTLP
// exporters and their set-up live in package telemetry
// (telemetry.SetupTracing).
//
// Spans go to the global TracerProvider (otel.SetTracerProvider). While it
// is the OpenTelemetry default (nothing set) or a no-op provider, tracing
// is off: [Enabled] is false and [Start] creates no span, but a trace
// context that arrived with a request still flows into the task headers,
// so a client's trace reaches the worker's handler.
package tracing

import (
	"context"
	"reflect"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of Grey's spans.
const ScopeName = "github.com/grey-distributed/grey"

// Span names.
const (
	// SpanSubmit covers engine.Submit: validation, admission and the Raft
	// write of one submit (a single task or a batch).
	SpanSubmit = "grey.submit"
	// SpanRaftApply covers one cluster.Apply or cluster.ApplyBatch
	// (replication and the FSM apply on the leader); created only inside a
	// trace.
	SpanRaftApply = "grey.raft.apply"
	// SpanLease is one leased task on the leader: from the scheduler's take
	// to the granted lease, child of the task's stored trace context.
	SpanLease = "grey.lease"
	// SpanExecute covers a task's handler in the worker pool.
	SpanExecute = "grey.execute"
	// SpanComplete is a worker's outcome report for a task as applied on
	// the leader.
	SpanComplete = "grey.complete"
)

// Attribute keys.
const (
	TenantID    = attribute.Key("grey.tenant_id")
	TaskID      = attribute.Key("grey.task_id")
	Kind        = attribute.Key("grey.kind")
	Attempt     = attribute.Key("grey.attempt")
	WorkerID    = attribute.Key("grey.worker_id")
	Status      = attribute.Key("grey.status")
	TaskCount   = attribute.Key("grey.task_count")
	RaftMsgType = attribute.Key("grey.raft.msg_type")
	Accepted    = attribute.Key("grey.accepted")
	Reason      = attribute.Key("grey.reason")
	ErrorCode   = attribute.Key("grey.error_code")
)

// BaggageTenant is the baggage member naming the task's tenant.
const BaggageTenant = "grey.tenant_id"

// Task header keys that carry the trace context (W3C Trace Context and
// Baggage, lower case as the propagators write them).
const (
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
	HeaderBaggage     = "baggage"
)

// Propagator is W3C Trace Context + Baggage. Grey uses it explicitly (not
// the global one, which is a no-op until set) so that trace contexts flow
// through the API and task headers even when tracing is off.
var Propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

var defaultProvider = otel.GetTracerProvider()

// Enabled reports whether spans are recorded: a TracerProvider other than
// OpenTelemetry's default and the no-op one is installed globally.
func Enabled() bool {
	tp := otel.GetTracerProvider()
	if tp == defaultProvider {
		return false
	}
	switch tp.(type) {
	case noop.TracerProvider, *noop.TracerProvider:
		return false
	}
	return true
}

type cachedTracer struct {
	tp trace.TracerProvider
	t  trace.Tracer
}

var tracerCache atomic.Pointer[cachedTracer]

// Tracer returns Grey's tracer from the global TracerProvider (re-read when
// the provider changes).
func Tracer() trace.Tracer {
	tp := otel.GetTracerProvider()
	if c := tracerCache.Load(); c != nil && c.tp == tp {
		return c.t
	}
	t := tp.Tracer(ScopeName)
	if reflect.TypeOf(tp).Comparable() {
		tracerCache.Store(&cachedTracer{tp: tp, t: t})
	}
	return t
}

var noopSpan trace.Span = noop.Span{}

// Start starts a span when tracing is [Enabled]. When it is off it returns
// ctx unchanged and a no-op span, so the cost is one atomic load; ctx still
// carries any incoming span context (use trace.SpanContextFromContext(ctx),
// not the span's, to propagate it).
func Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !Enabled() {
		return ctx, noopSpan
	}
	return Tracer().Start(ctx, name, opts...)
}

// Extract returns ctx with the trace context and baggage found in headers
// (task headers or an Assignment's); ctx unchanged when there is none.
func Extract(ctx context.Context, headers map[string]string) context.Context {
	if headers[HeaderTraceparent] == "" && headers[HeaderBaggage] == "" {
		return ctx
	}
	return Propagator.Extract(ctx, propagation.MapCarrier(headers))
}

var traceContext = propagation.TraceContext{}

// ExtractTrace is Extract without the baggage (cheaper: for spans that
// only need their parent).
func ExtractTrace(ctx context.Context, headers map[string]string) context.Context {
	if headers[HeaderTraceparent] == "" {
		return ctx
	}
	return traceContext.Extract(ctx, propagation.MapCarrier(headers))
}

// UnsampledHeaders reports whether headers carry a well-formed version-00
// traceparent whose sampled flag is off, without parsing it all (the
// leader checks every leased and completed task).
func UnsampledHeaders(headers map[string]string) bool {
	tp := headers[HeaderTraceparent]
	if len(tp) != 55 || tp[0] != '0' || tp[1] != '0' || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' {
		return false
	}
	// Flags 00, or 02 (random trace id, W3C level 2): not sampled. Anything
	// else is left to the propagator.
	return tp[53] == '0' && (tp[54] == '0' || tp[54] == '2')
}

// Unsampled reports whether ctx carries a valid span context whose trace
// is not sampled. Grey's sampler is parent-based, so a child span would
// not be recorded either: callers skip creating it.
func Unsampled(ctx context.Context) bool {
	sc := trace.SpanContextFromContext(ctx)
	return sc.IsValid() && !sc.IsSampled()
}

// HasTraceContext reports whether headers carry a traceparent.
func HasTraceContext(headers map[string]string) bool {
	return headers[HeaderTraceparent] != ""
}

// Inject writes ctx's trace context and baggage (traceparent, tracestate,
// baggage) into headers, which must not be nil.
func Inject(ctx context.Context, headers map[string]string) {
	Propagator.Inject(ctx, propagation.MapCarrier(headers))
}

// tenantBaggage caches the baggage holding only grey.tenant_id, per tenant.
var (
	tenantBaggage sync.Map // tenant → baggage.Baggage
	tenantCount   atomic.Int64
)

// WithTenantBaggage returns ctx with the grey.tenant_id baggage member set
// to tenant (other members are kept).
func WithTenantBaggage(ctx context.Context, tenant string) context.Context {
	cur := baggage.FromContext(ctx)
	if cur.Len() == 0 {
		if b, ok := tenantBaggage.Load(tenant); ok {
			return baggage.ContextWithBaggage(ctx, b.(baggage.Baggage))
		}
	}
	m, err := baggage.NewMemberRaw(BaggageTenant, tenant)
	if err != nil {
		return ctx
	}
	b, err := cur.SetMember(m)
	if err != nil {
		return ctx
	}
	if cur.Len() == 0 && tenantCount.Load() < 10000 {
		if _, loaded := tenantBaggage.LoadOrStore(tenant, b); !loaded {
			tenantCount.Add(1)
		}
	}
	return baggage.ContextWithBaggage(ctx, b)
}

// TaskAttrs are the attributes naming a task.
func TaskAttrs(tenant, taskID, kind string) []attribute.KeyValue {
	return []attribute.KeyValue{TenantID.String(tenant), TaskID.String(taskID), Kind.String(kind)}
}

type taskKey struct{}

// taskCtx is a context naming the task it works for: one allocation
// where context.WithValue would take two (the value boxed, then the
// context), on every task a worker runs.
type taskCtx struct {
	context.Context
	tenant, task string
}

// Value implements context.Context.
func (c *taskCtx) Value(key any) any {
	if key == (taskKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// WithTask returns ctx naming the tenant and task it works for; the log
// handler of telemetry.NewLogHandler adds them to records logged with ctx.
func WithTask(ctx context.Context, tenant, taskID string) context.Context {
	return &taskCtx{Context: ctx, tenant: tenant, task: taskID}
}

// TaskFromContext returns the tenant and task set by WithTask.
func TaskFromContext(ctx context.Context) (tenant, taskID string, ok bool) {
	c, ok := ctx.Value(taskKey{}).(*taskCtx)
	if !ok {
		return "", "", false
	}
	return c.tenant, c.task, true
}

// SubmitHeaders returns the headers a submit adds to each task it stores:
// ctx's trace context (the submit span: traceparent, tracestate) and the
// baggage that came with the request; add them with AddHeaders. It returns
// nil, and tasks carry no trace context, when ctx holds no valid span
// context (tracing off and no incoming traceparent), or when tracing is on
// and the submit's trace is not sampled and did not come from the client
// (no traceparent on the request): then no span of the task would be
// recorded anyway, and storing the context would only cost. The
// grey.tenant_id baggage member is not stored (the task names its tenant);
// the worker pool adds it to the handler's context.
func SubmitHeaders(ctx context.Context) map[string]string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() || (!sc.IsSampled() && !FromClient(ctx) && Enabled()) {
		return nil
	}
	h := make(map[string]string, 3)
	Inject(ctx, h)
	return h
}

type clientKey struct{}

// withClientTrace marks ctx as carrying a trace context that came with the
// request (Handler).
func withClientTrace(ctx context.Context) context.Context {
	return context.WithValue(ctx, clientKey{}, true)
}

// FromClient reports whether ctx's request carried a traceparent.
func FromClient(ctx context.Context) bool {
	v, _ := ctx.Value(clientKey{}).(bool)
	return v
}

// AddHeaders returns headers with add's entries for the keys headers does
// not have, in a new map; headers itself when add is empty or headers
// already carry a traceparent (the client's own choice of parent wins).
// Neither map is written.
func AddHeaders(headers, add map[string]string) map[string]string {
	if len(add) == 0 || HasTraceContext(headers) {
		return headers
	}
	out := make(map[string]string, len(headers)+len(add))
	for k, v := range add {
		out[k] = v
	}
	for k, v := range headers {
		out[k] = v
	}
	return out
}

// End ends span, marking it failed with err's message when err is not nil.
func End(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

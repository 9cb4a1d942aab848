package tracing_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"

	"github.com/grey-distributed/grey/telemetry/tracing"
)

func TestUnsampledHeaders(t *testing.T) {
	const id = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-"
	for tp, want := range map[string]bool{
		id + "00": true,
		id + "02": true,
		id + "0a": false, // left to the propagator
		id + "01": false,
		id + "03": false,
		id + "0f": false,
		id + "0":  false, // malformed: let the propagator decide
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00": false,
		"": false,
	} {
		if got := tracing.UnsampledHeaders(map[string]string{"traceparent": tp}); got != want {
			t.Errorf("UnsampledHeaders(%q) = %v, want %v", tp, got, want)
		}
		ctx := tracing.ExtractTrace(context.Background(), map[string]string{"traceparent": tp})
		if want && !tracing.Unsampled(ctx) {
			t.Errorf("%q: Unsampled(ctx) disagrees", tp)
		}
	}
}

func TestHeadersHelpers(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	if h := tracing.SubmitHeaders(context.Background()); h != nil {
		t.Errorf("SubmitHeaders without a span context: %v", h)
	}
	m, _ := baggage.NewMember("user", "alice")
	b, _ := baggage.New(m)
	add := tracing.SubmitHeaders(baggage.ContextWithBaggage(ctx, b))
	if add["traceparent"] != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" || add["baggage"] != "user=alice" {
		t.Errorf("SubmitHeaders: %v", add)
	}
	own := map[string]string{"x": "1"}
	got := tracing.AddHeaders(own, add)
	if len(own) != 1 || got["x"] != "1" || got["traceparent"] == "" {
		t.Errorf("AddHeaders: %v (caller's map %v)", got, own)
	}
	mine := map[string]string{"traceparent": "00-11111111111111111111111111111111-2222222222222222-01"}
	if got := tracing.AddHeaders(mine, add); len(got) != 1 {
		t.Errorf("AddHeaders over a spec's own traceparent: %v", got)
	}
	// Tenant baggage: cached for contexts without baggage, merged otherwise.
	for i := 0; i < 2; i++ {
		if v := baggage.FromContext(tracing.WithTenantBaggage(context.Background(), "acme")).Member("grey.tenant_id").Value(); v != "acme" {
			t.Errorf("WithTenantBaggage: %q", v)
		}
	}
	bc := baggage.FromContext(tracing.WithTenantBaggage(baggage.ContextWithBaggage(ctx, b), "acme"))
	if bc.Member("grey.tenant_id").Value() != "acme" || bc.Member("user").Value() != "alice" {
		t.Errorf("WithTenantBaggage merged: %s", bc)
	}
}

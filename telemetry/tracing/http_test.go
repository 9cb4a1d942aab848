package tracing_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/grey-distributed/grey/telemetry/tracing"
)

const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// serve runs one request through outer(tracing.Handler(mux)) and returns
// the pattern the outer middleware saw and the span context the route saw.
func serve(t *testing.T, header map[string]string, path string) (pattern string, sc trace.SpanContext, code int) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) {
		sc = trace.SpanContextFromContext(r.Context())
		w.WriteHeader(http.StatusTeapot)
	})
	h := tracing.Handler(mux)
	outer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		pattern = r.Pattern
	})
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	outer.ServeHTTP(rec, req)
	return pattern, sc, rec.Code
}

func TestHandlerOff(t *testing.T) {
	otel.SetTracerProvider(noop.NewTracerProvider())
	pattern, sc, code := serve(t, map[string]string{"traceparent": tp}, "/things/1")
	if pattern != "GET /things/{id}" || code != http.StatusTeapot {
		t.Errorf("pattern %q code %d", pattern, code)
	}
	if sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || !sc.IsRemote() {
		t.Errorf("route's span context %v, want the caller's", sc)
	}
	pattern, sc, _ = serve(t, nil, "/things/1")
	if pattern != "GET /things/{id}" || sc.IsValid() {
		t.Errorf("no traceparent: pattern %q span context %v", pattern, sc)
	}
}

func TestHandlerOn(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	prov := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	otel.SetTracerProvider(prov)
	defer func() {
		otel.SetTracerProvider(noop.NewTracerProvider())
		_ = prov.Shutdown(context.Background())
	}()
	pattern, sc, _ := serve(t, map[string]string{"traceparent": tp}, "/things/1")
	if pattern != "GET /things/{id}" {
		t.Errorf("pattern %q", pattern)
	}
	spans := sr.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	s := spans[0]
	if s.Name() != "GET /things/{id}" || s.SpanKind() != trace.SpanKindServer || !s.SpanContext().Equal(sc) || s.Parent().SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("span %q kind %v ctx %v parent %v", s.Name(), s.SpanKind(), s.SpanContext(), s.Parent())
	}
	got := map[string]string{}
	for _, a := range s.Attributes() {
		got[string(a.Key)] = a.Value.Emit()
	}
	if got["http.route"] != "/things/{id}" || got["http.response.status_code"] != "418" || got["http.request.method"] != "GET" {
		t.Errorf("attributes %v", got)
	}
	// Probes get no span; unmatched routes are named by the method.
	serve(t, nil, "/healthz")
	serve(t, nil, "/nowhere")
	spans = sr.Ended()
	if len(spans) != 2 || spans[1].Name() != "GET" {
		names := []string{}
		for _, s := range spans {
			names = append(names, s.Name())
		}
		t.Errorf("spans %v, want one more named GET", names)
	}
}

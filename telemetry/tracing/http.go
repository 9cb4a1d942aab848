package tracing

import (
	"github.com/grey-distributed/grey/internal/httpstatus"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Handler wraps an HTTP handler (the API): it extracts the W3C trace
// context and baggage of each request and, while tracing is [Enabled],
// serves it inside a server span named "METHOD pattern" (the ServeMux
// pattern that matched, set on the request by a Go 1.22+ mux; "METHOD"
// alone when none did). Health and readiness probes get no span. With
// tracing off an incoming context is still put into the request's context
// (so engine.Submit stores it with the task); requests without one pass
// through untouched.
func Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		h := r.Header
		if !Enabled() {
			if h.Get(HeaderTraceparent) == "" && h.Get(HeaderBaggage) == "" {
				next.ServeHTTP(w, r)
				return
			}
			r2 := r.WithContext(withClientTrace(Propagator.Extract(r.Context(), propagation.HeaderCarrier(h))))
			next.ServeHTTP(w, r2)
			r.Pattern = r2.Pattern // for outer middleware (metrics route labels)
			return
		}
		ctx := Propagator.Extract(r.Context(), propagation.HeaderCarrier(h))
		if trace.SpanContextFromContext(ctx).IsValid() {
			ctx = withClientTrace(ctx)
		}
		attrs := []attribute.KeyValue{
			attribute.String("http.request.method", r.Method),
			attribute.String("url.path", r.URL.Path),
			attribute.String("url.scheme", scheme(r)),
			attribute.String("server.address", r.Host),
			attribute.String("network.peer.address", r.RemoteAddr),
		}
		if ua := r.UserAgent(); ua != "" {
			attrs = append(attrs, attribute.String("user_agent.original", ua))
		}
		if t := r.Header.Get("X-Grey-Tenant"); t != "" {
			attrs = append(attrs, TenantID.String(t))
		} else if m := baggage.FromContext(ctx).Member(BaggageTenant); m.Key() != "" {
			attrs = append(attrs, TenantID.String(m.Value()))
		}
		ctx, span := Tracer().Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
		defer span.End()
		sw := httpstatus.Wrap(w)
		orig := r
		r = r.WithContext(ctx)
		defer func() {
			orig.Pattern = r.Pattern // for outer middleware (metrics route labels)
			if r.Pattern != "" {
				span.SetName(r.Method + " " + patternPath(r.Pattern))
				span.SetAttributes(attribute.String("http.route", patternPath(r.Pattern)))
			}
			code := sw.Code()
			if p := recover(); p != nil {
				span.SetStatus(codes.Error, "panic")
				panic(p)
			}
			if code == 0 {
				code = http.StatusOK
			}
			span.SetAttributes(attribute.Int("http.response.status_code", code))
			if code >= 500 {
				span.SetStatus(codes.Error, strconv.Itoa(code))
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// patternPath drops the method of a "METHOD /path" pattern.
func patternPath(p string) string {
	for i := 0; i < len(p); i++ {
		if p[i] == ' ' {
			return p[i+1:]
		}
		if p[i] == '/' {
			break
		}
	}
	return p
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/telemetry/tracing"
)

// OTLP protocols of TracingOptions.Protocol (monitoring.opentelemetry.protocol).
const (
	// ProtocolGRPC is OTLP over gRPC (collector port 4317).
	ProtocolGRPC = "grpc"
	// ProtocolHTTP is OTLP over HTTP with protobuf bodies (port 4318,
	// path /v1/traces).
	ProtocolHTTP = "http"
)

// TracingOptions configure SetupTracing.
type TracingOptions struct {
	// Endpoint is the OTLP collector URL, http:// or https:// (https uses
	// TLS); "" turns tracing off.
	Endpoint string
	// Protocol is ProtocolGRPC or ProtocolHTTP; "" picks one from Endpoint
	// (see OTLPProtocol).
	Protocol string
	// SampleRate is the fraction of new traces sampled, 0 to 1 (parent-based:
	// a span whose parent was sampled, or not, follows its parent).
	SampleRate float64
	// ServiceName is the service.name resource attribute (default "greyd").
	ServiceName string
	// NodeID is the service.instance.id resource attribute.
	NodeID string
	// BatchTimeout is the longest a finished span waits before export
	// (default 5s; tests use less).
	BatchTimeout time.Duration
}

// OTLPProtocol returns the protocol SetupTracing uses for endpoint when
// no protocol is configured: HTTP when the URL's port is 4318 or its path
// ends in /v1/traces, gRPC otherwise (the collector's gRPC port is 4317).
func OTLPProtocol(endpoint string) (string, error) {
	u, err := parseEndpoint(endpoint)
	if err != nil {
		return "", err
	}
	if u.Port() == "4318" || strings.HasSuffix(strings.TrimRight(u.Path, "/"), "/v1/traces") {
		return ProtocolHTTP, nil
	}
	return ProtocolGRPC, nil
}

func parseEndpoint(endpoint string) (*url.URL, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("opentelemetry endpoint must be an http:// or https:// URL such as http://collector:4317, got %q", endpoint)
	}
	return u, nil
}

// SetupTracing installs a global OpenTelemetry TracerProvider that exports
// Grey's spans over OTLP (gRPC or HTTP, see OTLPProtocol) with parent-based
// ratio sampling, and the W3C TraceContext + Baggage propagator. The
// returned shutdown flushes the spans still queued and stops export (call
// it once, at the end of the process, with a deadline); then the global
// provider becomes a no-op again.
//
// With Endpoint "" tracing is off: nothing global changes (spans cost one
// atomic load each, see tracing.Start) and shutdown does nothing. The
// exporter connects lazily: an unreachable collector does not fail
// SetupTracing, its spans are dropped and the SDK logs the export errors.
func SetupTracing(ctx context.Context, o TracingOptions) (shutdown func(context.Context) error, err error) {
	nothing := func(context.Context) error { return nil }
	if o.Endpoint == "" {
		return nothing, nil
	}
	if !(o.SampleRate >= 0 && o.SampleRate <= 1) {
		return nil, fmt.Errorf("opentelemetry sample rate must be between 0 and 1, got %v", o.SampleRate)
	}
	u, err := parseEndpoint(o.Endpoint)
	if err != nil {
		return nil, err
	}
	proto := o.Protocol
	if proto == "" {
		proto, _ = OTLPProtocol(o.Endpoint)
	}
	var client otlptrace.Client
	switch proto {
	case ProtocolGRPC:
		client = otlptracegrpc.NewClient(otlptracegrpc.WithEndpointURL(o.Endpoint))
	case ProtocolHTTP:
		if p := strings.TrimRight(u.Path, "/"); p == "" {
			v := *u
			v.Path = "/v1/traces"
			u = &v
		}
		client = otlptracehttp.NewClient(otlptracehttp.WithEndpointURL(u.String()))
	default:
		return nil, fmt.Errorf("opentelemetry protocol must be %q or %q, got %q", ProtocolGRPC, ProtocolHTTP, proto)
	}
	exp, err := otlptrace.New(ctx, client)
	if err != nil {
		return nil, fmt.Errorf("otlp %s exporter for %s: %w", proto, o.Endpoint, err)
	}
	name := o.ServiceName
	if name == "" {
		name = "greyd"
	}
	attrs := []attribute.KeyValue{semconv.ServiceName(name)}
	if o.NodeID != "" {
		attrs = append(attrs, semconv.ServiceInstanceID(o.NodeID))
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attrs...))
	if err != nil {
		res = resource.NewSchemaless(attrs...)
	}
	// A sampled batch submit yields three spans per task (lease, execute,
	// complete) in a burst: room for a few such batches before the queue
	// drops spans (the SDK default is 2048).
	batch := []sdktrace.BatchSpanProcessorOption{sdktrace.WithMaxQueueSize(8192)}
	if o.BatchTimeout > 0 {
		batch = append(batch, sdktrace.WithBatchTimeout(o.BatchTimeout))
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, batch...),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(o.SampleRate))),
	)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(tracing.Propagator)
	return func(ctx context.Context) error {
		if otel.GetTracerProvider() == tp {
			otel.SetTracerProvider(noop.NewTracerProvider())
		}
		err := tp.Shutdown(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("flush traces to %s: %w", o.Endpoint, err)
		}
		return err
	}, nil
}

// TracingConfig returns the TracingOptions of monitoring.opentelemetry for
// a process named service (greyd, greyd-worker) on node nodeID.
func TracingConfig(o config.OpenTelemetryConfig, service, nodeID string) TracingOptions {
	return TracingOptions{Endpoint: o.Endpoint, Protocol: o.Protocol, SampleRate: o.SampleRate, ServiceName: service, NodeID: nodeID}
}

// FlushTracing calls a SetupTracing shutdown with a 5 s deadline and logs
// a failure (spans that could not be exported are lost). A nil shutdown
// does nothing.
func FlushTracing(shutdown func(context.Context) error, logger *slog.Logger) {
	if shutdown == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil && logger != nil {
		logger.Warn("trace export shutdown", "err", err)
	}
}

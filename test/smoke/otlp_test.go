package smoke

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"

	"github.com/grey-distributed/grey/internal/testenv"
)

// TestOTLP exports a span over OTLP/HTTP and finds the trace through the
// Jaeger query API.
func TestOTLP(t *testing.T) {
	endpoint := testenv.ServiceURL(t, "otlp")
	query := testenv.ServiceURL(t, "otlp_query")
	ctx := ctxFor(t, 60*time.Second)

	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	service := "grey-smoke-" + uniq()
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))),
	)
	_, span := tp.Tracer("grey/smoke").Start(ctx, "smoke-span")
	span.SetAttributes(attribute.String("grey.tenant_id", "t1"))
	span.End()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("export: %v", err)
	}
	traceID := span.SpanContext().TraceID().String()

	eventually(t, 30*time.Second, func() error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, query+"/api/traces/"+traceID, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /api/traces/%s: %s", traceID, resp.Status)
		}
		var body struct {
			Data []struct {
				TraceID string `json:"traceID"`
				Spans   []struct {
					OperationName string `json:"operationName"`
				} `json:"spans"`
				Processes map[string]struct {
					ServiceName string `json:"serviceName"`
				} `json:"processes"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return err
		}
		if len(body.Data) != 1 || len(body.Data[0].Spans) != 1 || body.Data[0].Spans[0].OperationName != "smoke-span" {
			return fmt.Errorf("unexpected trace: %+v", body)
		}
		for _, p := range body.Data[0].Processes {
			if p.ServiceName == service {
				return nil
			}
		}
		return fmt.Errorf("service %s not in trace processes %+v", service, body.Data[0].Processes)
	})
}

package telemetry_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/internal/testenv"
	"github.com/grey-distributed/grey/telemetry"
	"github.com/grey-distributed/grey/telemetry/tracing"
	"github.com/grey-distributed/grey/worker"
)

// jaegerTrace is the part of Jaeger's GET /api/traces/{id} answer we check.
type jaegerTrace struct {
	Data []struct {
		TraceID string `json:"traceID"`
		Spans   []struct {
			SpanID        string `json:"spanID"`
			OperationName string `json:"operationName"`
			ProcessID     string `json:"processID"`
			References    []struct {
				RefType string `json:"refType"`
				TraceID string `json:"traceID"`
				SpanID  string `json:"spanID"`
			} `json:"references"`
			Tags []struct {
				Key   string `json:"key"`
				Value any    `json:"value"`
			} `json:"tags"`
		} `json:"spans"`
		Processes map[string]struct {
			ServiceName string `json:"serviceName"`
		} `json:"processes"`
	} `json:"data"`
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestTracesInJaeger exports the spans of one task from an in-process
// engine, API and worker to a real Jaeger over OTLP (HTTP and gRPC) and
// reads the trace back through Jaeger's query API. Needs
// `scripts/services.sh up otlp` and `eval "$(scripts/services.sh env otlp)"`.
func TestTracesInJaeger(t *testing.T) {
	otlpHTTP := testenv.ServiceURL(t, "OTLP")
	query := testenv.ServiceURL(t, "otlp_query")
	endpoints := []struct{ name, endpoint string }{
		// Not the default port 4318: the path selects OTLP/HTTP.
		{"http", strings.TrimRight(otlpHTTP, "/") + "/v1/traces"},
	}
	if g := strings.TrimSpace(os.Getenv(testenv.EnvVar("otlp_grpc"))); g != "" {
		if !strings.Contains(g, "://") {
			g = "http://" + g
		}
		endpoints = append(endpoints, struct{ name, endpoint string }{"grpc", g})
	}
	for _, ep := range endpoints {
		t.Run(ep.name, func(t *testing.T) {
			proto, err := telemetry.OTLPProtocol(ep.endpoint)
			if err != nil || proto != ep.name {
				t.Fatalf("OTLPProtocol(%s) = %q, %v", ep.endpoint, proto, err)
			}
			service := "grey-trace-test-" + randomHex(t, 4)
			stop, err := telemetry.SetupTracing(context.Background(), telemetry.TracingOptions{
				Endpoint: ep.endpoint, SampleRate: 1, ServiceName: service, NodeID: "test-1", BatchTimeout: 100 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := stop(ctx); err != nil {
					t.Errorf("flush: %v", err)
				}
			})
			n := newTracedNode(t)
			n.node.StartWorkers(t, worker.Options{Concurrency: 2}, n.handlers())
			traceID, clientSpan := randomHex(t, 16), randomHex(t, 8)
			s := n.submit(t, map[string]string{"traceparent": "00-" + traceID + "-" + clientSpan + "-01"})

			want := []string{"POST /api/v1/tasks", tracing.SpanSubmit, tracing.SpanRaftApply, tracing.SpanLease, tracing.SpanExecute, tracing.SpanComplete}
			var tr jaegerTrace
			var last error
			deadline := time.Now().Add(30 * time.Second)
			for {
				tr, last = getTrace(query, traceID)
				if last == nil {
					last = hasSpans(tr, want)
				}
				if last == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("trace %s not in Jaeger with %v: %v", traceID, want, last)
				}
				time.Sleep(200 * time.Millisecond)
			}

			d := tr.Data[0]
			ids := map[string]string{} // operation → span id
			parents := map[string]string{}
			for _, sp := range d.Spans {
				ids[sp.OperationName] = sp.SpanID
				for _, r := range sp.References {
					if r.RefType == "CHILD_OF" {
						parents[sp.OperationName] = r.SpanID
					}
				}
				if svc := d.Processes[sp.ProcessID].ServiceName; svc != service {
					t.Errorf("%s: service %q, want %q", sp.OperationName, svc, service)
				}
				if sp.OperationName == tracing.SpanSubmit || sp.OperationName == tracing.SpanExecute {
					tags := map[string]any{}
					for _, tg := range sp.Tags {
						tags[tg.Key] = tg.Value
					}
					for k, v := range map[string]string{"grey.tenant_id": "acme", "grey.task_id": s.ID, "grey.kind": "traced"} {
						if fmt.Sprint(tags[k]) != v {
							t.Errorf("%s: tag %s = %v, want %s", sp.OperationName, k, tags[k], v)
						}
					}
				}
			}
			for child, parent := range map[string]string{
				"POST /api/v1/tasks":  "client",
				tracing.SpanSubmit:    "POST /api/v1/tasks",
				tracing.SpanRaftApply: tracing.SpanSubmit,
				tracing.SpanLease:     tracing.SpanSubmit,
				tracing.SpanExecute:   tracing.SpanLease,
				tracing.SpanComplete:  tracing.SpanExecute,
			} {
				wantID := ids[parent]
				if parent == "client" {
					wantID = clientSpan
				}
				if parents[child] != wantID {
					t.Errorf("%s: parent %s, want %s (%s)", child, parents[child], wantID, parent)
				}
			}
		})
	}
}

func getTrace(query, traceID string) (jaegerTrace, error) {
	var tr jaegerTrace
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(query, "/")+"/api/traces/"+traceID, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return tr, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return tr, fmt.Errorf("GET /api/traces/%s: %s", traceID, resp.Status)
	}
	return tr, json.NewDecoder(resp.Body).Decode(&tr)
}

func hasSpans(tr jaegerTrace, names []string) error {
	if len(tr.Data) != 1 {
		return fmt.Errorf("%d traces", len(tr.Data))
	}
	have := map[string]bool{}
	for _, sp := range tr.Data[0].Spans {
		have[sp.OperationName] = true
	}
	for _, n := range names {
		if !have[n] {
			return fmt.Errorf("no span %s yet (have %v)", n, have)
		}
	}
	return nil
}

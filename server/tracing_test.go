package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/internal/blobtest"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/telemetry/tracing"
)

// TestServerExportsTraces: a greyd with monitoring.opentelemetry.endpoint
// set exports the spans of a task over OTLP/HTTP, flushed by Run's
// shutdown, and tracing is off again afterwards. Not parallel: the tracer
// provider is global.
func TestServerExportsTraces(t *testing.T) {
	var mu sync.Mutex
	var exported bytes.Buffer
	otlp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
			http.NotFound(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		exported.Write(b)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer otlp.Close()

	cfg := config.Default()
	cfg.Node.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Raft.Addr = "127.0.0.1:0"
	cfg.Raft.HeartbeatTimeout = config.Duration(200 * time.Millisecond)
	cfg.Raft.ElectionTimeout = config.Duration(200 * time.Millisecond)
	cfg.Raft.LeaderLeaseTimeout = config.Duration(100 * time.Millisecond)
	cfg.Monitoring.Prometheus.Enabled = false
	cfg.Monitoring.OpenTelemetry.Endpoint = otlp.URL // port ≠ 4318: the protocol says HTTP
	cfg.Monitoring.OpenTelemetry.Protocol = "http"
	cfg.Monitoring.OpenTelemetry.SampleRate = 1
	s, err := New(cfg, greytest.Logger(t), WithBlobRegistry(blobtest.Registry(t)))
	if err != nil {
		t.Fatal(err)
	}
	if !tracing.Enabled() {
		t.Fatal("tracing not enabled by New")
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(ctx) }()
	base := "http://" + s.HTTPAddr()
	greytest.Eventually(t, 10*time.Second, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/tasks", strings.NewReader(`{"kind":"noop"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tk struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&tk)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("submit: %s", resp.Status)
	}
	greytest.Eventually(t, 10*time.Second, func() bool {
		got, err := s.Engine().Get(context.Background(), "default", tk.ID)
		return err == nil && got.Status == "completed"
	})
	time.Sleep(50 * time.Millisecond) // the completion's span is made after the apply

	cancel()
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
	}
	if tracing.Enabled() {
		t.Error("tracing still enabled after Run returned")
	}
	mu.Lock()
	body := exported.Bytes()
	mu.Unlock()
	for _, name := range []string{"POST /api/v1/tasks", tracing.SpanSubmit, tracing.SpanRaftApply, tracing.SpanLease, tracing.SpanExecute, tracing.SpanComplete, "greyd", tk.ID} {
		if !bytes.Contains(body, []byte(name)) {
			t.Errorf("export lacks %q", name)
		}
	}
}

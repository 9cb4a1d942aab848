package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grey-distributed/grey/apitypes"
)

func TestEventsStatus(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 4, 8, 40, 12, 0, time.UTC)
	st := apitypes.EventsStatus{
		Sources: []apitypes.EventSource{{Name: "kafka", URL: "kafka://kafka-1:9092", Running: true, Lag: map[string]int64{"acme": 10, "globex": 2, "idle": 0},
			TotalLag: 12, Consumed: 10234, DeadLettered: 3, Paused: []string{"acme"}}},
		Sinks: []apitypes.EventSink{{Name: "kafka", Relay: "events_kafka", URL: "kafka://kafka-1:9092", Watermark: 48211, LagTasks: 7, LagSeconds: 3.4, LastDelivery: at},
			{Name: "rabbitmq", Relay: "events_rabbitmq", URL: "amqp://grey:xxxxx@rabbit:5672/", Failures: 4, LastError: "connection refused"}},
	}
	var empty atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/cluster/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if empty.Load() {
			_, _ = w.Write([]byte(`{"sources":[],"sinks":[]}`))
			return
		}
		_ = json.NewEncoder(w).Encode(st)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	env := map[string]string{"GREY_SERVER": srv.URL}

	r := greyctl(t, env, "events", "status")
	if r.code != 0 {
		t.Fatalf("events status: %+v", r)
	}
	for _, want := range []string{"SOURCE", "kafka://kafka-1:9092", "12 (acme=10 globex=2)", "10234", "acme", "WATERMARK", "48211", "2026-12-04T08:40:12Z",
		"rabbitmq", "failing (4): connection refused", "amqp://grey:xxxxx@rabbit:5672/"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("events status lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "idle=") {
		t.Errorf("a tenant without lag is listed:\n%s", r.stdout)
	}
	r = greyctl(t, env, "events", "status", "-o", "json")
	var got apitypes.EventsStatus
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &got) != nil || got.Sinks[0].Watermark != 48211 {
		t.Errorf("events status json: %+v", r)
	}
	empty.Store(true)
	r = greyctl(t, env, "events", "status")
	if r.code != 0 || !strings.Contains(r.stdout, "No event sources or sinks") {
		t.Errorf("events status without streams: %+v", r)
	}
	if r := greyctl(t, env, "events", "status", "extra"); r.code == 0 {
		t.Errorf("events status with an argument: %+v", r)
	}
}

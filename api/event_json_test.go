package api

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/grey-distributed/grey/task"
)

// A watch's events are written with goccy/go-json for speed; clients parse
// them as the JSON encoding/json writes, so the two must agree byte for
// byte on every field a task carries.
func TestEventJSONMatchesEncodingJSON(t *testing.T) {
	now := time.Date(2026, 12, 4, 14, 0, 0, 123456789, time.UTC)
	later := now.Add(1500 * time.Millisecond)
	cost, prio := 0.000123, 7
	tk := &task.Task{
		ID: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", TenantID: "acme <&> \u2028 ünïcode",
		Spec: task.Spec{Kind: "noop", Priority: &prio, Headers: map[string]string{"z": "1", "a": "<b>", "m": "\"q\""},
			DependsOn: []task.ID{"x", "y"}, Constraints: &task.Constraints{Labels: map[string]string{"gpu": "true", "b": "2"}, CPU: 1.5}},
		Status: task.Completed, Attempt: 2, Result: json.RawMessage(`{"ok":true}`),
		Error:     &task.Error{Code: "executor", Message: "boom\n\t<x>", Retryable: true},
		Attempts:  []task.Attempt{{N: 1, WorkerID: "w-1", LeasedAt: now, StartedAt: &now}},
		CreatedAt: now, UpdatedAt: later, StartedAt: &now, FinishedAt: &later,
		Usage:    &task.Usage{ExecSeconds: 1.5, CPUSeconds: 2.25, BytesIn: 10, BytesOut: 1 << 40},
		CostTags: map[string]string{"grey-tenant-id": "acme", "env": "prod"}, CostUSD: &cost,
		WaitingReason: "quota", Index: 1 << 62, ProofID: "p-1",
	}
	c := *tk
	c.Payload, c.Result = nil, nil
	want, err := json.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	ew := newEventWriter()
	ew.add(tk)
	ew.add(tk) // a reused writer writes the same bytes again
	wantEvent := "event: task\ndata: " + string(want) + "\n\n"
	if got := ew.buf.String(); got != wantEvent+wantEvent {
		t.Fatalf("event differs from encoding/json:\n got %s\nwant %s", got, wantEvent+wantEvent)
	}
	if tk.Result == nil {
		t.Fatal("writing the event changed the task")
	}
}

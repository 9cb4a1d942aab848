package task_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/grey-distributed/grey/task"
)

// fuzzLimits are the server's default limits.
var fuzzLimits = task.Limits{MaxPayloadBytes: 1 << 20}

// FuzzSpecDecode feeds arbitrary bytes to the JSON decoding of a submitted
// spec and to Validate: nothing may panic, and a spec that validates must
// marshal (with run_at in UTC, as the engine stores it), survive a
// marshal/unmarshal round trip (what the Go client sends and the API
// decodes) and validate again, unchanged.
//
// Seeds live in testdata/fuzz/FuzzSpecDecode.
func FuzzSpecDecode(f *testing.F) {
	f.Add([]byte(`{"kind":"noop"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var sp task.Spec
		if err := json.Unmarshal(data, &sp); err != nil {
			return
		}
		if err := sp.Validate("", fuzzLimits); err != nil {
			return
		}
		// The engine stores run_at in UTC and marshals the spec into a
		// Raft command: that must work for every valid spec.
		if sp.RunAt != nil {
			utc := sp.RunAt.UTC()
			sp.RunAt = &utc
		}
		b, err := json.Marshal(&sp)
		if err != nil {
			t.Fatalf("marshal a valid spec: %v\nin: %s", err, data)
		}
		var again task.Spec
		if err := json.Unmarshal(b, &again); err != nil {
			t.Fatalf("decode the marshalled spec: %v\njson: %s", err, b)
		}
		if err := again.Validate("", fuzzLimits); err != nil {
			t.Fatalf("a valid spec no longer validates after a round trip: %v\nin:  %s\nout: %s", err, data, b)
		}
		b2, err := json.Marshal(&again)
		if err != nil {
			t.Fatalf("marshal again: %v", err)
		}
		if !bytes.Equal(b, b2) {
			t.Fatalf("round trip is not stable:\nfirst:  %s\nsecond: %s", b, b2)
		}
		if again.Type != sp.Type || again.Prio() != sp.Prio() || again.Timeout != sp.Timeout {
			t.Fatalf("round trip changed the spec: %+v → %+v", sp, again)
		}
	})
}

// FuzzTaskUnmarshal decodes arbitrary bytes as a stored task (what the API
// returns and clients decode): a task that decodes must marshal, and the
// marshalled form must decode to a task that marshals to the same bytes, in
// particular with the same Duration fields.
//
// Seeds live in testdata/fuzz/FuzzTaskUnmarshal.
func FuzzTaskUnmarshal(f *testing.F) {
	f.Add([]byte(`{"id":"01a21a9d-e769-7977-a400-e7cf7b835b6b","tenant_id":"default","kind":"noop","status":"pending","timeout":"1.5s"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var tk task.Task
		if err := json.Unmarshal(data, &tk); err != nil {
			return
		}
		b, err := json.Marshal(&tk)
		if err != nil {
			t.Fatalf("a decoded task does not marshal: %v\nin: %s", err, data)
		}
		var again task.Task
		if err := json.Unmarshal(b, &again); err != nil {
			t.Fatalf("decode the marshalled task: %v\nin:  %s\nout: %s", err, data, b)
		}
		if again.Timeout != tk.Timeout {
			t.Fatalf("timeout changed in a round trip: %d → %d", tk.Timeout, again.Timeout)
		}
		if (again.Retry == nil) != (tk.Retry == nil) {
			t.Fatalf("retry policy appeared or vanished in a round trip: %s", b)
		}
		if tk.Retry != nil && (again.Retry.BaseDelay != tk.Retry.BaseDelay || again.Retry.MaxDelay != tk.Retry.MaxDelay) {
			t.Fatalf("retry delays changed in a round trip: %s → %s", tk.Retry, again.Retry)
		}
		b2, err := json.Marshal(&again)
		if err != nil {
			t.Fatalf("marshal again: %v", err)
		}
		if !bytes.Equal(b, b2) {
			t.Fatalf("round trip is not stable:\nfirst:  %s\nsecond: %s", b, b2)
		}
	})
}

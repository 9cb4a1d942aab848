package cluster

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/tenant"
)

// Commands are encoded and decoded with goccy/go-json; entries written by
// encoding/json (older versions of greyd, the log as it stands) must decode
// to exactly the same request, and the two encoders must write the same
// bytes, so that peers of either version apply one log alike.
func TestCommandCodecMatchesEncodingJSON(t *testing.T) {
	now := time.Date(2026, 12, 4, 14, 0, 0, 987654321, time.UTC)
	prio := 3
	reqs := []any{
		&state.SubmitRequest{Now: now, Enforce: true, AutoCreate: &tenant.Tenant{ID: "acme"},
			Tasks: []*task.Task{{ID: "t-1", TenantID: "acme \u2028<&>", Status: task.Pending, CreatedAt: now,
				Spec: task.Spec{Kind: "noop", Priority: &prio, Payload: json.RawMessage(`{"a":[1,2.5e-7,"x"],"b":null}`),
					Headers: map[string]string{"z": "1", "a": "é"}, Constraints: &task.Constraints{CPU: 0.5, Labels: map[string]string{"gpu": "true"}}}}}},
		&state.CompleteRequest{Now: now, WorkerID: "w", Principal: "svc",
			Items:  []state.CompleteItem{{Result: json.RawMessage(`{"ok":true}`), Proof: 1, At: now}},
			Proofs: [][]byte{[]byte("envelope \x00\xff")}},
	}
	for _, r := range reqs {
		std, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		fast, err := gojson.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if string(std) != string(fast) {
			t.Errorf("%T: encodings differ:\nencoding/json %s\ngoccy         %s", r, std, fast)
		}
		a := reflect.New(reflect.TypeOf(r).Elem()).Interface()
		b := reflect.New(reflect.TypeOf(r).Elem()).Interface()
		if err := json.Unmarshal(std, a); err != nil {
			t.Fatal(err)
		}
		if err := gojson.Unmarshal(std, b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%T: decodings differ:\n%+v\n%+v", r, a, b)
		}
	}
}

package events

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/grey-distributed/grey/task"
)

// sameAsMarshal fails unless the hand-written encoding of rb and lb is
// json.Marshal's, errors included.
func sameAsMarshal(t *testing.T, rb ResultBody, lb LifecycleBody) {
	t.Helper()
	want, werr := json.Marshal(rb)
	got, gerr := appendResultBody([]byte("prefix"), &rb)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("result %+v: error %v, json.Marshal's %v", rb, gerr, werr)
	}
	if werr == nil && !bytes.Equal(got, append([]byte("prefix"), want...)) {
		t.Fatalf("result body\n got %s\nwant prefix%s", got, want)
	}
	want, werr = json.Marshal(lb)
	got, gerr = appendLifecycleBody(nil, &lb)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("lifecycle %+v: error %v, json.Marshal's %v", lb, gerr, werr)
	}
	if werr == nil && !bytes.Equal(got, want) {
		t.Fatalf("lifecycle body\n got %s\nwant %s", got, want)
	}
}

func TestEventBodiesAreJSONMarshal(t *testing.T) {
	now := time.Date(2026, 12, 4, 17, 1, 2, 345678900, time.UTC)
	zoned := now.In(time.FixedZone("x", -(3*3600 + 30*60)))
	farFuture := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, s := range []string{"", "acme", `a"b`, `back\slash`, "<script>&", "tab\there", "nul\x00", "ünïcødé", "bad\xffutf8", "line\u2028sep", "\x7f"} {
		for _, raw := range []string{"", `{"n":1}`, "null", `{ "a" : [1, 2] }`, `"<b>&"`, `"ü\u2028"`, `{"a":"b\"c"}`, `{bad`, `1 `, "\"\u2029\""} {
			for _, ft := range []*time.Time{nil, &now, &zoned, &farFuture} {
				rb := ResultBody{TaskID: s, TenantID: "acme", Kind: s, Status: task.Status(s), Attempt: len(s) - 3, IdempotencyKey: s,
					Result: json.RawMessage(raw), FinishedAt: ft, ProofID: s}
				at := now
				if ft != nil {
					at = *ft
				}
				sameAsMarshal(t, rb, LifecycleBody{Type: "task." + s, TaskID: s, TenantID: s, Kind: s, Status: task.Completed, Attempt: 2, At: at})
			}
		}
	}
	sameAsMarshal(t, ResultBody{TaskID: "t", ResultRef: &task.DataRef{Ref: "results/t"}, ResultOmitted: true, ResultBytes: 1 << 20,
		Error: &task.Error{Message: "boom <&>", Code: "executor", Retryable: true}}, LifecycleBody{})
	sameAsMarshal(t, ResultBody{}, LifecycleBody{})
}

// FuzzEventBodies: for any field values the hand-written bodies are
// json.Marshal's.
func FuzzEventBodies(f *testing.F) {
	f.Add("0192f3a4-b5c6", "acme", "noop", "completed", 1, "kafka:grey.tasks.acme/3/1207", []byte(`{"n":1}`), int64(1764867600123456789), "p1", "boom")
	f.Add(`a"<`, "\xff", "\u2028", "", -1, "", []byte(" [1, \"<\"] "), int64(-1), "", "")
	f.Fuzz(func(t *testing.T, id, tenant, kind, status string, attempt int, key string, raw []byte, nanos int64, proof, msg string) {
		ft := time.Unix(0, nanos).UTC()
		rb := ResultBody{TaskID: id, TenantID: tenant, Kind: kind, Status: task.Status(status), Attempt: attempt, IdempotencyKey: key,
			Result: raw, FinishedAt: &ft, ProofID: proof}
		if msg != "" {
			rb.Error = &task.Error{Message: msg}
			rb.ResultRef = &task.DataRef{Ref: msg}
		}
		sameAsMarshal(t, rb, LifecycleBody{Type: "task." + status, TaskID: id, TenantID: tenant, Kind: kind, Status: task.Status(status), Attempt: attempt, At: ft})
	})
}

// TestEventBodiesFieldsKnown fails when ResultBody or LifecycleBody gains
// a field: the hand-written encoders (eventjson.go) must write it too, and
// TestEventBodiesAreJSONMarshal must set it.
func TestEventBodiesFieldsKnown(t *testing.T) {
	for _, c := range []struct {
		v    any
		want int
	}{{ResultBody{}, 13}, {LifecycleBody{}, 7}} {
		if n := reflect.TypeOf(c.v).NumField(); n != c.want {
			t.Errorf("%T has %d fields, the encoder knows %d: update appendResultBody / appendLifecycleBody and this test", c.v, n, c.want)
		}
	}
}

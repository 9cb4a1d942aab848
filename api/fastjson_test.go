package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/grey-distributed/grey/apitypes"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/worker"
)

// decodeItemStd is decodeItem's encoding/json path alone (items are
// single values cut from the batch document, so trailing data is not
// looked at).
func decodeItemStd(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

var specSeeds = []string{
	`{"kind":"noop","payload":{"i":1}}`,
	`{"kind":"resize","payload":{"w":640,"h":480,"s":"<a>&"},"priority":5,"max_attempts":3,"timeout":"30s","labels":{"gpu":"true"},"headers":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}`,
	`{"kind":"noop","depends_on":["0193b0e2-0000-7000-8000-000000000001"],"idempotency_key":"k1","run_at":"2026-12-04T10:00:00Z"}`,
	`{"kind":"noop","constraints":{"gpu":true,"platform":"sgx"}}`,
	`{"kind":"noop","unknown":1}`,
	`{"kind":1}`,
	`{"kind":"noop","priority":1.5}`,
	`{"kind":"noop","priority":300000000000000000000}`,
	`{"kind":"noop","timeout":"soon"}`,
	`{"kind":"noop"} {}`,
	`{"kind":"noop",}`,
	`{"Kind":"noop"}`,
	`{"kind":"noop","payload":}`,
	`[]`,
	`null`,
}

// FuzzDecodeItemAgrees: whatever the fast decoder of batch items accepts,
// encoding/json accepts with the same result; where it refuses, decodeItem
// answers with encoding/json's verdict.
func FuzzDecodeItemAgrees(f *testing.F) {
	for _, s := range specSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var fast, std task.Spec
		ferr := decodeItem(raw, &fast, "tasks", 0)
		serr := decodeItemStd(raw, &std)
		if (ferr == nil) != (serr == nil) {
			t.Fatalf("%q: decodeItem error %v, encoding/json error %v", raw, ferr, serr)
		}
		if ferr == nil && !reflect.DeepEqual(fast, std) {
			t.Fatalf("%q: decoded differently:\n fast %+v\n std  %+v", raw, fast, std)
		}
	})
}

func TestDecodeItemSeeds(t *testing.T) {
	for _, s := range specSeeds {
		var fast, std task.Spec
		ferr := decodeItem([]byte(s), &fast, "tasks", 0)
		serr := decodeItemStd([]byte(s), &std)
		if (ferr == nil) != (serr == nil) || (ferr == nil && !reflect.DeepEqual(fast, std)) {
			t.Errorf("%s: fast %+v %v, std %+v %v", s, fast, ferr, std, serr)
		}
	}
}

// TestResponsesMatchEncodingJSON: writeJSON's bytes are encoding/json's,
// for the task documents the API answers with.
func TestResponsesMatchEncodingJSON(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 0, 0, 123456789, time.UTC)
	cost := 0.25
	tk := &task.Task{ID: "0193b0e2-0000-7000-8000-000000000001", TenantID: "acme", Status: task.Completed,
		Attempt: 2, CreatedAt: now, UpdatedAt: now, StartedAt: &now, FinishedAt: &now, CostUSD: &cost,
		Result:   json.RawMessage("{ \"out\" : \"<b>&\u2028\" , \"n\":[1, 2.5e3] }"),
		CostTags: map[string]string{"grey-tenant-id": "acme", "b": "1"},
		Attempts: []task.Attempt{{N: 1, WorkerID: "w1", LeasedAt: now, StartedAt: &now, Error: &task.Error{Code: "executor", Message: "boom <x>", Retryable: true}}},
		Usage:    &task.Usage{CPUSeconds: 1.5},
	}
	tk.Kind = "resize"
	tk.Payload = json.RawMessage(`{"z":1,"a":"é"}`)
	tk.Headers = map[string]string{"traceparent": "00-x", "a": "b"}
	for name, v := range map[string]any{
		"batch": apitypes.BatchResponse{Tasks: []*task.Task{tk, {ID: "2", TenantID: "acme", Status: task.Pending, CreatedAt: now, UpdatedAt: now}}},
		"task":  tk,
		"error": errorBody{Code: "invalid_argument", Message: `bad "x" <y>`, Field: "tasks[0].kind"},
	} {
		rec := httptest.NewRecorder()
		writeJSON(rec, 200, v)
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(v); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rec.Body.Bytes(), want.Bytes()) {
			t.Errorf("%s:\n goccy %s\n std   %s", name, rec.Body.Bytes(), want.Bytes())
		}
	}
}

// decodeStd is Server.decode's encoding/json path alone: one value, no
// unknown fields, nothing after it.
func decodeStd(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("more than one value")
	}
	return nil
}

var bodySeeds = []string{
	`{"worker_id":"w1","kinds":["noop","resize"],"labels":{"gpu":"true"},"max":100,"wait":"30s","warm":["sha256:ab"]}`,
	`{"worker_id":"w1","reports":[{"task_id":"t1","attempt":1,"status":"completed","result":{"ok":true},"at":"2026-12-04T10:00:00Z","proof":1}],"proofs":[{"payloadType":"x","payload":"eA==","signatures":[]}]}`,
	`{"worker_id":"w1","leases":[{"task_id":"t1","attempt":2}]}`,
	`{"tasks":[{"kind":"noop"},{"kind":"x","payload":[1,2]}]}`,
	`{"worker_id":"w1","max":1.5}`,
	`{"worker_id":"w1","max":100000000000000000000}`,
	`{"worker_id":"w1"} x`,
	`{"worker_id":"w1"}   `,
	`{"worker_id":"w1"}{}`,
	`{"worker_id":1}`,
	`{"reports":[{"attempt":"1"}]}`,
	`{"reports":[{"at":"yesterday"}]}`,
	`{"nope":1}`,
}

// FuzzDecodeAgrees: for the bodies workers and batch submits send, what
// decode's fast path accepts, encoding/json accepts with the same value,
// and decode refuses what encoding/json refuses.
func FuzzDecodeAgrees(f *testing.F) {
	for _, s := range bodySeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, mk := range []func() any{
			func() any { return new(worker.LeaseRequest) },
			func() any { return new(worker.CompleteRequest) },
			func() any { return new(worker.HeartbeatRequest) },
			func() any { return new(batchRequest) },
		} {
			fast, std := mk(), mk()
			ok := fastDecode(raw, fast)
			serr := decodeStd(raw, std)
			if ok && serr != nil {
				t.Fatalf("%T %q: the fast path accepts what encoding/json refuses (%v)", fast, raw, serr)
			}
			if ok && !reflect.DeepEqual(fast, std) {
				t.Fatalf("%T %q: decoded differently:\n fast %+v\n std  %+v", fast, raw, fast, std)
			}
			if !ok && !reflect.DeepEqual(fast, mk()) {
				t.Fatalf("%T %q: a refused fast decode left %+v", fast, raw, fast)
			}
		}
	})
}

func TestDecodeSeeds(t *testing.T) {
	accepted := 0
	for _, s := range bodySeeds {
		for _, v := range []any{new(worker.LeaseRequest), new(worker.CompleteRequest), new(worker.HeartbeatRequest), new(batchRequest)} {
			std := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			ok := fastDecode([]byte(s), v)
			serr := decodeStd([]byte(s), std)
			if ok != (serr == nil) {
				t.Errorf("%T %s: fast %v, encoding/json %v", v, s, ok, serr)
			}
			if ok {
				accepted++
			}
		}
	}
	if accepted < 5 {
		t.Fatalf("only %d seed bodies decoded: the seeds do not exercise the fast path", accepted)
	}
}

// TestDisallowUnknownFieldsOption checks the decode option fastDecode
// lifts from goccy's Decoder: with it Unmarshal refuses an unknown field
// (at any depth) and trailing data, and still takes a well-formed body.
func TestDisallowUnknownFieldsOption(t *testing.T) {
	type inner struct {
		A int `json:"a"`
	}
	type doc struct {
		Kind  string `json:"kind"`
		Inner inner  `json:"inner"`
	}
	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{`{"kind":"noop","inner":{"a":1}}`, true},
		{` {"kind":"noop"} ` + "\n", true},
		{`{"kind":"noop","bogus":1}`, false},
		{`{"kind":"noop","inner":{"a":1,"b":2}}`, false},
		{`{"kind":"noop"} {}`, false},
		{`{"kind":"noop"}x`, false},
	} {
		var d doc
		if got := fastDecode([]byte(tc.body), &d); got != tc.ok {
			t.Errorf("fastDecode(%s) = %v, want %v", tc.body, got, tc.ok)
		}
		if !tc.ok && d != (doc{}) {
			t.Errorf("fastDecode(%s) left %+v, want the zero value", tc.body, d)
		}
	}
}

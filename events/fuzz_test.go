package events_test

import (
	"encoding/json"
	"testing"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/task"
)

// FuzzDecodeJSON: any body either decodes to a spec that re-encodes, or
// is a DecodeError; it never panics.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"kind":"noop"}`, `{"kind":"noop","payload":{"a":1},"priority":3}`, `{`, `{"kind":"noop"}{}`, `{"tenant_id":"x"}`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := events.DecodeSpec(events.ContentTypeJSON, b)
		if err != nil {
			if _, ok := err.(*events.DecodeError); !ok {
				t.Fatalf("error %T %v is not a DecodeError", err, err)
			}
			return
		}
		if _, err := json.Marshal(s); err != nil {
			t.Fatalf("decoded spec does not encode: %v", err)
		}
	})
}

// FuzzDecodeAvro: any body either decodes or is a DecodeError, and what
// decodes from the single-object encoding encodes back to a body that
// decodes to the same spec.
func FuzzDecodeAvro(f *testing.F) {
	prio := 2
	for _, s := range []task.Spec{{Kind: "noop"}, {Kind: "x", Payload: []byte(`[1]`), Priority: &prio, DependsOn: []string{"a"}, Headers: map[string]string{"k": "v"}}} {
		b, err := events.EncodeAvro(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[10:])
	}
	f.Add([]byte{0xC3, 0x01})
	f.Add([]byte{0x00, 0, 0, 0, 1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := events.DecodeSpec(events.ContentTypeAvro, b)
		if err != nil {
			if _, ok := err.(*events.DecodeError); !ok {
				t.Fatalf("error %T %v is not a DecodeError", err, err)
			}
			return
		}
		again, err := events.EncodeAvro(s)
		if err != nil {
			t.Fatalf("decoded spec does not encode: %v", err)
		}
		s2, err := events.DecodeAvro(again)
		if err != nil {
			t.Fatalf("re-encoded spec does not decode: %v", err)
		}
		j1, _ := json.Marshal(s)
		j2, _ := json.Marshal(s2)
		if string(j1) != string(j2) {
			t.Fatalf("round trip changed the spec:\n%s\n%s", j1, j2)
		}
	})
}

package events_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/task"
)

func TestAvroRoundTrip(t *testing.T) {
	prio, proof := 7, true
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000000, time.UTC)
	in := task.Spec{Kind: "noop", Type: task.Stateful, Payload: json.RawMessage(`{"a":[1,2]}`), Priority: &prio, StateKey: "k1",
		DependsOn: []string{"0190b5a0-0000-7000-8000-000000000000"}, Constraints: &task.Constraints{Labels: map[string]string{"gpu": "true"}},
		Timeout: task.Duration(30 * time.Second), RequireProof: &proof, RequireTEE: "sgx", RunAt: &at, Headers: map[string]string{"x": "y"}}
	b, err := events.EncodeAvro(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b[2:10], events.AvroFingerprint()) {
		t.Fatal("no fingerprint")
	}
	out, err := events.DecodeSpec("avro/binary", b)
	if err != nil {
		t.Fatal(err)
	}
	ij, _ := json.Marshal(in)
	oj, _ := json.Marshal(out)
	if !bytes.Equal(ij, oj) {
		t.Fatalf("round trip:\n in  %s\n out %s", ij, oj)
	}
	// The bare record (no single-object header) decodes too.
	if _, err := events.DecodeAvro(b[10:]); err != nil {
		t.Fatalf("bare record: %v", err)
	}
	// Trailing bytes are refused.
	if _, err := events.DecodeAvro(append(b, 0)); err == nil {
		t.Fatal("a record with a trailing byte accepted")
	}
}

func TestAvroOtherSchemaRefused(t *testing.T) {
	other := avro.MustParse(`{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},{"name":"item","type":"string"}]}`)
	rec, err := avro.Marshal(other, map[string]any{"id": int64(42), "item": "socks"})
	if err != nil {
		t.Fatal(err)
	}
	fp, _ := other.FingerprintUsing(avro.CRC64AvroLE)
	single := append(append([]byte{0xC3, 0x01}, fp...), rec...)
	for name, body := range map[string][]byte{"bare": rec, "single-object": single, "schema registry": append([]byte{0, 0, 0, 0, 1}, rec...)} {
		_, err := events.DecodeSpec(events.ContentTypeAvro, body)
		var de *events.DecodeError
		if !asDecodeError(err, &de) || de.Reason != events.ReasonSchema {
			t.Errorf("%s record of another schema: %v, want reason schema", name, err)
		}
	}
}

func asDecodeError(err error, de **events.DecodeError) bool {
	e, ok := err.(*events.DecodeError)
	*de = e
	return ok
}

func TestDecodeJSON(t *testing.T) {
	s, err := events.DecodeSpec("application/json; charset=utf-8", []byte(` {"kind":"noop","priority":3,"payload":{"x":1}} `))
	if err != nil || s.Kind != "noop" || s.Prio() != 3 || string(s.Payload) != `{"x":1}` {
		t.Fatalf("%+v %v", s, err)
	}
	for _, bad := range []string{"", "null x", `[]`, `{"kind":1}`, `{"kind":"noop"} 1`, `{"kind":"noop","tenant":"x"}`} {
		_, err := events.DecodeJSON([]byte(bad))
		var de *events.DecodeError
		if !asDecodeError(err, &de) || de.Reason != events.ReasonMalformed || de.Detail == "" {
			t.Errorf("DecodeJSON(%q) = %v, want malformed", bad, err)
		}
	}
	_, err = events.DecodeJSON([]byte(`{"kind":"noop","tenant_id":"x"}`))
	if err == nil || !strings.Contains(err.Error(), "never from the body") {
		t.Errorf("tenant in the body: %v", err)
	}
}

func TestAvroSchemaDocumented(t *testing.T) {
	if _, err := avro.Parse(events.AvroSchema); err != nil {
		t.Fatal(err)
	}
}

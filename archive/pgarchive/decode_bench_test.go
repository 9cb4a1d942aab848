package pgarchive

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/grey-distributed/grey/archive/archivetest"
	"github.com/grey-distributed/grey/task"
)

// BenchmarkDecode is the client's cost per record read: the task's JSON
// into a task.Task, the payload, result and proof copied.
func BenchmarkDecode(b *testing.B) {
	r := archivetest.Make(archivetest.Spec{Tenant: "t"})
	bare := *r.Task
	bare.Payload, bare.Result = nil, nil
	tj, err := json.Marshal(&bare)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(tj)))
	for b.Loop() {
		if _, err := decode(tj, []byte(`{"n":1}`), []byte(`{"ok":true}`), r.Proof); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDecodeMatchesEncodingJSON: decode (goccy/go-json) gives the task
// encoding/json gives, for the suite's varied records.
func TestDecodeMatchesEncodingJSON(t *testing.T) {
	ten := "t"
	recs := []archivetest.Spec{
		{Tenant: ten},
		{Tenant: ten, Status: "failed", Kind: "ünïcødé ✓", Labels: map[string]string{"gpu": "a100", "zone": "eu-1"}, TEE: "sgx"},
		{Tenant: ten, Status: "cancelled", Payload: json.RawMessage(`"s"`), Result: json.RawMessage(`[1,2.5e3,null]`)},
	}
	for i, sp := range recs {
		r := archivetest.Make(sp)
		tj, err := json.Marshal(r.Task)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decode(tj, nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		var want task.Task
		if err := json.Unmarshal(tj, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Task, &want) {
			t.Errorf("record %d: goccy/go-json decoded\n%+v\nencoding/json\n%+v", i, got.Task, &want)
		}
	}
}

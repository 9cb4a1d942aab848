package pgarchive

import (
	"encoding/json"
	"testing"

	"github.com/grey-distributed/grey/archive/archivetest"
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

package proof

import (
	"testing"

	"github.com/grey-distributed/grey/task"
)

// Stored objects travel in the execution and are checked by Validate.
func TestStatementObjects(t *testing.T) {
	out := []byte(`"a large result"`)
	payload := &task.DataRef{Ref: "uploads/u1", Size: 3, SHA256: Digest([]byte(`"p"`))}
	objs := StoredObjects("t1", payload, out, 4)
	if len(objs) != 2 || objs[0].Role != ObjectPayload || objs[1].Name != task.ResultKey("t1") || objs[1].Digest["sha256"] != Digest(out) {
		t.Fatalf("objects %+v", objs)
	}
	if got := StoredObjects("t1", nil, out, 0); len(got) != 0 {
		t.Fatalf("inline result named objects %+v", got)
	}
	st := NewStatement("acme", "n1", "", Run{TaskID: "t1", Kind: "echo", Output: out, Objects: objs})
	if err := st.Validate(); err != nil {
		t.Fatal(err)
	}
	st.Predicate.Executions[0].Objects[1].Digest = map[string]string{"sha256": "zz"}
	if err := st.Validate(); err == nil {
		t.Fatal("a malformed object digest validated")
	}
}

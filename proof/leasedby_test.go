package proof_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/proof"
	"github.com/grey-distributed/grey/task"
)

// TestLeasedBy: the statement names the principal that leased the attempt,
// from the run or, for ForTask, from the task's attempt record.
func TestLeasedBy(t *testing.T) {
	t.Parallel()
	now := time.Now()
	st := proof.NewStatement("a", "n1", "", proof.Run{TaskID: "t1", Kind: "noop", Attempt: 1, StartedAt: now, FinishedAt: now, LeasedBy: "apikey:k1"})
	b, _ := json.Marshal(st)
	if !strings.Contains(string(b), `"leased_by":"apikey:k1"`) {
		t.Fatalf("statement %s", b)
	}
	tk := &task.Task{ID: "t2", TenantID: "a", Attempt: 2, FinishedAt: &now,
		Attempts: []task.Attempt{{N: 1, Principal: "apikey:old"}, {N: 2, Principal: "apikey:k2"}}}
	tk.Kind = "noop"
	st, err := proof.ForTask(tk, proof.Executor{Name: "noop"}, "n1")
	if err != nil || st.Predicate.Executions[0].LeasedBy != "apikey:k2" {
		t.Fatalf("ForTask: %v %+v", err, st)
	}
	st = proof.NewStatement("a", "n1", "", proof.Run{TaskID: "t3", Kind: "noop", Attempt: 1})
	if b, _ := json.Marshal(st); strings.Contains(string(b), "leased_by") {
		t.Fatalf("a lease without a principal names one: %s", b)
	}
}

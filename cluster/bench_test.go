package cluster_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/grey-distributed/grey/cluster"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/tenant"
)

// BenchmarkApplyBatch measures the noop completion path of one worker
// report: build the framed batch entry (start and complete of one leased
// task) and apply it to the FSM, as the leader and each follower do.
func BenchmarkApplyBatch(b *testing.B) {
	st := state.New()
	fsm := cluster.NewFSM(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ids := make([]string, b.N)
	tasks := make([]*task.Task, b.N)
	refs := make([]state.Ref, b.N)
	for i := range ids {
		ids[i] = fmt.Sprintf("01900000-0000-7000-8000-%012d", i)
		tasks[i] = mkTask(ids[i], "acme", nil)
		refs[i] = state.Ref{TaskID: ids[i], Attempt: 1}
	}
	index := uint64(1)
	step := func(data []byte) any {
		r := fsm.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: data})
		index++
		return r
	}
	step(benchEncode(b, cluster.SubmitMsg, &state.SubmitRequest{Now: t0, AutoCreate: &tenant.Tenant{ID: "acme"}, Tasks: tasks}))
	step(benchEncode(b, cluster.LeaseMsg, &state.LeaseRequest{Now: t0, WorkerID: "w1", Deadline: t0.Add(time.Hour), Items: refs}))
	result := json.RawMessage(`{"ok":true}`)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ref := refs[i]
		entry := benchBatch(b,
			&state.StartRequest{Now: t0, WorkerID: "w1", Items: []state.StartItem{{Ref: ref, At: t0}}},
			&state.CompleteRequest{Now: t0, WorkerID: "w1", Items: []state.CompleteItem{{Ref: ref, Result: result, At: t0}}})
		res := step(entry).([]any)
		if out := res[1].([]state.Outcome); len(out) != 1 || !out[0].Accepted {
			b.Fatalf("completion refused: %+v", out)
		}
	}
}

func benchEncode(b *testing.B, t cluster.MsgType, msg any) []byte {
	data, err := cluster.Encode(t, msg)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// benchBatch frames a start and a completion into one entry.
func benchBatch(b *testing.B, start *state.StartRequest, done *state.CompleteRequest) []byte {
	var batch cluster.Batch
	cluster.Add(&batch, cluster.Start(start))
	cluster.Add(&batch, cluster.Complete(done))
	e, err := batch.Entry()
	if err != nil {
		b.Fatal(err)
	}
	return e
}

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

// BenchmarkApplyTaskLife measures what every server applies for a noop
// task, per task, in batches as a busy cluster writes them: an entry
// submitting 256 tasks, one leasing them, and one completing them (with
// started_at, four proof envelopes of 64 tasks each). Entries are encoded
// outside the timer: the leader encodes once, every server applies.
func BenchmarkApplyTaskLife(b *testing.B) {
	const n = 256
	st := state.New()
	fsm := cluster.NewFSM(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	index := uint64(1)
	step := func(data []byte) any {
		r := fsm.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: data})
		index++
		return r
	}
	step(benchEncode(b, cluster.TenantPutMsg, &state.TenantPutRequest{Now: t0, Create: true, Tenant: &tenant.Tenant{ID: "acme"}}))
	envelope := make([]byte, 64*560)
	for i := range envelope {
		envelope[i] = 'a' + byte(i%26)
	}
	result := json.RawMessage(`null`)
	payload := json.RawMessage(`{}`)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		tasks := make([]*task.Task, n)
		refs := make([]state.Ref, n)
		items := make([]state.CompleteItem, n)
		for k := range tasks {
			id := fmt.Sprintf("01900000-0000-7000-8000-%06d%06d", i, k)
			tasks[k] = mkTask(id, "acme", func(t *task.Task) { t.Payload = payload })
			refs[k] = state.Ref{TaskID: id, Attempt: 1}
			started := t0.Add(time.Millisecond)
			items[k] = state.CompleteItem{Ref: refs[k], Result: result, At: t0.Add(2 * time.Millisecond), StartedAt: &started, Proof: k/64 + 1}
		}
		submit := framed(b, func(bt *cluster.Batch) {
			cluster.Add(bt, cluster.Submit(&state.SubmitRequest{Now: t0, Tasks: tasks}))
		})
		lease := framed(b, func(bt *cluster.Batch) {
			cluster.Add(bt, cluster.Lease(&state.LeaseRequest{Now: t0, WorkerID: "w1", Deadline: t0.Add(time.Hour), Items: refs}))
		})
		complete := framed(b, func(bt *cluster.Batch) {
			for range n / 64 {
				bt.Blob(envelope)
			}
			cluster.Add(bt, cluster.Complete(&state.CompleteRequest{Now: t0, WorkerID: "w1", Items: items}))
		})
		b.StartTimer()
		if r := step(submit).([]any); r[0] == nil {
			b.Fatal("no submit result")
		} else if err, ok := r[0].(error); ok {
			b.Fatal(err)
		}
		step(lease)
		res := step(complete).([]any)
		if out := res[n/64].([]state.Outcome); len(out) != n || !out[n-1].Accepted {
			b.Fatalf("completion refused: %+v", out[n-1])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/task")
}

// framed is the entry of the commands fill adds to a batch.
func framed(b *testing.B, fill func(*cluster.Batch)) []byte {
	var bt cluster.Batch
	fill(&bt)
	e, err := bt.Entry()
	if err != nil {
		b.Fatal(err)
	}
	return e
}

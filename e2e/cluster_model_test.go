package e2e

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"

	"github.com/grey-distributed/grey/task"
)

// The linearizability model of the cluster tests.
//
// What the clients do: submit tasks, each with a unique idempotency key (a
// submit may be retried with the same key, and a batch submit carries
// several keys), and read tasks back by id (GET /api/v1/tasks/{id}, default
// consistency, which the API promises to be linearizable). Workers change
// the tasks concurrently (lease, start, complete, retries after an expired
// lease); those changes are not client operations, so the model has to
// allow them to happen at any time between client operations.
//
// Objects. One object per idempotency key: the task submitted under it.
// Linearizability is local (Herlihy & Wing): a history is linearizable iff
// every object's sub-history is. So the model partitions the history by key
// (porcupine's Partition), and a batch submit is split into one operation
// per key, with the batch's call and return times. Splitting loses the
// check that a batch is atomic across keys, which the test checks
// separately (all of a batch's keys exist at the end, or none), but it can
// only hide violations, never invent one: the split history is linearizable
// whenever the real one is.
//
// State of one object (keyState): whether a task exists for the key, its id
// (once known), and the newest *version* of it that the linearization has
// exposed so far. A version is identified by the task's Raft index (the
// "index" field: the log index of its last change; every change of a task
// is one Raft entry, so versions are totally ordered by index and one index
// names exactly one state of the task). The status lives in the version.
//
// Operations:
//
//   - submit(key) → task: creates the task when the key is new (the answer
//     is then the new task: pending, at its creation index); otherwise it
//     returns the existing task, as it is now: the same id, and a version
//     no older than the last one exposed.
//   - submit(key) → unknown (error or timeout: the request may or may not
//     have taken effect, e.g. a leader that lost leadership after
//     appending it, or an answer lost with a killed server). Its return
//     time is +∞ (math.MaxInt64), as porcupine's documentation prescribes
//     for operations with unknown outcome: the checker may linearize it
//     anywhere after its call, including after everything else, where it
//     has no visible effect. If it is linearized while the key is still
//     free, it creates the task, with an id the history never saw (the
//     model records "created, id unknown" and adopts the id the next
//     answer shows).
//   - get(id) → task: the version current at the linearization point. It
//     must be no older than the last exposed version (a read never goes
//     back in time: that is what a stale read from a deposed leader, or
//     from a new leader that has not applied all committed entries yet,
//     would show); an equal index must carry an equal status; a newer
//     index must be reachable in the task state machine from the old
//     status (docs/TASKS.md: pending → leased → running → completed,
//     with retrying/leased cycles, never back to pending, nothing after a
//     terminal status).
//   - get(id) → not found: legal only while the key has no task. Clients
//     only read ids they were given by an acknowledged submit, so any 404
//     is a lost or not-yet-visible acknowledged write.
//   - get → error (unavailable, timeout): dropped from the history (a read
//     that returned nothing constrains nothing).
//
// Worker-driven changes are covered by letting the version jump forward by
// any amount at a read: the model does not track them, it only requires
// reads to observe a monotone, legal sequence of versions that starts with
// the one the creating submit returned. This is sound (every linearizable
// execution passes: in the real linearization the reads see versions in
// commit order) and catches stale and lost reads and acknowledged writes
// that vanish, which is what failover and partitions put at risk.

// opKind is the kind of a recorded client operation.
type opKind uint8

const (
	opSubmit opKind = iota
	opGet
)

// opInput is a recorded operation's input.
type opInput struct {
	Kind opKind
	// Key is the idempotency key (the model's object).
	Key string
	// ID is the task id read (opGet).
	ID string
	// Via says which server(s) the request was sent to, for the report.
	Via string
}

// opOutput is a recorded operation's output.
type opOutput struct {
	// Unknown: a submit whose outcome is unknown (error or timeout).
	Unknown bool
	// Found: a get found the task (false: 404).
	Found bool
	// ID, Index and Status of the task in the answer.
	ID     string
	Index  uint64
	Status task.Status
	// Err describes an unknown outcome, for the report.
	Err string
}

// keyState is the model's state of one idempotency key.
type keyState struct {
	Created bool
	// ID is "" while the task was created by a submit whose answer was lost.
	ID string
	// Index and Status are the newest version exposed (Index 0: none yet).
	Index  uint64
	Status task.Status
}

// reachable reports whether a task can go from status a to status b in
// zero or more transitions (docs/TASKS.md).
func reachable(a, b task.Status) bool {
	switch {
	case a == b:
		return true
	case a.Terminal():
		return false
	case b == task.Pending:
		return false
	}
	return true
}

// observe moves s to the version (idx, st) if a linearizable read may see
// it next.
func (s keyState) observe(idx uint64, st task.Status) (bool, keyState) {
	switch {
	case s.Index == 0:
	case idx < s.Index:
		return false, s
	case idx == s.Index:
		if st != s.Status {
			return false, s
		}
	case !reachable(s.Status, st):
		return false, s
	}
	s.Index, s.Status = idx, st
	return true, s
}

func modelStep(state, input, output any) (bool, any) {
	s := state.(keyState)
	in := input.(opInput)
	out := output.(opOutput)
	switch in.Kind {
	case opSubmit:
		if out.Unknown {
			s.Created = true // took effect here (or was a replay: no change)
			return true, s
		}
		if !s.Created {
			// A fresh task: pending, at its creation index.
			if out.Status != task.Pending || out.ID == "" {
				return false, s
			}
			return true, keyState{Created: true, ID: out.ID, Index: out.Index, Status: out.Status}
		}
		if s.ID != "" && s.ID != out.ID {
			return false, s // one key, two tasks
		}
		s.ID = out.ID
		return s.observe(out.Index, out.Status)
	case opGet:
		if !out.Found {
			return !s.Created, s
		}
		if !s.Created || (s.ID != "" && s.ID != in.ID) || out.ID != in.ID {
			return false, s
		}
		s.ID = in.ID
		return s.observe(out.Index, out.Status)
	}
	return false, s
}

// taskModel is the porcupine model described at the top of this file.
var taskModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(opInput).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init:  func() any { return keyState{} },
	Step:  modelStep,
	Equal: func(a, b any) bool { return a.(keyState) == b.(keyState) },
	DescribeOperation: func(input, output any) string {
		in, out := input.(opInput), output.(opOutput)
		var res string
		switch {
		case out.Unknown:
			res = "unknown (" + out.Err + ")"
		case in.Kind == opGet && !out.Found:
			res = "404"
		default:
			res = fmt.Sprintf("%s %s@%d", shortID(out.ID), out.Status, out.Index)
		}
		if in.Kind == opGet {
			return fmt.Sprintf("get(%s) via %s → %s", shortID(in.ID), in.Via, res)
		}
		return fmt.Sprintf("submit(%s) via %s → %s", in.Key, in.Via, res)
	},
	DescribeState: func(state any) string {
		s := state.(keyState)
		if !s.Created {
			return "no task"
		}
		return fmt.Sprintf("%s %s@%d", shortID(s.ID), s.Status, s.Index)
	},
}

// shortID is the tail of a task id (UUIDv7s share their time prefix).
func shortID(id string) string {
	if id == "" {
		return "?"
	}
	if len(id) > 8 {
		return "…" + id[len(id)-8:]
	}
	return id
}

// returnNever is the return time of an operation whose outcome is unknown.
const returnNever = math.MaxInt64

// describeOps renders a partition's operations in call order (at most 30),
// for a failure report.
func describeOps(ops []porcupine.Operation) string {
	ops = append([]porcupine.Operation(nil), ops...)
	sort.Slice(ops, func(i, j int) bool { return ops[i].Call < ops[j].Call })
	var b strings.Builder
	for i, op := range ops {
		if i == 30 {
			fmt.Fprintf(&b, "  … %d more\n", len(ops)-i)
			break
		}
		ret := "∞"
		if op.Return != returnNever {
			ret = fmt.Sprintf("%.3fs", float64(op.Return)/1e9)
		}
		fmt.Fprintf(&b, "  client %3d [%.3fs, %s] %s\n", op.ClientId, float64(op.Call)/1e9, ret,
			taskModel.DescribeOperation(op.Input, op.Output))
	}
	return b.String()
}

// TestTaskModel checks the model on small histories (no cluster needed).
func TestTaskModel(t *testing.T) {
	const (
		key = "k"
		id  = "01a2-task"
	)
	submit := func(client int, call, ret int64, out opOutput) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: opInput{Kind: opSubmit, Key: key}, Call: call, Output: out, Return: ret}
	}
	get := func(client int, call, ret int64, out opOutput) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: opInput{Kind: opGet, Key: key, ID: id}, Call: call, Output: out, Return: ret}
	}
	ver := func(idx uint64, st task.Status) opOutput {
		return opOutput{Found: true, ID: id, Index: idx, Status: st}
	}
	unknown := opOutput{Unknown: true, Err: "timeout"}
	notFound := opOutput{}
	cases := []struct {
		name string
		ok   bool
		ops  []porcupine.Operation
	}{
		{"submit then reads move forward", true, []porcupine.Operation{
			submit(0, 0, 10, ver(5, task.Pending)),
			get(0, 11, 20, ver(7, task.Running)),
			get(1, 21, 30, ver(9, task.Completed)),
			get(0, 31, 40, ver(9, task.Completed)),
		}},
		{"retry cycle is legal", true, []porcupine.Operation{
			submit(0, 0, 10, ver(5, task.Pending)),
			get(0, 11, 20, ver(7, task.Running)),
			get(0, 21, 30, ver(8, task.Retrying)),
			get(0, 31, 40, ver(12, task.Leased)),
			get(0, 41, 50, ver(14, task.Completed)),
		}},
		{"stale read after a newer one", false, []porcupine.Operation{
			submit(0, 0, 10, ver(5, task.Pending)),
			get(0, 11, 20, ver(9, task.Completed)),
			get(1, 21, 30, ver(7, task.Running)),
		}},
		{"concurrent reads may be ordered either way", true, []porcupine.Operation{
			submit(0, 0, 10, ver(5, task.Pending)),
			get(0, 11, 30, ver(9, task.Completed)),
			get(1, 12, 31, ver(7, task.Running)),
		}},
		{"acknowledged submit not found afterwards", false, []porcupine.Operation{
			submit(0, 0, 10, ver(5, task.Pending)),
			get(1, 11, 20, notFound),
		}},
		{"not found concurrent with the submit", true, []porcupine.Operation{
			submit(0, 0, 10, ver(5, task.Pending)),
			get(1, 5, 8, notFound),
		}},
		{"replay of an unknown submit returns the task as it is now", true, []porcupine.Operation{
			submit(0, 0, returnNever, unknown),
			submit(0, 50, 60, ver(9, task.Completed)),
		}},
		{"replay without any earlier submit", false, []porcupine.Operation{
			submit(0, 50, 60, ver(9, task.Completed)),
		}},
		{"unknown submit that never took effect", true, []porcupine.Operation{
			submit(0, 0, returnNever, unknown),
			submit(1, 20, 30, ver(5, task.Pending)),
			get(1, 31, 40, ver(5, task.Pending)),
		}},
		{"one key, two ids", false, []porcupine.Operation{
			submit(0, 0, 10, ver(5, task.Pending)),
			submit(0, 20, 30, opOutput{Found: true, ID: "other", Index: 6, Status: task.Pending}),
		}},
		{"same index, different status", false, []porcupine.Operation{
			submit(0, 0, 10, ver(5, task.Pending)),
			get(0, 11, 20, ver(7, task.Running)),
			get(0, 21, 30, ver(7, task.Leased)),
		}},
		{"nothing after completed", false, []porcupine.Operation{
			submit(0, 0, 10, ver(5, task.Pending)),
			get(0, 11, 20, ver(7, task.Completed)),
			get(0, 21, 30, ver(8, task.Running)),
		}},
		{"never back to pending", false, []porcupine.Operation{
			submit(0, 0, 10, ver(5, task.Pending)),
			get(0, 11, 20, ver(7, task.Leased)),
			get(0, 21, 30, ver(8, task.Pending)),
		}},
	}
	for _, c := range cases {
		if got := porcupine.CheckOperations(taskModel, c.ops); got != c.ok {
			t.Errorf("%s: linearizable = %v, want %v\n%s", c.name, got, c.ok, describeOps(c.ops))
		}
	}
}

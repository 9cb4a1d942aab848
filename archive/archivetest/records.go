package archivetest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/task"
)

// runID makes the suite's tenant ids unique per process, so a persistent
// store (PostgreSQL) can run the suite again and again, and two runs at
// once, without one seeing the other's records.
var runID = func() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x", b)
}()

var tenantSeq atomic.Int64

// Tenant returns a tenant id unique to this run of the suite; what names
// the tenant's role in a test (e.g. "a").
func Tenant(what string) string {
	return fmt.Sprintf("at-%s-%d-%s", runID, tenantSeq.Add(1), what)
}

// IDAt returns a fresh task id (a UUIDv7) whose time part is at: ids made
// from earlier times sort before ids made from later ones, so the suite can
// make ids older and newer than those already stored.
func IDAt(at time.Time) string {
	var u uuid.UUID
	_, _ = rand.Read(u[:])
	ms := uint64(at.UnixMilli())
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], ms)
	copy(u[0:6], ts[2:8])
	u[6] = 0x70 | (u[6] & 0x0f)
	u[8] = 0x80 | (u[8] & 0x3f)
	return u.String()
}

// micro truncates t to the microsecond in UTC: the precision of
// PostgreSQL's timestamptz, which the suite's times respect so that a
// driver storing times in columns round-trips them exactly.
func micro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// Spec is what Make builds a record from; zero fields take defaults.
type Spec struct {
	// Tenant owns the task (required).
	Tenant string
	// ID is the task id (default: IDAt(Finished - 1 minute)).
	ID string
	// Status is completed, failed or cancelled (default completed).
	Status task.Status
	// Kind is the task's kind (default "conformance").
	Kind string
	// Labels are the task's required worker labels.
	Labels map[string]string
	// TEE is the task's RequireTEE.
	TEE string
	// Finished is when the task finished (default now).
	Finished time.Time
	// Payload and Result are the task's JSON (defaults: small objects).
	Payload, Result json.RawMessage
	// ErrorMessage is the error of a failed or cancelled task.
	ErrorMessage string
	// Proof is the proof envelope of a completed task (default: a small
	// DSSE envelope; use NoProof for none).
	Proof json.RawMessage
	// NoProof leaves a completed task without a proof.
	NoProof bool
}

// Make returns a finished task's record as the Raft state would hand it to
// the archive: spec, two attempts (the first failed and retried), times,
// usage, cost tags and cost, a result or an error, and a proof envelope for
// a completed task.
func Make(s Spec) archive.Record {
	if s.Finished.IsZero() {
		s.Finished = time.Now()
	}
	fin := micro(s.Finished)
	if s.ID == "" {
		s.ID = IDAt(fin.Add(-time.Minute))
	}
	if s.Status == "" {
		s.Status = task.Completed
	}
	if s.Kind == "" {
		s.Kind = "conformance"
	}
	created := fin.Add(-90 * time.Second)
	leased1, started1, ended1 := created.Add(time.Second), created.Add(1100*time.Millisecond), created.Add(5*time.Second)
	leased2, started2 := created.Add(20*time.Second), created.Add(20100*time.Millisecond)
	prio := 7
	maxRetries := 3
	cost := 0.000123
	t := &task.Task{
		ID:       s.ID,
		TenantID: s.Tenant,
		Spec: task.Spec{
			Kind:           s.Kind,
			Type:           task.Stateless,
			Payload:        s.Payload,
			Priority:       &prio,
			IdempotencyKey: "idem-" + s.ID[:8],
			Timeout:        task.Duration(30 * time.Second),
			Retry:          &task.RetryPolicy{MaxRetries: &maxRetries, BaseDelay: task.Duration(100 * time.Millisecond)},
			RequireTEE:     s.TEE,
			Headers:        map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		},
		Status:  s.Status,
		Attempt: 2,
		Attempts: []task.Attempt{
			{N: 1, WorkerID: "worker-1", Principal: "node:worker-1", LeasedAt: leased1, StartedAt: &started1, FinishedAt: &ended1,
				Error: &task.Error{Message: "connection reset", Retryable: true, Code: "executor"}},
			{N: 2, WorkerID: "worker-2", Principal: "node:worker-2", LeasedAt: leased2, StartedAt: &started2, FinishedAt: &fin},
		},
		CreatedAt:  created,
		UpdatedAt:  fin,
		StartedAt:  &started2,
		FinishedAt: &fin,
		Usage:      &task.Usage{ExecSeconds: 73.5, CPUSeconds: 147, BytesIn: 42, BytesOut: 17},
		CostTags: map[string]string{
			"grey-tenant-id":   s.Tenant,
			"grey-task-id":     s.ID,
			"grey-environment": "conformance",
			"team":             "platform",
		},
		CostUSD: &cost,
		Index:   uint64(fin.UnixMicro() % 1_000_000_007),
	}
	if s.Payload == nil {
		t.Payload = json.RawMessage(`{"n":1,"text":"hello"}`)
	}
	if len(s.Labels) > 0 {
		t.Constraints = &task.Constraints{Labels: maps.Clone(s.Labels), CPU: 2, MemoryMB: 512}
	}
	rec := archive.Record{Task: t}
	switch s.Status {
	case task.Completed:
		t.Result = s.Result
		if t.Result == nil {
			t.Result = json.RawMessage(`{"ok":true,"sum":3}`)
		}
		if !s.NoProof {
			rec.Proof = s.Proof
			if rec.Proof == nil {
				rec.Proof = envelope([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"` + s.ID + `"}]}`))
			}
			t.ProofID = fmt.Sprintf("%x", sha256.Sum256(rec.Proof))
		}
	default:
		msg := s.ErrorMessage
		if msg == "" {
			msg = "the task " + string(s.Status)
		}
		code := "executor"
		if s.Status == task.Cancelled {
			code = "cancelled"
		}
		t.Error = &task.Error{Message: msg, Code: code}
		t.Attempts[1].Error = &task.Error{Message: msg, Code: code}
	}
	return rec
}

// envelope returns a DSSE envelope (JSON) over payload, with a fake
// signature of the right shape.
func envelope(payload []byte) json.RawMessage {
	sig := make([]byte, 64)
	_, _ = rand.Read(sig)
	b, _ := json.Marshal(map[string]any{
		"payloadType": "application/vnd.in-toto+json",
		"payload":     base64.StdEncoding.EncodeToString(payload),
		"signatures":  []map[string]string{{"keyid": "node:worker-2", "sig": base64.StdEncoding.EncodeToString(sig)}},
	})
	return b
}

// clock hands out distinct finish times, a millisecond apart, going back
// from a start, so records made in a loop have distinct, ordered times and
// ids.
type clock struct{ next time.Time }

func newClock(start time.Time) *clock { return &clock{next: micro(start)} }

func (c *clock) tick() time.Time {
	t := c.next
	c.next = c.next.Add(-time.Millisecond)
	return t
}

// ids returns the task ids of recs, in order.
func ids(recs []archive.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		if r.Task != nil {
			out[i] = r.Task.ID
		}
	}
	return out
}

// descending returns the ids of recs sorted newest first (the List order).
func descending(recs []archive.Record) []string {
	out := ids(recs)
	slices.Sort(out)
	slices.Reverse(out)
	return out
}

// sameRecord reports how got differs from want ("" when it does not).
// Times compare as instants; the task's JSON compares after decoding
// (key order and whitespace aside). When exact, the payload, result and
// proof must come back byte for byte; otherwise they compare as JSON
// values (drivers that store jsonb).
func sameRecord(want, got archive.Record, exact bool) string {
	if got.Task == nil {
		return "the record has no task"
	}
	if exact {
		if !bytes.Equal(want.Task.Payload, got.Task.Payload) {
			return fmt.Sprintf("payload differs byte-wise (%d bytes, want %d)", len(got.Task.Payload), len(want.Task.Payload))
		}
		if !bytes.Equal(want.Task.Result, got.Task.Result) {
			return fmt.Sprintf("result differs byte-wise (%d bytes, want %d)", len(got.Task.Result), len(want.Task.Result))
		}
		if !bytes.Equal(want.Proof, got.Proof) {
			return fmt.Sprintf("proof differs byte-wise (%d bytes, want %d)", len(got.Proof), len(want.Proof))
		}
	}
	if w, g := canonJSON(want.Proof), canonJSON(got.Proof); w != g {
		return "proof differs: " + diff(w, g)
	}
	if w, g := canonTask(want.Task), canonTask(got.Task); w != g {
		return "task differs: " + diff(w, g)
	}
	return ""
}

// canonTask is the task's JSON with times in UTC, decoded and encoded again
// (sorted keys, numbers as written).
func canonTask(t *task.Task) string {
	c := *t
	utc := func(p *time.Time) *time.Time {
		if p == nil {
			return nil
		}
		u := p.UTC()
		return &u
	}
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	c.StartedAt, c.FinishedAt, c.NextAttemptAt, c.RunAt = utc(c.StartedAt), utc(c.FinishedAt), utc(c.NextAttemptAt), utc(c.RunAt)
	c.Attempts = slices.Clone(c.Attempts)
	for i := range c.Attempts {
		a := &c.Attempts[i]
		a.LeasedAt = a.LeasedAt.UTC()
		a.StartedAt, a.FinishedAt = utc(a.StartedAt), utc(a.FinishedAt)
	}
	if c.Lease != nil {
		l := *c.Lease
		l.Deadline = l.Deadline.UTC()
		c.Lease = &l
	}
	b, err := json.Marshal(&c)
	if err != nil {
		return "unmarshalable: " + err.Error()
	}
	return canonJSON(b)
}

func canonJSON(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	// Numbers decode as float64, so 1e3 and 1000 (or 2.50 and 2.5), which
	// jsonb may write for one another, compare equal.
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return "invalid JSON: " + err.Error()
	}
	out, _ := json.Marshal(v)
	return string(out)
}

// diff shows where two long strings part.
func diff(want, got string) string {
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	excerpt := func(s string) string {
		lo, hi := max(0, i-60), min(len(s), i+60)
		return strings.ToValidUTF8(s[lo:hi], "?")
	}
	return fmt.Sprintf("at byte %d:\n  got  …%s…\n  want …%s…", i, excerpt(got), excerpt(want))
}

func mustRecords(t testing.TB, n int, f func(i int) Spec) []archive.Record {
	t.Helper()
	out := make([]archive.Record, n)
	for i := range n {
		out[i] = Make(f(i))
	}
	return out
}

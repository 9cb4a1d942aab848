package archivetest

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

func testPing(t *testing.T, h Harness) {
	s := open(t, h)
	if err := s.Ping(ctx(t)); err != nil {
		t.Fatalf("ping: %v", err)
	}
	caps := s.Capabilities()
	if caps.Scheme == "" {
		t.Error("Capabilities().Scheme is empty")
	}
	if caps.MaxBatch < 0 || caps.ReadReplicas < 0 {
		t.Errorf("capabilities %+v: negative bounds", caps)
	}
	var wrong *struct{ X int }
	if s.As(&wrong) {
		t.Error("As accepted an unrelated type")
	}
	// A fresh tenant has nothing.
	ten := Tenant("empty")
	if n := count(t, s, ten, archive.Filter{}); n != 0 {
		t.Errorf("count of a new tenant = %d", n)
	}
	p, err := s.List(ctx(t), ten, archive.Query{})
	if err != nil || len(p.Records) != 0 || p.Next != "" {
		t.Errorf("list of a new tenant = %d records, next %q, %v", len(p.Records), p.Next, err)
	}
	// A label filter works, or is refused as Unimplemented (never ignored).
	_, err = s.Count(ctx(t), ten, archive.Filter{Labels: map[string]string{"gpu": "true"}})
	if caps.LabelFilter && err != nil {
		t.Errorf("label filter with LabelFilter: %v", err)
	}
	if !caps.LabelFilter {
		wantCode(t, "label filter without LabelFilter", err, greyerr.Unimplemented)
	}
}

func testGet(t *testing.T, h Harness) {
	s := open(t, h)
	a, b := Tenant("a"), Tenant("b")
	clk := newClock(time.Now())
	recs := []archive.Record{
		Make(Spec{Tenant: a, Finished: clk.tick()}),
		Make(Spec{Tenant: a, Finished: clk.tick(), Status: task.Failed, ErrorMessage: "exit status 3"}),
		Make(Spec{Tenant: a, Finished: clk.tick(), Status: task.Cancelled}),
		Make(Spec{Tenant: a, Finished: clk.tick(), NoProof: true, Labels: map[string]string{"gpu": "true"}, TEE: "tdx"}),
	}
	other := Make(Spec{Tenant: b, Finished: clk.tick()})
	upsert(t, s, append(slices.Clone(recs), other))
	for _, want := range recs {
		got := get(t, s, a, want.Task.ID)
		if d := sameRecord(want, got, !h.JSONAsValues); d != "" {
			t.Errorf("get %s (%s): %s", want.Task.ID, want.Task.Status, d)
		}
	}
	_, err := s.Get(ctx(t), a, other.Task.ID)
	wantCode(t, "get of another tenant's task", err, greyerr.NotFound)
	_, err = s.Get(ctx(t), b, recs[0].Task.ID)
	wantCode(t, "get of another tenant's task", err, greyerr.NotFound)
	_, err = s.Get(ctx(t), a, IDAt(time.Now()))
	wantCode(t, "get of an unknown id", err, greyerr.NotFound)
	_, err = s.Get(ctx(t), Tenant("nobody"), recs[0].Task.ID)
	wantCode(t, "get under a tenant with no records", err, greyerr.NotFound)
	if got := get(t, s, b, other.Task.ID); got.Task.TenantID != b {
		t.Errorf("tenant b's task came back with tenant %q", got.Task.TenantID)
	}
	// What Get returned is the caller's: changing it changes nothing stored.
	got := get(t, s, a, recs[0].Task.ID)
	got.Task.Kind = "changed"
	got.Task.CostTags["team"] = "changed"
	if len(got.Task.Result) > 0 {
		got.Task.Result[0] = ' '
	}
	if d := sameRecord(recs[0], get(t, s, a, recs[0].Task.ID), !h.JSONAsValues); d != "" {
		t.Errorf("changing a record Get returned changed the store: %s", d)
	}
}

func testIdempotent(t *testing.T, h Harness) {
	s := open(t, h)
	ten := Tenant("idem")
	clk := newClock(time.Now())
	statuses := []task.Status{task.Completed, task.Failed, task.Cancelled}
	recs := mustRecords(t, 40, func(i int) Spec {
		return Spec{Tenant: ten, Finished: clk.tick(), Status: statuses[i%3]}
	})
	upsert(t, s, recs)
	upsert(t, s, recs)
	if n := count(t, s, ten, archive.Filter{}); n != 40 {
		t.Errorf("after the same batch twice: count %d, want 40", n)
	}
	wantIDs(t, "after the same batch twice", listAll(t, s, ten, archive.Query{Limit: 1000}), descending(recs))

	// A batch of stored and new records adds only the new ones.
	more := mustRecords(t, 5, func(int) Spec { return Spec{Tenant: ten, Finished: clk.tick()} })
	upsert(t, s, append(slices.Clone(recs[10:20]), more...))
	all := append(slices.Clone(recs), more...)
	if n := count(t, s, ten, archive.Filter{}); n != 45 {
		t.Errorf("after a batch of 10 stored and 5 new records: count %d, want 45", n)
	}
	wantIDs(t, "after a mixed batch", listAll(t, s, ten, archive.Query{Limit: 7}), descending(all))

	// A changed record replaces the stored one (same task, same finish).
	changed := Make(Spec{Tenant: ten, ID: recs[3].Task.ID, Finished: *recs[3].Task.FinishedAt,
		Result: json.RawMessage(`{"ok":true,"delivery":"second","sum":4}`), Proof: envelope([]byte(`{"second":true}`))})
	changed.Task.Usage.ExecSeconds = 99.25
	changed.Task.Attempts = append(changed.Task.Attempts, task.Attempt{N: 3, WorkerID: "worker-3", LeasedAt: *changed.Task.FinishedAt})
	changed.Task.Attempt = 3
	failed := Make(Spec{Tenant: ten, ID: recs[6].Task.ID, Finished: *recs[6].Task.FinishedAt, Status: task.Failed, ErrorMessage: "changed reason"})
	upsert(t, s, []archive.Record{changed, failed})
	if d := sameRecord(changed, get(t, s, ten, changed.Task.ID), !h.JSONAsValues); d != "" {
		t.Errorf("after replacing a record: %s", d)
	}
	if d := sameRecord(failed, get(t, s, ten, failed.Task.ID), !h.JSONAsValues); d != "" {
		t.Errorf("after replacing a record: %s", d)
	}
	if n := count(t, s, ten, archive.Filter{}); n != 45 {
		t.Errorf("after replacing two records: count %d, want 45", n)
	}
	if n := count(t, s, ten, archive.Filter{Statuses: []task.Status{task.Completed}}); n != 14-1+5 {
		t.Errorf("completed after replacing a completed record by a failed one: count %d, want 18", n)
	}
	// A task twice in one batch is written once, as its last occurrence.
	first := Make(Spec{Tenant: ten, Finished: clk.tick(), Result: json.RawMessage(`{"copy":1}`)})
	last := Make(Spec{Tenant: ten, ID: first.Task.ID, Finished: *first.Task.FinishedAt, Result: json.RawMessage(`{"copy":2}`)})
	upsert(t, s, []archive.Record{first, recs[0], last})
	if d := sameRecord(last, get(t, s, ten, first.Task.ID), !h.JSONAsValues); d != "" {
		t.Errorf("a task twice in a batch: %s", d)
	}
	if n := count(t, s, ten, archive.Filter{}); n != 46 {
		t.Errorf("after a batch with a task twice: count %d, want 46", n)
	}
	// The untouched records are as written.
	for _, i := range []int{0, 5, 39} {
		if d := sameRecord(recs[i], get(t, s, ten, recs[i].Task.ID), !h.JSONAsValues); d != "" {
			t.Errorf("record %d: %s", i, d)
		}
	}
}

func testLargeBatch(t *testing.T, h Harness) {
	s := open(t, h)
	ten := Tenant("batch")
	n := 2500
	if mb := s.Capabilities().MaxBatch; mb > 0 {
		n = 2*mb + 1
	}
	clk := newClock(time.Now())
	recs := mustRecords(t, n, func(int) Spec { return Spec{Tenant: ten, Finished: clk.tick()} })
	upsert(t, s, recs)
	if c := count(t, s, ten, archive.Filter{}); c != int64(n) {
		t.Errorf("after a batch of %d: count %d", n, c)
	}
	// Spot checks.
	for _, i := range []int{0, n / 2, n - 1} {
		if d := sameRecord(recs[i], get(t, s, ten, recs[i].Task.ID), !h.JSONAsValues); d != "" {
			t.Errorf("record %d: %s", i, d)
		}
	}
}

func testOrder(t *testing.T, h Harness) {
	s := open(t, h)
	ten := Tenant("order")
	// 300 records whose ids are spread over an hour, in random order, and
	// written in batches of 50 out of order.
	base := time.Now().Add(-2 * time.Hour)
	recs := mustRecords(t, 300, func(int) Spec {
		at := base.Add(time.Duration(rand.Int64N(int64(time.Hour))))
		return Spec{Tenant: ten, ID: IDAt(at), Finished: micro(at.Add(time.Minute))}
	})
	shuffled := slices.Clone(recs)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for i := 0; i < len(shuffled); i += 50 {
		upsert(t, s, shuffled[i:i+50])
	}
	want := descending(recs)
	for _, limit := range []int{1, 7, 50, 0, 299, 300, archive.MaxLimit} {
		got := listAll(t, s, ten, archive.Query{Limit: limit})
		wantIDs(t, "list with limit "+itoa(limit), got, want)
		seen := map[string]bool{}
		for i, r := range got {
			if seen[r.Task.ID] {
				t.Errorf("limit %d: %s listed twice", limit, r.Task.ID)
			}
			seen[r.Task.ID] = true
			if i > 0 && r.Task.ID >= got[i-1].Task.ID {
				t.Errorf("limit %d: %s after %s: not descending", limit, r.Task.ID, got[i-1].Task.ID)
			}
		}
	}
	// Exact page counts: 300 in pages of 100 is three pages, the last with
	// no next cursor.
	q := archive.Query{}
	for page := 1; page <= 3; page++ {
		p, err := s.List(ctx(t), ten, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Records) != 100 {
			t.Fatalf("page %d: %d records, want 100", page, len(p.Records))
		}
		if (p.Next == "") != (page == 3) {
			t.Fatalf("page %d: next %q", page, p.Next)
		}
		q.Cursor = p.Next
	}
	// Every listed record is whole.
	p, err := s.List(ctx(t), ten, archive.Query{Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]archive.Record{}
	for _, r := range recs {
		byID[r.Task.ID] = r
	}
	for _, r := range p.Records {
		if d := sameRecord(byID[r.Task.ID], r, !h.JSONAsValues); d != "" {
			t.Errorf("listed %s: %s", r.Task.ID, d)
		}
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

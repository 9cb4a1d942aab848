package archivetest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

func testCursorStability(t *testing.T, h Harness) {
	s := open(t, h)
	ten := Tenant("stable")
	base := time.Now().Add(-3 * time.Hour)
	const n = 240
	initial := mustRecords(t, n, func(i int) Spec {
		at := base.Add(time.Duration(i) * 10 * time.Second)
		return Spec{Tenant: ten, ID: IDAt(at), Finished: at.Add(time.Minute)}
	})
	upsert(t, s, initial)
	isInitial := map[string]bool{}
	for _, r := range initial {
		isInitial[r.Task.ID] = true
	}

	// Records written while the client pages: newer than every initial
	// record, older than every one, and in between.
	var mu sync.Mutex
	written := map[string]bool{}
	var seq int
	batch := func() []archive.Record {
		mu.Lock()
		defer mu.Unlock()
		seq++
		k := time.Duration(seq) * time.Millisecond
		at := []time.Time{
			base.Add(2*time.Hour + k), // newer
			base.Add(-time.Hour - k),  // older
			base.Add(time.Duration(rand.Int64N(int64(n * 10 * time.Second)))), // between
		}
		out := make([]archive.Record, len(at))
		for i, a := range at {
			out[i] = Make(Spec{Tenant: ten, ID: IDAt(a), Finished: a.Add(time.Minute)})
			written[out[i].Task.ID] = true
		}
		return out
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	var writeErr error
	stopWriter := sync.OnceFunc(func() { close(stop); writeErr = <-done })
	defer stopWriter()     // also when the test fails half-way
	const maxBatches = 300 // bounds the run whatever the driver's speed
	go func() {
		for range maxBatches {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := s.Upsert(c, batch())
			cancel()
			if err != nil {
				done <- err
				return
			}
		}
		<-stop
		done <- nil
	}()

	var got []archive.Record
	q := archive.Query{Limit: 9}
	for pages := 0; ; pages++ {
		if len(got) > n+3*(maxBatches+pages) {
			t.Fatalf("after %d pages, %d records listed: more than were ever written", pages, len(got))
		}
		p, err := s.List(ctx(t), ten, q)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		got = append(got, p.Records...)
		if p.Next == "" {
			break
		}
		q.Cursor = p.Next
		// Also write between every two pages, whatever the goroutine's pace.
		upsert(t, s, batch())
	}
	stopWriter()
	if writeErr != nil {
		t.Fatalf("concurrent upsert: %v", writeErr)
	}

	seen := map[string]int{}
	for i, r := range got {
		id := r.Task.ID
		seen[id]++
		if seen[id] == 2 {
			t.Errorf("%s listed twice", id)
		}
		if i > 0 && id >= got[i-1].Task.ID {
			t.Errorf("%s listed after %s: not descending", id, got[i-1].Task.ID)
		}
		mu.Lock()
		ok := isInitial[id] || written[id]
		mu.Unlock()
		if !ok {
			t.Errorf("%s listed but never written", id)
		}
	}
	missing := 0
	for id := range isInitial {
		if seen[id] == 0 {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of the %d records stored before the first page were skipped", missing, n)
	}
	mu.Lock()
	total := n + len(written)
	mu.Unlock()
	if c := count(t, s, ten, archive.Filter{}); c != int64(total) {
		t.Errorf("count after the concurrent writes = %d, want %d", c, total)
	}
	t.Logf("%d records listed while %d were written concurrently", len(got), total-n)
}

func testIsolation(t *testing.T, h Harness) {
	s := open(t, h)
	a, b, c := Tenant("a"), Tenant("b"), Tenant("c")
	clk := newClock(time.Now())
	labels := map[string]string{"gpu": "true"}
	var recsA, recsB, mixed []archive.Record
	for i := range 50 {
		ten := a
		if i%5 >= 3 {
			ten = b
		}
		r := Make(Spec{Tenant: ten, Finished: clk.tick(), Kind: "shared-kind", Labels: labels})
		if ten == a {
			recsA = append(recsA, r)
		} else {
			recsB = append(recsB, r)
		}
		mixed = append(mixed, r)
	}
	upsert(t, s, mixed) // one call, two tenants: the Store splits it
	caps := s.Capabilities()
	filters := []archive.Filter{{}, {Kind: "shared-kind"}, {Statuses: []task.Status{task.Completed}}}
	if caps.LabelFilter {
		filters = append(filters, archive.Filter{Labels: labels})
	}
	for _, f := range filters {
		for _, tc := range []struct {
			tenant string
			want   []archive.Record
		}{{a, recsA}, {b, recsB}, {c, nil}} {
			what := fmt.Sprintf("tenant %s, filter %+v", tc.tenant, f)
			if n := count(t, s, tc.tenant, f); n != int64(len(tc.want)) {
				t.Errorf("%s: count %d, want %d", what, n, len(tc.want))
			}
			got := listAll(t, s, tc.tenant, archive.Query{Filter: f, Limit: 8})
			wantIDs(t, what, got, descending(tc.want))
			for _, r := range got {
				if r.Task.TenantID != tc.tenant {
					t.Errorf("%s: listed a task of tenant %s", what, r.Task.TenantID)
				}
			}
		}
	}
	for _, r := range recsB {
		_, err := s.Get(ctx(t), a, r.Task.ID)
		wantCode(t, "tenant a getting tenant b's task", err, greyerr.NotFound)
		_, err = s.Get(ctx(t), c, r.Task.ID)
		wantCode(t, "tenant c getting tenant b's task", err, greyerr.NotFound)
	}
	// The driver's own contract, without the Store's guard.
	d := h.Open(t)
	t.Cleanup(func() { _ = d.Close() })
	if err := d.Upsert(ctx(t), b, recsB[:3]); err != nil {
		t.Fatalf("driver upsert: %v", err)
	}
	for _, r := range recsB[:3] {
		_, err := d.Get(ctx(t), a, r.Task.ID)
		wantCode(t, "driver: tenant a getting tenant b's task", err, greyerr.NotFound)
	}
	listed, err := d.List(ctx(t), a, archive.DriverQuery{Limit: 1000})
	if err != nil {
		t.Fatalf("driver list: %v", err)
	}
	for _, r := range listed {
		if r.Task == nil || r.Task.TenantID != a {
			t.Errorf("driver list of tenant a returned a task of %v", r.Task)
		}
	}
}

func testSameID(t *testing.T, h Harness) {
	// Records are keyed by (tenant, task id): the same id under two
	// tenants is two records, and neither write touches the other's.
	s := open(t, h)
	a, b := Tenant("a"), Tenant("b")
	id := IDAt(time.Now())
	fin := time.Now().Add(-time.Second)
	ra := Make(Spec{Tenant: a, ID: id, Finished: fin, Result: json.RawMessage(`{"tenant":"a"}`)})
	rb := Make(Spec{Tenant: b, ID: id, Finished: fin.Add(time.Millisecond), Status: task.Failed, ErrorMessage: "tenant b's"})
	upsert(t, s, []archive.Record{ra})
	upsert(t, s, []archive.Record{rb})
	upsert(t, s, []archive.Record{ra, rb})
	if d := sameRecord(ra, get(t, s, a, id), !h.JSONAsValues); d != "" {
		t.Errorf("tenant a's record: %s", d)
	}
	if d := sameRecord(rb, get(t, s, b, id), !h.JSONAsValues); d != "" {
		t.Errorf("tenant b's record: %s", d)
	}
	for _, tc := range []struct {
		tenant string
		status task.Status
	}{{a, task.Completed}, {b, task.Failed}} {
		got := listAll(t, s, tc.tenant, archive.Query{})
		if len(got) != 1 || got[0].Task.TenantID != tc.tenant || got[0].Task.Status != tc.status {
			t.Errorf("tenant %s lists %d records (%v), want its own %s one", tc.tenant, len(got), ids(got), tc.status)
		}
		if n := count(t, s, tc.tenant, archive.Filter{}); n != 1 {
			t.Errorf("tenant %s: count %d, want 1", tc.tenant, n)
		}
	}
}

// matches is the suite's own reading of archive.Filter, independent of
// any driver.
func matches(r archive.Record, f archive.Filter) bool {
	tk := r.Task
	if len(f.Statuses) > 0 && !slices.Contains(f.Statuses, tk.Status) {
		return false
	}
	if f.Kind != "" && f.Kind != tk.Kind {
		return false
	}
	if !f.FinishedFrom.IsZero() && tk.FinishedAt.Before(f.FinishedFrom) {
		return false
	}
	if !f.FinishedTo.IsZero() && !tk.FinishedAt.Before(f.FinishedTo) {
		return false
	}
	labels := tk.Labels()
	for k, v := range f.Labels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func testFilters(t *testing.T, h Harness) {
	s := open(t, h)
	ten, noise := Tenant("filters"), Tenant("noise")
	base := micro(time.Now().Add(-time.Hour))
	statuses := []task.Status{task.Completed, task.Failed, task.Cancelled}
	kinds := []string{"alpha", "beta", "alpha", "gamma"}
	type lab struct {
		labels map[string]string
		tee    string
	}
	labelSets := []lab{
		{},
		{labels: map[string]string{"gpu": "true"}},
		{labels: map[string]string{"gpu": "false", "zone": "eu"}},
		{labels: map[string]string{"gpu": "true", "zone": "eu"}},
		{labels: map[string]string{"zone": "us"}, tee: "sgx"},
	}
	spec := func(tenant string, i int) Spec {
		l := labelSets[i%5]
		return Spec{Tenant: tenant, Finished: base.Add(-time.Duration(i) * time.Minute), Status: statuses[i%3],
			Kind: kinds[i%4], Labels: l.labels, TEE: l.tee}
	}
	recs := mustRecords(t, 60, func(i int) Spec { return spec(ten, i) })
	upsert(t, s, recs)
	upsert(t, s, mustRecords(t, 30, func(i int) Spec { return spec(noise, i) }))
	at := func(i int) time.Time { return *recs[i].Task.FinishedAt }

	filters := []archive.Filter{
		{},
		{Statuses: []task.Status{task.Completed}},
		{Statuses: []task.Status{task.Failed}},
		{Statuses: []task.Status{task.Cancelled}},
		{Statuses: []task.Status{task.Failed, task.Cancelled}},
		{Statuses: []task.Status{task.Completed, task.Failed, task.Cancelled}},
		{Kind: "alpha"},
		{Kind: "gamma"},
		{Kind: "no-such-kind"},
		{FinishedFrom: at(10)},                     // inclusive: record 10 is in
		{FinishedTo: at(10)},                       // exclusive: record 10 is out
		{FinishedFrom: at(40), FinishedTo: at(20)}, // records 21..40
		{FinishedFrom: at(40).Add(time.Microsecond), FinishedTo: at(20).Add(time.Microsecond)}, // 20..39
		{FinishedFrom: base.Add(time.Hour)},                                                    // none
		{FinishedTo: at(59)},                                                                   // none
		{FinishedFrom: at(59), FinishedTo: base.Add(time.Microsecond)},                         // all
		{Statuses: []task.Status{task.Completed}, Kind: "alpha"},
		{Statuses: []task.Status{task.Failed}, FinishedFrom: at(30), FinishedTo: at(5)},
		{Kind: "beta", FinishedTo: at(12)},
	}
	if s.Capabilities().LabelFilter {
		filters = append(filters,
			archive.Filter{Labels: map[string]string{"gpu": "true"}},
			archive.Filter{Labels: map[string]string{"gpu": "false"}},
			archive.Filter{Labels: map[string]string{"gpu": "true", "zone": "eu"}},
			archive.Filter{Labels: map[string]string{"zone": "eu"}},
			archive.Filter{Labels: map[string]string{task.PlatformLabel: "sgx"}},
			archive.Filter{Labels: map[string]string{task.PlatformLabel: "sgx", "zone": "us"}},
			archive.Filter{Labels: map[string]string{task.PlatformLabel: "tdx"}},
			archive.Filter{Labels: map[string]string{"gpu": "TRUE"}},
			archive.Filter{Labels: map[string]string{"no-such-label": "x"}},
			archive.Filter{Statuses: []task.Status{task.Completed}, Kind: "alpha", Labels: map[string]string{"gpu": "true"}},
			archive.Filter{Statuses: []task.Status{task.Cancelled, task.Failed}, Kind: "beta", Labels: map[string]string{"zone": "eu"},
				FinishedFrom: at(50), FinishedTo: at(3)},
		)
	}
	for _, f := range filters {
		var want []archive.Record
		for _, r := range recs {
			if matches(r, f) {
				want = append(want, r)
			}
		}
		what := fmt.Sprintf("filter %s", describe(f))
		got := listAll(t, s, ten, archive.Query{Filter: f, Limit: 4})
		wantIDs(t, what, got, descending(want))
		for _, r := range got {
			if !matches(r, f) {
				t.Errorf("%s: listed %s (%s %s finished %s), which does not match", what, r.Task.ID, r.Task.Status, r.Task.Kind, r.Task.FinishedAt)
			}
		}
		if n := count(t, s, ten, f); n != int64(len(want)) {
			t.Errorf("%s: count %d, want %d (list gave %d)", what, n, len(want), len(got))
		}
	}
}

func describe(f archive.Filter) string {
	s := fmt.Sprintf("statuses=%v kind=%q labels=%v", f.Statuses, f.Kind, f.Labels)
	if !f.FinishedFrom.IsZero() {
		s += " from=" + f.FinishedFrom.Format(time.RFC3339Nano)
	}
	if !f.FinishedTo.IsZero() {
		s += " to=" + f.FinishedTo.Format(time.RFC3339Nano)
	}
	return s
}

func testRetention(t *testing.T, h Harness) {
	s := open(t, h)
	r1, r2 := Tenant("ret1"), Tenant("ret2")
	// Far enough in the past that no other test of the suite (nor of a
	// concurrent run) has records there.
	cut := micro(time.Now().Add(-90 * 24 * time.Hour))
	var gone, stay []archive.Record
	for _, off := range []time.Duration{-3 * time.Millisecond, -time.Microsecond, 0, time.Microsecond, 3 * time.Millisecond} {
		r := Make(Spec{Tenant: r1, Finished: cut.Add(off)})
		if off < 0 {
			gone = append(gone, r)
		} else {
			stay = append(stay, r)
		}
	}
	gone = append(gone, Make(Spec{Tenant: r2, Finished: cut.Add(-time.Second), Status: task.Failed}))
	stay = append(stay, Make(Spec{Tenant: r2, Finished: cut.Add(time.Second), Status: task.Cancelled}))
	stay = append(stay, Make(Spec{Tenant: r1, Finished: time.Now()}))
	upsert(t, s, append(slices.Clone(gone), stay...))

	n, err := s.DeleteBefore(ctx(t), cut)
	if err != nil {
		t.Fatalf("delete before: %v", err)
	}
	if n != -1 && n < int64(len(gone)) {
		t.Errorf("delete before reported %d records, want at least %d (or -1)", n, len(gone))
	}
	for _, r := range gone {
		_, err := s.Get(ctx(t), r.Task.TenantID, r.Task.ID)
		wantCode(t, fmt.Sprintf("get of a record finished %s before the cut", cut.Sub(*r.Task.FinishedAt)), err, greyerr.NotFound)
	}
	for _, r := range stay {
		if d := sameRecord(r, get(t, s, r.Task.TenantID, r.Task.ID), !h.JSONAsValues); d != "" {
			t.Errorf("record finished %s after the cut: %s", r.Task.FinishedAt.Sub(cut), d)
		}
	}
	if c := count(t, s, r1, archive.Filter{}); c != 4 {
		t.Errorf("tenant 1 keeps %d records, want 4", c)
	}
	if c := count(t, s, r2, archive.Filter{}); c != 1 {
		t.Errorf("tenant 2 keeps %d records, want 1", c)
	}
	var stay1 []archive.Record
	for _, r := range stay {
		if r.Task.TenantID == r1 {
			stay1 = append(stay1, r)
		}
	}
	wantIDs(t, "tenant 1 after retention", listAll(t, s, r1, archive.Query{Limit: 2}), descending(stay1))
	// Again: nothing more goes.
	if _, err := s.DeleteBefore(ctx(t), cut); err != nil {
		t.Fatalf("second delete before: %v", err)
	}
	if c := count(t, s, r1, archive.Filter{}); c != 4 {
		t.Errorf("after a second delete, tenant 1 keeps %d records, want 4", c)
	}
}

package archivetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/archive"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// bigJSON returns a JSON object of about size bytes, indented when pretty.
func bigJSON(t testing.TB, size int, pretty bool) json.RawMessage {
	t.Helper()
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	type row struct {
		I    int     `json:"i"`
		Data string  `json:"data"`
		F    float64 `json:"f"`
	}
	var rows []row
	for n := 0; n < size; n += 1040 {
		b := make([]byte, 1000)
		_, _ = rand.Read(b)
		for i := range b {
			b[i] = alphabet[int(b[i])%len(alphabet)]
		}
		rows = append(rows, row{I: len(rows), Data: string(b), F: float64(len(rows)) / 7})
	}
	v := map[string]any{"rows": rows, "summary": map[string]any{"count": len(rows), "note": "large"}}
	var out []byte
	var err error
	if pretty {
		out, err = json.MarshalIndent(v, "", "  ")
	} else {
		out, err = json.Marshal(v)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func testLarge(t *testing.T, h Harness) {
	s := open(t, h)
	ten := Tenant("large")
	result := bigJSON(t, 4<<20, false)
	payload := bigJSON(t, 1<<20, true)
	proofPayload := bigJSON(t, 1<<20, false)
	rec := Make(Spec{Tenant: ten, Result: result, Payload: payload, Proof: envelope(proofPayload)})
	small := Make(Spec{Tenant: ten, Finished: time.Now().Add(-time.Second)})
	upsert(t, s, []archive.Record{rec, small})
	upsert(t, s, []archive.Record{rec}) // again: replaced, not doubled
	t.Logf("result %d bytes, payload %d bytes, proof %d bytes", len(result), len(payload), len(rec.Proof))
	if d := sameRecord(rec, get(t, s, ten, rec.Task.ID), !h.JSONAsValues); d != "" {
		t.Errorf("get of the large record: %s", d)
	}
	got := listAll(t, s, ten, archive.Query{Limit: 1})
	if len(got) != 2 {
		t.Fatalf("listed %d records, want 2", len(got))
	}
	for _, r := range got {
		want := small
		if r.Task.ID == rec.Task.ID {
			want = rec
		}
		if d := sameRecord(want, r, !h.JSONAsValues); d != "" {
			t.Errorf("listed %s: %s", r.Task.ID, d)
		}
	}
}

func testJSONBytes(t *testing.T, h Harness) {
	// JSON with whitespace, keys out of order, escapes and HTML characters
	// (which encoding/json would escape if a driver re-encoded the bytes).
	s := open(t, h)
	ten := Tenant("json")
	payload := json.RawMessage("{ \"b\" : 2,\n  \"a\": [1, 2.50, 1e3, -7],\t\"s\": \"<b>&amp;</b>\", \"u\": \"\\u00e9\\ud83d\\ude00\", \"n\": null }")
	result := json.RawMessage("[\n  {\"z\": true, \"y\": false},\n  \"x\"\n]")
	proof := json.RawMessage("{\n  \"payloadType\": \"application/vnd.in-toto+json\",\n  \"payload\": \"e30=\",\n  \"signatures\": [ { \"sig\": \"AAAA\", \"keyid\": \"k<1>\" } ]\n}")
	rec := Make(Spec{Tenant: ten, Payload: payload, Result: result, Proof: proof})
	scalar := Make(Spec{Tenant: ten, Payload: json.RawMessage(`"just a string"`), Result: json.RawMessage(`42`), Finished: time.Now().Add(-time.Second)})
	upsert(t, s, []archive.Record{rec, scalar})
	for _, want := range []archive.Record{rec, scalar} {
		got := get(t, s, ten, want.Task.ID)
		if d := sameRecord(want, got, !h.JSONAsValues); d != "" {
			t.Errorf("%s: %s", want.Task.Payload, d)
		}
	}
	if h.JSONAsValues {
		t.Log("JSONAsValues: payload, result and proof compared as JSON values")
	}
}

// The unicode the suite writes: astral-plane characters (emoji, musical
// and mathematical symbols), right-to-left scripts and marks, combining
// characters, a zero-width joiner sequence.
const (
	uniKind  = "計算·🚀·שלום·é·𝕏"
	uniKey   = "région-ℤ🌍"
	uniValue = "مرحبا بالعالم\u200f"
	uniText  = "𝄞 music, עברית, e\u0301, 👩‍💻, ‮override‬, 🏳️‍🌈"
	uniError = "échec: 💥 فشل — कार्य विफल"
)

func testUnicode(t *testing.T, h Harness) {
	s := open(t, h)
	ten := Tenant("unicode")
	text, _ := json.Marshal(uniText)
	payload := json.RawMessage(fmt.Sprintf(`{"text": %s, "escaped": "\u00e9\ud834\udd1e", "%s": 1}`, text, uniKey))
	result := json.RawMessage(fmt.Sprintf(`{"echo": %s}`, text))
	ok := Make(Spec{Tenant: ten, Kind: uniKind, Labels: map[string]string{uniKey: uniValue, "plain": "x"}, Payload: payload, Result: result})
	failed := Make(Spec{Tenant: ten, Kind: uniKind, Status: task.Failed, ErrorMessage: uniError, Payload: payload, Finished: time.Now().Add(-time.Second)})
	failed.Task.Attempts[0].Error.Message = uniText
	failed.Task.CostTags["équipe"] = uniValue
	other := Make(Spec{Tenant: ten, Kind: "e\u0301", Finished: time.Now().Add(-2 * time.Second)}) // é decomposed: a different kind
	upsert(t, s, []archive.Record{ok, failed, other})
	for _, want := range []archive.Record{ok, failed, other} {
		if d := sameRecord(want, get(t, s, ten, want.Task.ID), !h.JSONAsValues); d != "" {
			t.Errorf("%s (%s): %s", want.Task.ID, want.Task.Status, d)
		}
	}
	got := listAll(t, s, ten, archive.Query{Filter: archive.Filter{Kind: uniKind}})
	wantIDs(t, "kind filter "+uniKind, got, descending([]archive.Record{ok, failed}))
	if n := count(t, s, ten, archive.Filter{Kind: "é"}); n != 0 {
		t.Errorf("kind é (composed) counted %d; only the decomposed é was written", n)
	}
	if n := count(t, s, ten, archive.Filter{Kind: "e\u0301"}); n != 1 {
		t.Errorf("kind e+U+0301 counted %d, want 1", n)
	}
	if s.Capabilities().LabelFilter {
		f := archive.Filter{Kind: uniKind, Labels: map[string]string{uniKey: uniValue}}
		got := listAll(t, s, ten, archive.Query{Filter: f, Limit: 1})
		wantIDs(t, "unicode label filter", got, []string{ok.Task.ID})
		// The cursor of a unicode filter works.
		p, err := s.List(ctx(t), ten, archive.Query{Filter: archive.Filter{Kind: uniKind}, Limit: 1})
		if err != nil || p.Next == "" {
			t.Fatalf("first page: %v, next %q", err, p.Next)
		}
		p, err = s.List(ctx(t), ten, archive.Query{Filter: archive.Filter{Kind: uniKind}, Limit: 1, Cursor: p.Next})
		if err != nil || len(p.Records) != 1 || p.Records[0].Task.ID != failed.Task.ID {
			t.Errorf("second page of the unicode kind: %v, %v", ids(p.Records), err)
		}
	}
}

func testCancel(t *testing.T, h Harness) {
	s := open(t, h)
	d := h.Open(t)
	t.Cleanup(func() { _ = d.Close() })
	ten := Tenant("cancel")
	rec := Make(Spec{Tenant: ten})
	upsert(t, s, []archive.Record{rec})

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		code greyerr.Code
	}{{"cancelled", cancelled, greyerr.Canceled}, {"expired", expired, greyerr.DeadlineExceeded}} {
		c := tc.ctx
		viaStore := map[string]func() error{
			"upsert": func() error { return s.Upsert(c, []archive.Record{Make(Spec{Tenant: ten})}) },
			"get":    func() error { _, err := s.Get(c, ten, rec.Task.ID); return err },
			"list":   func() error { _, err := s.List(c, ten, archive.Query{}); return err },
			"count":  func() error { _, err := s.Count(c, ten, archive.Filter{}); return err },
			"delete": func() error { _, err := s.DeleteBefore(c, time.Now().Add(-365*24*time.Hour)); return err },
			"ping":   func() error { return s.Ping(c) },
		}
		viaDriver := map[string]func() error{
			"upsert": func() error { return d.Upsert(c, ten, []archive.Record{Make(Spec{Tenant: ten})}) },
			"get":    func() error { _, err := d.Get(c, ten, rec.Task.ID); return err },
			"list":   func() error { _, err := d.List(c, ten, archive.DriverQuery{Limit: 10}); return err },
			"count":  func() error { _, err := d.Count(c, ten, archive.Filter{}); return err },
			"delete": func() error { _, err := d.DeleteBefore(c, time.Now().Add(-365*24*time.Hour)); return err },
			"ping":   func() error { return d.Ping(c) },
		}
		for via, ops := range map[string]map[string]func() error{"store": viaStore, "driver": viaDriver} {
			for op, f := range ops {
				start := time.Now()
				err := f()
				if el := time.Since(start); el > time.Second {
					t.Errorf("%s %s with a %s context took %s", via, op, tc.name, el)
				}
				// The driver's contract: ctx's error or one wrapping it
				// (it may carry another code: the Store gives it ctx's).
				if via == "store" {
					wantCode(t, fmt.Sprintf("%s %s with a %s context", via, op, tc.name), err, tc.code)
				}
				if !errors.Is(err, tc.ctx.Err()) {
					t.Errorf("%s %s with a %s context: %v does not wrap the context's error", via, op, tc.name, err)
				}
			}
		}
	}

	// A context that ends in the middle of a large write: the write stops
	// soon with the context's code (or had finished), and the store still
	// answers afterwards.
	clk := newClock(time.Now().Add(-time.Minute))
	big := mustRecords(t, 3000, func(int) Spec { return Spec{Tenant: ten, Finished: clk.tick()} })
	c, cancel3 := context.WithTimeout(context.Background(), 2*time.Millisecond)
	defer cancel3()
	start := time.Now()
	err := s.Upsert(c, big)
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("an upsert whose context ended after 2ms took %s", el)
	}
	if err != nil && !greyerr.Is(err, greyerr.DeadlineExceeded) {
		t.Errorf("upsert cut by its deadline: got %v (code %q), want deadline_exceeded or success", err, greyerr.CodeOf(err))
	}
	n := count(t, s, ten, archive.Filter{})
	if n < 1 || n > 3001 {
		t.Errorf("after a cut upsert: count %d, want 1..3001", n)
	}
	// A retry of the same batch completes it.
	upsert(t, s, big)
	if n := count(t, s, ten, archive.Filter{}); n != 3001 {
		t.Errorf("after the retried upsert: count %d, want 3001", n)
	}
}

func testUnreachable(t *testing.T, h Harness) {
	if h.Unreachable == nil {
		t.Skip("Harness.Unreachable is nil: this driver's test cannot point it at a store that does not answer")
	}
	s := store(t, h.Unreachable(t))
	ten := Tenant("down")
	rec := Make(Spec{Tenant: ten})
	ops := []struct {
		name string
		f    func(context.Context) error
	}{
		{"ping", func(c context.Context) error { return s.Ping(c) }},
		{"upsert", func(c context.Context) error { return s.Upsert(c, []archive.Record{rec}) }},
		{"get", func(c context.Context) error { _, err := s.Get(c, ten, rec.Task.ID); return err }},
		{"list", func(c context.Context) error { _, err := s.List(c, ten, archive.Query{}); return err }},
		{"count", func(c context.Context) error { _, err := s.Count(c, ten, archive.Filter{}); return err }},
		{"delete", func(c context.Context) error {
			_, err := s.DeleteBefore(c, time.Now().Add(-365*24*time.Hour))
			return err
		}},
	}
	for _, op := range ops {
		c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		start := time.Now()
		err := op.f(c)
		el := time.Since(start)
		cancel()
		wantCode(t, op.name+" on an unreachable store", err, greyerr.Unavailable)
		// FastRetry gives up after 3 tries or 2 s of retrying; a driver's
		// connect timeout adds to each try.
		if el > 8*time.Second {
			t.Errorf("%s on an unreachable store took %s: retries are not bounded", op.name, el)
		}
	}
}

func testBadCursor(t *testing.T, h Harness) {
	s := open(t, h)
	a, b := Tenant("a"), Tenant("b")
	clk := newClock(time.Now())
	upsert(t, s, mustRecords(t, 10, func(int) Spec { return Spec{Tenant: a, Finished: clk.tick(), Kind: "k"} }))
	upsert(t, s, mustRecords(t, 10, func(int) Spec { return Spec{Tenant: b, Finished: clk.tick(), Kind: "k"} }))
	f := archive.Filter{Kind: "k"}
	p, err := s.List(ctx(t), a, archive.Query{Filter: f, Limit: 3})
	if err != nil || p.Next == "" {
		t.Fatalf("first page: %v (next %q)", err, p.Next)
	}
	next := p.Next
	flip := []byte(next)
	flip[len(flip)/2] ^= 0x01
	if flip[len(flip)/2] == '-' || flip[len(flip)/2] == '_' || !isB64(flip[len(flip)/2]) {
		flip[len(flip)/2] = 'A'
	}
	if string(flip) == next {
		flip[len(flip)/2] = 'B'
	}
	cases := []struct {
		what   string
		tenant string
		filter archive.Filter
		cursor string
	}{
		{"another tenant's cursor", b, f, next},
		{"a cursor of another filter (kind)", a, archive.Filter{Kind: "other"}, next},
		{"a cursor of another filter (no filter)", a, archive.Filter{}, next},
		{"a cursor of another filter (status)", a, archive.Filter{Kind: "k", Statuses: []task.Status{task.Completed}}, next},
		{"a tampered cursor", a, f, string(flip)},
		{"a truncated cursor", a, f, next[:len(next)-2]},
		{"a cursor with a byte appended", a, f, next + "A"},
		{"a cursor that is not base64", a, f, "%%%not-a-cursor%%%"},
		{"a very long cursor", a, f, strings.Repeat("A", 4096)},
	}
	for _, tc := range cases {
		_, err := s.List(ctx(t), tc.tenant, archive.Query{Filter: tc.filter, Limit: 3, Cursor: tc.cursor})
		wantField(t, tc.what, err, "cursor")
		if err != nil && bytes.Contains([]byte(err.Error()), []byte(a)) && tc.tenant != a {
			t.Errorf("%s: the error names the tenant the cursor was issued to: %v", tc.what, err)
		}
	}
	// The genuine cursor still works.
	p, err = s.List(ctx(t), a, archive.Query{Filter: f, Limit: 3, Cursor: next})
	if err != nil || len(p.Records) != 3 {
		t.Errorf("the genuine cursor: %d records, %v", len(p.Records), err)
	}
}

func isB64(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

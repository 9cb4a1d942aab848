package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/worker"
)

// FuzzStrictJSON: the strict check never panics; whatever it lets through
// that encoding/json also accepts is valid UTF-8 and has no duplicate keys
// (checked by a second, independent reader), so every JSON parser reads
// the same document.
func FuzzStrictJSON(f *testing.F) {
	for _, s := range []string{
		`{"kind":"echo","payload":{"a":[1,"x",{"b":null}]}}`,
		`{"kind":"echo","kind":"x"}`,
		"{\"kind\":\"caf\xe9\"}",
		`{"payload":"\ud83d\ude00 \ud800"}`,
		`{"Kind":"a"}`,
		`[{"a":1},{"a":2,"a":3}]`,
		`{"payload":"aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ=\\ and \" more base64 c29tZQ=="}`,
		"{\"payload\":\"abcdefghijklmnop\x01qrstuvwxyz\"}",
		"{\"payload\":\"abcdefghijklmnopq\xc3\xa9rstuvwxyz\xffabcdefgh\"}",
	} {
		f.Add([]byte(s))
	}
	spec := reflect.TypeFor[task.Spec]()
	f.Fuzz(func(t *testing.T, data []byte) {
		err := checkStrictJSON(data, spec, nil)
		if errAny := checkStrictJSON(data, nil, nil); err == nil && errAny != nil {
			// Typed checks add rules; they never drop one.
			t.Fatalf("typed check passed what the untyped one refused: %v", errAny)
		}
		if err != nil || !json.Valid(data) {
			return
		}
		if !utf8.Valid(data) {
			t.Fatalf("invalid UTF-8 passed: %q", data)
		}
		if k, dup := hasDuplicate(data); dup {
			t.Fatalf("duplicate key %q passed: %q", k, data)
		}
	})
}

// hasDuplicate walks data with encoding/json's tokenizer.
func hasDuplicate(data []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		obj  bool
		keys map[string]bool
		key  bool // the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if top != nil && top.obj {
					top.key = true
				}
				stack = append(stack, &frame{obj: v == '{', keys: map[string]bool{}, key: v == '{'})
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		case string:
			if top != nil && top.obj && top.key {
				if top.keys[v] {
					return v, true
				}
				top.keys[v] = true
				top.key = false
				continue
			}
		}
		if top != nil && top.obj {
			top.key = true
		}
	}
}

func TestStrictJSONPasses(t *testing.T) {
	t.Parallel()
	spec := reflect.TypeFor[task.Spec]()
	for _, s := range []string{
		`{"kind":"echo","payload":{"A":1,"a":2,"é":"\u00e9","emoji":"\ud83d\ude00"}}`,
		`{"kind":"echo","constraints":{"labels":{"GPU":"1","gpu":"2"}}}`,
		`{"kind":"echo","payload":[{"x":1},{"x":1}]}`,
		`{"kind":"echo","timeout":"1s","run_at":"2026-01-01T00:00:00Z"}`,
	} {
		if err := checkStrictJSON([]byte(s), spec, nil); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
}

// BenchmarkStrictJSON measures the strict check of a typical submit body
// beside the decode it precedes.
func BenchmarkStrictJSON(b *testing.B) {
	body := []byte(`{"kind":"echo","payload":{"order":42,"items":[{"sku":"a-1","qty":2},{"sku":"b-7","qty":1}],"note":"café"},"priority":7,"idempotency_key":"order-42","constraints":{"labels":{"gpu":"true"}},"timeout":"30s"}`)
	spec := reflect.TypeFor[task.Spec]()
	var cache fieldCache
	b.Run("check", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if err := checkStrictJSON(body, spec, &cache); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var s task.Spec
			if err := json.Unmarshal(body, &s); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestStrictJSONFieldPaths: every refusal names the whole path of the
// value it is about, through objects and arrays.
func TestStrictJSONFieldPaths(t *testing.T) {
	type item struct {
		Kind    string          `json:"kind"`
		Payload json.RawMessage `json:"payload"`
		Labels  map[string]int  `json:"labels"`
	}
	type doc struct {
		Tasks []item `json:"tasks"`
	}
	typ := reflect.TypeFor[doc]()
	for _, tc := range []struct{ body, field string }{
		{`{"tasks":[{"kind":"a"},{"kind":"a","kind":"b"}]}`, "tasks[1].kind"},
		{`{"tasks":[{"kind":"a"},{"Kind":"b"}]}`, "tasks[1].Kind"},
		{`{"tasks":[{"kind":"a"},null]}`, "tasks[1]"},
		{`{"tasks":[{"kind":"a","labels":{"x":null}}]}`, "tasks[0].labels.x"},
		{`{"tasks":[{"payload":{"a":[1,{"b":1,"b":2}]}}]}`, "tasks[0].payload.a[1].b"},
		{"{\"tasks\":[{\"kind\":\"caf\xe9\"}]}", "tasks[0].kind"},
		{`{"tasks":[],"tasks":[]}`, "tasks"},
		{"\"\xff\"", "body"},
	} {
		err := checkStrictJSON([]byte(tc.body), typ, nil)
		var ge *greyerr.Error
		if !errors.As(err, &ge) {
			t.Errorf("%s: got %v, want an error naming %s", tc.body, err, tc.field)
			continue
		}
		if ge.Field != tc.field {
			t.Errorf("%s: field %q, want %q (%v)", tc.body, ge.Field, tc.field, err)
		}
	}
	// Sibling values do not inherit a path: a later error names only its own.
	err := checkStrictJSON([]byte(`{"tasks":[{"kind":"a","payload":[1,2]}],"x":{"y":1,"y":2}}`), typ, nil)
	var ge *greyerr.Error
	if !errors.As(err, &ge) || ge.Field != "x.y" {
		t.Errorf("sibling path: got %v", err)
	}
}

// plainRun skips exactly the whole 8-byte words that a byte-by-byte look
// would pass over: every byte value at every position of a word.
func TestPlainRun(t *testing.T) {
	plain := func(c byte) bool { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\' }
	want := func(b []byte) int {
		n := 0
		for len(b)-n >= 8 {
			for _, c := range b[n : n+8] {
				if !plain(c) {
					return n
				}
			}
			n += 8
		}
		return n
	}
	base := []byte("abcdefghABCDEFGH01234567xyz")
	for pos := range base {
		for c := 0; c < 256; c++ {
			b := append([]byte(nil), base...)
			b[pos] = byte(c)
			if got, w := plainRun(b), want(b); got != w {
				t.Fatalf("byte %#x at %d: plainRun = %d, want %d", c, pos, got, w)
			}
		}
	}
}

// BenchmarkStrictWorkerReports: the strict check of a worker's batch of
// 256 completed reports with one proof envelope (~85 KB), through the
// server's type cache.
func BenchmarkStrictWorkerReports(b *testing.B) {
	payload := base64.StdEncoding.EncodeToString([]byte(strings.Repeat(`{"name":"task-output/01900000-0000-7000-8000-000000000001","digest":{"sha256":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}},`, 256)))
	env := `{"payloadType":"application/vnd.in-toto+json","payload":"` + payload + `","signatures":[{"keyid":"k","sig":"` + payload[:88] + `"}]}`
	req := worker.CompleteRequest{WorkerID: "w1", Proofs: []json.RawMessage{json.RawMessage(env)}}
	for i := 0; i < 256; i++ {
		req.Reports = append(req.Reports, worker.Report{TaskID: "01900000-0000-7000-8000-000000000001", Attempt: 1, Status: "completed", Result: json.RawMessage(`null`), Proof: 1})
	}
	body, _ := json.Marshal(req)
	t := reflect.TypeOf(&req)
	var fc fieldCache
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := checkStrictJSON(body, t, &fc); err != nil {
			b.Fatal(err)
		}
	}
}

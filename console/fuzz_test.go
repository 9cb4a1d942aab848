package console

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

// The tasks page's query is outside input: parseFilter never panics, and
// what it accepts is within bounds.
func FuzzTaskFilter(f *testing.F) {
	for _, s := range []string{"", "status=pending&status=failed", "limit=0", "limit=501", "label=a%3Db,c%3Dd", "label=x",
		"from=2026-01-02T15:04&to=2026-01-03", "from=bogus", "payload=a.b%3D1", "payload=nofield", "id=x&cursor=y", "status=%00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		r := httptest.NewRequest("GET", "/ui/tasks", nil)
		r.URL.RawQuery = q
		flt, o, err := parseFilter(r)
		if err != nil {
			return
		}
		if flt.Limit < 1 || flt.Limit > maxPageSize {
			t.Fatalf("limit %d accepted", flt.Limit)
		}
		for _, st := range o.Status {
			if !strings.Contains(strings.Join(allStatuses, ","), string(st)) || st == "" {
				t.Fatalf("status %q accepted", st)
			}
		}
		for k := range o.Labels {
			if k == "" {
				t.Fatal("empty label key accepted")
			}
		}
		if flt.Payload != "" && !strings.Contains(flt.Payload, "=") {
			t.Fatalf("payload %q accepted", flt.Payload)
		}
	})
}

// payloadMatch reads any payload bytes and path without panicking, and
// finds a top-level string field it was given.
func FuzzPayloadMatch(f *testing.F) {
	f.Add([]byte(`{"image":{"format":"png"},"list":[1,"two",null,true]}`), "image.format", "png")
	f.Add([]byte(`[1,2,3]`), "1", "2")
	f.Add([]byte(`not json`), "a", "b")
	f.Add([]byte(`{"a":1e400}`), "a", "1e400")
	f.Fuzz(func(t *testing.T, payload []byte, path, want string) {
		_ = payloadMatch(payload, path, want)
		if path == "" || strings.Contains(path, ".") || !utf8.ValidString(path) || !utf8.ValidString(want) {
			return
		}
		doc, err := json.Marshal(map[string]string{path: want})
		if err != nil {
			return
		}
		if !payloadMatch(doc, path, want) {
			t.Fatalf("%s: field %q = %q not found", doc, path, want)
		}
	})
}

// prettyJSON escapes everything it is given.
func FuzzPrettyJSON(f *testing.F) {
	f.Add([]byte(`{"<script>":"</pre><script>alert(1)</script>","n":[1,2,{"x":null}]}`))
	f.Add([]byte(`"` + strings.Repeat("a", 500) + `"`))
	f.Add([]byte(`<b>not json</b>`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		out := string(prettyJSON(raw))
		if strings.Contains(out, "<script") || strings.Contains(out, "<b>") {
			t.Fatalf("unescaped markup in %q", out)
		}
	})
}

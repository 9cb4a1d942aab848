package proof

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	gojson "github.com/goccy/go-json"
)

// canonCases are inputs with what isCanonical must say; every true case
// must also be its own Canonicalize output (checked below).
var canonCases = []struct {
	in   string
	want bool
}{
	{`{}`, true},
	{`[]`, true},
	{`{"a":1,"b":[true,false,null],"c":{"d":"e"}}`, true},
	{`{"i":123456789012345}`, true},
	{`-5`, true},
	{`0`, true},
	{`"caf\u00e9 ☕"`, false}, // \u escape of a non-control: not canonical
	{`"café ☕"`, true},
	{`"tab\there \"q\" \\ \u001f"`, true},
	{`"\u0009"`, false},            // JCS writes \t
	{`"\u001F"`, false},            // upper-case hex
	{`{"b":1,"a":2}`, false},       // unsorted
	{`{"a":1,"a":2}`, false},       // duplicate
	{`{"é":1}`, false},             // non-ASCII name: slow path orders it
	{`{"a": 1}`, false},            // white space
	{` {}`, false},                 // leading white space
	{`{}x`, false},                 // trailing data
	{`1.0`, false},                 // JCS prints 1
	{`1e3`, false},                 // JCS prints 1000
	{`-0`, false},                  // JCS prints 0
	{`01`, false},                  // not JSON
	{`1234567890123456`, false},    // 16 digits: slow path
	{`"a` + "\x01" + `"`, false},   // raw control character
	{"\"\xff\"", false},            // invalid UTF-8
	{`[1,]`, false},                // not JSON
	{`{"a":1,}`, false},            // not JSON
	{``, false},                    // empty
	{`tru`, false},                 // truncated
	{`[[[[[[[[[[]]]]]]]]]]`, true}, // nesting
	{`{"a":"\/"}`, false},          // \/ is not an escape JCS writes
	{`{"A":1,"B":2,"a":3}`, true},  // byte order
}

func TestIsCanonical(t *testing.T) {
	for _, c := range canonCases {
		if got := isCanonical([]byte(c.in)); got != c.want {
			t.Errorf("isCanonical(%q) = %v, want %v", c.in, got, c.want)
		}
		if c.want {
			out, err := Canonicalize([]byte(c.in))
			if err != nil || !bytes.Equal(out, []byte(c.in)) {
				t.Errorf("Canonicalize(%q) = %q, %v: the case is not canonical", c.in, out, err)
			}
		}
	}
}

// TestJSONDigestFastPathAgrees: the digest is the same whichever path
// computes it.
func TestJSONDigestFastPathAgrees(t *testing.T) {
	for _, c := range canonCases {
		b := []byte(c.in)
		slow := Digest(b)
		if cb, err := Canonicalize(b); err == nil {
			slow = Digest(cb)
		}
		if got := JSONDigest(b); got != slow {
			t.Errorf("JSONDigest(%q) = %s, want %s", c.in, got, slow)
		}
	}
}

// FuzzIsCanonical: whatever isCanonical accepts, Canonicalize leaves as
// it is.
func FuzzIsCanonical(f *testing.F) {
	for _, c := range canonCases {
		f.Add([]byte(c.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !isCanonical(b) {
			return
		}
		out, err := Canonicalize(b)
		if err != nil {
			t.Fatalf("isCanonical(%q) but Canonicalize fails: %v", b, err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("isCanonical(%q) but Canonicalize gives %q", b, out)
		}
	})
}

func BenchmarkJSONDigestSmall(b *testing.B) {
	for name, in := range map[string]string{
		"canonical": `{"i":12345,"name":"resize","ok":true,"size":[640,480]}`,
		"unsorted":  `{"i":12345,"name":"resize","size":[640,480],"ok":true}`,
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				JSONDigest([]byte(in))
			}
		})
	}
}

// TestStatementEncodingMatchesEncodingJSON: the signer encodes statements
// and envelopes with goccy/go-json; the bytes are encoding/json's, so any
// tool re-encoding a statement the standard way gets what was signed.
func TestStatementEncodingMatchesEncodingJSON(t *testing.T) {
	s := &Signer{Key: mustKey(t), NodeID: "node-1"}
	runs := batchRuns(5)
	runs[0].Payload = []byte(`{"html":"<a&b>","uni":"☕ \u2028"}`)
	runs[1].Model = &Model{Name: "mlp", Version: "1", Digest: "sha256:" + strings.Repeat("ab", 32), Framework: "pytorch"}
	st := NewStatement("acme", "node-1", "", runs...)
	want, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	got, err := gojson.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("statement bytes differ:\n goccy %s\n std   %s", got, want)
	}
	envJSON, err := s.Sign(context.Background(), "acme", runs...)
	if err != nil {
		t.Fatal(err)
	}
	var env Envelope
	if err := json.Unmarshal(envJSON, &env); err != nil {
		t.Fatal(err)
	}
	std, err := json.Marshal(&env)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(std, envJSON) {
		t.Fatalf("envelope bytes differ:\n goccy %s\n std   %s", envJSON, std)
	}
}

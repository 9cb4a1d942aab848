package proof

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	gojson "github.com/goccy/go-json"
)

// canonCases are inputs with what isCanonical must say: true exactly when
// the input is its own RFC 8785 form (checked against the reference
// canonicaliser below).
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
	{`"\u0009"`, false},                       // JCS writes \t
	{`"\u001F"`, false},                       // upper-case hex
	{`{"b":1,"a":2}`, false},                  // unsorted
	{`{"a":1,"a":2}`, false},                  // duplicate: an error
	{`{"é":1}`, true},                         // non-ASCII name
	{`{"é":1,"z":2}`, false},                  // UTF-16 order puts z first
	{`{"\ud83d\ude00":1,"\ue000":2}`, false},  // escapes, and U+E000 sorts after U+1F600
	{"{\"\U0001F600\":1,\"\ue000\":2}", true}, // surrogate pair before U+E000
	{`{"a": 1}`, false},                       // white space
	{` {}`, false},                            // leading white space
	{`{}x`, false},                            // trailing data
	{`1.0`, false},                            // JCS prints 1
	{`1e3`, false},                            // JCS prints 1000
	{`1e+30`, true},                           // as JCS prints it
	{`0.000001`, true},                        // as JCS prints it
	{`1E-7`, false},                           // JCS prints 1e-7
	{`-0`, false},                             // JCS prints 0
	{`01`, false},                             // not JSON
	{`1234567890123456`, true},                // 16 digits, printed as written
	{`123456789012345678`, false},             // JCS prints 123456789012345680
	{`1e400`, false},                          // out of double range: an error
	{`"a` + "\x01" + `"`, false},              // raw control character
	{"\"\xff\"", false},                       // invalid UTF-8
	{`[1,]`, false},                           // not JSON
	{`{"a":1,}`, false},                       // not JSON
	{``, false},                               // empty
	{`tru`, false},                            // truncated
	{`[[[[[[[[[[]]]]]]]]]]`, true},            // nesting
	{`{"a":"\/"}`, false},                     // \/ is not an escape JCS writes
	{`{"A":1,"B":2,"a":3}`, true},             // byte order
	{`"\ud800"`, false},                       // lone surrogate
}

// TestIsCanonical: the scanner hands canonical input back as it is, the
// same slice (no copy, no allocation), and says so exactly when the
// reference canonicaliser agrees.
func TestIsCanonical(t *testing.T) {
	for _, c := range canonCases {
		b := []byte(c.in)
		if got := isCanonical(b); got != c.want {
			t.Errorf("isCanonical(%q) = %v, want %v", c.in, got, c.want)
		}
		ref, err := canonicalizeRef(b)
		if refSame := err == nil && bytes.Equal(ref, b); refSame != c.want {
			t.Errorf("reference canonical form of %q is %q (%v): the case is wrong", c.in, ref, err)
		}
		if c.want {
			out, err := Canonicalize(b)
			if err != nil || len(out) != len(b) || &out[0] != &b[0] {
				t.Errorf("Canonicalize(%q) = %q, %v: want the input itself", c.in, out, err)
			}
			if n := testing.AllocsPerRun(10, func() { _, _ = Canonicalize(b) }); n != 0 {
				t.Errorf("Canonicalize(%q) allocates %v times, want 0", c.in, n)
			}
		}
	}
}

// TestJSONDigestFastPathAgrees: the digest is that of the reference
// canonical form (or of the bytes, where there is none).
func TestJSONDigestFastPathAgrees(t *testing.T) {
	for _, c := range canonCases {
		b := []byte(c.in)
		slow := Digest(b)
		if cb, err := canonicalizeRef(b); err == nil {
			slow = Digest(cb)
		}
		if len(bytes.TrimSpace(b)) == 0 {
			slow = Digest(nil)
		}
		if got := JSONDigest(b); got != slow {
			t.Errorf("JSONDigest(%q) = %s, want %s", c.in, got, slow)
		}
	}
}

// FuzzIsCanonical: the scanner hands back the input itself exactly when
// the reference canonicaliser would give the same bytes.
func FuzzIsCanonical(f *testing.F) {
	for _, c := range canonCases {
		f.Add([]byte(c.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ref, err := canonicalizeRef(b)
		refSame := err == nil && len(b) > 0 && bytes.Equal(ref, b)
		if got := isCanonical(b); got != refSame {
			t.Fatalf("isCanonical(%q) = %v, but the reference gives %q, %v", b, got, ref, err)
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

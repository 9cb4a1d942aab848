package proof

import (
	"math"
	"testing"
)

// The number and document vectors of RFC 8785 (Appendix B and §3.2.2),
// and its sorting example.
func TestCanonicalizeRFC8785(t *testing.T) {
	t.Parallel()
	nums := map[float64]string{
		0: "0", math.Copysign(0, -1): "0", 1: "1", -1: "-1", 1.5: "1.5",
		math.Float64frombits(0x0000000000000001): "5e-324",
		math.Float64frombits(0x8000000000000001): "-5e-324",
		math.Float64frombits(0x7fefffffffffffff): "1.7976931348623157e+308",
		math.Float64frombits(0x4340000000000000): "9007199254740992",
		math.Float64frombits(0x4430000000000000): "295147905179352830000",
		math.Float64frombits(0x44b52d02c7e14af5): "9.999999999999997e+22",
		math.Float64frombits(0x44b52d02c7e14af6): "1e+23",
		math.Float64frombits(0x3eb0c6f7a0b5ed8d): "0.000001",
		math.Float64frombits(0x3eb0c6f7a0b5ed8c): "9.999999999999997e-7",
		math.Float64frombits(0x41b3de4355555555): "333333333.3333333",
		math.Float64frombits(0x44b52d02c7e14af7): "1.0000000000000001e+23",
		1e21:                                     "1e+21", 1e20: "100000000000000000000", 123e-9: "1.23e-7",
	}
	for f, want := range nums {
		if got := FormatNumber(f); got != want {
			t.Errorf("FormatNumber(%v) = %s, want %s", f, got, want)
		}
	}
	docs := map[string]string{
		`{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
		  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
		  "literals": [null, true, false]}`: `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`,
		`{"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
		  "1": "One", "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control", "\u00f6": "Latin Small Letter O With Diaeresis"}`: "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"\u00f6\":\"Latin Small Letter O With Diaeresis\",\"\u20ac\":\"Euro Sign\",\"\U0001F600\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}",
		` "x" `:              `"x"`,
		`[1.0, 10, 1e2, -0]`: `[1,10,100,0]`,
	}
	for in, want := range docs {
		got, err := Canonicalize([]byte(in))
		if err != nil || string(got) != want {
			t.Errorf("Canonicalize(%s) = %s, %v\nwant %s", in, got, err, want)
		}
	}
	for _, bad := range []string{`{"a":1,"a":2}`, "\"\xff\"", `1e400`, `[1] [2]`} {
		if got, err := Canonicalize([]byte(bad)); err == nil {
			t.Errorf("Canonicalize(%q) = %s, want an error", bad, got)
		}
	}
	if JSONDigest(nil) != Digest(nil) || JSONDigest([]byte(`{"b":1, "a":2}`)) != Digest([]byte(`{"a":2,"b":1}`)) {
		t.Error("JSONDigest is not the digest of the canonical form")
	}
}

func FuzzCanonicalize(f *testing.F) {
	f.Add([]byte(`{"b":[1.5e3,"\u00e9",null],"a":{"y":true,"x":-0.0}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Canonicalize(b)
		if err != nil {
			return
		}
		// Canonical text is a fixed point.
		c2, err := Canonicalize(c)
		if err != nil || string(c2) != string(c) {
			t.Fatalf("Canonicalize(%q) = %q, again %q (%v)", b, c, c2, err)
		}
	})
}

// The fast path agrees with the reference path wherever it answers, and
// declines (so the reference answers) where the reference refuses.
func FuzzCanonicalizeFast(f *testing.F) {
	for _, s := range []string{
		`{"b":[1.5e3,"\u00e9",null],"a":{"y":true,"x":-0.0}}`,
		`{"model":"mlp","inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[0.1,-2.5e-7,3,1e21,123456789012345678]}]}`,
		`{"\ud83d\ude00":1,"\ue000":2,"a\/b":"\u001f\"\\\b\f\n\r\t","":[]}`,
		"{ \"b\" : { \"y\":1, \"x\" : [ 1.0 ] }, \"a\\u0041\":\"\\u00e9\", \"\\u00e9\":0 }",
		`{"c":[{"z":1,"y":{"b":2,"a":1E2}}],"b\/":"\u0041","a":-0}`,
		`[1,2,{"a":1,"a":2}]`, `"\ud800"`, `1e400`, ` [ ] `, `{}`, `-0`, `0.000001`, `1E-7`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ref, rerr := canonicalizeRef(b)
		fast, ok := canonicalize(b)
		if !ok {
			return
		}
		if rerr != nil {
			t.Fatalf("fast path answered %q where the reference refuses %q: %v", fast, b, rerr)
		}
		if string(fast) != string(ref) {
			t.Fatalf("Canonicalize(%q): fast %q, reference %q", b, fast, ref)
		}
	})
}

// appendNumber prints what FormatNumber prints, for any double.
func FuzzAppendNumber(f *testing.F) {
	for _, v := range []float64{0, 1, -1, 0.1, 1e21, 1e-7, 123456789012345678, 5e-324, 1.7976931348623157e308, 0.000001} {
		f.Add(math.Float64bits(v))
	}
	f.Fuzz(func(t *testing.T, bits uint64) {
		v := math.Float64frombits(bits)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return
		}
		if got, want := string(appendNumber(nil, v)), FormatNumber(v); got != want {
			t.Fatalf("appendNumber(%v) = %s, FormatNumber %s", v, got, want)
		}
	})
}

// The fast path answers ordinary JSON itself (it would be no faster if it
// declined), including unsorted members and escaped names.
func TestCanonicalizeFastAnswers(t *testing.T) {
	for _, s := range []string{
		`{"model":"mlp","inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[0.1,-2.5e-7,3,1e21]}]}`,
		`{"z":1,"a":{"\u00e9":2,"e":[true,false,null]},"\ud83d\ude00":"\u001f"}`,
	} {
		if _, ok := canonicalize([]byte(s)); !ok {
			t.Errorf("fast path declined %s", s)
		}
	}
}

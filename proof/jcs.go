package proof

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// JSONDigest is the digest of a JSON value held inline in a task (its
// payload, its result): the lower-case hex SHA-256 of the value's RFC 8785
// JSON Canonicalization Scheme form, so that anyone holding the value
// (parsed by any JSON library, re-serialised in any way) can recompute it
// (docs/PROOFS.md has a verifier in a few lines of Python). An absent
// value (no bytes) digests as no bytes; bytes that are not JSON digest as
// they are.
func JSONDigest(b []byte) string {
	if c, err := Canonicalize(b); err == nil {
		return Digest(c)
	}
	return Digest(b)
}

// Canonicalize returns the RFC 8785 (JCS) form of the JSON text b: no
// insignificant white space, object members sorted by the UTF-16 code
// units of their names, strings with the minimal escapes, numbers as
// ECMAScript prints IEEE 754 doubles. Empty input gives empty output.
// Duplicate names, invalid UTF-8 and numbers out of double range are
// errors, as RFC 8785 requires (the API refuses them at submit). When b
// is already canonical the result is b itself, not a copy: callers must
// not write to it.
func Canonicalize(b []byte) ([]byte, error) {
	if c, ok := canonicalize(b); ok {
		return c, nil
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	return canonicalizeRef(b)
}

// canonicalizeRef is Canonicalize over encoding/json's tokens: the
// reference the scanner is checked against, and the path for what the
// scanner declines.
func canonicalizeRef(b []byte) ([]byte, error) {
	if !utf8.Valid(b) {
		return nil, errors.New("jcs: invalid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out bytes.Buffer
	if err := canonValue(dec, &out); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("jcs: more than one JSON value")
	}
	return out.Bytes(), nil
}

func canonValue(dec *json.Decoder, out *bytes.Buffer) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("jcs: %w", err)
	}
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '[':
			out.WriteByte('[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					out.WriteByte(',')
				}
				if err := canonValue(dec, out); err != nil {
					return err
				}
			}
			_, err := dec.Token()
			out.WriteByte(']')
			return err
		case '{':
			type member struct {
				key string
				val []byte
			}
			var ms []member
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return fmt.Errorf("jcs: %w", err)
				}
				k := kt.(string)
				if seen[k] {
					return fmt.Errorf("jcs: duplicate name %q", k)
				}
				seen[k] = true
				var vb bytes.Buffer
				if err := canonValue(dec, &vb); err != nil {
					return err
				}
				ms = append(ms, member{k, vb.Bytes()})
			}
			if _, err := dec.Token(); err != nil {
				return fmt.Errorf("jcs: %w", err)
			}
			slices.SortFunc(ms, func(a, b member) int { return compareUTF16(a.key, b.key) })
			out.WriteByte('{')
			for i, m := range ms {
				if i > 0 {
					out.WriteByte(',')
				}
				writeString(out, m.key)
				out.WriteByte(':')
				out.Write(m.val)
			}
			out.WriteByte('}')
			return nil
		}
		return fmt.Errorf("jcs: unexpected %v", v)
	case string:
		writeString(out, v)
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || math.IsInf(f, 0) {
			return fmt.Errorf("jcs: number %s is out of double range", v)
		}
		out.WriteString(FormatNumber(f))
	case bool:
		out.WriteString(strconv.FormatBool(v))
	case nil:
		out.WriteString("null")
	}
	return nil
}

// compareUTF16 orders strings by their UTF-16 code units (RFC 8785 §3.2.3).
func compareUTF16(a, b string) int {
	ua, ub := utf16.Encode([]rune(a)), utf16.Encode([]rune(b))
	return slices.Compare(ua, ub)
}

// writeString writes s with RFC 8785's escapes: \" \\ \b \f \n \r \t,
// other controls as \u00xx, everything else as is.
func writeString(out *bytes.Buffer, s string) {
	out.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			out.WriteString(`\"`)
		case '\\':
			out.WriteString(`\\`)
		case '\b':
			out.WriteString(`\b`)
		case '\f':
			out.WriteString(`\f`)
		case '\n':
			out.WriteString(`\n`)
		case '\r':
			out.WriteString(`\r`)
		case '\t':
			out.WriteString(`\t`)
		default:
			if r < 0x20 {
				fmt.Fprintf(out, `\u%04x`, r)
			} else {
				out.WriteRune(r)
			}
		}
	}
	out.WriteByte('"')
}

// FormatNumber prints f as ECMAScript's Number.prototype.toString does
// (RFC 8785 §3.2.2.3): the shortest digits that round-trip, in plain
// notation for exponents in [-6, 21), else as d.ddde±n.
func FormatNumber(f float64) string {
	if f == 0 {
		return "0" // -0 too
	}
	sign := ""
	if f < 0 {
		sign, f = "-", -f
	}
	// Shortest round-trip digits: "d.ddde±xx".
	e := strconv.FormatFloat(f, 'e', -1, 64)
	mant, exp, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	x, _ := strconv.Atoi(exp)
	k, n := len(digits), x+1 // value = 0.digits × 10^n
	switch {
	case k <= n && n <= 21:
		return sign + digits + strings.Repeat("0", n-k)
	case 0 < n && n <= 21:
		return sign + digits[:n] + "." + digits[n:]
	case -6 < n && n <= 0:
		return sign + "0." + strings.Repeat("0", -n) + digits
	}
	es := "+"
	if n-1 < 0 {
		es = "-"
	}
	d := digits[:1]
	if k > 1 {
		d += "." + digits[1:]
	}
	return sign + d + "e" + es + strconv.Itoa(abs(n-1))
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

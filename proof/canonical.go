package proof

import (
	"bytes"
	"unicode/utf8"
)

// isCanonical reports whether b is already in RFC 8785 form, so that its
// canonical form is b itself. It accepts a common subset only (integers of
// at most 15 digits, ASCII member names, canonical string escapes, no
// white space) and says false for anything else, which then goes through
// Canonicalize: false is always safe, true must never be wrong (a fuzz
// target checks it against Canonicalize). Most task payloads and results
// are written by encoding libraries in exactly this form, and skipping the
// token decoder takes the digest of one from microseconds to nanoseconds.
func isCanonical(b []byte) bool {
	c := canonScanner{b: b}
	return c.value(0) && c.i == len(b)
}

type canonScanner struct {
	b []byte
	i int
}

// maxCanonDepth bounds nesting on the fast path (deeper values take the
// slow path).
const maxCanonDepth = 64

func (c *canonScanner) value(depth int) bool {
	if c.i >= len(c.b) || depth > maxCanonDepth {
		return false
	}
	switch ch := c.b[c.i]; {
	case ch == '{':
		return c.object(depth)
	case ch == '[':
		return c.array(depth)
	case ch == '"':
		_, ok := c.str()
		return ok
	case ch == '-' || ('0' <= ch && ch <= '9'):
		return c.number()
	case ch == 't':
		return c.lit("true")
	case ch == 'f':
		return c.lit("false")
	case ch == 'n':
		return c.lit("null")
	}
	return false
}

func (c *canonScanner) lit(s string) bool {
	if len(c.b)-c.i < len(s) || string(c.b[c.i:c.i+len(s)]) != s {
		return false
	}
	c.i += len(s)
	return true
}

// number accepts -?(0|[1-9][0-9]{0,14}) except -0: integers an IEEE double
// holds exactly, which ECMAScript prints as their digits.
func (c *canonScanner) number() bool {
	neg := c.b[c.i] == '-'
	if neg {
		c.i++
	}
	start := c.i
	for c.i < len(c.b) && '0' <= c.b[c.i] && c.b[c.i] <= '9' {
		c.i++
	}
	n := c.i - start
	switch {
	case n == 0 || n > 15:
		return false
	case c.b[start] == '0' && (n > 1 || neg):
		return false
	}
	if c.i < len(c.b) {
		if ch := c.b[c.i]; ch == '.' || ch == 'e' || ch == 'E' {
			return false
		}
	}
	return true
}

// str scans a string and reports whether its name form is plain (ASCII
// without escapes: such names order by bytes as by UTF-16 code units).
func (c *canonScanner) str() (plain, ok bool) {
	c.i++ // opening quote
	plain = true
	for c.i < len(c.b) {
		ch := c.b[c.i]
		switch {
		case ch == '"':
			c.i++
			return plain, true
		case ch < 0x20:
			return false, false
		case ch == '\\':
			plain = false
			if !c.escape() {
				return false, false
			}
		case ch >= utf8.RuneSelf:
			plain = false
			r, size := utf8.DecodeRune(c.b[c.i:])
			if r == utf8.RuneError && size <= 1 {
				return false, false
			}
			c.i += size
		default:
			c.i++
		}
	}
	return false, false
}

// escape accepts exactly the escapes RFC 8785 writes: \" \\ \b \f \n \r \t
// and \u00xx (lower-case hex) for the other control characters.
func (c *canonScanner) escape() bool {
	if c.i+1 >= len(c.b) {
		return false
	}
	switch c.b[c.i+1] {
	case '"', '\\', 'b', 'f', 'n', 'r', 't':
		c.i += 2
		return true
	case 'u':
		if c.i+6 > len(c.b) || c.b[c.i+2] != '0' || c.b[c.i+3] != '0' {
			return false
		}
		h, l := c.b[c.i+4], c.b[c.i+5]
		if h != '0' && h != '1' {
			return false
		}
		var v byte
		switch {
		case '0' <= l && l <= '9':
			v = l - '0'
		case 'a' <= l && l <= 'f':
			v = l - 'a' + 10
		default:
			return false
		}
		v += (h - '0') * 16
		switch v {
		case '\b', '\f', '\n', '\r', '\t':
			return false // these have short forms
		}
		c.i += 6
		return true
	}
	return false
}

func (c *canonScanner) array(depth int) bool {
	c.i++
	if c.i < len(c.b) && c.b[c.i] == ']' {
		c.i++
		return true
	}
	for {
		if !c.value(depth + 1) {
			return false
		}
		if c.i >= len(c.b) {
			return false
		}
		switch c.b[c.i] {
		case ',':
			c.i++
		case ']':
			c.i++
			return true
		default:
			return false
		}
	}
}

// object accepts members whose names are plain and strictly increasing
// (sorted, no duplicates).
func (c *canonScanner) object(depth int) bool {
	c.i++
	if c.i < len(c.b) && c.b[c.i] == '}' {
		c.i++
		return true
	}
	var prev []byte
	for i := 0; ; i++ {
		if c.i >= len(c.b) || c.b[c.i] != '"' {
			return false
		}
		start := c.i
		plain, ok := c.str()
		if !ok || !plain {
			return false
		}
		name := c.b[start+1 : c.i-1]
		if i > 0 && bytes.Compare(prev, name) >= 0 {
			return false
		}
		prev = name
		if c.i >= len(c.b) || c.b[c.i] != ':' {
			return false
		}
		c.i++
		if !c.value(depth + 1) {
			return false
		}
		if c.i >= len(c.b) {
			return false
		}
		switch c.b[c.i] {
		case ',':
			c.i++
		case '}':
			c.i++
			return true
		default:
			return false
		}
	}
}

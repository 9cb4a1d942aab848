package proof

import (
	"bytes"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// maxScanDepth bounds the nesting the scanner follows (encoding/json, on
// which the reference path stands, stops at 10000).
const maxScanDepth = 10000

// canonicalize is Canonicalize over the bytes themselves, without
// encoding/json's tokens (which cost an allocation or more per token: a
// tensor of a thousand numbers took a millisecond). It reads b once, and
// when b is already in RFC 8785 form (most payloads and results are: the
// encoding libraries write it) it returns b itself, with no copy; only
// from the first byte that differs does it write a new slice. ok is false
// for anything it does not handle exactly as the reference path would
// (bytes that are not JSON, lone surrogate escapes, duplicate names,
// numbers out of range, deep nesting): the caller then takes the
// reference path, so the two agree by construction where this one
// declines, and FuzzCanonicalizeFast checks that they agree where it does
// not.
func canonicalize(b []byte) (out []byte, ok bool) {
	s := jcsScanner{b: b}
	if !s.value(0) {
		return nil, false
	}
	s.ws()
	if s.i != len(b) {
		return nil, false
	}
	if !s.copied {
		return b, true
	}
	return append(s.out, b[s.pend:]...), true
}

// isCanonical reports whether b is already in RFC 8785 form, so that its
// canonical form is b itself.
func isCanonical(b []byte) bool {
	c, ok := canonicalize(b)
	return ok && len(c) > 0 && &c[0] == &b[0]
}

// jcsScanner walks JSON text and its canonical form at once. The canonical
// form written so far is out followed by b[pend:i]: input that is already
// canonical is not copied until something after it differs (white space
// to drop, an escape or a number to rewrite, members to sort), and is
// never copied when nothing does. Positions in the canonical form
// ("output positions") stay valid as pending input is moved to out.
type jcsScanner struct {
	b      []byte
	i      int
	pend   int    // b[pend:i] is canonical text not yet copied to out
	shift  int    // len(out) - pend: an output position less its input one
	out    []byte // canonical text before b[pend:]; used once copied
	copied bool   // out is in use: the result is not b
}

// olen is the length of the canonical text written so far.
func (s *jcsScanner) olen() int { return s.i + s.shift }

// flush moves the pending input to out.
func (s *jcsScanner) flush() {
	if !s.copied {
		s.copied = true
		s.out = make([]byte, 0, len(s.b)+16)
	}
	s.out = append(s.out, s.b[s.pend:s.i]...)
	s.pend = s.i
	s.shift = len(s.out) - s.pend
}

// put says that the input b[from:i] is written as canon.
func (s *jcsScanner) put(from int, canon []byte) {
	if bytes.Equal(s.b[from:s.i], canon) {
		return
	}
	i := s.i
	s.i = from
	s.flush()
	s.out = append(s.out, canon...)
	s.i, s.pend = i, i
	s.shift = len(s.out) - s.pend
}

// view is the canonical text at output positions [o0, o1).
func (s *jcsScanner) view(o0, o1 int) []byte {
	if !s.copied {
		return s.b[o0:o1]
	}
	return s.viewCopied(o0, o1)
}

func (s *jcsScanner) viewCopied(o0, o1 int) []byte {
	if o0 < len(s.out) && o1 > len(s.out) {
		s.flush()
	}
	if o1 <= len(s.out) {
		return s.out[o0:o1]
	}
	return s.b[o0-s.shift : o1-s.shift]
}

// ws skips white space, which the canonical form drops.
func (s *jcsScanner) ws() {
	if s.i < len(s.b) && s.b[s.i] <= ' ' {
		s.skipWS()
	}
}

func (s *jcsScanner) skipWS() {
	from := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
			continue
		}
		break
	}
	if s.i > from {
		s.put(from, nil)
	}
}

func (s *jcsScanner) literal(lit string) bool {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

func (s *jcsScanner) value(depth int) bool {
	if s.i >= len(s.b) || depth > maxScanDepth {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(depth)
	case c == '[':
		return s.array(depth)
	case c == '"':
		_, ok := s.str()
		return ok
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	case c <= ' ':
		s.skipWS()
		return s.i < len(s.b) && s.b[s.i] > ' ' && s.value(depth)
	}
	return false
}

// sep skips white space and returns the next byte (0 at the end).
func (s *jcsScanner) sep() byte {
	s.skipWS()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *jcsScanner) array(depth int) bool {
	s.i++
	if s.ws(); s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return true
	}
	for {
		if !s.value(depth + 1) {
			return false
		}
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			continue
		case ']':
			s.i++
			return true
		}
		switch s.sep() {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			return false
		}
	}
}

// member is one member of an object in output positions: its name's text
// between the quotes [n0, n1), its whole "name":value text [n0-1, o1),
// and whether the name text is plain (ASCII without escapes: such names
// order by bytes as by UTF-16 code units).
type member struct {
	n0, n1, o1 int
	plain      bool
}

// object follows an object, sorting its members by name where they are
// not sorted already.
func (s *jcsScanner) object(depth int) bool {
	s.i++
	if s.ws(); s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return true
	}
	base := s.olen()
	var prev member // n0 is 0 before the first member
	var ms []member // all the members, once they are found out of order
	for {
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			if s.sep() != '"' {
				return false
			}
		}
		n0 := s.olen() + 1
		plain, ok := s.str()
		if !ok {
			return false
		}
		n1 := s.olen() - 1
		m := member{n0: n0, n1: n1, plain: plain}
		if prev.n0 > 0 {
			var c int
			if prev.plain && plain && !s.copied {
				c = bytes.Compare(s.b[prev.n0:prev.n1], s.b[n0:n1])
			} else {
				c = s.compare(prev, m)
			}
			if c == 0 {
				return false // a duplicate name: the reference path names it
			}
			if c > 0 && ms == nil {
				// The canonical text has no white space: the
				// previous member ends at the comma before this name.
				ms = s.members(base, n0-2, depth)
			}
		}
		prev = m
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			if s.sep() != ':' {
				return false
			}
		}
		s.i++
		if !s.value(depth + 1) {
			return false
		}
		if ms != nil {
			m.o1 = s.olen()
			ms = append(ms, m)
		}
		if s.i >= len(s.b) {
			return false
		}
		c := s.b[s.i]
		if c != ',' && c != '}' {
			c = s.sep()
		}
		if c == '}' {
			break
		}
		if c != ',' {
			return false
		}
		s.i++
	}
	if ms != nil && !s.sortMembers(base, ms) {
		return false
	}
	s.i++ // the closing brace
	return true
}

// members finds the members in the canonical text at output positions
// [base, end), which the scanner wrote before it met a member out of
// order: keeping track of every member only from there on leaves sorted
// objects, the usual ones, without the bookkeeping.
func (s *jcsScanner) members(base, end, depth int) []member {
	text := s.view(base, end)
	t := jcsScanner{b: text}
	var ms []member
	for t.i < len(text) {
		n0 := t.i + 1
		plain, _ := t.str()
		n1 := t.i - 1
		t.i++ // the colon
		t.value(depth + 1)
		ms = append(ms, member{base + n0, base + n1, base + t.i, plain})
		t.i++ // the comma
	}
	return ms
}

// sortMembers rewrites the members ms, the canonical text from output
// position base on, in name order.
func (s *jcsScanner) sortMembers(base int, ms []member) bool {
	s.flush()
	text := slices.Clone(s.out[base:])
	slices.SortFunc(ms, s.compare)
	for i := 1; i < len(ms); i++ {
		if s.compare(ms[i-1], ms[i]) == 0 {
			return false
		}
	}
	s.out = s.out[:base]
	for i, m := range ms {
		if i > 0 {
			s.out = append(s.out, ',')
		}
		s.out = append(s.out, text[m.n0-1-base:m.o1-base]...)
	}
	return true
}

// compare orders two members by the UTF-16 code units of their names.
func (s *jcsScanner) compare(a, b member) int {
	an, bn := s.view(a.n0, a.n1), s.view(b.n0, b.n1)
	if a.plain && b.plain {
		return bytes.Compare(an, bn)
	}
	return compareNames(an, bn)
}

// compareNames orders two names, given as canonical string text, by the
// UTF-16 code units of their characters, without decoding them to a
// buffer.
func compareNames(a, b []byte) int {
	for len(a) > 0 && len(b) > 0 {
		ra, na := nameRune(a)
		rb, nb := nameRune(b)
		if ra != rb {
			return utf16Key(ra) - utf16Key(rb)
		}
		a, b = a[na:], b[nb:]
	}
	return len(a) - len(b)
}

// utf16Key maps a character to a number that orders as its UTF-16 code
// units do: characters above U+FFFF are written with surrogates
// (D800-DFFF), so they sort after U+D7FF and before U+E000.
func utf16Key(r rune) int {
	switch {
	case r >= 0x10000:
		return 0xd800 + int(r-0x10000)
	case r >= 0xe000:
		return 0x110000 + int(r)
	}
	return int(r)
}

// nameRune decodes the first character of canonical string text (escapes
// only for " \ \b \f \n \r \t and \u00xx) and its length in bytes.
func nameRune(t []byte) (rune, int) {
	if t[0] != '\\' {
		return utf8.DecodeRune(t)
	}
	if len(t) < 2 {
		return utf8.RuneError, len(t)
	}
	switch t[1] {
	case 'b':
		return '\b', 2
	case 'f':
		return '\f', 2
	case 'n':
		return '\n', 2
	case 'r':
		return '\r', 2
	case 't':
		return '\t', 2
	case 'u':
		if len(t) < 6 {
			return utf8.RuneError, len(t)
		}
		return rune(unhex(t[4])<<4 | unhex(t[5])), 6
	}
	return rune(t[1]), 2
}

// unhex is the value of a lower-case hex digit.
func unhex(c byte) byte {
	if c >= 'a' {
		return c - 'a' + 10
	}
	return c - '0'
}

const hexDigits = "0123456789abcdef"

// str follows the string at s.i: its characters as they are, and its
// escapes as RFC 8785 writes them (only " \ and the controls escaped).
// plain reports that the canonical text is ASCII without escapes.
func (s *jcsScanner) str() (plain, ok bool) {
	b, i := s.b, s.i+1 // after the opening quote
	plain = true
	for i < len(b) {
		switch c := b[i]; {
		case c == '"':
			s.i = i + 1
			return plain, true
		case c < 0x20:
			return false, false // a raw control character: not JSON
		case c >= utf8.RuneSelf:
			plain = false
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size <= 1 {
				return false, false // invalid UTF-8: the reference path's error
			}
			i += size
		case c != '\\':
			i++
		default:
			plain = false
			s.i = i
			if !s.escape() {
				return false, false
			}
			i = s.i
		}
	}
	return false, false
}

// escape follows the escape at s.i, written as RFC 8785 writes its
// character.
func (s *jcsScanner) escape() bool {
	from := s.i
	if s.i+1 >= len(s.b) {
		return false
	}
	e := s.b[s.i+1]
	s.i += 2
	var r rune
	switch e {
	case '"', '\\', '/':
		r = rune(e)
	case 'b':
		r = '\b'
	case 'f':
		r = '\f'
	case 'n':
		r = '\n'
	case 'r':
		r = '\r'
	case 't':
		r = '\t'
	case 'u':
		var ok bool
		if r, ok = s.hex4(); !ok {
			return false
		}
		if utf16.IsSurrogate(r) {
			if r >= 0xdc00 || s.i+1 >= len(s.b) || s.b[s.i] != '\\' || s.b[s.i+1] != 'u' {
				return false // a lone surrogate: the reference path's business
			}
			s.i += 2
			lo, ok := s.hex4()
			if !ok || lo < 0xdc00 || lo > 0xdfff {
				return false
			}
			r = utf16.DecodeRune(r, lo)
		}
	default:
		return false
	}
	var buf [utf8.UTFMax + 2]byte
	s.put(from, appendEscaped(buf[:0], r))
	return true
}

// hex4 reads the four hex digits of a \u escape.
func (s *jcsScanner) hex4() (rune, bool) {
	if s.i+4 > len(s.b) {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	s.i += 4
	return r, true
}

// appendEscaped appends r as writeString writes it.
func appendEscaped(dst []byte, r rune) []byte {
	switch r {
	case '"':
		return append(dst, '\\', '"')
	case '\\':
		return append(dst, '\\', '\\')
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	if r < 0x20 {
		return append(dst, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xf])
	}
	return utf8.AppendRune(dst, r)
}

// number follows the number at s.i, written as ECMAScript prints its
// double.
func (s *jcsScanner) number() bool {
	b, start := s.b, s.i
	i := start
	if b[i] == '-' {
		i++
	}
	intStart := i
	for i < len(b) && b[i]-'0' <= 9 {
		i++
	}
	s.i = i
	switch n := i - intStart; {
	case n == 0 || n > 1 && b[intStart] == '0':
		return false // not JSON
	case n <= 15 && (i == len(b) || b[i] != '.' && b[i] != 'e' && b[i] != 'E'):
		// An integer of at most 15 digits is a double exactly, and
		// ECMAScript prints it as written (-0 as 0).
		if n == 1 && start != intStart && b[intStart] == '0' {
			s.put(start, []byte{'0'})
		}
		return true
	}
	return s.double(start)
}

// double follows the rest of a number that is not a short integer (a
// fraction, an exponent, many digits) and writes it as ECMAScript prints
// its double.
func (s *jcsScanner) double(start int) bool {
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if !s.digits() {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if !s.digits() {
			return false
		}
	}
	f, err := strconv.ParseFloat(string(s.b[start:s.i]), 64)
	if err != nil {
		return false // out of double range: the reference path says so
	}
	var buf [32]byte
	s.put(start, appendNumber(buf[:0], f))
	return true
}

// digits follows one or more decimal digits.
func (s *jcsScanner) digits() bool {
	d := s.i
	for s.i < len(s.b) && s.b[s.i]-'0' <= 9 {
		s.i++
	}
	return s.i > d
}

// appendNumber appends FormatNumber(f) without allocating.
func appendNumber(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0') // -0 too
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64) // d[.ddd]e±xx
	ei := bytes.IndexByte(e, 'e')
	var dg [24]byte
	digits := append(dg[:0], e[0])
	if ei > 1 {
		digits = append(digits, e[2:ei]...)
	}
	x := 0
	for _, c := range e[ei+2:] {
		x = x*10 + int(c-'0')
	}
	if e[ei+1] == '-' {
		x = -x
	}
	k, n := len(digits), x+1 // value = 0.digits × 10^n
	switch {
	case k <= n && n <= 21:
		dst = append(dst, digits...)
		for i := k; i < n; i++ {
			dst = append(dst, '0')
		}
		return dst
	case 0 < n && n <= 21:
		dst = append(dst, digits[:n]...)
		dst = append(dst, '.')
		return append(dst, digits[n:]...)
	case -6 < n && n <= 0:
		dst = append(dst, '0', '.')
		for i := 0; i < -n; i++ {
			dst = append(dst, '0')
		}
		return append(dst, digits...)
	}
	dst = append(dst, digits[0])
	if k > 1 {
		dst = append(dst, '.')
		dst = append(dst, digits[1:]...)
	}
	dst = append(dst, 'e')
	if n-1 < 0 {
		dst = append(dst, '-')
	} else {
		dst = append(dst, '+')
	}
	return strconv.AppendInt(dst, int64(abs(n-1)), 10)
}

package proof

import (
	"bytes"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// maxFastDepth bounds the nesting the fast path follows (encoding/json, on
// which the reference path stands, stops at 10000).
const maxFastDepth = 10000

// canonicalizeFast is Canonicalize over the bytes themselves, without
// encoding/json's tokens (which cost an allocation or more per token: a
// tensor of a thousand numbers took a millisecond). ok is false for
// anything it does not handle exactly as the reference path would (bytes
// that are not JSON, lone surrogate escapes, numbers out of range, deep
// nesting): the caller then takes the reference path, so the two agree by
// construction where this one declines, and FuzzCanonicalizeFast checks
// that they agree where it does not.
func canonicalizeFast(b []byte) (out []byte, ok bool) {
	if !utf8.Valid(b) {
		return nil, false
	}
	s := jcsScanner{b: b, out: make([]byte, 0, len(b))}
	s.ws()
	if !s.value(0) {
		return nil, false
	}
	s.ws()
	if s.i != len(b) {
		return nil, false
	}
	return s.out, true
}

// jcsScanner walks JSON text, writing its canonical form to out.
type jcsScanner struct {
	b   []byte
	i   int
	out []byte
	key []byte // scratch: decoded member names
}

func (s *jcsScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jcsScanner) literal(lit string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		return false
	}
	s.i += len(lit)
	s.out = append(s.out, lit...)
	return true
}

func (s *jcsScanner) value(depth int) bool {
	if s.i >= len(s.b) || depth > maxFastDepth {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(depth)
	case c == '[':
		return s.array(depth)
	case c == '"':
		return s.str()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	}
	return false
}

func (s *jcsScanner) array(depth int) bool {
	s.i++
	s.out = append(s.out, '[')
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		s.out = append(s.out, ']')
		return true
	}
	for {
		s.ws()
		if !s.value(depth + 1) {
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.out = append(s.out, ',')
		case ']':
			s.i++
			s.out = append(s.out, ']')
			return true
		default:
			return false
		}
	}
}

// member is one written member of an object: its decoded name (a span of
// the scanner's key scratch) and its "name":value text (a span of out).
type member struct {
	k0, k1 int
	o0, o1 int
}

func (s *jcsScanner) object(depth int) bool {
	s.i++
	s.out = append(s.out, '{')
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		s.out = append(s.out, '}')
		return true
	}
	keyBase := len(s.key)
	defer func() { s.key = s.key[:keyBase] }()
	base := len(s.out)
	var ms []member
	for {
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return false
		}
		o0 := len(s.out)
		k0 := len(s.key)
		if !s.str() {
			return false
		}
		// The name just written is canonical: decode it back from out.
		var ok bool
		if s.key, ok = unquote(s.key, s.out[o0+1:len(s.out)-1]); !ok {
			return false
		}
		k1 := len(s.key)
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		s.out = append(s.out, ':')
		s.ws()
		if !s.value(depth + 1) {
			return false
		}
		ms = append(ms, member{k0, k1, o0, len(s.out)})
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		if s.b[s.i] == '}' {
			s.i++
			break
		}
		if s.b[s.i] != ',' {
			return false
		}
		s.i++
		s.out = append(s.out, ',')
	}
	cmp := func(a, b member) int { return compareKeys(s.key[a.k0:a.k1], s.key[b.k0:b.k1]) }
	sorted := true
	for i := 1; i < len(ms); i++ {
		c := cmp(ms[i-1], ms[i])
		if c == 0 {
			return false // a duplicate name: the reference path names it
		}
		if c > 0 {
			sorted = false
		}
	}
	if !sorted {
		text := slices.Clone(s.out[base:])
		slices.SortFunc(ms, cmp)
		for i := 1; i < len(ms); i++ {
			if cmp(ms[i-1], ms[i]) == 0 {
				return false
			}
		}
		s.out = s.out[:base]
		for i, m := range ms {
			if i > 0 {
				s.out = append(s.out, ',')
			}
			s.out = append(s.out, text[m.o0-base:m.o1-base]...)
		}
	}
	s.out = append(s.out, '}')
	return true
}

// compareKeys orders decoded names by their UTF-16 code units.
func compareKeys(a, b []byte) int {
	ascii := true
	for _, c := range a {
		ascii = ascii && c < utf8.RuneSelf
	}
	for _, c := range b {
		ascii = ascii && c < utf8.RuneSelf
	}
	if ascii {
		return bytes.Compare(a, b)
	}
	return slices.Compare(utf16.Encode([]rune(string(a))), utf16.Encode([]rune(string(b))))
}

// unquote appends the characters of canonical string text (escapes only
// for \" \\ \b \f \n \r \t and \u00xx) to dst.
func unquote(dst, text []byte) ([]byte, bool) {
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		if i >= len(text) {
			return dst, false
		}
		switch text[i] {
		case '"', '\\':
			dst = append(dst, text[i])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			if i+4 >= len(text) {
				return dst, false
			}
			v, err := strconv.ParseUint(string(text[i+1:i+5]), 16, 8)
			if err != nil {
				return dst, false
			}
			dst = append(dst, byte(v))
			i += 4
		default:
			return dst, false
		}
	}
	return dst, true
}

const hexDigits = "0123456789abcdef"

// str writes the string at s.i in canonical form: the characters decoded,
// then only " \ and the controls escaped.
func (s *jcsScanner) str() bool {
	s.i++ // the opening quote
	s.out = append(s.out, '"')
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			s.out = append(s.out, '"')
			return true
		case c < 0x20:
			return false // a raw control character: not JSON
		case c != '\\':
			start := s.i
			for s.i < len(s.b) && s.b[s.i] != '"' && s.b[s.i] != '\\' && s.b[s.i] >= 0x20 {
				s.i++
			}
			s.out = append(s.out, s.b[start:s.i]...)
			continue
		}
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
		s.out = appendEscaped(s.out, r)
	}
	return false
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

// number writes the number at s.i as ECMAScript prints its double.
func (s *jcsScanner) number() bool {
	start := s.i
	if s.b[s.i] == '-' {
		s.i++
	}
	intStart := s.i
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.i < len(s.b) && s.b[s.i] >= '1' && s.b[s.i] <= '9':
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
		}
	default:
		return false
	}
	intDigits := s.i - intStart
	plain := true
	if s.i < len(s.b) && s.b[s.i] == '.' {
		plain = false
		s.i++
		d := s.i
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
		}
		if s.i == d {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		plain = false
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		d := s.i
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
		}
		if s.i == d {
			return false
		}
	}
	text := s.b[start:s.i]
	if plain && intDigits <= 15 {
		// An integer of at most 15 digits is a double exactly, and
		// ECMAScript prints it as written (-0 as 0).
		if len(text) == 2 && text[0] == '-' && text[1] == '0' {
			s.out = append(s.out, '0')
		} else {
			s.out = append(s.out, text...)
		}
		return true
	}
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil {
		return false // out of double range: the reference path says so
	}
	s.out = appendNumber(s.out, f)
	return true
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

package api

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/grey-distributed/grey/greyerr"
)

// checkStrictJSON refuses what encoding/json accepts but other JSON
// parsers may read differently, so that every reader of a body sees the
// same document (RFC 8259 §8.1, RFC 7493 I-JSON):
//
//   - invalid UTF-8, anywhere (encoding/json silently turns it into
//     U+FFFD in strings, and keeps it raw in json.RawMessage payloads);
//   - lone UTF-16 surrogate escapes ("\ud800");
//   - a key twice in one object (encoding/json keeps the last one, others
//     the first);
//   - a key of an object decoded into a Go struct that matches a field only
//     case-insensitively ("Kind" for "kind": encoding/json folds case,
//     other parsers do not).
//
// t is the Go type data is decoded into (nil: any JSON). Errors are
// InvalidArgument naming the field path and the byte offset. A document
// that is not well-formed JSON passes: the decoder reports that.
func checkStrictJSON(data []byte, t reflect.Type, cache *fieldCache) error {
	s := &strictScanner{data: data, cache: cache}
	err := s.value(t, 0)
	if errors.Is(err, errNotJSON) {
		return nil
	}
	return err
}

// errNotJSON stops the scan at malformed JSON, which the decoder reports.
var errNotJSON = errors.New("not JSON")

// maxStrictDepth bounds nesting as encoding/json does.
const maxStrictDepth = 10000

type strictScanner struct {
	data  []byte
	pos   int
	cache *fieldCache // nil: computed on every use
	path  []pathElem  // where the value being scanned stands
	// keys holds the keys seen so far of each object being scanned, the
	// innermost last (an object truncates it back when it ends).
	keys [][]byte
}

// fieldCache holds jsonFields by struct type (a Server keeps one: the
// reflection costs more than the scan).
type fieldCache struct {
	m     sync.Map // reflect.Type → map[string]reflect.Type: a struct's JSON fields
	types sync.Map // reflect.Type → checkedType: what strictType answers
}

// checkedType is a strictType answer, nil included, as a sync.Map value.
type checkedType struct{ t reflect.Type }

// checked is strictType(t), from the cache when the scanner has one:
// reflect's Implements, asked for every value of a 256-report batch, was
// half the cost of the check.
func (s *strictScanner) checked(t reflect.Type) reflect.Type {
	if t == nil || s.cache == nil {
		return strictType(t)
	}
	if c, ok := s.cache.types.Load(t); ok {
		return c.(checkedType).t
	}
	c := strictType(t)
	s.cache.types.Store(t, checkedType{c})
	return c
}

func (s *strictScanner) structFields(t reflect.Type) map[string]reflect.Type {
	if s.cache == nil {
		return jsonFields(t)
	}
	if f, ok := s.cache.m.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	f := jsonFields(t)
	s.cache.m.Store(t, f)
	return f
}

func (s *strictScanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// pathElem is one step of the path to the value being scanned: an
// object member's key, or an array element's index (key nil).
type pathElem struct {
	key   []byte
	index int
}

// pathString renders the path to the value being scanned as a field
// path ("tasks[3].payload"; "body" for the document itself). Only errors
// render it: the scan itself keeps the path as a stack of keys and
// indexes, which costs no allocation per value.
func (s *strictScanner) pathString() string {
	if len(s.path) == 0 {
		return "body"
	}
	var b []byte
	for _, e := range s.path {
		if e.key == nil {
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(e.index), 10)
			b = append(b, ']')
			continue
		}
		if len(b) > 0 {
			b = append(b, '.')
		}
		b = append(b, e.key...)
	}
	return string(b)
}

// strictType is the type a JSON value decoded into t is checked against:
// nil where the value is kept raw or decoded by its own UnmarshalJSON.
func strictType(t reflect.Type) reflect.Type {
	if t == nil {
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeFor[json.RawMessage]() || reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map, reflect.Slice, reflect.Array:
		return t
	}
	return nil
}

func (s *strictScanner) value(t reflect.Type, depth int) error {
	if depth > maxStrictDepth {
		return errNotJSON
	}
	s.ws()
	if s.pos >= len(s.data) {
		return errNotJSON
	}
	t = s.checked(t)
	switch s.data[s.pos] {
	case '{':
		return s.object(t, depth)
	case '[':
		s.pos++
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		s.ws()
		if s.pos < len(s.data) && s.data[s.pos] == ']' {
			s.pos++
			return nil
		}
		s.path = append(s.path, pathElem{})
		at := len(s.path) - 1
		for i := 0; ; i++ {
			s.ws()
			s.path[at] = pathElem{index: i}
			if elem != nil && !anyJSON(elem) && bytes.HasPrefix(s.data[s.pos:], []byte("null")) {
				return greyerr.Invalid(s.pathString(), "must not be null at byte %d", s.pos)
			}
			if err := s.value(elem, depth+1); err != nil {
				return err
			}
			s.ws()
			if s.pos >= len(s.data) {
				return errNotJSON
			}
			switch s.data[s.pos] {
			case ',':
				s.pos++
			case ']':
				s.pos++
				s.path = s.path[:at]
				return nil
			default:
				return errNotJSON
			}
		}
	case '"':
		_, err := s.str()
		return err
	default:
		// A number or literal: ASCII up to the next delimiter; anything
		// else is malformed and left to the decoder.
		for s.pos < len(s.data) {
			c := s.data[s.pos]
			if c == ',' || c == ']' || c == '}' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
				break
			}
			if c >= utf8.RuneSelf {
				return s.badUTF8()
			}
			s.pos++
		}
		return nil
	}
}

func (s *strictScanner) object(t reflect.Type, depth int) error {
	start := s.pos
	s.pos++
	var fields map[string]reflect.Type
	var elem reflect.Type
	if t != nil {
		switch t.Kind() {
		case reflect.Struct:
			fields = s.structFields(t)
		case reflect.Map:
			elem = t.Elem()
		}
	}
	// This object's keys seen so far: s.keys[base:] as objects are
	// small, a map past 16.
	base := len(s.keys)
	defer func() { s.keys = s.keys[:base] }()
	var seenMap map[string]bool
	seen := func(k []byte) bool {
		if seenMap != nil {
			if seenMap[string(k)] {
				return true
			}
			seenMap[string(k)] = true
			return false
		}
		for _, x := range s.keys[base:] {
			if bytes.Equal(x, k) {
				return true
			}
		}
		s.keys = append(s.keys, k)
		if len(s.keys)-base > 16 {
			seenMap = make(map[string]bool, 32)
			for _, x := range s.keys[base:] {
				seenMap[string(x)] = true
			}
		}
		return false
	}
	s.ws()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return nil
	}
	for {
		s.ws()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return errNotJSON
		}
		keyAt := s.pos
		key, err := s.str()
		if err != nil {
			return err
		}
		s.path = append(s.path, pathElem{key: key})
		if seen(key) {
			return greyerr.Invalid(s.pathString(), "duplicate key %q at byte %d (the object at byte %d already has it; JSON parsers disagree on which one counts)", key, keyAt, start)
		}
		sub := elem
		if fields != nil {
			ft, ok := fields[string(key)]
			if !ok {
				if name, folded := foldName(fields, string(key)); folded {
					return greyerr.Invalid(s.pathString(), "unknown field %q at byte %d (field names are case-sensitive: %q)", key, keyAt, name)
				}
			}
			sub = ft
		}
		s.ws()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return errNotJSON
		}
		s.pos++
		s.ws()
		if sub != nil && !anyJSON(sub) && bytes.HasPrefix(s.data[s.pos:], []byte("null")) {
			// encoding/json reads null as "absent"; the spec gives no
			// field of a request a null value (leave the field out).
			return greyerr.Invalid(s.pathString(), "must not be null at byte %d (leave the field out to use its default)", s.pos)
		}
		if sub != nil && isBytes(sub) && s.pos < len(s.data) && s.data[s.pos] != '"' {
			// encoding/json also reads an array of numbers into []byte.
			return greyerr.Invalid(s.pathString(), "must be a base64 string (at byte %d)", s.pos)
		}
		if err := s.value(sub, depth+1); err != nil {
			return err
		}
		s.path = s.path[:len(s.path)-1]
		s.ws()
		if s.pos >= len(s.data) {
			return errNotJSON
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return errNotJSON
		}
	}
}

// isBytes reports whether t is a byte slice (base64 in JSON).
func isBytes(t reflect.Type) bool {
	return t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 && !anyJSON(t)
}

// anyJSON reports whether t holds any JSON value, null included.
func anyJSON(t reflect.Type) bool {
	return t == reflect.TypeFor[json.RawMessage]() || t.Kind() == reflect.Interface
}

// foldName finds the field a key matches only case-insensitively.
func foldName(fields map[string]reflect.Type, k string) (string, bool) {
	for name := range fields {
		if name != k && equalFoldASCII(name, k) {
			return name, true
		}
	}
	return "", false
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func (s *strictScanner) badUTF8() error {
	return greyerr.Invalid(s.pathString(), "invalid UTF-8 at byte %d: JSON text must be UTF-8", s.pos)
}

// str scans the string at s.pos (its opening quote) and returns its value:
// the document's own bytes when the string has no escapes (never to be
// modified), else a decoded copy.
func (s *strictScanner) str() ([]byte, error) {
	start := s.pos
	s.pos++
	escaped := false
	for s.pos < len(s.data) {
		s.pos += plainRun(s.data[s.pos:])
		if s.pos >= len(s.data) {
			break
		}
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			raw := s.data[start:s.pos]
			if !escaped {
				return raw[1 : len(raw)-1], nil
			}
			var v string
			if err := json.Unmarshal(raw, &v); err != nil {
				return nil, errNotJSON
			}
			return []byte(v), nil
		case c == '\\':
			escaped = true
			if s.pos+1 >= len(s.data) {
				return nil, errNotJSON
			}
			if s.data[s.pos+1] != 'u' {
				s.pos += 2
				continue
			}
			r, ok := s.hex4(s.pos + 2)
			if !ok {
				return nil, errNotJSON
			}
			if utf16.IsSurrogate(r) {
				// A high surrogate must be followed by an escaped low one.
				lo, ok2 := rune(0), false
				if r < 0xdc00 && s.pos+11 < len(s.data) && s.data[s.pos+6] == '\\' && s.data[s.pos+7] == 'u' {
					lo, ok2 = s.hex4(s.pos + 8)
				}
				if !ok2 || utf16.DecodeRune(r, lo) == utf8.RuneError {
					return nil, greyerr.Invalid(s.pathString(), "lone UTF-16 surrogate %q at byte %d: JSON text must be valid Unicode", string(s.data[s.pos:s.pos+6]), s.pos)
				}
				s.pos += 12
				continue
			}
			s.pos += 6
		case c < 0x20:
			return nil, errNotJSON
		case c < utf8.RuneSelf:
			s.pos++
		default:
			r, n := utf8.DecodeRune(s.data[s.pos:])
			if r == utf8.RuneError && n <= 1 {
				return nil, s.badUTF8()
			}
			s.pos += n
		}
	}
	return nil, errNotJSON
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plainRun is how many leading bytes of b, in whole 8-byte words, need no
// look in a string: ASCII, neither a quote, a backslash nor a control
// character. Long strings (base64 proofs, payload text) are mostly such
// words.
func plainRun(b []byte) int {
	n := 0
	for len(b)-n >= 8 {
		x := binary.LittleEndian.Uint64(b[n:])
		q := x ^ ('"' * ones)
		e := x ^ ('\\' * ones)
		if (x|(q-ones)&^q|(e-ones)&^e|(x-0x20*ones)&^x)&highs != 0 {
			return n
		}
		n += 8
	}
	return n
}

// hex4 reads four hex digits at i.
func (s *strictScanner) hex4(i int) (rune, bool) {
	if i+4 > len(s.data) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(s.data[i:i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	return rune(n), true
}

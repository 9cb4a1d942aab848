// Package schemes holds what every port's driver registry shares: a table
// of driver openers by URL scheme, checked at registration (one driver per
// scheme) and at lookup (a URL naming no scheme, or one this binary does
// not link, is an InvalidArgument error on field "url" that lists the
// schemes it has). The ports (blobstore, archive, events) wrap it with
// their own opener types and open functions.
package schemes

import (
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/grey-distributed/grey/greyerr"
)

// Table maps URL schemes to openers of type O. The zero value is not
// usable; create one with New. It is safe for concurrent use.
type Table[O any] struct {
	port, noun string
	redact     func(string) string
	mu         sync.RWMutex
	openers    map[string]O
}

// New returns an empty table. port prefixes registration errors
// ("archive: scheme ... is registered twice"); noun names the URL in lookup
// errors ("bucket", "archive", "event broker"); redact renders a URL for an
// error message without its credentials.
func New[O any](port, noun string, redact func(string) string) *Table[O] {
	return &Table[O]{port: port, noun: noun, redact: redact, openers: map[string]O{}}
}

// Register makes scheme (case-insensitive) open with o. An empty scheme, a
// nil opener, or a scheme registered twice (two drivers claiming one
// scheme: a build mistake) is an error.
func (t *Table[O]) Register(scheme string, o O) error {
	scheme = strings.ToLower(scheme)
	if scheme == "" || isNil(o) {
		return fmt.Errorf("%s: register: empty scheme or nil opener", t.port)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, dup := t.openers[scheme]; dup {
		return fmt.Errorf("%s: scheme %q is registered twice", t.port, scheme)
	}
	t.openers[scheme] = o
	return nil
}

// isNil reports whether v is nil or a nil func, pointer, map, slice,
// channel or interface.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Func, reflect.Pointer, reflect.Map, reflect.Slice, reflect.Chan, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// Schemes lists the registered schemes, sorted.
func (t *Table[O]) Schemes() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]string, 0, len(t.openers))
	for s := range t.openers {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Lookup parses rawURL and returns it with the opener of its scheme.
func (t *Table[O]) Lookup(rawURL string) (*url.URL, O, error) {
	var zero O
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse's message quotes the URL, password included.
		return nil, zero, greyerr.Invalid("url", "%s URL is not a URL", t.noun)
	}
	if u.Scheme == "" {
		return nil, zero, greyerr.Invalid("url", "%s URL %q has no scheme (want one of %s)", t.noun, t.redact(rawURL), strings.Join(t.Schemes(), ", "))
	}
	t.mu.RLock()
	o, ok := t.openers[strings.ToLower(u.Scheme)]
	t.mu.RUnlock()
	if !ok {
		return nil, zero, greyerr.Invalid("url", "%s scheme %q is not supported by this build (it has %s)", t.noun, u.Scheme, strings.Join(t.Schemes(), ", "))
	}
	return u, o, nil
}

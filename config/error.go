package config

import (
	"fmt"
	"strings"
)

// Error is one configuration problem. Validation errors carry Key and, when
// the value came from the file or the environment, Line or Env; they render
// as "key (line N): msg". Errors found while reading the file text carry
// File, Line and Column and render as "file:line:col: key: msg".
type Error struct {
	// File is the config file's name: set with Column, and on validation
	// errors for a value from a second file (LoadFiles).
	File string
	// Line is the 1-based line in the file the value came from (0 = not from
	// the file).
	Line int
	// Column is the 1-based column of a decode error (0 for validation errors).
	Column int
	// Key is the dotted key path, e.g. "tasks.retry.base_delay".
	Key string
	// Env is the environment variable the value came from, if any.
	Env string
	// Msg says what is wrong.
	Msg string
	// Err is the underlying error, if any.
	Err error
}

// Error renders the problem with its key and position.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Column > 0 {
		fmt.Fprintf(&b, "%s:%d:%d: ", e.File, e.Line, e.Column)
		if e.Key != "" {
			b.WriteString(e.Key + ": ")
		}
		b.WriteString(e.Msg)
		return b.String()
	}
	b.WriteString(e.Key)
	switch {
	case e.Line > 0 && e.File != "":
		fmt.Fprintf(&b, " (%s line %d)", e.File, e.Line)
	case e.Line > 0:
		fmt.Fprintf(&b, " (line %d)", e.Line)
	case e.Env != "":
		fmt.Fprintf(&b, " (from %s)", e.Env)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

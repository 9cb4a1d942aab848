package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// Duration is a time.Duration written in YAML as a Go duration string such
// as "100ms", "30s" or "1h30m". A bare 0 is accepted; other bare numbers are
// rejected because their unit would be a guess. It also implements
// flag.Value (and pflag.Value) for command-line flags.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats d like time.Duration.String without trailing zero units
// ("2m", not "2m0s").
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Set parses s as a Go duration string (flag.Value).
func (d *Duration) Set(s string) error {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("want a duration such as \"100ms\" or \"1h30m\": %w", err)
	}
	*d = Duration(v)
	return nil
}

// Type names the flag's value type (pflag.Value).
func (d *Duration) Type() string { return "duration" }

// MarshalYAML writes d as a duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML implements go-yaml's NodeUnmarshaler. It takes the node,
// rather than bytes, so that a bad value is reported with its key and
// position.
func (d *Duration) UnmarshalYAML(node ast.Node) error {
	if t, ok := node.(*ast.TagNode); ok {
		node = t.Value
	}
	var s string
	switch n := node.(type) {
	case *ast.StringNode:
		s = n.Value
	case *ast.IntegerNode, *ast.FloatNode:
		s = n.GetToken().Value
	default:
		return nodeError(node, fmt.Sprintf("must be a duration string such as \"30s\", not a %s", node.Type()), nil)
	}
	if err := d.Set(s); err != nil {
		return nodeError(node, err.Error(), err)
	}
	return nil
}

// Secret is a string that is masked ("****") when printed or marshaled, for
// credentials. Convert it with string(s) where the real value is needed.
type Secret string

// mask replaces a non-empty secret.
const mask = "****"

// String returns "****" for a non-empty secret, "" otherwise.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return mask
}

// GoString masks the secret in %#v output too.
func (s Secret) GoString() string { return fmt.Sprintf("config.Secret(%q)", s.String()) }

// MarshalYAML writes the masked value.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// nodeError is a decode error positioned at node.
func nodeError(node ast.Node, msg string, cause error) *Error {
	e := &Error{Key: keyOf(node.GetPath()), Msg: msg, Err: cause}
	if tk := node.GetToken(); tk != nil {
		e.Line, e.Column = tk.Position.Line, tk.Position.Column
	}
	return e
}

// keyOf turns a go-yaml path ("$.tasks.retry") into a key path ("tasks.retry").
func keyOf(path string) string {
	return strings.TrimPrefix(strings.TrimPrefix(path, "$"), ".")
}

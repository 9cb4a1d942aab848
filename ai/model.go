package ai

import (
	"regexp"
	"strings"
	"time"

	"github.com/grey-distributed/grey/greyerr"
)

// Framework names the framework a model is for.
type Framework string

// The frameworks Grey serves.
const (
	// PyTorch models are TorchScript files (torch.jit.save), loaded with
	// torch.jit.load.
	PyTorch Framework = "pytorch"
	// TensorFlow models are SavedModel directories, pushed as a tar of the
	// directory and loaded with tf.saved_model.load.
	TensorFlow Framework = "tensorflow"
)

// Valid reports whether f is a framework Grey serves.
func (f Framework) Valid() bool { return f == PyTorch || f == TensorFlow }

// LatestAlias always names a model's most recently pushed version.
const LatestAlias = "latest"

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`)

// ValidName checks a model name, version or alias: lower-case letters,
// digits, '.', '_' and '-', starting with a letter or digit, at most 128
// bytes. field names the field in the error.
func ValidName(field, s string) error {
	if !nameRE.MatchString(s) {
		return greyerr.Invalid(field, "%q is not a valid name (lower-case letters, digits, '.', '_', '-'; at most 128)", s)
	}
	return nil
}

// Model is one pushed version of a tenant's model.
type Model struct {
	// TenantID owns the model; other tenants never see it.
	TenantID string `json:"tenant_id"`
	// Name of the model.
	Name string `json:"name"`
	// Version of the model (immutable once pushed).
	Version string `json:"version"`
	// Framework the artifact is for.
	Framework Framework `json:"framework"`
	// Digest is "sha256:<hex>" of the artifact's bytes (a TorchScript file,
	// or the tar of a SavedModel directory).
	Digest string `json:"digest"`
	// Size is the artifact's length in bytes.
	Size int64 `json:"size"`
	// Aliases naming this version ("latest", "stable", …).
	Aliases []string `json:"aliases,omitempty"`
	// CreatedAt is when the version was pushed.
	CreatedAt time.Time `json:"created_at"`
}

// Ref returns the reference naming exactly this version.
func (m *Model) Ref() ModelRef { return ModelRef{Name: m.Name, Version: m.Version} }

// ModelRef names a model version: "name:version", or "name@alias", or
// "name" alone for "name@latest".
type ModelRef struct {
	// Name of the model.
	Name string `json:"name"`
	// Version, or "" when Alias names it.
	Version string `json:"version,omitempty"`
	// Alias, or "" when Version names it.
	Alias string `json:"alias,omitempty"`
}

// ParseModelRef parses "name:version", "name@alias" or "name" (latest).
func ParseModelRef(s string) (ModelRef, error) {
	var r ModelRef
	switch {
	case strings.Contains(s, ":"):
		r.Name, r.Version, _ = strings.Cut(s, ":")
	case strings.Contains(s, "@"):
		r.Name, r.Alias, _ = strings.Cut(s, "@")
	default:
		r.Name, r.Alias = s, LatestAlias
	}
	if err := ValidName("model", r.Name); err != nil {
		return ModelRef{}, err
	}
	if r.Version != "" {
		if err := ValidName("model", r.Version); err != nil {
			return ModelRef{}, err
		}
	} else if err := ValidName("model", r.Alias); err != nil {
		return ModelRef{}, err
	}
	return r, nil
}

// String is the reference's text form.
func (r ModelRef) String() string {
	if r.Version != "" {
		return r.Name + ":" + r.Version
	}
	return r.Name + "@" + r.Alias
}

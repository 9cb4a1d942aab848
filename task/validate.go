package task

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"strings"

	"github.com/grey-distributed/grey/greyerr"
)

// Limits bounds what Validate accepts.
type Limits struct {
	// MaxPayloadBytes bounds the inline payload.
	MaxPayloadBytes int
	// MaxDependsOn bounds the parents of one task.
	MaxDependsOn int
	// MaxTimeout bounds the per-attempt timeout (0 = unbounded).
	MaxTimeout Duration
}

// MaxGPU bounds constraints.gpu.
const MaxGPU = 1024

// ReservedHeaderPrefix starts the names of headers only the server sets
// (at submit, after Validate): a submitted spec may not carry them, so a
// header such as the resolved model digest of an inference task is always
// the server's word.
const ReservedHeaderPrefix = "grey.ai/"

var (
	kindRe   = regexp.MustCompile(`^[a-z][a-z0-9_.\-]{0,62}$`)
	keyRe    = regexp.MustCompile(`^[\x21-\x7e]{1,200}$`)
	tenantRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_\-]{0,62}$`)
)

func invalid(field, format string, args ...any) error {
	return greyerr.Invalid(field, format, args...)
}

// ValidTenant reports whether s is a well-formed tenant id
// (lower-case letters, digits, '-' and '_', at most 63 characters).
func ValidTenant(s string) bool { return tenantRe.MatchString(s) }

// Validate checks a submitted spec and fills in defaults (type, priority).
// Errors are greyerr InvalidArgument or TooLarge errors naming the field;
// field names are prefixed with prefix (e.g. "tasks[3].").
// ValidKind reports whether kind is a well-formed task kind (lower-case
// letters, digits, '_', '-', '.'; at most 63).
func ValidKind(kind string) bool { return kindRe.MatchString(kind) }

func (s *Spec) Validate(prefix string, lim Limits) error {
	if s.Kind == "" {
		return invalid(prefix+"kind", "is required")
	}
	if !kindRe.MatchString(s.Kind) {
		return invalid(prefix+"kind", "%q is not a valid kind (lower-case letters, digits, '_', '-', '.'; at most 63)", s.Kind)
	}
	if s.Priority != nil && (*s.Priority < MinPriority || *s.Priority > MaxPriority) {
		return invalid(prefix+"priority", "must be between %d and %d, got %d", MinPriority, MaxPriority, *s.Priority)
	}
	if s.PayloadRef != "" && len(s.Payload) > 0 {
		return invalid(prefix+"payload_ref", "a task carries a payload or a payload_ref, not both")
	}
	if len(s.Payload) > 0 {
		if lim.MaxPayloadBytes > 0 && len(s.Payload) > lim.MaxPayloadBytes {
			e := greyerr.New(greyerr.TooLarge, "payload is %d bytes, limit %d", len(s.Payload), lim.MaxPayloadBytes)
			e.Field = prefix + "payload"
			return e
		}
		if !json.Valid(s.Payload) {
			return invalid(prefix+"payload", "is not valid JSON")
		}
		if bytes.Equal(bytes.TrimSpace(s.Payload), []byte("null")) {
			s.Payload = nil
		}
	}
	if s.IdempotencyKey != "" && !keyRe.MatchString(s.IdempotencyKey) {
		return invalid(prefix+"idempotency_key", "must be 1–200 printable ASCII characters without spaces")
	}
	if s.StateKey != "" && !keyRe.MatchString(s.StateKey) {
		return invalid(prefix+"state_key", "must be 1–200 printable ASCII characters without spaces")
	}
	switch s.Type {
	case "":
		switch {
		case s.StateKey != "":
			s.Type = Stateful
		case len(s.DependsOn) > 0:
			s.Type = Pipeline
		default:
			s.Type = Stateless
		}
	case Stateless:
	case Stateful:
		if s.StateKey == "" {
			return invalid(prefix+"state_key", "is required for a stateful task")
		}
	case Pipeline:
		if len(s.DependsOn) == 0 {
			return invalid(prefix+"depends_on", "is required for a pipeline task")
		}
	default:
		return invalid(prefix+"type", "must be stateless, stateful or pipeline, got %q", s.Type)
	}
	if s.Type != Stateful && s.StateKey != "" {
		return invalid(prefix+"state_key", "is only allowed on stateful tasks")
	}
	max := lim.MaxDependsOn
	if max == 0 {
		max = 100
	}
	if len(s.DependsOn) > max {
		return invalid(prefix+"depends_on", "has %d parents, limit %d", len(s.DependsOn), max)
	}
	seen := make(map[string]bool, len(s.DependsOn))
	for _, p := range s.DependsOn {
		if !ValidID(p) {
			return invalid(prefix+"depends_on", "%q is not a task id", p)
		}
		if seen[p] {
			return invalid(prefix+"depends_on", "lists %s twice", p)
		}
		seen[p] = true
	}
	if s.Timeout < 0 {
		return invalid(prefix+"timeout", "must not be negative")
	}
	if lim.MaxTimeout > 0 && s.Timeout > lim.MaxTimeout {
		return invalid(prefix+"timeout", "%s exceeds the limit %s", s.Timeout.D(), lim.MaxTimeout.D())
	}
	if s.RunAt != nil {
		// Stored in UTC, which must stay a year JSON can carry: an offset
		// can push 9999-12-31 or 0000-01-01 out of [0, 9999].
		if y := s.RunAt.UTC().Year(); y < 0 || y > 9999 {
			return invalid(prefix+"run_at", "is out of range (year %d in UTC)", y)
		}
	}
	if s.Retry != nil {
		if err := s.Retry.Validate(prefix + "retry"); err != nil {
			return err
		}
	}
	if s.Constraints != nil {
		if s.Constraints.CPU < 0 {
			return invalid(prefix+"constraints.cpu", "must not be negative")
		}
		if g := s.Constraints.GPU; g < 0 || g != g || g > MaxGPU {
			return invalid(prefix+"constraints.gpu", "must be between 0 and %d", MaxGPU)
		}
		if s.Constraints.MemoryMB < 0 {
			return invalid(prefix+"constraints.memory_mb", "must not be negative")
		}
		if len(s.Constraints.Labels) > 32 {
			return invalid(prefix+"constraints.labels", "at most 32 labels")
		}
		if _, ok := s.Constraints.Labels[PlatformLabel]; ok {
			return invalid(prefix+"constraints.labels", "%q is set by the server from the worker's platform; use require_tee", PlatformLabel)
		}
	}
	if s.RequireTEE != "" && !slices.Contains(TEEPlatforms, s.RequireTEE) {
		return invalid(prefix+"require_tee", "must be one of %s, got %q", strings.Join(TEEPlatforms, ", "), s.RequireTEE)
	}
	if len(s.Headers) > 64 {
		return invalid(prefix+"headers", "at most 64 headers")
	}
	for k, v := range s.Headers {
		if k == "" || len(k) > 256 || len(v) > 4096 {
			return invalid(prefix+"headers", "header names must be 1–256 bytes and values at most 4096")
		}
		if strings.HasPrefix(k, ReservedHeaderPrefix) {
			return invalid(prefix+"headers", "header %q: names under %q are set by the server", k, ReservedHeaderPrefix)
		}
	}
	return nil
}

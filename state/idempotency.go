package state

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// ReasonIdempotencyKeyReused is the Reason of the AlreadyExists (409) error
// of a submit whose idempotency key names a task submitted with a different
// spec: a key names one request, as Stripe's do, so a changed request under
// an old key is a client bug, not a retry.
const ReasonIdempotencyKeyReused = "idempotency_key_reused"

// specFields are the parts of a spec an idempotency key pins, each with
// how to compare it. Headers are left out: they carry the request's trace
// context, which a retry of the same request legitimately changes.
var specFields = []struct {
	name  string
	equal func(a, b *task.Spec) bool
}{
	{"kind", func(a, b *task.Spec) bool { return a.Kind == b.Kind }},
	{"type", func(a, b *task.Spec) bool { return a.Type == b.Type }},
	{"payload", func(a, b *task.Spec) bool { return jsonEqual(a.Payload, b.Payload) }},
	{"payload_ref", func(a, b *task.Spec) bool { return a.PayloadRef == b.PayloadRef }},
	{"priority", func(a, b *task.Spec) bool { return a.Prio() == b.Prio() }},
	{"state_key", func(a, b *task.Spec) bool { return a.StateKey == b.StateKey }},
	{"depends_on", func(a, b *task.Spec) bool { return slicesEqual(a.DependsOn, b.DependsOn) }},
	{"constraints", func(a, b *task.Spec) bool { return canonJSON(a.Constraints) == canonJSON(b.Constraints) }},
	{"timeout", func(a, b *task.Spec) bool { return a.Timeout == b.Timeout }},
	{"retry", func(a, b *task.Spec) bool { return canonJSON(a.Retry) == canonJSON(b.Retry) }},
	{"require_proof", func(a, b *task.Spec) bool { return reflect.DeepEqual(a.RequireProof, b.RequireProof) }},
	{"require_tee", func(a, b *task.Spec) bool { return a.RequireTEE == b.RequireTEE }},
	{"run_at", func(a, b *task.Spec) bool {
		if a.RunAt == nil || b.RunAt == nil {
			return a.RunAt == nil && b.RunAt == nil
		}
		return a.RunAt.Equal(*b.RunAt)
	}},
}

// SpecDiff names the fields (JSON names, in spec order) in which b differs
// from a, as an idempotency key compares them; nil when they are the same
// request.
func SpecDiff(a, b *task.Spec) []string {
	var out []string
	for _, f := range specFields {
		if !f.equal(a, b) {
			out = append(out, f.name)
		}
	}
	return out
}

// keyReused is the error of a submit that reuses key (of task id) for a
// request that differs in fields.
func keyReused(field, key, id string, fields []string) error {
	e := greyerr.New(greyerr.AlreadyExists, "idempotency key %q was used by task %s with a different %s; use a new key for a different request", key, id, strings.Join(fields, ", "))
	e.Field = field
	e.Reason = ReasonIdempotencyKeyReused
	return e
}

// jsonEqual reports whether a and b are the same JSON value (object key
// order and insignificant space aside; numbers compared as written).
func jsonEqual(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	va, ok := decodeAny(a)
	if !ok {
		return false
	}
	vb, ok := decodeAny(b)
	return ok && reflect.DeepEqual(va, vb)
}

func decodeAny(raw json.RawMessage) (any, bool) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, true
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	return v, true
}

// canonJSON renders an optional policy so that absent and empty compare
// equal (both mean "inherit").
func canonJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" {
		return "{}"
	}
	return string(b)
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

package tenant

import (
	"time"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// Tenant is one tenant and its quota.
type Tenant struct {
	// ID is the tenant id (lower-case letters, digits, '-', '_'; ≤ 63).
	ID string `json:"id"`
	// Quota bounds what the tenant may use.
	Quota Quota `json:"quota"`
	// CreatedAt is when the tenant was created.
	CreatedAt time.Time `json:"created_at"`
	// UpdatedAt is the last change.
	UpdatedAt time.Time `json:"updated_at"`
	// AutoCreated is true for tenants created on first use (dev mode).
	AutoCreated bool `json:"auto_created,omitempty"`
}

// Quota bounds one tenant. Zero values mean "no limit" (or "the global
// limit" for MaxPayloadBytes and MaxTaskTimeout).
type Quota struct {
	// Weight is the fair-share weight (default 1).
	Weight float64 `json:"weight"`
	// MaxRunning bounds leased + running tasks; further ready tasks wait.
	MaxRunning int `json:"max_running"`
	// MaxQueued bounds unfinished tasks; submits beyond it get 429.
	MaxQueued int `json:"max_queued"`
	// SubmitRate is the sustained submit rate in tasks per second.
	SubmitRate float64 `json:"submit_rate"`
	// SubmitBurst is the submit burst in tasks.
	SubmitBurst int `json:"submit_burst"`
	// MaxPayloadBytes bounds one task's payload.
	MaxPayloadBytes int64 `json:"max_payload_bytes"`
	// MaxStorageBytes bounds payload + result bytes held for the tenant.
	MaxStorageBytes int64 `json:"max_storage_bytes"`
	// AllowedKinds restricts the kinds the tenant may submit (all if empty).
	AllowedKinds []string `json:"allowed_kinds,omitempty"`
	// MaxTaskTimeout bounds a task's timeout.
	MaxTaskTimeout task.Duration `json:"max_task_timeout"`
	// RequireProof is the tenant's proof policy: true makes a signed proof
	// mandatory for every task (a completion without one is refused),
	// false turns proofs off unless a task asks, nil follows the cluster's
	// proofs setting.
	RequireProof *bool `json:"require_proof,omitempty"`
}

// Limits on quota values, to refuse absurd ones.
const (
	MaxWeight       = 1000
	maxCount        = 1 << 30
	maxRate         = 1e7
	maxBytes  int64 = 1 << 50
)

// Normalize fills defaults (weight 1).
func (q *Quota) Normalize() {
	if q.Weight == 0 {
		q.Weight = 1
	}
}

// Validate checks the quota's ranges; errors name the field under prefix.
func (q *Quota) Validate(prefix string) error {
	bad := func(f, format string, args ...any) error { return greyerr.Invalid(prefix+f, format, args...) }
	switch {
	case q.Weight < 0 || q.Weight > MaxWeight || q.Weight != q.Weight:
		return bad("weight", "must be between 0 (default 1) and %d", MaxWeight)
	case q.MaxRunning < 0 || q.MaxRunning > maxCount:
		return bad("max_running", "must be between 0 (no limit) and %d", maxCount)
	case q.MaxQueued < 0 || q.MaxQueued > maxCount:
		return bad("max_queued", "must be between 0 (no limit) and %d", maxCount)
	case q.SubmitRate < 0 || q.SubmitRate > maxRate || q.SubmitRate != q.SubmitRate:
		return bad("submit_rate", "must be between 0 (no limit) and %g tasks/s", maxRate)
	case q.SubmitBurst < 0 || q.SubmitBurst > maxCount:
		return bad("submit_burst", "must be between 0 and %d", maxCount)
	case q.SubmitRate > 0 && q.SubmitBurst == 0:
		return bad("submit_burst", "must be at least 1 when submit_rate is set")
	case q.MaxPayloadBytes < 0 || q.MaxPayloadBytes > 64<<20:
		return bad("max_payload_bytes", "must be between 0 (global limit) and 64 MiB")
	case q.MaxStorageBytes < 0 || q.MaxStorageBytes > maxBytes:
		return bad("max_storage_bytes", "must be between 0 (no limit) and %d", maxBytes)
	case q.MaxTaskTimeout < 0:
		return bad("max_task_timeout", "must not be negative")
	case len(q.AllowedKinds) > 1000:
		return bad("allowed_kinds", "at most 1000 kinds")
	}
	for _, k := range q.AllowedKinds {
		if (&task.Spec{Kind: k}).Validate("", task.Limits{}) != nil {
			return bad("allowed_kinds", "%q is not a valid kind", k)
		}
	}
	return nil
}

// Allows reports whether the quota lets the tenant submit kind.
func (q *Quota) Allows(kind string) bool {
	if len(q.AllowedKinds) == 0 {
		return true
	}
	for _, k := range q.AllowedKinds {
		if k == kind {
			return true
		}
	}
	return false
}

// ValidID checks a tenant id, naming field in the error.
func ValidID(field, id string) error {
	if len(id) > 63 || !task.ValidTenant(id) {
		return greyerr.Invalid(field, "%q is not a valid tenant id (1–63 of a-z, 0-9, '-', '_', starting with a letter or digit)", id)
	}
	return nil
}

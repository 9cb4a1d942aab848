package task

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Default retry settings (the seed's RetryPolicy::exponential()).
const (
	DefaultMaxRetries = 5
	DefaultBaseDelay  = 100 * time.Millisecond
	DefaultMaxDelay   = 30 * time.Second
)

// RetryPolicy says how often and how soon a failed task is tried again:
// exponential backoff from BaseDelay doubling up to MaxDelay, with full
// jitter (the delay is uniform in [0, cap]). Zero fields take the defaults
// of the level above (task → global config → package defaults).
type RetryPolicy struct {
	// MaxRetries is how many retries follow the first attempt; nil = inherit,
	// 0 = never retry.
	MaxRetries *int `json:"max_retries,omitempty"`
	// BaseDelay is the cap of the first retry's delay.
	BaseDelay Duration `json:"base_delay,omitempty"`
	// MaxDelay is the largest cap.
	MaxDelay Duration `json:"max_delay,omitempty"`
}

// DefaultRetryPolicy returns the package defaults.
func DefaultRetryPolicy() RetryPolicy {
	n := DefaultMaxRetries
	return RetryPolicy{MaxRetries: &n, BaseDelay: Duration(DefaultBaseDelay), MaxDelay: Duration(DefaultMaxDelay)}
}

// Merge returns p with its unset fields taken from base.
func (p RetryPolicy) Merge(base RetryPolicy) RetryPolicy {
	if p.MaxRetries == nil {
		p.MaxRetries = base.MaxRetries
	}
	if p.BaseDelay == 0 {
		p.BaseDelay = base.BaseDelay
	}
	if p.MaxDelay == 0 {
		p.MaxDelay = base.MaxDelay
	}
	return p
}

// Retries returns the effective number of retries (0 if unset).
func (p RetryPolicy) Retries() int {
	if p.MaxRetries == nil {
		return 0
	}
	return *p.MaxRetries
}

// Validate checks the policy's ranges.
func (p RetryPolicy) Validate(field string) error {
	if p.MaxRetries != nil && (*p.MaxRetries < 0 || *p.MaxRetries > 1000) {
		return invalid(field+".max_retries", "must be between 0 and 1000, got %d", *p.MaxRetries)
	}
	if p.BaseDelay < 0 {
		return invalid(field+".base_delay", "must not be negative")
	}
	if p.MaxDelay < 0 {
		return invalid(field+".max_delay", "must not be negative")
	}
	if p.MaxDelay != 0 && p.BaseDelay > p.MaxDelay {
		return invalid(field+".base_delay", "%s exceeds max_delay %s", p.BaseDelay.D(), p.MaxDelay.D())
	}
	return nil
}

// Cap returns the upper bound of the delay before retry number n (1-based):
// min(MaxDelay, BaseDelay·2^(n-1)), computed by cenkalti/backoff's
// exponential policy without randomisation.
func (p RetryPolicy) Cap(n int) time.Duration {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     p.BaseDelay.D(),
		RandomizationFactor: 0,
		Multiplier:          2,
		MaxInterval:         p.MaxDelay.D(),
	}
	b.Reset()
	var d time.Duration
	for i := 0; i < n && i < 64; i++ {
		d = b.NextBackOff()
		if d >= p.MaxDelay.D() {
			break
		}
	}
	return d
}

// Delay returns the full-jitter delay before retry number n (1-based): a
// uniform draw from [0, Cap(n)] using r. It is called by the leader before
// it proposes the retry, never inside the state machine.
func (p RetryPolicy) Delay(n int, r *rand.Rand) time.Duration {
	c := p.Cap(n)
	if c <= 0 {
		return 0
	}
	return time.Duration(r.Int64N(int64(c) + 1))
}

// String renders the policy for logs.
func (p RetryPolicy) String() string {
	return fmt.Sprintf("retries=%d base=%s max=%s", p.Retries(), p.BaseDelay.D(), p.MaxDelay.D())
}

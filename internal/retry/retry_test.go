package retry_test

import (
	"context"
	"testing"
	"time"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/retry"
)

var fast = retry.Options{MaxTries: 3, InitialInterval: time.Millisecond, MaxInterval: 2 * time.Millisecond}.WithDefaults(time.Second)

// Unavailable is retried (onRetry before each retry only), other codes
// are not, and MaxTries bounds the tries.
func TestUnavailable(t *testing.T) {
	for _, c := range []struct {
		name              string
		fails             int
		err               error
		wantCalls, wantRe int
		wantCode          greyerr.Code
	}{
		{"recovers", 2, greyerr.New(greyerr.Unavailable, "503"), 3, 2, ""},
		{"permanent", 5, greyerr.New(greyerr.PermissionDenied, "no"), 1, 0, greyerr.PermissionDenied},
		{"gives up", 100, greyerr.New(greyerr.Unavailable, "down"), 3, 2, greyerr.Unavailable},
	} {
		calls, retries := 0, 0
		err := retry.Unavailable(t.Context(), fast, func() error {
			calls++
			if calls <= c.fails {
				return c.err
			}
			return nil
		}, func() { retries++ })
		if greyerr.CodeOf(err) != c.wantCode || calls != c.wantCalls || retries != c.wantRe {
			t.Errorf("%s: err %v, %d calls, %d retries; want code %q, %d calls, %d retries", c.name, err, calls, retries, c.wantCode, c.wantCalls, c.wantRe)
		}
	}
	// An ended context stops the retries.
	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	_ = retry.Unavailable(ctx, fast, func() error { calls++; cancel(); return greyerr.New(greyerr.Unavailable, "x") }, nil)
	if calls != 1 {
		t.Errorf("after cancel: %d calls, want 1", calls)
	}
	if d := (retry.Options{}).WithDefaults(7 * time.Second); d.MaxTries != 4 || d.InitialInterval != 50*time.Millisecond || d.MaxInterval != 2*time.Second || d.MaxElapsed != 7*time.Second {
		t.Errorf("defaults = %+v", d)
	}
}

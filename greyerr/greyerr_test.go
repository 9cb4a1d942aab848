package greyerr_test

import (
	"context"
	"errors"
	"testing"

	"github.com/grey-distributed/grey/greyerr"
)

// Within keeps a coded error's code (and a context error's), gives an
// uncoded one the default, leaves nil alone, and keeps the chain.
func TestWithin(t *testing.T) {
	plain := errors.New("boom")
	for _, c := range []struct {
		err  error
		want greyerr.Code
	}{
		{plain, greyerr.InvalidArgument},
		{greyerr.New(greyerr.Unavailable, "down"), greyerr.Unavailable},
		{context.DeadlineExceeded, greyerr.DeadlineExceeded},
	} {
		got := greyerr.Within(greyerr.InvalidArgument, c.err, "open %s", "x")
		if greyerr.CodeOf(got) != c.want || !errors.Is(got, c.err) {
			t.Errorf("Within(%v) = %v (code %s), want code %s wrapping it", c.err, got, greyerr.CodeOf(got), c.want)
		}
	}
	if greyerr.Within(greyerr.Internal, nil, "x") != nil {
		t.Error("Within(nil) is not nil")
	}
}

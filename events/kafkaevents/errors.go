package kafkaevents

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/grey-distributed/grey/greyerr"
)

// errorOf codes a franz-go error: refused credentials and authorizations
// are PermissionDenied, a record over the broker's size limit TooLarge, a
// closed client FailedPrecondition, context errors stay themselves, and
// everything else (unreachable brokers, timeouts, leader changes) is
// Unavailable, which the portable layer retries with backoff.
func errorOf(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	code := greyerr.Unavailable
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed),
		errors.Is(err, kerr.TopicAuthorizationFailed),
		errors.Is(err, kerr.GroupAuthorizationFailed),
		errors.Is(err, kerr.ClusterAuthorizationFailed),
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed):
		code = greyerr.PermissionDenied
	case errors.Is(err, kerr.MessageTooLarge):
		code = greyerr.TooLarge
	case errors.Is(err, kgo.ErrClientClosed):
		code = greyerr.FailedPrecondition
	}
	return greyerr.Wrap(code, err, format, args...)
}

// rebalanceError reports whether a commit failed because this member no
// longer owns the partitions: the next owner redelivers from the last
// committed offset, which is harmless (positions are idempotency keys).
func rebalanceError(err error) bool {
	return errors.Is(err, kerr.RebalanceInProgress) || errors.Is(err, kerr.IllegalGeneration) ||
		errors.Is(err, kerr.UnknownMemberID) || errors.Is(err, kerr.FencedInstanceID)
}

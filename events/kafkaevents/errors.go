package kafkaevents

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/grey-distributed/grey/greyerr"
)

// errorOf codes a franz-go error: refused credentials and authorizations
// are PermissionDenied, a broker certificate that does not verify
// Unauthenticated (with a hint at the TLS settings), a record over the
// broker's size limit TooLarge, a closed client FailedPrecondition,
// context errors stay themselves, and everything else (unreachable brokers, timeouts, leader changes) is
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
	case untrustedCert(err):
		code = greyerr.Unauthenticated
		format += ": TLS: the broker's certificate does not verify (check tls_ca_file and tls_server_name)"
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

// untrustedCert reports whether err is a TLS handshake that failed on the
// broker's certificate (unknown CA, wrong name, expired).
func untrustedCert(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) ||
		strings.Contains(err.Error(), "tls: failed to verify certificate")
}

package cassarchive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"syscall"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/grey-distributed/grey/greyerr"
)

// classify gives err the Grey code callers branch on (the archive.Driver
// error contract), with what naming the failed step:
//
//   - ctx's code when the context ended (Canceled, DeadlineExceeded);
//   - Unavailable: no host answers (connection refused, no connections,
//     dial or request timeouts), too few live replicas for the consistency
//     level (UNAVAILABLE, naming required and alive), a replica that timed
//     out or failed (READ/WRITE_TIMEOUT, READ/WRITE_FAILURE), an
//     overloaded or bootstrapping coordinator: worth retrying (every
//     write of this driver is idempotent);
//   - PermissionDenied: refused credentials or missing permissions;
//   - FailedPrecondition: the keyspace or a table is missing (the schema
//     is not migrated);
//   - InvalidArgument: a request Cassandra refuses as malformed (a
//     mutation over the size the cluster accepts);
//   - Internal otherwise.
//
// A lightweight transaction whose condition failed is not an error at all
// (see cas); one whose outcome is unknown (a CAS write timeout) is
// resolved by reading it back, never retried blindly.
func classify(err error, what string) error {
	if err == nil {
		return nil
	}
	var ge *greyerr.Error
	if errors.As(err, &ge) {
		return fmt.Errorf("%s: %w", what, err)
	}
	code := codeOf(err)
	msg := what
	var un *gocql.RequestErrUnavailable
	if errors.As(err, &un) {
		msg = fmt.Sprintf("%s: consistency %s needs %d live replicas, %d are alive", what, un.Consistency, un.Required, un.Alive)
	}
	return &greyerr.Error{Code: code, Message: msg, Err: sanitized{err}}
}

func codeOf(err error) greyerr.Code {
	switch {
	case errors.Is(err, context.Canceled):
		return greyerr.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return greyerr.DeadlineExceeded
	}
	// The typed errors first (they carry their code in their type), then
	// any other server error by its code.
	var (
		un  *gocql.RequestErrUnavailable
		wt  *gocql.RequestErrWriteTimeout
		rt  *gocql.RequestErrReadTimeout
		rf  *gocql.RequestErrReadFailure
		wf  *gocql.RequestErrWriteFailure
		ov  *gocql.RequestErrOverloaded
		bs  *gocql.RequestErrBootstrapping
		cu  *gocql.RequestErrCASWriteUnknown
		cr  *gocql.RequestErrCredentials
		ua  *gocql.RequestErrUnauthorized
		inv *gocql.RequestErrInvalid
		cfg *gocql.RequestErrConfig
	)
	switch {
	case errors.As(err, &wf) && tooLarge(wf.Message()):
		return greyerr.InvalidArgument
	case errors.As(err, &un), errors.As(err, &wt), errors.As(err, &rt), errors.As(err, &rf), errors.As(err, &wf),
		errors.As(err, &ov), errors.As(err, &bs), errors.As(err, &cu):
		return greyerr.Unavailable
	case errors.As(err, &cr), errors.As(err, &ua):
		return greyerr.PermissionDenied
	case errors.As(err, &inv):
		return invalidCode(inv.Message())
	case errors.As(err, &cfg):
		return invalidCode(cfg.Message())
	}
	var re gocql.RequestError
	if errors.As(err, &re) {
		if tooLarge(re.Message()) {
			return greyerr.InvalidArgument // a message or mutation over the server's limit
		}
		switch re.Code() {
		case gocql.ErrCodeUnavailable, gocql.ErrCodeOverloaded, gocql.ErrCodeBootstrapping,
			gocql.ErrCodeWriteTimeout, gocql.ErrCodeReadTimeout, gocql.ErrCodeReadFailure,
			gocql.ErrCodeWriteFailure, gocql.ErrCodeTruncate, gocql.ErrCodeCASWriteUnknown:
			if tooLarge(re.Message()) {
				return greyerr.InvalidArgument
			}
			return greyerr.Unavailable
		case gocql.ErrCodeCredentials, gocql.ErrCodeUnauthorized:
			return greyerr.PermissionDenied
		case gocql.ErrCodeInvalid, gocql.ErrCodeConfig:
			return invalidCode(re.Message())
		}
		return greyerr.Internal
	}
	switch {
	case errors.Is(err, gocql.ErrNoConnections), errors.Is(err, gocql.ErrNoConnectionsStarted),
		errors.Is(err, gocql.ErrConnectionClosed), errors.Is(err, gocql.ErrTimeoutNoResponse),
		errors.Is(err, gocql.ErrSessionClosed),
		errors.Is(err, gocql.ErrUnavailable), errors.Is(err, gocql.ErrNoStreams):
		return greyerr.Unavailable
	}
	var ne net.Error
	var oe *net.OpError
	var de *net.DNSError
	if errors.As(err, &ne) || errors.As(err, &oe) || errors.As(err, &de) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return greyerr.Unavailable
	}
	m := strings.ToLower(err.Error())
	switch {
	case strings.Contains(m, "authentication") || strings.Contains(m, "bad credentials") || strings.Contains(m, "provided username"):
		return greyerr.PermissionDenied
	case strings.Contains(m, "unable to create session"), strings.Contains(m, "no hosts"),
		strings.Contains(m, "connection refused"), strings.Contains(m, "i/o timeout"),
		strings.Contains(m, "failed to resolve"), strings.Contains(m, "unable to discover protocol version"):
		return greyerr.Unavailable
	}
	return greyerr.Internal
}

// invalidCode classifies an INVALID or CONFIG error by its message: a
// missing keyspace or table is the schema's state, an oversized request
// the caller's.
func invalidCode(msg string) greyerr.Code {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "keyspace") && strings.Contains(m, "does not exist"),
		strings.Contains(m, "unconfigured table"), strings.Contains(m, "undefined column"):
		return greyerr.FailedPrecondition
	case tooLarge(m):
		return greyerr.InvalidArgument
	}
	return greyerr.Internal
}

// tooLarge reports whether a server message refuses a mutation for its
// size (max_mutation_size, native_transport_max_frame_size).
func tooLarge(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "too large") || strings.Contains(m, "oversized") ||
		strings.Contains(m, "exceeds") && strings.Contains(m, "maximum")
}

// sanitized wraps an error so its text cannot carry a password.
type sanitized struct{ err error }

func (s sanitized) Error() string { return redactErr(s.err) }
func (s sanitized) Unwrap() error { return s.err }

var urlPasswordRE = regexp.MustCompile(`(://[^:/@\s]*:)[^@\s]*@`)

func redactErr(err error) string {
	return urlPasswordRE.ReplaceAllString(err.Error(), "${1}xxxxx@")
}

// asErr is errors.As.
func asErr[T any](err error, target *T) bool { return errors.As(err, target) }

package mongoarchive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/grey-distributed/grey/greyerr"
)

// MongoDB server error codes the driver branches on
// (https://www.mongodb.com/docs/manual/reference/error-codes/).
var (
	// refused credentials or privileges
	permissionCodes = []int{11 /* UserNotFound */, 13 /* Unauthorized */, 18 /* AuthenticationFailed */}
	// an operation or option the server does not have (FerretDB answers
	// NotImplemented for TTL indexes)
	unimplementedCodes = []int{59 /* CommandNotFound */, 115 /* CommandNotSupported */, 238 /* NotImplemented */}
	// the deployment cannot do what the URL asks, or holds indexes of
	// another shape
	preconditionCodes = []int{79 /* UnknownReplWriteConcern */, 100 /* UnsatisfiableWriteConcern */, 85 /* IndexOptionsConflict */, 86 /* IndexKeySpecsConflict */, 67 /* CannotCreateIndex */}
	// a request the server refuses as malformed
	invalidCodes = []int{2 /* BadValue */, 9 /* FailedToParse */, 10334 /* BSONObjectTooLarge */, 17280 /* KeyTooLong */, 17419 /* document too large after update */}
	// worth retrying: failover, shutdown, network, timeouts, a write
	// concern not met in time, and a duplicate key (two upserts of one
	// new record racing: the retry finds it and replaces it)
	transientCodes = []int{6 /* HostUnreachable */, 7 /* HostNotFound */, 50 /* MaxTimeMSExpired */, 64 /* WriteConcernFailed */, 89 /* NetworkTimeout */, 91 /* ShutdownInProgress */, 189 /* PrimarySteppedDown */, 262 /* ExceededTimeLimit */, 9001 /* SocketException */, 10107 /* NotWritablePrimary */, 11600 /* InterruptedAtShutdown */, 11602 /* InterruptedDueToReplStateChange */, 13435 /* NotPrimaryNoSecondaryOk */, 13436 /* NotPrimaryOrSecondary */, 11000, 11001 /* DuplicateKey */}
	// error labels that mark a failure as retryable
	transientLabels = []string{"RetryableWriteError", "NetworkError", "TransientTransactionError", "ResetPool", "SystemOverloadedError"}
)

// classify gives err the Grey code callers branch on (the archive.Driver
// error contract), with what naming the failed step:
//
//   - ctx's code, wrapping ctx's error, when ctx ended;
//   - PermissionDenied: refused credentials or privileges;
//   - Unavailable: no server selected, network errors and timeouts,
//     failover and shutdown codes, retryable error labels, an unmet write
//     concern, a duplicate key (racing upserts);
//   - Unimplemented: a command or option the server lacks;
//   - FailedPrecondition: an unsatisfiable write concern, indexes of
//     another shape under the archive's names;
//   - InvalidArgument: a document the server refuses (too large, a string
//     PostgreSQL cannot hold under FerretDB);
//   - Internal otherwise.
//
// The message never carries a password.
func classify(ctx context.Context, err error, what string) error {
	if err == nil {
		return nil
	}
	var ge *greyerr.Error
	if errors.As(err, &ge) {
		return err
	}
	if cerr := ctx.Err(); cerr != nil {
		return &greyerr.Error{Code: greyerr.CodeOf(cerr), Message: what, Err: fmt.Errorf("%w (%s)", cerr, redact(err.Error()))}
	}
	return &greyerr.Error{Code: codeOf(err), Message: what, Err: sanitized{err}}
}

func codeOf(err error) greyerr.Code {
	// A server selection that timed out wraps context.DeadlineExceeded
	// though the caller's context is alive: the store is down.
	var sse topology.ServerSelectionError
	if errors.As(err, &sse) {
		return greyerr.Unavailable
	}
	switch {
	case errors.Is(err, context.Canceled):
		return greyerr.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return greyerr.DeadlineExceeded
	}
	msg := err.Error()
	if strings.Contains(msg, "auth error") || strings.Contains(msg, "AuthenticationFailed") {
		return greyerr.PermissionDenied
	}
	var se mongo.ServerError
	if errors.As(err, &se) {
		codes := se.ErrorCodes()
		has := func(set []int) bool {
			return slices.ContainsFunc(codes, func(c int) bool { return slices.Contains(set, c) })
		}
		switch {
		case has(permissionCodes):
			return greyerr.PermissionDenied
		case has(invalidCodes):
			return greyerr.InvalidArgument
		case has(preconditionCodes):
			return greyerr.FailedPrecondition
		case has(unimplementedCodes):
			return greyerr.Unimplemented
		case has(transientCodes), slices.ContainsFunc(transientLabels, se.HasErrorLabel):
			return greyerr.Unavailable
		case strings.Contains(msg, "SQLSTATE 22P05"), strings.Contains(msg, "SQLSTATE 22021"), strings.Contains(msg, "SQLSTATE 54000"):
			// FerretDB on PostgreSQL: a string PostgreSQL's jsonb cannot
			// hold (NUL, bad encoding) or a value too large.
			return greyerr.InvalidArgument
		case strings.Contains(msg, "SQLSTATE 08"), strings.Contains(msg, "SQLSTATE 57P0"), strings.Contains(msg, "SQLSTATE 53"),
			strings.Contains(msg, "SQLSTATE 40001"), strings.Contains(msg, "SQLSTATE 40P01"):
			// FerretDB lost its PostgreSQL, or PostgreSQL asks for a retry.
			return greyerr.Unavailable
		}
		return greyerr.Internal
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne), mongo.IsNetworkError(err), mongo.IsTimeout(err),
		errors.Is(err, mongo.ErrClientDisconnected), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return greyerr.Unavailable
	}
	var le mongo.LabeledError
	if errors.As(err, &le) && slices.ContainsFunc(transientLabels, le.HasErrorLabel) {
		return greyerr.Unavailable
	}
	return greyerr.Internal
}

// sanitized wraps an error so its text cannot carry a password.
type sanitized struct{ err error }

func (s sanitized) Error() string { return redact(s.err.Error()) }
func (s sanitized) Unwrap() error { return s.err }

var urlPasswordRE = regexp.MustCompile(`(://[^:/@\s]*:)[^@\s]*@`)

// redact replaces anything shaped like a URL's password in s by xxxxx.
func redact(s string) string {
	return urlPasswordRE.ReplaceAllString(s, "${1}xxxxx@")
}

// redactErr returns err's text without raw's password (the driver's
// parser may quote parts of the URL).
func redactErr(err error, raw string) string {
	s := redact(err.Error())
	if _, rest, ok := strings.Cut(raw, "://"); ok {
		hosts, _, _ := strings.Cut(rest, "/")
		if at := strings.LastIndex(hosts, "@"); at >= 0 {
			// (a password of under 4 bytes is left: replacing every "p"
			// of a message would garble it)
			if _, pw, ok := strings.Cut(hosts[:at], ":"); ok && len(pw) >= 4 {
				s = strings.ReplaceAll(s, pw, "xxxxx")
			}
		}
	}
	return s
}

func utf8Valid(s string) bool { return utf8.ValidString(s) }

// wrapf is fmt.Errorf for classified errors: it keeps err's code.
func wrapf(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

package pgarchive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/grey-distributed/grey/greyerr"
)

// classify gives err the Grey code callers branch on (the archive.Driver
// error contract), with what names the failed step:
//
//   - Unavailable: the server cannot be reached or is going away
//     (connection refused or reset, class 08, 57P01-57P03 shutdown), too
//     many connections (class 53), a serialization failure (40001) or
//     deadlock (40P01): worth retrying;
//   - PermissionDenied: refused credentials (28P01, 28000) or missing
//     privileges (42501);
//   - FailedPrecondition: the database or schema is missing (3D000, 3F000,
//     42P01, 42883);
//   - ctx's error when ctx ended (Canceled, DeadlineExceeded);
//   - Internal otherwise.
//
// The message never carries a password (pgconn's errors name user, host
// and database only).
func classify(err error, what string) error {
	if err == nil {
		return nil
	}
	var ge *greyerr.Error
	if errors.As(err, &ge) {
		return err
	}
	code := codeOf(err)
	return &greyerr.Error{Code: code, Message: what, Err: sanitized{err}}
}

func codeOf(err error) greyerr.Code {
	if errors.Is(err, context.Canceled) {
		return greyerr.Canceled
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return greyerr.DeadlineExceeded
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "28P01" || pe.Code == "28000" || pe.Code == "42501":
			return greyerr.PermissionDenied
		case strings.HasPrefix(pe.Code, "08"), strings.HasPrefix(pe.Code, "53"),
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03",
			pe.Code == "40001", pe.Code == "40P01", pe.Code == "55P03", pe.Code == "25006":
			// 25006 read_only_sql_transaction: a primary that became a
			// standby (failover); 55P03 lock_not_available.
			return greyerr.Unavailable
		case pe.Code == "3D000" || pe.Code == "3F000" || pe.Code == "42P01" || pe.Code == "42883":
			return greyerr.FailedPrecondition
		case pe.Code == "22023", pe.Code == "22P02", pe.Code == "22021", pe.Code == "22P05", pe.Code == "54000":
			// invalid parameter, invalid text (json), bad encoding (NUL
			// bytes), untranslatable character, too large
			return greyerr.InvalidArgument
		}
		return greyerr.Internal
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &ce), errors.As(err, &ne), errors.As(err, &oe),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		pgconn.SafeToRetry(err), pgconn.Timeout(err):
		return greyerr.Unavailable
	}
	if strings.Contains(err.Error(), "closed pool") || strings.Contains(err.Error(), "conn closed") {
		return greyerr.Unavailable
	}
	return greyerr.Internal
}

// sanitized wraps an error so its text cannot carry a password (a
// connection string echoed in a parse error).
type sanitized struct{ err error }

func (s sanitized) Error() string { return redactErr(s.err) }
func (s sanitized) Unwrap() error { return s.err }

var (
	urlPasswordRE = regexp.MustCompile(`(://[^:/@\s]*:)[^@\s]*@`)
	kvPasswordRE  = regexp.MustCompile(`(?i)(password=)\S+`)
)

// redactErr returns err's text with anything shaped like a password
// replaced by xxxxx.
func redactErr(err error) string {
	s := urlPasswordRE.ReplaceAllString(err.Error(), "${1}xxxxx@")
	return kvPasswordRE.ReplaceAllString(s, "${1}xxxxx")
}

// wrapf is fmt.Errorf for classified errors: it keeps err's code.
func wrapf(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

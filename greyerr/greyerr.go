// Package greyerr holds Grey's closed set of error codes and the one error type
// that carries them across package and process boundaries.
//
// Errors are wrapped once, at the layer that knows the code; callers branch on
// Code(err), never on the message. Over HTTP the code travels as a field of the
// JSON error body and maps to a status code in exactly one place (HTTPStatus).
package greyerr

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Code classifies an error. The set is closed: add a value only with a new
// HTTP mapping in HTTPStatus.
type Code string

// The closed set of codes.
const (
	// Unknown is the code of an error that carries none.
	Unknown Code = "unknown"
	// NotFound: the named object does not exist (or belongs to another tenant).
	NotFound Code = "not_found"
	// AlreadyExists: an object with that identity exists.
	AlreadyExists Code = "already_exists"
	// InvalidArgument: the request is malformed; Field names the culprit.
	InvalidArgument Code = "invalid_argument"
	// FailedPrecondition: the object is not in a state that allows the operation.
	FailedPrecondition Code = "failed_precondition"
	// PermissionDenied: the caller may not do this.
	PermissionDenied Code = "permission_denied"
	// Unauthenticated: the caller did not prove who it is.
	Unauthenticated Code = "unauthenticated"
	// ResourceExhausted: a limit or quota was hit; RetryAfter may say when to retry.
	ResourceExhausted Code = "resource_exhausted"
	// TooLarge: a payload exceeds its size limit.
	TooLarge Code = "too_large"
	// Unimplemented: the operation is not supported (by this driver or build).
	Unimplemented Code = "unimplemented"
	// MethodNotAllowed: the path exists but not with this HTTP method (the
	// response's Allow header lists the methods it has).
	MethodNotAllowed Code = "method_not_allowed"
	// Unavailable: try again later, possibly elsewhere (not leader, shutting down).
	Unavailable Code = "unavailable"
	// Canceled: the caller gave up.
	Canceled Code = "canceled"
	// DeadlineExceeded: the operation ran out of time.
	DeadlineExceeded Code = "deadline_exceeded"
	// Internal: a bug or broken invariant.
	Internal Code = "internal"
)

// Error is Grey's coded error.
type Error struct {
	// Code classifies the error.
	Code Code `json:"code"`
	// Message is a human-readable description.
	Message string `json:"message"`
	// Field names the offending input field for InvalidArgument and TooLarge.
	Field string `json:"field,omitempty"`
	// Reason is a short machine-readable sub-reason (e.g. which quota).
	Reason string `json:"reason,omitempty"`
	// RetryAfter suggests when to retry ResourceExhausted and Unavailable errors.
	RetryAfter time.Duration `json:"-"`
	// Err is the wrapped cause, if any.
	Err error `json:"-"`
}

// Error implements error.
func (e *Error) Error() string {
	s := string(e.Code) + ": " + e.Message
	if e.Field != "" {
		s += " (field " + e.Field + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, greyerr.New(greyerr.NotFound, "")) works as a code test.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Message == "" && t.Field == ""
}

// New returns an error with the code and a formatted message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an InvalidArgument error naming field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: InvalidArgument, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Within returns err under a message saying where it happened, keeping
// err's code, or def when err has none (nil for nil).
func Within(def Code, err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	code := CodeOf(err)
	if code == Unknown {
		code = def
	}
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// Wrap returns err with the code and message unless err already carries a
// code, in which case it is returned unchanged (errors are wrapped once).
func Wrap(code Code, err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	var ge *Error
	if errors.As(err, &ge) {
		return err
	}
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// CodeOf returns the code of err: its own if it is (or wraps) an *Error,
// Canceled/DeadlineExceeded for context errors, Unknown otherwise, and "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var ge *Error
	if errors.As(err, &ge) {
		return ge.Code
	}
	switch {
	case errors.Is(err, errCanceled):
		return Canceled
	case errors.Is(err, errDeadline):
		return DeadlineExceeded
	}
	return Unknown
}

// Is reports whether err carries code.
func Is(err error, code Code) bool { return CodeOf(err) == code }

// HTTPStatus maps a code to its HTTP status. It is the only such mapping.
func HTTPStatus(code Code) int {
	switch code {
	case NotFound:
		return http.StatusNotFound
	case AlreadyExists:
		return http.StatusConflict
	case InvalidArgument:
		return http.StatusBadRequest
	case FailedPrecondition:
		return http.StatusConflict
	case PermissionDenied:
		return http.StatusForbidden
	case Unauthenticated:
		return http.StatusUnauthorized
	case ResourceExhausted:
		return http.StatusTooManyRequests
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	case Unimplemented:
		return http.StatusNotImplemented
	case MethodNotAllowed:
		return http.StatusMethodNotAllowed
	case Unavailable:
		return http.StatusServiceUnavailable
	case Canceled:
		return 499
	case DeadlineExceeded:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// FromHTTPStatus maps an HTTP status back to a code, for clients receiving a
// body without one.
func FromHTTPStatus(status int) Code {
	switch status {
	case http.StatusNotFound:
		return NotFound
	case http.StatusConflict:
		return FailedPrecondition
	case http.StatusBadRequest:
		return InvalidArgument
	case http.StatusForbidden:
		return PermissionDenied
	case http.StatusUnauthorized:
		return Unauthenticated
	case http.StatusTooManyRequests:
		return ResourceExhausted
	case http.StatusRequestEntityTooLarge:
		return TooLarge
	case http.StatusNotImplemented:
		return Unimplemented
	case http.StatusMethodNotAllowed:
		return MethodNotAllowed
	case http.StatusServiceUnavailable:
		return Unavailable
	case http.StatusGatewayTimeout:
		return DeadlineExceeded
	}
	return Internal
}

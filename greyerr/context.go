package greyerr

import "context"

var (
	errCanceled = context.Canceled
	errDeadline = context.DeadlineExceeded
)

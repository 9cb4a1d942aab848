package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/grey-distributed/grey/greyerr"
)

// TestWriteErrorStatusAndRetryAfter pins the error writer: the status comes
// from greyerr.HTTPStatus, 429 and 503 carry Retry-After (at least 1 second,
// rounded up), and every body matches the spec's Error.
func TestWriteErrorStatusAndRetryAfter(t *testing.T) {
	t.Parallel()
	v := newValidator(t)
	s := New(nil, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	tests := []struct {
		name       string
		err        error
		status     int
		code       greyerr.Code
		retryAfter string
		field      string
	}{
		{"unavailable", greyerr.New(greyerr.Unavailable, "not the leader"), 503, greyerr.Unavailable, "1", ""},
		{"unavailable with retry-after", &greyerr.Error{Code: greyerr.Unavailable, Message: "raft is overloaded", RetryAfter: 2500 * time.Millisecond}, 503, greyerr.Unavailable, "3", ""},
		{"unavailable wrapped", fmt.Errorf("submit: %w", &greyerr.Error{Code: greyerr.Unavailable, Message: "shutting down", Err: errors.New("raft is shut down")}), 503, greyerr.Unavailable, "1", ""},
		{"quota", &greyerr.Error{Code: greyerr.ResourceExhausted, Message: "queued quota", Reason: "max_queued", RetryAfter: 10 * time.Second}, 429, greyerr.ResourceExhausted, "10", ""},
		{"quota without retry-after", greyerr.New(greyerr.ResourceExhausted, "rate"), 429, greyerr.ResourceExhausted, "1", ""},
		{"invalid", greyerr.Invalid("priority", "must be between 0 and 10"), 400, greyerr.InvalidArgument, "", "priority"},
		{"too large", &greyerr.Error{Code: greyerr.TooLarge, Message: "payload too big", Field: "payload"}, 413, greyerr.TooLarge, "", "payload"},
		{"not found", greyerr.New(greyerr.NotFound, "task x not found"), 404, greyerr.NotFound, "", ""},
		{"plain error", errors.New("boom"), 500, greyerr.Internal, "", ""},
		{"canceled", context.Canceled, 499, greyerr.Canceled, "", ""},
		{"deadline", context.DeadlineExceeded, 504, greyerr.DeadlineExceeded, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(http.MethodPost, "http://grey.test/api/v1/tasks", nil)
			w := httptest.NewRecorder()
			s.writeError(w, req, tc.err)
			if w.Code != tc.status {
				t.Fatalf("status = %d, want %d", w.Code, tc.status)
			}
			if got := w.Header().Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tc.retryAfter)
			}
			var eb errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil {
				t.Fatalf("decode %s: %v", w.Body, err)
			}
			if eb.Code != string(tc.code) || eb.Field != tc.field || eb.Message == "" {
				t.Errorf("body = %+v, want code %s field %q", eb, tc.code, tc.field)
			}
			if err := v.ValidateResponse(req, w.Code, w.Header(), w.Body.Bytes()); err != nil {
				t.Errorf("response does not match the spec: %v", err)
			}
		})
	}
}

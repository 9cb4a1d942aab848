package mongoarchive

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/grey-distributed/grey/greyerr"
)

func TestClassify(t *testing.T) {
	cmd := func(code int32, msg string, labels ...string) error {
		return mongo.CommandError{Code: code, Message: msg, Labels: labels}
	}
	for _, tc := range []struct {
		name string
		err  error
		want greyerr.Code
	}{
		{"server selection timeout (wraps DeadlineExceeded)", topology.ServerSelectionError{Wrapped: context.DeadlineExceeded}, greyerr.Unavailable},
		{"connection refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), greyerr.Unavailable},
		{"not writable primary", cmd(10107, "not primary"), greyerr.Unavailable},
		{"stepped down", cmd(189, "stepped down"), greyerr.Unavailable},
		{"retryable label", cmd(1, "x", "RetryableWriteError"), greyerr.Unavailable},
		{"duplicate key (racing upserts)", mongo.WriteException{WriteErrors: mongo.WriteErrors{{Code: 11000, Message: "E11000"}}}, greyerr.Unavailable},
		{"write concern timeout", mongo.WriteException{WriteConcernError: &mongo.WriteConcernError{Code: 64, Message: "waiting for replication timed out"}}, greyerr.Unavailable},
		{"unauthorized", cmd(13, "not authorized"), greyerr.PermissionDenied},
		{"auth handshake", errors.New("connection() error occurred during connection handshake: auth error: sasl conversation error"), greyerr.PermissionDenied},
		{"TTL not implemented (FerretDB)", cmd(238, `Index option "expireAfterSeconds" is not implemented yet`), greyerr.Unimplemented},
		{"unsatisfiable write concern", cmd(100, "Not enough data-bearing nodes"), greyerr.FailedPrecondition},
		{"index conflict", cmd(86, "Index with name: tenant_id already exists with a different key"), greyerr.FailedPrecondition},
		{"document too large", cmd(10334, "BSONObj size is invalid"), greyerr.InvalidArgument},
		{"NUL under FerretDB", cmd(1, "ERROR: unsupported Unicode escape sequence (SQLSTATE 22P05)"), greyerr.InvalidArgument},
		{"FerretDB lost PostgreSQL", cmd(1, "FATAL: terminating connection (SQLSTATE 57P01)"), greyerr.Unavailable},
		{"other server error", cmd(1, "boom"), greyerr.Internal},
		{"uncoded", errors.New("boom"), greyerr.Internal},
	} {
		got := classify(context.Background(), tc.err, "op")
		if c := greyerr.CodeOf(got); c != tc.want {
			t.Errorf("%s: %v -> %q, want %q", tc.name, got, c, tc.want)
		}
	}
	// A context that ended wins, and its error is wrapped.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got := classify(ctx, topology.ServerSelectionError{Wrapped: context.Canceled}, "op")
	if !errors.Is(got, context.Canceled) || greyerr.CodeOf(got) != greyerr.Canceled {
		t.Errorf("cancelled: %v (%q)", got, greyerr.CodeOf(got))
	}
	// A coded error passes unchanged; nil stays nil.
	if e := greyerr.New(greyerr.NotFound, "x"); classify(context.Background(), e, "op") != e {
		t.Error("a coded error was wrapped again")
	}
	if classify(context.Background(), nil, "op") != nil {
		t.Error("nil classified")
	}
	// No password in the text.
	got = classify(context.Background(), errors.New("dial mongodb://grey:hunter2@h:1/x: refused"), "op")
	if strings.Contains(got.Error(), "hunter2") {
		t.Errorf("password shown: %v", got)
	}
	if s := redactErr(errors.New("parse uri hunter2 failed"), "mongodb://u:hunter2@h/x"); strings.Contains(s, "hunter2") {
		t.Errorf("redactErr: %s", s)
	}
}

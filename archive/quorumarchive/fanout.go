package quorumarchive

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/telemetry/tracing"
)

// result is one replica's reply to a call.
type result[T any] struct {
	r   *replica
	v   T
	err error
}

// okOnly counts a reply toward a quorum when it succeeded.
func okOnly(err error) bool { return err == nil }

// okOrNotFound counts "not found" as an answer too (a read of a record a
// replica does not hold).
func okOrNotFound(err error) bool { return err == nil || greyerr.Is(err, greyerr.NotFound) }

// fanout calls f on every replica of reps in parallel and returns when
// need of them answered (answered says which replies count), when so many
// failed that need cannot be reached, or when ctx ends. It returns the
// replies it has, and an error when the quorum was not reached.
//
// The calls go on after fanout returns, on a context that keeps ctx's
// values but not its end, for at most Linger: a write reaches the replicas
// that were slower than the quorum. after, when not nil, gets every reply
// once all calls ended (read repair).
func fanout[T any](ctx context.Context, d *Driver, op string, reps []*replica, need int, answered func(error) bool,
	f func(context.Context, *replica) (T, error), after func([]result[T])) ([]result[T], error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if d.closed.Load() {
		return nil, greyerr.New(greyerr.FailedPrecondition, "quorum archive: closed")
	}
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.Linger)
	ch := make(chan result[T], len(reps))
	for _, r := range reps {
		go func() {
			cctx, span := tracing.Start(bg, "archive.quorum."+op, trace.WithAttributes(
				attribute.String("db.operation.name", op),
				attribute.String("grey.archive.replica", r.Name)))
			v, err := f(cctx, r)
			if err != nil && !answered(err) {
				span.SetStatus(codes.Error, err.Error())
			}
			span.End()
			if err != nil && !answered(err) {
				d.replicaFailed(r, op, err)
			} else {
				r.downUntil.Store(0)
			}
			ch <- result[T]{r: r, v: v, err: err}
		}()
	}
	var got []result[T]
	ok, failed := 0, 0
	rest := func() {
		all := got
		for len(all) < len(reps) {
			all = append(all, <-ch)
		}
		cancel()
		if after != nil {
			after(all)
		}
	}
	take := func(x result[T]) {
		got = append(got, x)
		if answered(x.err) {
			ok++
		} else {
			failed++
		}
	}
	for ok < need && len(reps)-failed >= need {
		select {
		case x := <-ch:
			take(x)
		case <-ctx.Done():
			got = append([]result[T](nil), got...)
			go rest()
			return got, ctx.Err()
		}
	}
	// A write waits a moment for the other replicas: when they answer in
	// time (the usual case) every replica has the records when the call
	// returns, and a failure can say where the records went.
	if grace := d.cfg.WriteGrace; isWrite(op) && grace > 0 && len(got) < len(reps) {
		t := time.NewTimer(grace)
	wait:
		for len(got) < len(reps) {
			select {
			case x := <-ch:
				take(x)
			case <-t.C:
				break wait
			case <-ctx.Done():
				break wait
			}
		}
		t.Stop()
	}
	done := append([]result[T](nil), got...)
	go rest()
	if ok >= need {
		return done, nil
	}
	return done, quorumError(d, op, need, len(reps), done, answered)
}

// replicaFailed counts a replica's failure and, when it looks
// unreachable, marks it down for a moment.
func (d *Driver) replicaFailed(r *replica, op string, err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return // the caller left; not the replica's fault
	}
	m := d.m.Load()
	m.replicaErrors.WithLabelValues(m.name, r.Name, op).Inc()
	if greyerr.Is(err, greyerr.Unavailable) {
		r.downUntil.Store(time.Now().Add(downPause).UnixNano())
	}
}

// down reports whether r failed as unreachable a moment ago.
func (r *replica) down() bool { return time.Now().UnixNano() < r.downUntil.Load() }

// quorumError says that op did not reach its quorum: how many replicas
// answered, how many were needed, each failure with its replica, and for
// writes where the records are. Its code is the failures' common code,
// else Unavailable when one of them is (worth retrying), else Internal.
func quorumError[T any](d *Driver, op string, need, n int, got []result[T], answered func(error) bool) error {
	var (
		okNames, fails []string
		codes          = map[greyerr.Code]bool{}
	)
	for _, x := range got {
		if answered(x.err) {
			okNames = append(okNames, x.r.label())
			continue
		}
		fails = append(fails, fmt.Sprintf("%s failed: %v", x.r.label(), x.err))
		codes[greyerr.CodeOf(x.err)] = true
	}
	var b strings.Builder
	level := d.cfg.Read
	if isWrite(op) {
		level = d.cfg.Write
	}
	fmt.Fprintf(&b, "quorum archive %s: %d of %d replicas answered, %d needed (%s)", op, len(okNames), n, need, level)
	for _, f := range fails {
		b.WriteString("; ")
		b.WriteString(f)
	}
	if pending := n - len(got); pending > 0 {
		fmt.Fprintf(&b, "; %d replicas had not answered yet", pending)
	}
	if isWrite(op) {
		if len(okNames) == 0 {
			b.WriteString("; written to no replica")
		} else {
			fmt.Fprintf(&b, "; written to %s (anti-entropy or the same call again completes the others)", strings.Join(okNames, ", "))
		}
	}
	code := greyerr.Internal
	switch {
	case len(codes) == 1:
		for c := range codes {
			code = c
		}
		if code == greyerr.Unknown || code == greyerr.NotFound {
			code = greyerr.Internal
		}
	case codes[greyerr.Unavailable]:
		code = greyerr.Unavailable
	}
	// The message carries every failure, each with its replica.
	return &greyerr.Error{Code: code, Message: b.String()}
}

// isWrite reports whether op changes the replicas.
func isWrite(op string) bool {
	switch op {
	case "upsert", "delete", "delete_before":
		return true
	}
	return false
}

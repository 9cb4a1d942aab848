package worker_test

import (
	"context"
	"testing"

	"github.com/grey-distributed/grey/proof"
	"github.com/grey-distributed/grey/worker"
)

type measured struct{}

func (measured) Work(context.Context, *worker.Job) (any, error) { return nil, nil }
func (measured) Measure(*worker.Job) proof.Executor             { return proof.Executor{Name: "inner"} }

type wrap struct{ h worker.Handler }

func (w wrap) Work(ctx context.Context, j *worker.Job) (any, error) { return w.h.Work(ctx, j) }
func (w wrap) Unwrap() worker.Handler                               { return w.h }

// Middleware does not hide what a handler says about itself.
func TestUnwrappedLooksThroughWrappers(t *testing.T) {
	m, ok := worker.Unwrapped[worker.Measurer](wrap{wrap{measured{}}})
	if !ok || m.Measure(nil).Name != "inner" {
		t.Fatalf("Measurer through two wrappers: %v %v", m, ok)
	}
	if _, ok := worker.Unwrapped[worker.Deterministic](wrap{measured{}}); ok {
		t.Fatal("found a Deterministic that is not there")
	}
	if _, ok := worker.Unwrapped[worker.Measurer](worker.HandlerFunc(func(context.Context, *worker.Job) (any, error) { return nil, nil })); ok {
		t.Fatal("a plain HandlerFunc is no Measurer")
	}
}

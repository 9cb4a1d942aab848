package runtimetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/greyerr"
)

// infer runs rows as one batch and checks the outputs against the
// expected ones.
func (s *suite) inferRows(t testing.TB, rt *ai.Runtime, key string, rows []row) []ai.Tensor {
	t.Helper()
	in, want := stack(t, rows)
	got, err := rt.Infer(ctx(t), key, in, nil)
	if err != nil {
		t.Fatalf("infer a batch of %d: %v", len(rows), err)
	}
	if d := compare(got, want, s.h.Model.Tolerance); d != "" {
		t.Errorf("infer a batch of %d: %s", len(rows), d)
	}
	return got
}

func (s *suite) testInfo(t *testing.T) {
	rt := s.open(t)
	info, err := rt.Info(ctx(t))
	if err != nil {
		t.Fatalf("info: %v", err)
	}
	if info.Name == "" || info.Version == "" {
		t.Errorf("info names no runtime or version: %+v", info)
	}
	if len(info.Frameworks) == 0 {
		t.Errorf("info lists no framework: %+v", info)
	}
	for f := range info.Frameworks {
		if !f.Valid() {
			t.Errorf("info lists framework %q, not one Grey serves", f)
		}
	}
	if len(info.Devices) == 0 {
		t.Errorf("info lists no device: %+v", info)
	}
	if _, ok := info.Frameworks[s.h.Model.Spec.Model.Framework]; !ok {
		t.Errorf("info lists %v, not the framework of the harness's model (%s)", info.Frameworks, s.h.Model.Spec.Model.Framework)
	}
	again, err := rt.Info(ctx(t))
	if err != nil || again.Name != info.Name || again.Version != info.Version {
		t.Errorf("info twice: %+v then %+v (%v)", info, again, err)
	}
}

func (s *suite) testLoadIdempotent(t *testing.T) {
	rt := s.open(t)
	spec := s.h.Model.Spec
	spec.Key = "conformance-idempotent"
	first, err := rt.Load(ctx(t), spec)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if first.Device == "" {
		t.Errorf("load names no device: %+v", first)
	}
	second, err := rt.Load(ctx(t), spec)
	if err != nil {
		t.Fatalf("load twice: %v", err)
	}
	if second.Device != first.Device {
		t.Errorf("load twice: device %q, then %q", first.Device, second.Device)
	}
	// The same model under a second key is a second, independent load.
	other := s.load(t, rt, ai.LoadSpec{})
	rows := s.rows(t, 2, 1)
	s.inferRows(t, rt, spec.Key, rows)
	s.inferRows(t, rt, other, rows)
	if err := rt.Unload(ctx(t), other); err != nil {
		t.Fatalf("unload: %v", err)
	}
	s.inferRows(t, rt, spec.Key, rows)
}

func (s *suite) testOneRow(t *testing.T) {
	rt := s.open(t)
	key := s.load(t, rt, ai.LoadSpec{})
	for i, r := range s.rows(t, 4, 2) {
		got, err := rt.Infer(ctx(t), key, r.in, nil)
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if d := compare(got, r.out, s.h.Model.Tolerance); d != "" {
			t.Errorf("row %d: %s", i, d)
		}
	}
}

func (s *suite) testBatch(t *testing.T) {
	rt := s.open(t)
	key := s.load(t, rt, ai.LoadSpec{})
	s.inferRows(t, rt, key, s.rows(t, s.h.MaxRows, 3))
	s.inferRows(t, rt, key, s.rows(t, 3, 4))
}

// The property batching relies on: a row's outputs in a batch are its
// outputs run alone.
func (s *suite) testBatchEqualsRows(t *testing.T) {
	rt := s.open(t)
	key := s.load(t, rt, ai.LoadSpec{})
	rows := s.rows(t, s.h.MaxRows, 5)
	in, _ := stack(t, rows)
	batch, err := rt.Infer(ctx(t), key, in, nil)
	if err != nil {
		t.Fatalf("infer the batch: %v", err)
	}
	ones := make([]int64, len(rows))
	for i := range ones {
		ones[i] = 1
	}
	parts, err := ai.Split(batch, ones)
	if err != nil {
		t.Fatalf("split the batch's outputs: %v", err)
	}
	for i, r := range rows {
		alone, err := rt.Infer(ctx(t), key, r.in, nil)
		if err != nil {
			t.Fatalf("row %d alone: %v", i, err)
		}
		if d := compare(parts[i], alone, s.rowTol()); d != "" {
			t.Errorf("row %d in a batch of %d differs from the row alone: %s", i, len(rows), d)
		}
	}
}

func (s *suite) testRequestedOutputs(t *testing.T) {
	rt := s.open(t)
	key := s.load(t, rt, ai.LoadSpec{})
	rows := s.rows(t, 3, 6)
	in, want := stack(t, rows)
	for _, name := range s.h.Model.Outputs {
		got, err := rt.Infer(ctx(t), key, in, []string{name})
		if err != nil {
			t.Fatalf("infer asking for %q: %v", name, err)
		}
		w := slices.IndexFunc(want, func(x ai.Tensor) bool { return x.Name == name })
		if w < 0 {
			t.Fatalf("runtimetest: the expected outputs hold no %q", name)
		}
		if d := compare(got, want[w:w+1], s.h.Model.Tolerance); d != "" {
			t.Errorf("asking for %q: %s", name, d)
		}
	}
	all := slices.Clone(s.h.Model.Outputs)
	slices.Reverse(all)
	got, err := rt.Infer(ctx(t), key, in, all)
	if err != nil {
		t.Fatalf("infer asking for every output: %v", err)
	}
	if d := compare(got, want, s.h.Model.Tolerance); d != "" {
		t.Errorf("asking for every output: %s", d)
	}
	_, err = rt.Infer(ctx(t), key, in, []string{"conformance_no_such_output"})
	wantCode(t, "asking for an output the model lacks", err, greyerr.InvalidArgument)
}

func (s *suite) testConcurrent(t *testing.T) {
	rt := s.open(t)
	key := s.load(t, rt, ai.LoadSpec{})
	const workers, calls = 8, 4
	var wg sync.WaitGroup
	errs := make(chan string, workers*calls)
	for w := 0; w < workers; w++ {
		rows := s.rows(t, 1+w%3, int64(100+w))
		in, want := stack(t, rows)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := 0; c < calls; c++ {
				got, err := rt.Infer(ctx(t), key, in, nil)
				if err != nil {
					errs <- fmt.Sprintf("worker %d call %d: %v", w, c, err)
					return
				}
				if d := compare(got, want, s.h.Model.Tolerance); d != "" {
					errs <- fmt.Sprintf("worker %d call %d: %s", w, c, d)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func (s *suite) testUnknownKey(t *testing.T) {
	rt := s.open(t)
	s.load(t, rt, ai.LoadSpec{})
	in, _ := stack(t, s.rows(t, 1, 7))
	_, err := rt.Infer(ctx(t), "conformance-no-such-key", in, nil)
	wantCode(t, "infer under a key never loaded", err, greyerr.NotFound)
}

func (s *suite) testUnload(t *testing.T) {
	rt := s.open(t)
	key := s.load(t, rt, ai.LoadSpec{})
	rows := s.rows(t, 2, 8)
	s.inferRows(t, rt, key, rows)
	if err := rt.Unload(ctx(t), key); err != nil {
		t.Fatalf("unload: %v", err)
	}
	in, _ := stack(t, rows)
	_, err := rt.Infer(ctx(t), key, in, nil)
	wantCode(t, "infer after unload", err, greyerr.NotFound)
	if err := rt.Unload(ctx(t), key); err != nil {
		t.Errorf("unload twice: %v, want a no-op", err)
	}
	if err := rt.Unload(ctx(t), "conformance-never-loaded"); err != nil {
		t.Errorf("unload of a key never loaded: %v, want a no-op", err)
	}
	// Loading again after an unload serves again.
	spec := s.h.Model.Spec
	spec.Key = key
	if _, err := rt.Load(ctx(t), spec); err != nil {
		t.Fatalf("load after unload: %v", err)
	}
	s.inferRows(t, rt, key, rows)
}

// mutate runs the batch with input 0 changed by f, wanting InvalidArgument,
// then checks the driver still serves the batch as it is.
func (s *suite) mutate(t *testing.T, what string, f func(in []ai.Tensor) []ai.Tensor) {
	rt := s.open(t)
	key := s.load(t, rt, ai.LoadSpec{})
	rows := s.rows(t, 2, 9)
	in, _ := stack(t, rows)
	bad := f(clone(in))
	_, err := rt.Infer(ctx(t), key, bad, nil)
	wantCode(t, what, err, greyerr.InvalidArgument)
	s.inferRows(t, rt, key, rows)
}

func clone(in []ai.Tensor) []ai.Tensor {
	out := make([]ai.Tensor, len(in))
	for i, x := range in {
		out[i] = ai.Tensor{Name: x.Name, Datatype: x.Datatype, Shape: slices.Clone(x.Shape), Data: slices.Clone(x.Data)}
	}
	return out
}

func (s *suite) testWrongShape(t *testing.T) {
	s.mutate(t, "an input with one more element in its last dimension", func(in []ai.Tensor) []ai.Tensor {
		x := &in[0]
		if len(x.Shape) == 1 {
			x.Shape = append(x.Shape, 2)
		} else {
			x.Shape[len(x.Shape)-1]++
		}
		n, _ := ai.Elements(x.Shape, "shape")
		x.Data = make([]byte, n*int64(x.Datatype.Size()))
		return in
	})
	s.mutate(t, "an input with one dimension more", func(in []ai.Tensor) []ai.Tensor {
		in[0].Shape = append(in[0].Shape, 1)
		return in
	})
}

func (s *suite) testWrongDatatype(t *testing.T) {
	s.mutate(t, "an input of another datatype", func(in []ai.Tensor) []ai.Tensor {
		x := &in[0]
		other := map[ai.Datatype]ai.Datatype{
			ai.FP32: ai.Int32, ai.Int32: ai.FP32, ai.FP64: ai.Int64, ai.Int64: ai.FP64,
			ai.Uint32: ai.FP32, ai.Uint64: ai.FP64, ai.Int16: ai.Uint16, ai.Uint16: ai.Int16,
			ai.Int8: ai.Bool, ai.Uint8: ai.Bool, ai.Bool: ai.Uint8,
		}[x.Datatype]
		x.Datatype = other
		if other == ai.Bool {
			for i := range x.Data {
				x.Data[i] &= 1
			}
		}
		return in
	})
}

func (s *suite) testWrongName(t *testing.T) {
	s.mutate(t, "an input under a name the model lacks", func(in []ai.Tensor) []ai.Tensor {
		in[0].Name = "conformance_no_such_input"
		return in
	})
	s.mutate(t, "an extra input", func(in []ai.Tensor) []ai.Tensor {
		extra := in[0]
		extra.Name = "conformance_extra_input"
		return append(in, extra)
	})
	if len(s.h.Model.Inputs) > 1 {
		s.mutate(t, "an input missing", func(in []ai.Tensor) []ai.Tensor { return in[1:] })
	}
}

func (s *suite) testCancelled(t *testing.T) {
	rt := s.open(t)
	key := s.load(t, rt, ai.LoadSpec{})
	rows := s.rows(t, 2, 10)
	in, _ := stack(t, rows)
	c, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	_, err := rt.Infer(c, key, in, nil)
	if !isCtxErr(err) {
		t.Errorf("infer with a cancelled context: got %v, want the context's error", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("infer with a cancelled context took %v", took)
	}
	s.inferRows(t, rt, key, rows)
}

// A model that hangs returns when the call's context ends, and the runtime
// keeps serving.
func (s *suite) testHang(t *testing.T) {
	if s.h.Hanging == nil {
		t.Skip("the harness has no hanging model")
	}
	rt := s.open(t)
	key := s.load(t, rt, s.h.Hanging.Spec)
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want greyerr.Code
	}{
		{"cancel", func() (context.Context, context.CancelFunc) {
			c, cancel := context.WithCancel(context.Background())
			time.AfterFunc(300*time.Millisecond, cancel)
			return c, cancel
		}, greyerr.Canceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 300*time.Millisecond)
		}, greyerr.DeadlineExceeded},
	} {
		c, cancel := tc.ctx()
		start := time.Now()
		_, err := rt.Infer(c, key, s.h.Hanging.Inputs, nil)
		took := time.Since(start)
		cancel()
		if !isCtxErr(err) {
			t.Errorf("%s: a hanging model answered %v, want the context's error", tc.name, err)
		}
		if took > 10*time.Second {
			t.Errorf("%s: a hanging model returned %v after its context ended", tc.name, took)
		}
	}
	// Whatever the runtime had to do to stop the hanging call (restart a
	// process), it serves the model again.
	rows := s.rows(t, 2, 11)
	mkey := s.load(t, rt, ai.LoadSpec{})
	in, want := stack(t, rows)
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := rt.Infer(ctx(t), mkey, in, nil)
		if err == nil {
			if d := compare(got, want, s.h.Model.Tolerance); d != "" {
				t.Errorf("after a hanging call: %s", d)
			}
			return
		}
		if !greyerr.Is(err, greyerr.Unavailable) || time.Now().After(deadline) {
			t.Fatalf("after a hanging call the runtime does not serve: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *suite) testRaise(t *testing.T) {
	if s.h.Raising == nil {
		t.Skip("the harness has no raising model")
	}
	rt := s.open(t)
	key := s.load(t, rt, s.h.Raising.Spec)
	_, err := rt.Infer(ctx(t), key, s.h.Raising.Inputs, nil)
	switch greyerr.CodeOf(err) {
	case "", greyerr.InvalidArgument, greyerr.NotFound, greyerr.Unavailable, greyerr.Canceled, greyerr.DeadlineExceeded:
		t.Errorf("a model that raised: got %v (code %q), want ai.ErrModel or another code that does not retry", err, greyerr.CodeOf(err))
	}
	if err != nil && !errorsIsModel(err) {
		t.Logf("a model that raised answers %v: not ai.ErrModel, but a code that does not retry", err)
	}
	mkey := s.load(t, rt, ai.LoadSpec{})
	s.inferRows(t, rt, mkey, s.rows(t, 2, 12))
	// The same key serves valid inputs after a raise.
	if s.h.Raising.Spec.Model.Name == "" {
		s.inferRows(t, rt, key, s.rows(t, 2, 13))
	}
}

func (s *suite) testNotAModel(t *testing.T) {
	if s.h.NotAModel == nil {
		t.Skip("the harness has no artifact that is not a model")
	}
	rt := s.open(t)
	spec := *s.h.NotAModel
	spec.Key = "conformance-not-a-model"
	_, err := rt.Load(ctx(t), spec)
	wantCode(t, "load of an artifact that is not a model", err, greyerr.FailedPrecondition)
	in, _ := stack(t, s.rows(t, 1, 14))
	_, err = rt.Infer(ctx(t), spec.Key, in, nil)
	wantCode(t, "infer under a key whose load failed", err, greyerr.NotFound)
	key := s.load(t, rt, ai.LoadSpec{})
	s.inferRows(t, rt, key, s.rows(t, 2, 15))
}

// Close runs last, on the driver every behaviour used.
func (s *suite) testClose(t *testing.T) {
	rt := s.open(t)
	key := s.load(t, rt, ai.LoadSpec{})
	rows := s.rows(t, 2, 16)
	s.inferRows(t, rt, key, rows)
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	if err := rt.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	in, _ := stack(t, rows)
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := rt.Infer(c, key, in, nil); err == nil {
		t.Errorf("infer after close succeeded")
	}
	_ = rt.Close() // a second close must not panic; its error is the driver's choice
}

package batch_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/batch"
	"github.com/grey-distributed/grey/greyerr"
)

// fakeDriver serves one model: for an FP32 input "x" of shape [n, k] it
// answers "y" = 2x+1 (shape [n, k]) and "s" = the row sums (shape [n, 1]).
// It runs one call at a time, costing fixed + perRow × rows, counts calls
// and rows per call, and fails calls on demand.
type fakeDriver struct {
	fixed, perRow time.Duration
	block         bool // calls wait for their context to end

	mu       sync.Mutex // one call at a time, like one runtime process
	calls    atomic.Int64
	rows     []int64
	rowsMu   sync.Mutex
	failNext atomic.Pointer[error]
	sawDone  atomic.Bool
	gate     chan struct{} // if set, calls wait for it to close
}

func (d *fakeDriver) Info(context.Context) (ai.RuntimeInfo, error) {
	return ai.RuntimeInfo{Name: "fake", Version: "1", Frameworks: map[ai.Framework]string{ai.PyTorch: "0"}, Devices: []string{"cpu"}}, nil
}
func (d *fakeDriver) Load(context.Context, ai.LoadSpec) (ai.LoadInfo, error) {
	return ai.LoadInfo{Device: "cpu"}, nil
}
func (d *fakeDriver) Unload(context.Context, string) error { return nil }
func (d *fakeDriver) Close() error                         { return nil }

func (d *fakeDriver) Infer(ctx context.Context, key string, in []ai.Tensor, names []string) ([]ai.Tensor, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls.Add(1)
	n := in[0].Shape[0]
	d.rowsMu.Lock()
	d.rows = append(d.rows, n)
	d.rowsMu.Unlock()
	if d.gate != nil {
		<-d.gate
	}
	if d.block {
		<-ctx.Done()
		d.sawDone.Store(true)
		return nil, ctx.Err()
	}
	if e := d.failNext.Swap(nil); e != nil {
		return nil, *e
	}
	if c := d.fixed + time.Duration(n)*d.perRow; c > 0 {
		time.Sleep(c)
	}
	return compute(in[0]), nil
}

func (d *fakeDriver) rowsPerCall() []int64 {
	d.rowsMu.Lock()
	defer d.rowsMu.Unlock()
	return append([]int64(nil), d.rows...)
}

// compute is the model, run on x directly.
func compute(x ai.Tensor) []ai.Tensor {
	n, k := x.Shape[0], x.Shape[1]
	y := make([]byte, len(x.Data))
	s := make([]byte, 4*n)
	for r := int64(0); r < n; r++ {
		var sum float32
		for c := int64(0); c < k; c++ {
			off := 4 * (r*k + c)
			v := math.Float32frombits(binary.LittleEndian.Uint32(x.Data[off:]))
			binary.LittleEndian.PutUint32(y[off:], math.Float32bits(2*v+1))
			sum += v
		}
		binary.LittleEndian.PutUint32(s[4*r:], math.Float32bits(sum))
	}
	return []ai.Tensor{
		{Name: "y", Datatype: ai.FP32, Shape: []int64{n, k}, Data: y},
		{Name: "s", Datatype: ai.FP32, Shape: []int64{n, 1}, Data: s},
	}
}

func input(rng *rand.Rand, rows, k int64) []ai.Tensor {
	data := make([]byte, 4*rows*k)
	for i := int64(0); i < rows*k; i++ {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(rng.Float32()*100-50))
	}
	return []ai.Tensor{{Name: "x", Datatype: ai.FP32, Shape: []int64{rows, k}, Data: data}}
}

func equal(t *testing.T, got, want []ai.Tensor) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d outputs, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.Datatype != w.Datatype || fmt.Sprint(g.Shape) != fmt.Sprint(w.Shape) || string(g.Data) != string(w.Data) {
			t.Fatalf("output %d: got %s %v %v, want %s %v %v", i, g.Name, g.Shape, g.Data, w.Name, w.Shape, w.Data)
		}
	}
}

// TestBatchedEqualsUnbatched is the property: whatever the batching, each
// request gets exactly the outputs of the model run on its inputs alone.
func TestBatchedEqualsUnbatched(t *testing.T) {
	drv := &fakeDriver{}
	rt := ai.NewRuntime("fake", drv)
	var observed atomic.Int64
	b := batch.New(batch.Options{Observe: func(s batch.Stats) {
		observed.Add(int64(s.Requests))
		if s.Rows > 8 {
			t.Errorf("a call ran %d rows, more than max_batch_size 8", s.Rows)
		}
	}})
	cfg := batch.Config{MaxBatchSize: 8, MaxQueueDelay: 5 * time.Millisecond}
	const n = 300
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			rows := 1 + rng.Int64N(4)
			if i%17 == 0 {
				rows = 8 // a request that fills a batch alone
			}
			in := input(rng, rows, 3)
			out, err := b.Infer(context.Background(), rt, "m", cfg, in, nil)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			equal(t, out, compute(in[0]))
		}()
	}
	wg.Wait()
	if c := drv.calls.Load(); c >= n {
		t.Errorf("%d calls for %d concurrent requests: nothing was batched", c, n)
	}
	if observed.Load() != n {
		t.Errorf("observed %d requests, want %d", observed.Load(), n)
	}
	t.Logf("%d requests in %d calls", n, drv.calls.Load())
}

func TestFullBatchGoesAtOnce(t *testing.T) {
	drv := &fakeDriver{}
	rt := ai.NewRuntime("fake", drv)
	b := batch.New(batch.Options{})
	// A delay far past the test's patience: only a full batch can go.
	cfg := batch.Config{MaxBatchSize: 4, MaxQueueDelay: time.Hour}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := input(rand.New(rand.NewPCG(uint64(i), 1)), 1, 2)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := b.Infer(ctx, rt, "m", cfg, in, nil)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			equal(t, out, compute(in[0]))
		}()
	}
	wg.Wait()
	if got := drv.rowsPerCall(); len(got) != 1 || got[0] != 4 {
		t.Fatalf("rows per call %v, want one call of 4", got)
	}
}

func TestQueueDelayGathersLateRequests(t *testing.T) {
	drv := &fakeDriver{}
	rt := ai.NewRuntime("fake", drv)
	b := batch.New(batch.Options{})
	cfg := batch.Config{MaxBatchSize: 16, MaxQueueDelay: 300 * time.Millisecond}
	rng := rand.New(rand.NewPCG(1, 2))
	var wg sync.WaitGroup
	for i := range 3 {
		in := input(rng, 2, 2)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := b.Infer(context.Background(), rt, "m", cfg, in, nil); err != nil {
				t.Error(err)
			}
		}()
		if i == 0 {
			time.Sleep(20 * time.Millisecond) // the first leads and waits
		}
	}
	wg.Wait()
	if got := drv.rowsPerCall(); len(got) != 1 || got[0] != 6 {
		t.Fatalf("rows per call %v, want one call of 6", got)
	}
}

func TestNoBatching(t *testing.T) {
	drv := &fakeDriver{}
	rt := ai.NewRuntime("fake", drv)
	b := batch.New(batch.Options{})
	cfg := batch.Config{MaxBatchSize: 1, MaxQueueDelay: time.Hour}
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := b.Infer(context.Background(), rt, "m", cfg, input(rand.New(rand.NewPCG(uint64(i), 0)), 1, 2), nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if c := drv.calls.Load(); c != 5 {
		t.Fatalf("%d calls, want 5 with max_batch_size 1", c)
	}
}

// TestUnstackableRunsAlone: a request whose inputs differ past the batch
// dimension does not join the forming batch, nor wait for it.
func TestUnstackableRunsAlone(t *testing.T) {
	drv := &fakeDriver{}
	rt := ai.NewRuntime("fake", drv)
	b := batch.New(batch.Options{})
	cfg := batch.Config{MaxBatchSize: 8, MaxQueueDelay: 400 * time.Millisecond}
	rng := rand.New(rand.NewPCG(3, 4))
	first := input(rng, 1, 3)
	done := make(chan error, 1)
	go func() {
		_, err := b.Infer(context.Background(), rt, "m", cfg, first, nil)
		done <- err
	}()
	time.Sleep(30 * time.Millisecond)
	other := input(rng, 2, 5) // another shape past the batch dimension
	out, err := b.Infer(context.Background(), rt, "m", cfg, other, nil)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, out, compute(other[0]))
	select {
	case <-done:
		t.Fatal("the forming batch ran before its delay: the odd request must not seal it")
	default:
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := drv.rowsPerCall()
	if len(got) != 2 || got[0] != 2 || got[1] != 1 {
		t.Fatalf("rows per call %v, want [2 1] (the odd one alone, then the batch)", got)
	}
	// Another set of outputs asked for does not stack either.
	if _, err := b.Infer(context.Background(), rt, "m", batch.Config{MaxBatchSize: 8}, first, []string{"y"}); err != nil {
		t.Fatal(err)
	}
}

func TestTooLargeRunsAlone(t *testing.T) {
	drv := &fakeDriver{}
	rt := ai.NewRuntime("fake", drv)
	b := batch.New(batch.Options{})
	in := input(rand.New(rand.NewPCG(5, 6)), 10, 2)
	out, err := b.Infer(context.Background(), rt, "m", batch.Config{MaxBatchSize: 4, MaxQueueDelay: time.Hour}, in, nil)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, out, compute(in[0]))
	if got := drv.rowsPerCall(); len(got) != 1 || got[0] != 10 {
		t.Fatalf("rows per call %v, want one call of 10", got)
	}
}

func TestBadInputs(t *testing.T) {
	rt := ai.NewRuntime("fake", &fakeDriver{})
	b := batch.New(batch.Options{})
	cfg := batch.Config{MaxBatchSize: 4}
	x := input(rand.New(rand.NewPCG(1, 1)), 2, 2)[0]
	short := x
	short.Data = short.Data[:4]
	other := x
	other.Name, other.Shape = "z", []int64{3, 2}
	other.Data = make([]byte, 24)
	for name, in := range map[string][]ai.Tensor{
		"none":            nil,
		"data too short":  {short},
		"batch dims vary": {x, other},
		"bad datatype":    {{Name: "x", Datatype: "BF16", Shape: []int64{1}, Data: []byte{0, 0}}},
	} {
		_, err := b.Infer(context.Background(), rt, "m", cfg, in, nil)
		if !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Errorf("%s: got %v, want InvalidArgument", name, err)
		}
	}
}

// gather starts n one-row requests that land in one batch (a full one)
// and returns their errors.
func gather(t *testing.T, b *batch.Batcher, rt *ai.Runtime, n int) []error {
	t.Helper()
	cfg := batch.Config{MaxBatchSize: n, MaxQueueDelay: time.Hour}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, errs[i] = b.Infer(ctx, rt, "m", cfg, input(rand.New(rand.NewPCG(uint64(i), 9)), 1, 2), nil)
		}()
	}
	wg.Wait()
	return errs
}

func TestFailedBatchFailsEveryMember(t *testing.T) {
	drv := &fakeDriver{}
	rt := ai.NewRuntime("fake", drv)
	b := batch.New(batch.Options{})
	e := fmt.Errorf("layer 3: %w", ai.ErrModel)
	drv.failNext.Store(&e)
	for i, err := range gather(t, b, rt, 4) {
		if !errors.Is(err, ai.ErrModel) {
			t.Errorf("member %d: got %v, want the model's error", i, err)
		}
	}
	if c := drv.calls.Load(); c != 1 {
		t.Fatalf("%d calls, want 1", c)
	}
}

// TestCrashMidBatch: the runtime dies during a batch; every member fails
// Unavailable (so every task is retried) and the batcher keeps serving.
func TestCrashMidBatch(t *testing.T) {
	drv := &fakeDriver{}
	rt := ai.NewRuntime("fake", drv)
	b := batch.New(batch.Options{})
	var e error = greyerr.New(greyerr.Unavailable, "runtime process exited (signal: killed)")
	drv.failNext.Store(&e)
	for i, err := range gather(t, b, rt, 5) {
		if !greyerr.Is(err, greyerr.Unavailable) {
			t.Errorf("member %d: got %v, want Unavailable", i, err)
		}
	}
	for i, err := range gather(t, b, rt, 5) {
		if err != nil {
			t.Errorf("after the crash, member %d: %v", i, err)
		}
	}
	if got := drv.rowsPerCall(); len(got) != 2 || got[0] != 5 || got[1] != 5 {
		t.Fatalf("rows per call %v, want [5 5]", got)
	}
}

// TestMemberLeavesBeforeRun: a request whose context ends while its batch
// forms leaves it: it returns at once and its rows are not run.
func TestMemberLeavesBeforeRun(t *testing.T) {
	drv := &fakeDriver{}
	rt := ai.NewRuntime("fake", drv)
	b := batch.New(batch.Options{})
	cfg := batch.Config{MaxBatchSize: 8, MaxQueueDelay: 300 * time.Millisecond}
	rng := rand.New(rand.NewPCG(8, 8))
	leader := input(rng, 1, 2)
	done := make(chan error, 1)
	go func() {
		out, err := b.Infer(context.Background(), rt, "m", cfg, leader, nil)
		if err == nil && string(out[0].Data) != string(compute(leader[0])[0].Data) {
			err = errors.New("wrong outputs")
		}
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	start := time.Now()
	_, err := b.Infer(ctx, rt, "m", cfg, input(rng, 3, 2), nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled member got %v", err)
	}
	if time.Since(start) > 250*time.Millisecond {
		t.Errorf("the cancelled member waited for the batch (%v)", time.Since(start))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := drv.rowsPerCall(); len(got) != 1 || got[0] != 1 {
		t.Fatalf("rows per call %v, want one call of the leader's 1 row", got)
	}
}

// TestCallCancelledWhenAllLeave: a running call is cancelled once every
// member's context has ended, and not before.
func TestCallCancelledWhenAllLeave(t *testing.T) {
	drv := &fakeDriver{block: true}
	rt := ai.NewRuntime("fake", drv)
	b := batch.New(batch.Options{})
	cfg := batch.Config{MaxBatchSize: 2, MaxQueueDelay: time.Hour}
	ctxs := make([]context.CancelFunc, 2)
	errs := make(chan error, 2)
	for i := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		ctxs[i] = cancel
		go func() {
			_, err := b.Infer(ctx, rt, "m", cfg, input(rand.New(rand.NewPCG(uint64(i), 3)), 1, 2), nil)
			errs <- err
		}()
	}
	for drv.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctxs[1]()
	time.Sleep(50 * time.Millisecond)
	if drv.sawDone.Load() {
		t.Fatal("the call was cancelled while a member still waited")
	}
	ctxs[0]()
	for range 2 {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	}
	if !drv.sawDone.Load() {
		t.Fatal("the call was not cancelled after every member left")
	}
}

// TestDeadlineOfCall: the call's deadline is the latest of its members'.
func TestDeadlineOfCall(t *testing.T) {
	var deadline atomic.Pointer[time.Time]
	drv := &deadlineDriver{fakeDriver: &fakeDriver{}, seen: &deadline}
	rt := ai.NewRuntime("fake", drv)
	b := batch.New(batch.Options{})
	cfg := batch.Config{MaxBatchSize: 2, MaxQueueDelay: time.Hour}
	late := time.Now().Add(time.Hour)
	var wg sync.WaitGroup
	for i, d := range []time.Time{time.Now().Add(time.Minute), late} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithDeadline(context.Background(), d)
			defer cancel()
			if _, err := b.Infer(ctx, rt, "m", cfg, input(rand.New(rand.NewPCG(uint64(i), 3)), 1, 2), nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := deadline.Load(); got == nil || !got.Equal(late) {
		t.Fatalf("call deadline %v, want the latest member's %v", got, late)
	}
}

type deadlineDriver struct {
	*fakeDriver
	seen *atomic.Pointer[time.Time]
}

func (d *deadlineDriver) Infer(ctx context.Context, key string, in []ai.Tensor, names []string) ([]ai.Tensor, error) {
	if dl, ok := ctx.Deadline(); ok {
		d.seen.Store(&dl)
	}
	return d.fakeDriver.Infer(ctx, key, in, names)
}

// BenchmarkBatching measures requests/s through a runtime that runs one
// call at a time at a cost of fixed + 20µs per row, with 64 requests in
// flight: batched (max_batch_size 32, max_queue_delay 2ms) against
// unbatched (1), for a call cheaper and dearer than the queue delay.
func BenchmarkBatching(b *testing.B) {
	for _, c := range []struct {
		size  int
		fixed time.Duration
	}{{1, time.Millisecond}, {32, time.Millisecond}, {1, 5 * time.Millisecond}, {32, 5 * time.Millisecond}} {
		size := c.size
		b.Run(fmt.Sprintf("call=%v/max_batch_size=%d", c.fixed, size), func(b *testing.B) {
			drv := &fakeDriver{fixed: c.fixed, perRow: 20 * time.Microsecond}
			rt := ai.NewRuntime("fake", drv)
			bt := batch.New(batch.Options{})
			cfg := batch.Config{MaxBatchSize: size, MaxQueueDelay: 2 * time.Millisecond}
			in := input(rand.New(rand.NewPCG(1, 1)), 1, 16)
			b.SetParallelism(64)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := bt.Infer(context.Background(), rt, "m", cfg, in, nil); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
			b.ReportMetric(float64(b.N)/float64(drv.calls.Load()), "rows/call")
		})
	}
}

// TestBatchFillsWhileRuntimeBusy: while a batched call runs, the next
// batch stays open past its delay and takes every request that arrives,
// then goes when the call ends.
func TestBatchFillsWhileRuntimeBusy(t *testing.T) {
	drv := &fakeDriver{gate: make(chan struct{})}
	rt := ai.NewRuntime("fake", drv)
	b := batch.New(batch.Options{})
	cfg := batch.Config{MaxBatchSize: 8, MaxQueueDelay: 2 * time.Millisecond}
	rng := rand.New(rand.NewPCG(4, 4))
	var wg sync.WaitGroup
	start := func() {
		in := input(rng, 1, 2)
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := b.Infer(context.Background(), rt, "m", cfg, in, nil)
			if err != nil {
				t.Error(err)
				return
			}
			equal(t, out, compute(in[0]))
		}()
	}
	start()
	for drv.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	for range 5 {
		start()
		time.Sleep(10 * time.Millisecond) // far past the queue delay
	}
	close(drv.gate)
	wg.Wait()
	if got := drv.rowsPerCall(); len(got) != 2 || got[0] != 1 || got[1] != 5 {
		t.Fatalf("rows per call %v, want [1 5]", got)
	}
}

// TestLeaderLeavesWhileWaiting: a leader whose context ends while its
// batch waits for the busy runtime leaves it; the batch still runs for
// the member that stayed.
func TestLeaderLeavesWhileWaiting(t *testing.T) {
	drv := &fakeDriver{gate: make(chan struct{})}
	rt := ai.NewRuntime("fake", drv)
	b := batch.New(batch.Options{})
	cfg := batch.Config{MaxBatchSize: 8, MaxQueueDelay: time.Millisecond}
	rng := rand.New(rand.NewPCG(6, 6))
	first := make(chan error, 1)
	go func() {
		_, err := b.Infer(context.Background(), rt, "m", cfg, input(rng, 1, 2), nil)
		first <- err
	}()
	for drv.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	leader := make(chan error, 1)
	go func() {
		_, err := b.Infer(ctx, rt, "m", cfg, input(rand.New(rand.NewPCG(7, 7)), 2, 2), nil)
		leader <- err
	}()
	time.Sleep(20 * time.Millisecond)
	stay := input(rand.New(rand.NewPCG(8, 8)), 3, 2)
	stayed := make(chan error, 1)
	go func() {
		out, err := b.Infer(context.Background(), rt, "m", cfg, stay, nil)
		if err == nil && string(out[0].Data) != string(compute(stay[0])[0].Data) {
			err = errors.New("wrong outputs")
		}
		stayed <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	time.Sleep(20 * time.Millisecond)
	close(drv.gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-stayed; err != nil {
		t.Fatal(err)
	}
	if err := <-leader; !errors.Is(err, context.Canceled) {
		t.Fatalf("the leader got %v", err)
	}
	if got := drv.rowsPerCall(); len(got) != 2 || got[0] != 1 || got[1] != 3 {
		t.Fatalf("rows per call %v, want [1 3] (the leader's 2 rows left)", got)
	}
}

// InferRows names the rows of the call a request ran in; with PadRows a
// request runs alone, padded with zero rows to that many, and gets back
// its own rows, equal to the model run on them.
func TestRowsAndPadding(t *testing.T) {
	drv := &fakeDriver{}
	rt := ai.NewRuntime("fake", drv)
	b := batch.New(batch.Options{})
	in := input(rand.New(rand.NewPCG(3, 3)), 2, 3)

	out, rows, err := b.InferRows(context.Background(), rt, "m", batch.Config{PadRows: 7, MaxBatchSize: 32, MaxQueueDelay: time.Hour}, in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rows != 7 {
		t.Fatalf("padded call ran %d rows, want 7", rows)
	}
	equal(t, out, compute(in[0]))
	if got := drv.rowsPerCall(); len(got) != 1 || got[0] != 7 {
		t.Fatalf("runtime calls ran %v rows, want one call of 7", got)
	}

	// Batched: every member learns the call's row count.
	cfg := batch.Config{MaxBatchSize: 4, MaxQueueDelay: time.Hour}
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, rows, err := b.InferRows(context.Background(), rt, "m", cfg, input(rand.New(rand.NewPCG(uint64(i), 1)), 2, 3), nil)
			if err != nil || rows != 4 {
				t.Errorf("batched request: rows %d, err %v; want 4", rows, err)
			}
		}()
	}
	wg.Wait()

	// Alone, and PadRows no more than its own rows: no padding.
	if _, rows, err := b.InferRows(context.Background(), rt, "m", batch.Config{PadRows: 2}, in, nil); err != nil || rows != 2 {
		t.Fatalf("unpadded request: rows %d, err %v; want 2", rows, err)
	}
}

// Package batch is Grey's dynamic batcher: inference requests for the same
// model on the same runtime that arrive close together are stacked along
// the batch dimension into one runtime call, and the outputs are split back
// to each caller.
//
// There is one queue per (runtime, model key). The first request of a batch
// waits at most MaxQueueDelay for others to join it; a batch that reaches
// MaxBatchSize rows goes at once. At most MaxInFlight batched calls of a
// queue run at once: a batch whose delay passed while the runtime is busy
// keeps filling until it may go. Requests of different tasks and tenants
// share batches (the bytes of one tenant never reach another: each caller
// gets back only its own rows). A request whose inputs do not stack with the
// forming batch (another shape past the batch dimension, another datatype,
// other outputs asked for), or that alone holds more than MaxBatchSize rows,
// runs alone.
//
// The batcher starts no goroutine of its own: the first caller of a batch
// (its leader) waits for the others and makes the runtime call; the others
// wait for their part. A caller whose context ends leaves the batch before
// it runs, or has its part dropped if it already runs; the call itself is
// cancelled only when every member has gone.
package batch

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/greyerr"
)

// Config is the batching of one model.
type Config struct {
	// MaxBatchSize is the most rows one runtime call runs (1 or less: no
	// batching, every request runs alone).
	MaxBatchSize int
	// MaxQueueDelay is how long the first request of a batch waits for
	// others to join it.
	MaxQueueDelay time.Duration
	// MaxInFlight is how many batched calls of one queue run at once (0:
	// 1). A batch whose delay has passed while they all run stays open,
	// filling, until one ends.
	MaxInFlight int
	// PadRows, when more than a request's own rows, runs the request
	// alone with zero rows appended up to PadRows, and gives back its own
	// rows only. A replay of a request that ran in a batch of PadRows rows
	// uses it: with some BLAS libraries (OpenBLAS) a row's output bits
	// depend on how many rows the call had, not on the other rows' values.
	PadRows int64
}

// Stats describes one runtime call, for metrics.
type Stats struct {
	// Runtime is the runtime's name.
	Runtime string
	// Key is the model key the call ran.
	Key string
	// Rows is the rows the call ran (the batch size).
	Rows int
	// Requests is how many requests shared the call.
	Requests int
	// Waited is each request's time in the queue before the call started.
	Waited []time.Duration
	// Took is how long the runtime call took.
	Took time.Duration
	// Err is the call's error (nil on success).
	Err error
}

// Options configure a Batcher.
type Options struct {
	// Observe, if set, is told about every runtime call (after it
	// returns, before the callers get their parts).
	Observe func(Stats)
}

// Batcher batches inference requests per (runtime, model key). It is safe
// for concurrent use; the zero value is not usable, call New.
type Batcher struct {
	opts Options

	mu      sync.Mutex
	forming map[queueKey]*batch        // the batch forming per queue, if any
	slots   map[queueKey]chan struct{} // the batched calls in flight per queue
}

// queueKey names a queue: a runtime and a model key.
type queueKey struct{ runtime, key string }

// batch is a forming or running set of requests.
type batch struct {
	max     int64
	rows    int64
	members []*member
	full    chan struct{} // closed when the batch is sealed full
	sealed  bool          // no one joins any more
	started bool          // the runtime call began (under Batcher.mu)

	live   int // members still waiting, once started
	cancel context.CancelFunc
}

// member is one request in a batch.
type member struct {
	ctx    context.Context
	inputs []ai.Tensor
	names  []string
	rows   int64
	queued time.Time
	done   chan result // buffered: the leader never blocks on it
	gone   bool        // left (context ended); under Batcher.mu
}

type result struct {
	outputs []ai.Tensor
	rows    int64 // the rows of the runtime call
	err     error
}

// New returns a Batcher.
func New(opts Options) *Batcher {
	return &Batcher{opts: opts, forming: make(map[queueKey]*batch), slots: make(map[queueKey]chan struct{})}
}

// Infer runs inputs through rt's model under key, batched with other
// requests for the same runtime and key per cfg, and returns this request's
// outputs (names, when not empty, are the outputs wanted). Inputs must be
// valid tensors with the same batch dimension first (else InvalidArgument).
//
// A failed runtime call fails every request of its batch with its error:
// an Unavailable error (the runtime crashed mid-batch) stays Unavailable, so
// that every member's task is retried.
func (b *Batcher) Infer(ctx context.Context, rt *ai.Runtime, key string, cfg Config, inputs []ai.Tensor, names []string) ([]ai.Tensor, error) {
	out, _, err := b.InferRows(ctx, rt, key, cfg, inputs, names)
	return out, err
}

// InferRows is Infer that also returns the rows of the runtime call the
// request ran in: its own and its batch mates' (and padding, with
// cfg.PadRows).
func (b *Batcher) InferRows(ctx context.Context, rt *ai.Runtime, key string, cfg Config, inputs []ai.Tensor, names []string) ([]ai.Tensor, int64, error) {
	rows, err := batchRows(inputs)
	if err != nil {
		return nil, 0, err
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	m := &member{ctx: ctx, inputs: inputs, names: names, rows: rows, queued: time.Now(), done: make(chan result, 1)}
	if cfg.PadRows > rows && rows > 0 {
		if pad, ok := zeroRows(inputs, cfg.PadRows-rows); ok {
			return b.padded(ctx, rt, key, m, pad)
		}
	}
	if cfg.MaxBatchSize <= 1 || rows == 0 || rows > int64(cfg.MaxBatchSize) {
		return b.alone(ctx, rt, key, m)
	}
	qk := queueKey{rt.Name(), key}
	b.mu.Lock()
	if f := b.forming[qk]; f != nil {
		if !joinable(f, m) {
			b.mu.Unlock()
			return b.alone(ctx, rt, key, m)
		}
		if f.rows+m.rows <= f.max {
			f.members = append(f.members, m)
			f.rows += m.rows
			if f.rows == f.max {
				b.seal(qk, f)
			}
			b.mu.Unlock()
			return b.follow(f, m)
		}
		// It does not fit: the forming batch goes now, and this request
		// starts the next one.
		b.seal(qk, f)
	}
	f := &batch{max: int64(cfg.MaxBatchSize), rows: m.rows, members: []*member{m}, full: make(chan struct{})}
	b.forming[qk] = f
	if f.rows == f.max {
		b.seal(qk, f)
	}
	b.mu.Unlock()
	return b.lead(rt, key, cfg, qk, f, m)
}

// zeroRows is a request stackable with inputs, of n rows of zeros (every
// datatype Grey carries has fixed-size elements); false for inputs without
// rows.
func zeroRows(inputs []ai.Tensor, n int64) ([]ai.Tensor, bool) {
	out := make([]ai.Tensor, len(inputs))
	for i, in := range inputs {
		if in.Shape[0] == 0 {
			return nil, false
		}
		rowBytes := int64(len(in.Data)) / in.Shape[0]
		shape := slices.Clone(in.Shape)
		shape[0] = n
		out[i] = ai.Tensor{Name: in.Name, Datatype: in.Datatype, Shape: shape, Data: make([]byte, n*rowBytes)}
	}
	return out, true
}

// padded runs m alone with the pad rows after its own, and gives back its
// own rows.
func (b *Batcher) padded(ctx context.Context, rt *ai.Runtime, key string, m *member, pad []ai.Tensor) ([]ai.Tensor, int64, error) {
	start := time.Now()
	in, rows, err := ai.Stack([][]ai.Tensor{m.inputs, pad})
	if err != nil {
		return nil, 0, greyerr.Wrap(greyerr.Internal, err, "pad")
	}
	total := rows[0] + rows[1]
	out, err := rt.Infer(ctx, key, in, m.names)
	var parts [][]ai.Tensor
	if err == nil {
		if parts, err = ai.Split(out, rows); err != nil {
			err = greyerr.Wrap(greyerr.Internal, err, "runtime %s answered outputs that do not split back", rt.Name())
		}
	}
	b.observe(Stats{Runtime: rt.Name(), Key: key, Rows: int(total), Requests: 1, Waited: []time.Duration{start.Sub(m.queued)}, Took: time.Since(start), Err: err})
	if err != nil {
		return nil, 0, err
	}
	return parts[0], total, nil
}

// batchRows checks inputs and returns their batch dimension.
func batchRows(inputs []ai.Tensor) (int64, error) {
	if len(inputs) == 0 {
		return 0, greyerr.Invalid("inputs", "an inference needs at least one input")
	}
	for i := range inputs {
		if err := inputs[i].Validate(fmt.Sprintf("inputs[%d]", i)); err != nil {
			return 0, err
		}
		if len(inputs[i].Shape) == 0 || inputs[i].Shape[0] != inputs[0].Shape[0] {
			return 0, greyerr.Invalid(fmt.Sprintf("inputs[%d].shape", i), "every input needs the same batch dimension first")
		}
	}
	return inputs[0].Shape[0], nil
}

// joinable reports whether m may share f's runtime call.
func joinable(f *batch, m *member) bool {
	first := f.members[0]
	return slices.Equal(first.names, m.names) && ai.Stackable(first.inputs, m.inputs)
}

// seal closes f to joiners and wakes its leader. Call with b.mu held.
func (b *Batcher) seal(qk queueKey, f *batch) {
	if b.forming[qk] == f {
		delete(b.forming, qk)
	}
	if !f.sealed {
		f.sealed = true
		close(f.full)
	}
}

// alone runs m in a runtime call of its own.
func (b *Batcher) alone(ctx context.Context, rt *ai.Runtime, key string, m *member) ([]ai.Tensor, int64, error) {
	start := time.Now()
	out, err := rt.Infer(ctx, key, m.inputs, m.names)
	b.observe(Stats{Runtime: rt.Name(), Key: key, Rows: int(m.rows), Requests: 1, Waited: []time.Duration{start.Sub(m.queued)}, Took: time.Since(start), Err: err})
	return out, m.rows, err
}

// follow waits for m's part of f, or for m's context to end.
func (b *Batcher) follow(f *batch, m *member) ([]ai.Tensor, int64, error) {
	select {
	case r := <-m.done:
		return r.outputs, r.rows, r.err
	case <-m.ctx.Done():
		b.leave(f, m)
		// The part may have arrived meanwhile: it is dropped all the same.
		return nil, 0, m.ctx.Err()
	}
}

// leave takes m out of f: before the call starts, its rows are removed;
// after, it stops counting as waiting (the call is cancelled when no
// member waits any more).
func (b *Batcher) leave(f *batch, m *member) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if m.gone {
		return
	}
	m.gone = true
	if !f.started {
		f.rows -= m.rows
		return
	}
	f.live--
	if f.live == 0 && f.cancel != nil {
		f.cancel()
	}
}

// lead waits for f to fill or its delay to pass, then runs it and hands
// every member its part. m is the leader's own membership.
func (b *Batcher) lead(rt *ai.Runtime, key string, cfg Config, qk queueKey, f *batch, m *member) ([]ai.Tensor, int64, error) {
	timer := time.NewTimer(cfg.MaxQueueDelay)
	leaderGone := false
	select {
	case <-f.full:
	case <-timer.C:
	case <-m.ctx.Done():
		leaderGone = true
	}
	timer.Stop()
	if leaderGone {
		b.leave(f, m)
	}
	// Wait for the queue's call slot: while the runtime still runs the
	// previous batches, this one stays open and keeps filling (as
	// Triton's dynamic batcher does while model instances are busy).
	slots := b.slotsOf(qk, cfg)
	if !leaderGone {
		select {
		case slots <- struct{}{}:
		case <-m.ctx.Done():
			leaderGone = true
			b.leave(f, m)
		}
	}
	if leaderGone {
		// The leader still makes the call for the others, if any.
		b.mu.Lock()
		if !f.anyLive() {
			b.seal(qk, f)
			f.started = true
			b.mu.Unlock()
			return nil, 0, m.ctx.Err()
		}
		b.mu.Unlock()
		slots <- struct{}{}
	}
	defer func() { <-slots }()
	// Seal and start: from here the members are fixed.
	b.mu.Lock()
	b.seal(qk, f)
	f.started = true
	var members []*member
	for _, x := range f.members {
		if !x.gone {
			members = append(members, x)
		}
	}
	f.live = len(members)
	if len(members) == 0 {
		b.mu.Unlock()
		return nil, 0, m.ctx.Err()
	}
	ctx, cancel := runContext(members)
	f.cancel = cancel
	b.mu.Unlock()
	defer cancel()

	// Followers leave by themselves (follow); the leader is busy in the
	// call, so its context's end is watched for it.
	stopLeader := context.AfterFunc(m.ctx, func() { b.leave(f, m) })
	defer stopLeader()

	b.run(ctx, rt, key, members)
	if leaderGone {
		return nil, 0, m.ctx.Err()
	}
	select {
	case r := <-m.done:
		if err := m.ctx.Err(); err != nil {
			return nil, 0, err
		}
		return r.outputs, r.rows, r.err
	default:
		return nil, 0, m.ctx.Err() // the leader had left: its part was not sent
	}
}

// anyLive reports whether a member of f is still waiting. Call with
// Batcher.mu held.
func (f *batch) anyLive() bool {
	for _, x := range f.members {
		if !x.gone {
			return true
		}
	}
	return false
}

// slotsOf returns the call slots of queue qk, made with cfg's MaxInFlight
// the first time.
func (b *Batcher) slotsOf(qk queueKey, cfg Config) chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.slots[qk]
	if s == nil {
		s = make(chan struct{}, max(cfg.MaxInFlight, 1))
		b.slots[qk] = s
	}
	return s
}

// runContext is the context of a call for members: it keeps the values of
// the first member's context (trace, task), ends at the latest of the
// members' deadlines (when every member has one), and is cancelled when
// every member has left (see leave).
func runContext(members []*member) (context.Context, context.CancelFunc) {
	base := context.WithoutCancel(members[0].ctx)
	var latest time.Time
	for _, x := range members {
		d, ok := x.ctx.Deadline()
		if !ok {
			return context.WithCancel(base)
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(base, latest)
}

// run makes the runtime call for members and sends each its part.
func (b *Batcher) run(ctx context.Context, rt *ai.Runtime, key string, members []*member) {
	start := time.Now()
	waited := make([]time.Duration, len(members))
	parts := make([][]ai.Tensor, len(members))
	for i, x := range members {
		waited[i] = start.Sub(x.queued)
		parts[i] = x.inputs
	}
	var total int64
	for _, x := range members {
		total += x.rows
	}
	var outs [][]ai.Tensor
	var err error
	if len(members) == 1 {
		var o []ai.Tensor
		o, err = rt.Infer(ctx, key, members[0].inputs, members[0].names)
		outs = [][]ai.Tensor{o}
	} else {
		outs, err = b.stacked(ctx, rt, key, members)
	}
	b.observe(Stats{Runtime: rt.Name(), Key: key, Rows: int(total), Requests: len(members), Waited: waited, Took: time.Since(start), Err: err})
	for i, x := range members {
		if err != nil {
			x.done <- result{err: err}
			continue
		}
		x.done <- result{outputs: outs[i], rows: total}
	}
}

// stacked runs members' inputs stacked into one call and splits the
// outputs back.
func (b *Batcher) stacked(ctx context.Context, rt *ai.Runtime, key string, members []*member) ([][]ai.Tensor, error) {
	reqs := make([][]ai.Tensor, len(members))
	for i, x := range members {
		reqs[i] = x.inputs
	}
	in, rows, err := ai.Stack(reqs)
	if err != nil {
		return nil, greyerr.Wrap(greyerr.Internal, err, "batch")
	}
	out, err := rt.Infer(ctx, key, in, members[0].names)
	if err != nil {
		return nil, err
	}
	parts, err := ai.Split(out, rows)
	if err != nil {
		return nil, greyerr.Wrap(greyerr.Internal, err, "runtime %s answered outputs that do not split back into the batch", rt.Name())
	}
	return parts, nil
}

func (b *Batcher) observe(s Stats) {
	if b.opts.Observe != nil {
		b.opts.Observe(s)
	}
}

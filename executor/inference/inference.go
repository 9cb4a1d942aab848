// Package inference is the executor of the inference kind: a task's
// payload is an Open Inference Protocol request naming one of the tenant's
// models (ai.Request); the executor resolves the model through an
// ai.ModelSource, keeps its artifact in the node's model cache
// (ai/modelcache), loads it into the first runtime that serves its
// framework, runs the inputs through the dynamic batcher (ai/batch), and
// answers an ai.Response. The proof of the task names the model (name,
// version, digest) and the runtime and framework versions (worker.Measured).
package inference

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/batch"
	"github.com/grey-distributed/grey/ai/modelcache"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/proof"
	"github.com/grey-distributed/grey/worker"
)

// Kind is the task kind this executor runs.
const Kind = ai.Kind

// RuntimeConfig is one runtime of the node, opened by URL.
type RuntimeConfig struct {
	// Name labels the runtime in metrics, logs and proofs.
	Name string
	// URL opens it through Config.Registry.
	URL string
	// Frameworks it serves; empty: those the runtime reports.
	Frameworks []ai.Framework
}

// Config configures the executor.
type Config struct {
	// Registry opens the runtimes by URL scheme (the binary registers the
	// drivers it links).
	Registry *ai.Registry
	// Runtimes of the node, tried in order for a model's framework.
	Runtimes []RuntimeConfig
	// Timeout bounds one runtime call whose context has no deadline
	// (ai.inference_timeout; the task's timeout is the real bound).
	Timeout time.Duration
	// Source resolves models and serves their artifacts.
	Source ai.ModelSource
	// CacheDir and CacheBytes configure the node's model cache.
	CacheDir   string
	CacheBytes int64
	// Batching is the default batching; ModelBatching overrides it per
	// model name (a zero field keeps the default's).
	Batching      batch.Config
	ModelBatching map[string]batch.Config
	// TenantModels, for a listed tenant, are the only model names its
	// tasks may use.
	TenantModels map[string][]string
	// Registerer receives the grey_inference_* metrics (nil: none).
	Registerer prometheus.Registerer
	// Logger receives the executor's logs.
	Logger *slog.Logger
}

// Executor runs inference tasks. It implements worker.Handler,
// worker.PayloadValidator and worker.Deterministic.
type Executor struct {
	cfg      Config
	runtimes []*runtime
	cache    *modelcache.Cache
	batcher  *batch.Batcher
	metrics  *metrics

	mu     sync.Mutex
	loaded map[loadKey]*loadState
}

// runtime is one opened runtime and what it said about itself.
type runtime struct {
	rt         *ai.Runtime
	frameworks []ai.Framework // configured; nil: from info
	logger     *slog.Logger

	mu   sync.Mutex
	info *ai.RuntimeInfo
}

type loadKey struct {
	runtime int
	digest  string
}

// loadState is a model's load into one runtime: in progress until done
// is closed, then info or err.
type loadState struct {
	done chan struct{}
	info ai.LoadInfo
	err  error
}

// New opens the configured runtimes and the model cache. Close releases
// them.
func New(ctx context.Context, cfg Config) (*Executor, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Runtimes) == 0 {
		return nil, errors.New("inference: no runtimes (ai.runtimes)")
	}
	if cfg.Registry == nil {
		return nil, errors.New("inference: no runtime registry")
	}
	if cfg.Source == nil {
		return nil, errors.New("inference: no model source")
	}
	e := &Executor{cfg: cfg, loaded: map[loadKey]*loadState{}}
	e.batcher = batch.New(batch.Options{Observe: func(s batch.Stats) {
		if e.metrics != nil {
			e.metrics.observeBatch(s)
		}
	}})
	var err error
	if e.metrics, err = newMetrics(cfg.Registerer, func() float64 { return float64(len(e.Warm())) }); err != nil {
		return nil, fmt.Errorf("inference: metrics: %w", err)
	}
	if e.cache, err = modelcache.Open(modelcache.Options{
		Dir: cfg.CacheDir, MaxBytes: cfg.CacheBytes, Source: cfg.Source, OnEvict: e.evicted,
		Logger: cfg.Logger,
	}); err != nil {
		return nil, fmt.Errorf("inference: %w", err)
	}
	for _, rc := range cfg.Runtimes {
		rt, err := cfg.Registry.Open(ctx, rc.Name, rc.URL, ai.OpenOptions{Logger: cfg.Logger.With("runtime", rc.Name), Timeout: cfg.Timeout})
		if err != nil {
			_ = e.Close()
			return nil, fmt.Errorf("inference: %w", err)
		}
		e.runtimes = append(e.runtimes, &runtime{rt: rt, frameworks: rc.Frameworks, logger: e.cfg.Logger})
	}
	return e, nil
}

// Close stops the runtimes.
func (e *Executor) Close() error {
	var errs []error
	for _, r := range e.runtimes {
		errs = append(errs, r.rt.Close())
	}
	return errors.Join(errs...)
}

// Cache returns the node's model cache (its Warm lists the cached
// digests).
func (e *Executor) Cache() *modelcache.Cache { return e.cache }

// Warm returns the digests of the models loaded in this node's runtimes,
// sorted: what the node reports so that routing prefers it for them.
func (e *Executor) Warm() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	seen := map[string]bool{}
	for k, s := range e.loaded {
		select {
		case <-s.done:
			if s.err == nil {
				seen[k.digest] = true
			}
		default:
		}
	}
	out := make([]string, 0, len(seen))
	for d := range seen {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// evicted unloads a model whose artifact left the cache.
func (e *Executor) evicted(digest string) {
	e.mu.Lock()
	var idx []int
	for k := range e.loaded {
		if k.digest == digest {
			idx = append(idx, k.runtime)
			delete(e.loaded, k)
		}
	}
	e.mu.Unlock()
	for _, i := range idx {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := e.runtimes[i].rt.Unload(ctx, digest); err != nil {
			e.cfg.Logger.Warn("unloading an evicted model failed", "runtime", e.runtimes[i].rt.Name(), "digest", digest, "err", err)
		}
		cancel()
	}
}

// decode reads and checks an inference payload (JSON; ai.DecodeRequest).
func decode(payload []byte) (*ai.Request, ai.ModelRef, error) {
	return ai.DecodeRequest(payload)
}

// decodeJob reads a job's payload: the binary form when the lease carried
// it as such (its tensors' bytes used as they are), else JSON.
func decodeJob(j *worker.Job) (*ai.Request, ai.ModelRef, error) {
	if len(j.PayloadBinary) > 0 {
		return ai.DecodeBinaryRequest(j.PayloadBinary)
	}
	return decode(j.Payload)
}

// ValidatePayload implements worker.PayloadValidator: a payload that is
// not a well-formed inference request is refused at submit.
func (e *Executor) ValidatePayload(payload json.RawMessage) error {
	_, _, err := decode(payload)
	return err
}

// ValidatePayload checks an inference payload without an executor (for a
// server without runtimes).
func ValidatePayload(payload json.RawMessage) error {
	_, _, err := decode(payload)
	return err
}

// Deterministic implements worker.Deterministic: inference replays when
// every runtime of the node places models on the CPU (a GPU's kernels need
// not give the same bits run to run). The model itself must be
// deterministic too (docs/inference-batching.md says what that takes).
func (e *Executor) Deterministic(*worker.Job) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, r := range e.runtimes {
		info, err := r.describe(ctx)
		if err != nil || info.HasGPU() {
			return false
		}
	}
	return true
}

// describe returns the runtime's info, asked once.
func (r *runtime) describe(ctx context.Context) (ai.RuntimeInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.info != nil {
		return *r.info, nil
	}
	info, err := r.rt.Info(ctx)
	if err != nil {
		return ai.RuntimeInfo{}, err
	}
	r.info = &info
	r.logger.Info("inference runtime", "runtime", r.rt.Name(), "name", info.Name, "version", info.Version,
		"frameworks", info.Frameworks, "devices", info.Devices, "blas", info.BLAS)
	return info, nil
}

// serves reports whether r serves fw (by configuration, else by its info).
func (r *runtime) serves(ctx context.Context, fw ai.Framework) (bool, error) {
	if len(r.frameworks) > 0 {
		return slices.Contains(r.frameworks, fw), nil
	}
	info, err := r.describe(ctx)
	if err != nil {
		return false, err
	}
	_, ok := info.Frameworks[fw]
	return ok, nil
}

// pick returns the first runtime serving fw.
func (e *Executor) pick(ctx context.Context, fw ai.Framework) (int, error) {
	var unavailable error
	for i, r := range e.runtimes {
		ok, err := r.serves(ctx, fw)
		if err != nil {
			unavailable = err
			continue
		}
		if ok {
			return i, nil
		}
	}
	if unavailable != nil {
		return -1, runtimeError(ctx, unavailable, "describe the runtime")
	}
	return -1, permanent(CodeNoRuntime, nil, "no runtime serves %s on this node", fw)
}

// batching returns the batching of model name.
func (e *Executor) batching(name string) batch.Config {
	c := e.cfg.Batching
	if o, ok := e.cfg.ModelBatching[name]; ok {
		if o.MaxBatchSize > 0 {
			c.MaxBatchSize = o.MaxBatchSize
		}
		if o.MaxQueueDelay > 0 {
			c.MaxQueueDelay = o.MaxQueueDelay
		}
	}
	return c
}

// Work implements worker.Handler.
func (e *Executor) Work(ctx context.Context, j *worker.Job) (any, error) {
	res, label, err := e.work(ctx, j)
	outcome := "ok"
	if err != nil {
		outcome = CodeOf(err)
		if outcome == "" {
			outcome = "error"
			if ctx.Err() != nil {
				outcome = "timeout"
			}
		}
	}
	e.metrics.requests.WithLabelValues(label, outcome).Inc()
	return res, err
}

func (e *Executor) work(ctx context.Context, j *worker.Job) (any, string, error) {
	req, ref, err := decodeJob(j)
	if err != nil {
		return nil, "", permanent(CodeInvalidInput, err, "bad payload")
	}
	if allowed, listed := e.cfg.TenantModels[j.TenantID]; listed && !slices.Contains(allowed, ref.Name) {
		return nil, "", permanent(CodeModelNotAllowed, nil, "model %s is not among the models tenant %s may use (ai.tenant_models)", ref.Name, j.TenantID)
	}
	m, err := e.cfg.Source.Resolve(ctx, j.TenantID, ref)
	if err != nil {
		if greyerr.Is(err, greyerr.NotFound) {
			return nil, "", permanent(CodeModelNotFound, nil, "model %s not found", ref)
		}
		if ctx.Err() != nil {
			return nil, "", fmt.Errorf("inference: resolve model %s: %w", ref, err)
		}
		return nil, "", retryable(CodeModelRegistry, err, "resolve model %s", ref)
	}
	label := m.Name + ":" + m.Version
	ri, err := e.pick(ctx, m.Framework)
	if err != nil {
		return nil, label, err
	}
	r := e.runtimes[ri]
	names := make([]string, len(req.Outputs))
	for i, o := range req.Outputs {
		names[i] = o.Name
	}
	var out []ai.Tensor
	var rows int64 // of the model call
	var li ai.LoadInfo
	for try := 0; ; try++ {
		h, err := e.cache.Acquire(ctx, j.TenantID, m)
		if err != nil {
			return nil, label, cacheError(ctx, err, m)
		}
		if h.Hit {
			e.metrics.hits.Inc()
		} else {
			e.metrics.misses.Inc()
		}
		li, err = e.ensureLoaded(ctx, ri, m, h.Path)
		if err != nil {
			h.Release()
			return nil, label, runtimeError(ctx, err, fmt.Sprintf("load model %s:%s", m.Name, m.Version))
		}
		cfg := e.batching(m.Name)
		if j.Replayed != nil && j.Replayed.Model != nil && j.Replayed.Model.BatchRows > 0 {
			// Run as it ran: alone, padded to its batch's rows.
			cfg = batch.Config{PadRows: j.Replayed.Model.BatchRows}
		}
		out, rows, err = e.batcher.InferRows(ctx, r.rt, m.Digest, cfg, req.Inputs, names)
		h.Release()
		if err != nil && greyerr.Is(err, greyerr.NotFound) && try == 0 && ctx.Err() == nil {
			// The runtime lost the model (its process restarted): load
			// it again, once.
			e.forget(ri, m.Digest)
			continue
		}
		if err != nil {
			return nil, label, runtimeError(ctx, err, fmt.Sprintf("model %s:%s", m.Name, m.Version))
		}
		break
	}
	resp := ai.Response{ModelName: m.Name, ModelVersion: m.Version, ID: req.ID, Outputs: out}
	info, _ := r.describe(ctx)
	device := li.Device
	pm := &proof.Model{Name: m.Name, Version: m.Version, Digest: m.Digest, Framework: string(m.Framework),
		FrameworkVersion: info.Frameworks[m.Framework], Runtime: info.Name, RuntimeVersion: info.Version, Device: device}
	if pm.Runtime == "" {
		pm.Runtime = r.rt.Name()
	}
	if len(req.Inputs) > 0 && len(req.Inputs[0].Shape) > 0 && rows > req.Inputs[0].Shape[0] {
		pm.BatchRows = rows
	}
	if li.Served != nil {
		pm.Server, pm.ServerDigest = li.Served.Server, li.Served.Digest
	}
	exec := &proof.Executor{Name: Kind, Version: strings.TrimSpace(pm.Runtime + " " + pm.RuntimeVersion), Digest: m.Digest}
	return worker.Measured{Value: resp, Executor: exec, Model: pm}, label, nil
}

// cacheError maps a model cache error to the task's error.
func cacheError(ctx context.Context, err error, m ai.Model) error {
	if ctx.Err() != nil {
		return fmt.Errorf("inference: fetch model %s:%s: %w", m.Name, m.Version, err)
	}
	switch {
	case errors.Is(err, modelcache.ErrDigestMismatch):
		return permanent(CodeModelDigest, err, "model %s:%s", m.Name, m.Version)
	case greyerr.Is(err, greyerr.NotFound):
		return permanent(CodeModelNotFound, err, "model %s:%s's artifact", m.Name, m.Version)
	case greyerr.Is(err, greyerr.ResourceExhausted):
		return permanent(CodeModelTooLarge, err, "model %s:%s", m.Name, m.Version)
	case greyerr.Is(err, greyerr.FailedPrecondition):
		return permanent(CodeModelError, err, "model %s:%s", m.Name, m.Version)
	}
	return retryable(CodeModelRegistry, err, "fetch model %s:%s", m.Name, m.Version)
}

// ensureLoaded loads m into runtime ri once (concurrent callers wait for
// the one load) and returns the load's info.
func (e *Executor) ensureLoaded(ctx context.Context, ri int, m ai.Model, path string) (ai.LoadInfo, error) {
	k := loadKey{ri, m.Digest}
	for {
		e.mu.Lock()
		s := e.loaded[k]
		if s == nil {
			s = &loadState{done: make(chan struct{})}
			e.loaded[k] = s
			e.mu.Unlock()
			r := e.runtimes[ri]
			start := time.Now()
			s.info, s.err = r.rt.Load(ctx, ai.LoadSpec{Key: m.Digest, Model: m, Path: path})
			took := time.Since(start)
			if s.err != nil {
				e.mu.Lock()
				if e.loaded[k] == s {
					delete(e.loaded, k) // a later task tries again
				}
				e.mu.Unlock()
			} else {
				e.metrics.load.WithLabelValues(r.rt.Name(), string(m.Framework)).Observe(took.Seconds())
				e.cfg.Logger.Info("model loaded", "runtime", r.rt.Name(), "model", m.Name+":"+m.Version, "digest", m.Digest, "device", s.info.Device, "took", took)
			}
			close(s.done)
			return s.info, s.err
		}
		e.mu.Unlock()
		select {
		case <-s.done:
		case <-ctx.Done():
			return ai.LoadInfo{}, ctx.Err()
		}
		if s.err != nil && (errors.Is(s.err, context.Canceled) || errors.Is(s.err, context.DeadlineExceeded)) && ctx.Err() == nil {
			continue // the loading task gave up; this one loads
		}
		return s.info, s.err
	}
}

// forget marks m as not loaded in runtime ri.
func (e *Executor) forget(ri int, digest string) {
	e.mu.Lock()
	delete(e.loaded, loadKey{ri, digest})
	e.mu.Unlock()
}

var (
	_ worker.Handler          = (*Executor)(nil)
	_ worker.PayloadValidator = (*Executor)(nil)
	_ worker.Deterministic    = (*Executor)(nil)
)

// Labels are the worker labels this node's runtimes earn (ai.Labels): a
// framework label per framework served (the configured ones where a
// runtime lists them) and gpu=true when a runtime has a CUDA device. It
// asks each runtime once (which starts it); a runtime that does not answer
// within ctx counts with its configured frameworks only.
func (e *Executor) Labels(ctx context.Context) map[string]string {
	infos := make([]ai.RuntimeInfo, 0, len(e.runtimes))
	for _, r := range e.runtimes {
		info, err := r.describe(ctx)
		if err != nil {
			e.cfg.Logger.Warn("runtime did not describe itself; labelled by its configured frameworks only", "runtime", r.rt.Name(), "err", err)
			info = ai.RuntimeInfo{}
		}
		if len(r.frameworks) > 0 {
			fw := make(map[ai.Framework]string, len(r.frameworks))
			for _, f := range r.frameworks {
				fw[f] = info.Frameworks[f]
			}
			info.Frameworks = fw
		}
		infos = append(infos, info)
	}
	return ai.Labels(infos)
}

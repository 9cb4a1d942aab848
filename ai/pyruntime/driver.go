package pyruntime

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/runtime/python"
	"github.com/grey-distributed/grey/greyerr"
)

// Scheme is the URL scheme of the Python runtime.
const Scheme = "python"

// RuntimeName is the runtime's name in ai.RuntimeInfo (and in proofs).
const RuntimeName = "grey-python"

// Defaults of the URL's query keys and of OpenOptions.Timeout.
const (
	DefaultThreads      = 1
	DefaultRestartMin   = 100 * time.Millisecond
	DefaultRestartMax   = 30 * time.Second
	DefaultStartTimeout = 60 * time.Second
	DefaultLoadTimeout  = 5 * time.Minute
	DefaultTimeout      = 30 * time.Second
)

// stableAfter is how long a process must have run for its exit not to
// count as one more consecutive crash (the backoff resets).
const stableAfter = time.Minute

// Register registers the python driver in r.
func Register(r *ai.Registry) error {
	return r.Register(Scheme, ai.OpenerFunc(func(ctx context.Context, u *url.URL, opts ai.OpenOptions) (ai.Driver, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return Open(u, opts)
	}))
}

// Config is a parsed python:// URL.
type Config struct {
	// Python is the interpreter's absolute path.
	Python string
	// Device for loads whose spec says "" ("auto", "cpu", "cuda", "cuda:N").
	Device string
	// Threads per framework in the process.
	Threads int
	// RestartMin and RestartMax bound the backoff between restarts.
	RestartMin, RestartMax time.Duration
	// StartTimeout bounds a new process's start.
	StartTimeout time.Duration
	// LoadTimeout bounds a load whose context has no deadline.
	LoadTimeout time.Duration
}

// ParseURL reads a python:// URL (see the package doc).
func ParseURL(u *url.URL) (Config, error) {
	c := Config{Device: "auto", Threads: DefaultThreads, RestartMin: DefaultRestartMin,
		RestartMax: DefaultRestartMax, StartTimeout: DefaultStartTimeout, LoadTimeout: DefaultLoadTimeout}
	if u.Scheme != Scheme {
		return Config{}, greyerr.Invalid("url", "scheme %q is not %s", u.Scheme, Scheme)
	}
	if u.Opaque != "" || u.Host != "" || u.User != nil {
		return Config{}, greyerr.Invalid("url", "a python runtime URL is python:///ABSOLUTE/PATH/TO/python (no host)")
	}
	if !filepath.IsAbs(u.Path) {
		return Config{}, greyerr.Invalid("url", "the interpreter path %q is not absolute", u.Path)
	}
	c.Python = filepath.Clean(u.Path)
	for k, vs := range u.Query() {
		v := vs[len(vs)-1]
		var err error
		switch k {
		case "device":
			if v != "auto" && v != "cpu" && v != "cuda" && !validCUDA(v) {
				return Config{}, greyerr.Invalid("url.device", "device %q is not auto, cpu, cuda or cuda:N", v)
			}
			c.Device = v
		case "threads":
			c.Threads, err = strconv.Atoi(v)
			if err == nil && (c.Threads < 1 || c.Threads > 1024) {
				err = fmt.Errorf("out of range [1, 1024]")
			}
		case "restart_min":
			c.RestartMin, err = positive(v)
		case "restart_max":
			c.RestartMax, err = positive(v)
		case "start_timeout":
			c.StartTimeout, err = positive(v)
		case "load_timeout":
			c.LoadTimeout, err = positive(v)
		default:
			return Config{}, greyerr.Invalid("url", "unknown query key %q (device, threads, restart_min, restart_max, start_timeout, load_timeout)", k)
		}
		if err != nil {
			return Config{}, greyerr.Invalid("url."+k, "%q: %v", v, err)
		}
	}
	if c.RestartMax < c.RestartMin {
		return Config{}, greyerr.Invalid("url.restart_max", "restart_max %v is below restart_min %v", c.RestartMax, c.RestartMin)
	}
	return c, nil
}

func validCUDA(v string) bool {
	if len(v) < 6 || v[:5] != "cuda:" {
		return false
	}
	n, err := strconv.Atoi(v[5:])
	return err == nil && n >= 0
}

func positive(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err == nil && d <= 0 {
		err = fmt.Errorf("must be positive")
	}
	return d, err
}

// loaded is a model the driver was asked to load.
type loaded struct {
	spec ai.LoadSpec
	info ai.LoadInfo
}

// Driver is the python runtime driver. It is safe for concurrent use.
type Driver struct {
	cfg     Config
	log     *slog.Logger
	timeout time.Duration
	dir     string // the runtime's sources, written at Open, removed at Close
	ids     atomic.Uint64

	mu        sync.Mutex
	proc      *process
	starting  chan struct{} // closed when the start in progress ends
	specs     map[string]loaded
	closed    bool
	bo        *backoff.ExponentialBackOff
	nextStart time.Time
	starts    int
}

var _ ai.Driver = (*Driver)(nil)

// Open returns a driver for the URL. The interpreter must exist; the
// process starts on the first call.
func Open(u *url.URL, opts ai.OpenOptions) (*Driver, error) {
	cfg, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	return New(cfg, opts)
}

// New returns a driver for cfg (see Open).
func New(cfg Config, opts ai.OpenOptions) (*Driver, error) {
	st, err := os.Stat(cfg.Python)
	if err != nil {
		return nil, greyerr.Wrap(greyerr.FailedPrecondition, err, "python interpreter %s", cfg.Python)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return nil, greyerr.New(greyerr.FailedPrecondition, "python interpreter %s is not an executable file", cfg.Python)
	}
	dir, err := writeSources()
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	bo := &backoff.ExponentialBackOff{InitialInterval: cfg.RestartMin, RandomizationFactor: 0.2,
		Multiplier: 2, MaxInterval: cfg.RestartMax}
	bo.Reset()
	return &Driver{cfg: cfg, log: log.With("runtime", RuntimeName, "python", cfg.Python), timeout: timeout,
		dir: dir, specs: map[string]loaded{}, bo: bo}, nil
}

// writeSources copies the embedded runtime into a private directory.
func writeSources() (string, error) {
	dir, err := os.MkdirTemp("", "grey-pyruntime-")
	if err != nil {
		return "", greyerr.Wrap(greyerr.Internal, err, "python runtime: a directory for its sources")
	}
	err = fs.WalkDir(python.Sources(), ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if e.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		b, err := fs.ReadFile(python.Sources(), p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o600)
	})
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", greyerr.Wrap(greyerr.Internal, err, "python runtime: writing its sources")
	}
	return dir, nil
}

// Config returns the driver's configuration.
func (d *Driver) Config() Config { return d.cfg }

// process returns the running process, starting one (after the backoff
// when the last one died) if there is none.
func (d *Driver) process(ctx context.Context) (*process, error) {
	for {
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return nil, errClosed()
		}
		if p := d.proc; p != nil && !p.isDead() {
			d.mu.Unlock()
			return p, nil
		}
		if ch := d.starting; ch != nil {
			d.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctxError(ctx, "waiting for the python runtime to start")
			}
		}
		ch := make(chan struct{})
		d.starting = ch
		wait := time.Until(d.nextStart)
		d.mu.Unlock()

		p, err := d.startAfter(ctx, wait)
		d.mu.Lock()
		d.starting = nil
		close(ch)
		if err == nil && d.closed {
			p.kill("the driver closed")
			err = errClosed()
		}
		if err != nil {
			if !greyerr.Is(err, greyerr.DeadlineExceeded) && !greyerr.Is(err, greyerr.Canceled) {
				d.nextStart = time.Now().Add(d.bo.NextBackOff())
			}
			d.mu.Unlock()
			return nil, err
		}
		d.proc = p
		d.mu.Unlock()
		return p, nil
	}
}

func (d *Driver) startAfter(ctx context.Context, wait time.Duration) (*process, error) {
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctxError(ctx, "waiting to restart the python runtime")
		}
	}
	d.mu.Lock()
	d.starts++
	d.mu.Unlock()
	return startProcess(ctx, d)
}

// exited is called once by a process that ended.
func (d *Driver) exited(p *process, uptime time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.proc == p {
		d.proc = nil
	}
	if d.closed {
		return
	}
	if uptime >= stableAfter {
		d.bo.Reset()
	}
	d.nextStart = time.Now().Add(d.bo.NextBackOff())
}

// Starts counts the processes the driver started (restarts included).
func (d *Driver) Starts() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.starts
}

// PID is the running process's id, or 0 when none runs.
func (d *Driver) PID() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.proc == nil || d.proc.isDead() {
		return 0
	}
	return d.proc.pid
}

func withDefault(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// Info describes the runtime; it starts the process if none runs.
func (d *Driver) Info(ctx context.Context) (ai.RuntimeInfo, error) {
	ctx, cancel := withDefault(ctx, d.cfg.StartTimeout)
	defer cancel()
	p, err := d.process(ctx)
	if err != nil {
		return ai.RuntimeInfo{}, err
	}
	if i, ok := p.cachedInfo(); ok {
		return i, nil
	}
	rp, _, err := p.do(ctx, request{Op: "info"}, nil)
	if err != nil {
		return ai.RuntimeInfo{}, err
	}
	i := ai.RuntimeInfo{Name: rp.Name, Version: rp.Version, Frameworks: rp.Frameworks, Devices: rp.Devices, BLAS: rp.BLAS.String()}
	if i.Frameworks == nil {
		i.Frameworks = map[ai.Framework]string{}
	}
	p.setInfo(i)
	return i, nil
}

// Load makes spec's model ready. A key the driver knows answers its first
// load's info without a call to the process.
//
// The driver loads a known key again from its spec when a restarted
// process lacks it, so the spec's Path must stay valid while the key is
// loaded: a Load of a known key with another Path replaces the stored one
// (a model cache that moved or re-fetched the file calls Load again).
func (d *Driver) Load(ctx context.Context, spec ai.LoadSpec) (ai.LoadInfo, error) {
	if spec.Path == "" {
		return ai.LoadInfo{}, greyerr.Invalid("path", "the python runtime loads models from a local path; the spec has none")
	}
	abs, err := filepath.Abs(spec.Path)
	if err != nil {
		return ai.LoadInfo{}, greyerr.Invalid("path", "%v", err)
	}
	spec.Path = abs
	d.mu.Lock()
	if l, ok := d.specs[spec.Key]; ok {
		l.spec.Path = spec.Path
		d.specs[spec.Key] = l
		d.mu.Unlock()
		return l.info, nil
	}
	d.mu.Unlock()
	ctx, cancel := withDefault(ctx, d.cfg.LoadTimeout)
	defer cancel()
	p, err := d.process(ctx)
	if err != nil {
		return ai.LoadInfo{}, err
	}
	info, err := d.loadIn(ctx, p, spec)
	if err != nil {
		return ai.LoadInfo{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if l, ok := d.specs[spec.Key]; ok {
		return l.info, nil
	}
	d.specs[spec.Key] = loaded{spec: spec, info: info}
	return info, nil
}

func (d *Driver) loadIn(ctx context.Context, p *process, spec ai.LoadSpec) (ai.LoadInfo, error) {
	dev := spec.Device
	if dev == "" {
		dev = d.cfg.Device
	}
	rp, _, err := p.do(ctx, request{Op: "load", Key: spec.Key, Framework: spec.Model.Framework, Path: spec.Path, Device: dev}, nil)
	if err != nil {
		return ai.LoadInfo{}, err
	}
	p.setLoaded(spec.Key, true)
	return ai.LoadInfo{Device: rp.Device, Took: time.Duration(rp.TookMS * float64(time.Millisecond))}, nil
}

// Unload forgets the model under key and releases it in the process.
func (d *Driver) Unload(ctx context.Context, key string) error {
	d.mu.Lock()
	_, ok := d.specs[key]
	delete(d.specs, key)
	p := d.proc
	d.mu.Unlock()
	if !ok || p == nil || p.isDead() || !p.hasLoaded(key) {
		return nil
	}
	ctx, cancel := withDefault(ctx, d.timeout)
	defer cancel()
	p.setLoaded(key, false)
	_, _, err := p.do(ctx, request{Op: "unload", Key: key}, nil)
	if greyerr.Is(err, greyerr.Unavailable) {
		return nil // the process died: it holds nothing now
	}
	return err
}

// Infer runs the model under key. A key loaded before the process last
// restarted is loaded again first.
func (d *Driver) Infer(ctx context.Context, key string, inputs []ai.Tensor, names []string) ([]ai.Tensor, error) {
	ctx, cancel := withDefault(ctx, d.timeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		d.mu.Lock()
		l, ok := d.specs[key]
		d.mu.Unlock()
		if !ok {
			return nil, greyerr.New(greyerr.NotFound, "no model is loaded under key %q", key)
		}
		p, err := d.process(ctx)
		if err != nil {
			return nil, err
		}
		if !p.hasLoaded(key) {
			if _, err := d.loadIn(ctx, p, l.spec); err != nil {
				if _, serr := os.Stat(l.spec.Path); serr != nil && greyerr.Is(err, greyerr.FailedPrecondition) {
					// The file went away since the first load: the key
					// is no longer loadable from what the driver kept.
					d.mu.Lock()
					delete(d.specs, key)
					d.mu.Unlock()
					return nil, &greyerr.Error{Code: greyerr.NotFound, Err: err, Message: fmt.Sprintf(
						"model %s:%s: its file %s is gone since it was loaded; load it again", l.spec.Model.Name, l.spec.Model.Version, l.spec.Path)}
				}
				return nil, fmt.Errorf("loading %s:%s again in a restarted runtime: %w", l.spec.Model.Name, l.spec.Model.Version, err)
			}
		}
		_, out, err := p.do(ctx, request{Op: "infer", Key: key, Tensors: specsOf(inputs), Outputs: names}, inputs)
		if greyerr.Is(err, greyerr.NotFound) && attempt == 0 {
			// An Unload and a Load of the key raced this call: load again.
			p.setLoaded(key, false)
			continue
		}
		return out, err
	}
}

// Close stops the process (asking it to shut down, then killing it) and
// removes the runtime's sources. Calls after Close fail.
func (d *Driver) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	p := d.proc
	d.proc = nil
	d.mu.Unlock()
	if p != nil {
		p.shutdown(5 * time.Second)
	}
	if err := os.RemoveAll(d.dir); err != nil {
		return greyerr.Wrap(greyerr.Internal, err, "python runtime: removing its sources")
	}
	return nil
}

func errClosed() error {
	return greyerr.New(greyerr.FailedPrecondition, "the python runtime is closed")
}

// ctxError codes a context's end (DeadlineExceeded or Canceled).
func ctxError(ctx context.Context, doing string) error {
	code := greyerr.CodeOf(ctx.Err())
	if code != greyerr.Canceled {
		code = greyerr.DeadlineExceeded
	}
	return greyerr.Wrap(code, ctx.Err(), "python runtime: %s", doing)
}

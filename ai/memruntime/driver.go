// Package memruntime is the in-memory reference driver of the runtime port
// (scheme mem). It is a test and reference driver, not a framework: its
// "models" are small JSON documents (Doc: dense layers with optional ReLU,
// the weights in the document) accepted under either framework name, run
// in Go. It exists so that the runtime conformance suite (ai/runtimetest),
// the executor, the batcher and the scheduler can be tested on every
// `go test ./...` without torch or tensorflow.
//
// A model's document can make it behave like a real one under load — a
// fixed latency per call plus a cost per row, with a bound on the calls
// that run at once (a device), so that batching pays as it does on a real
// device — and like a faulty one: raise (ai.ErrModel), crash (Unavailable,
// as a runtime process dying mid-batch) or hang on an input holding a
// flagged value.
//
// The URL is mem:// with optional query parameters:
//
//	frameworks=pytorch,tensorflow   frameworks it claims (default both)
//	devices=cpu,cuda:0              devices it claims (default cpu); a
//	                                "cuda" device is simulated, for routing tests
//
// A model's artifact (LoadSpec.Path) is the document's file, or a directory
// holding it as model.json (a SavedModel-shaped push).
package memruntime

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/greyerr"
)

// Scheme is the URL scheme of the mem runtime.
const Scheme = "mem"

// Version is the runtime's version in RuntimeInfo.
const Version = "1"

// DirFile is the document's file name when a model's artifact is a
// directory.
const DirFile = "model.json"

// Register registers the mem scheme in r.
func Register(r *ai.Registry) error {
	return r.Register(Scheme, ai.OpenerFunc(func(_ context.Context, u *url.URL, opts ai.OpenOptions) (ai.Driver, error) {
		o, err := ParseURL(u)
		if err != nil {
			return nil, err
		}
		o.Timeout = opts.Timeout
		return Open(o), nil
	}))
}

// Options configure a mem runtime.
type Options struct {
	// Frameworks it claims to serve (empty: pytorch and tensorflow).
	Frameworks []ai.Framework
	// Devices it claims (empty: cpu). A "cuda:N" device is simulated: the
	// model runs in Go all the same.
	Devices []string
	// Timeout bounds a call whose context has no deadline (0: 30s).
	Timeout time.Duration
}

// ParseURL reads a mem:// URL's options.
func ParseURL(u *url.URL) (Options, error) {
	var o Options
	q := u.Query()
	for k := range q {
		if k != "frameworks" && k != "devices" {
			return Options{}, greyerr.Invalid("url", "mem runtime: unknown parameter %q (known: frameworks, devices)", k)
		}
	}
	for _, f := range splitList(q.Get("frameworks")) {
		if !ai.Framework(f).Valid() {
			return Options{}, greyerr.Invalid("url", "mem runtime: framework %q is not pytorch or tensorflow", f)
		}
		o.Frameworks = append(o.Frameworks, ai.Framework(f))
	}
	for _, d := range splitList(q.Get("devices")) {
		if d != "cpu" && !strings.HasPrefix(d, "cuda:") {
			return Options{}, greyerr.Invalid("url", "mem runtime: device %q is not cpu or cuda:N", d)
		}
		o.Devices = append(o.Devices, d)
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Driver is the mem runtime. It is safe for concurrent use.
type Driver struct {
	opts   Options
	mu     sync.RWMutex
	models map[string]*loaded
	closed bool
	loads  int
	calls  int64
	rows   int64
}

type loaded struct {
	model *Model
	info  ai.LoadInfo
}

// Open returns a mem runtime.
func Open(o Options) *Driver {
	if len(o.Frameworks) == 0 {
		o.Frameworks = []ai.Framework{ai.PyTorch, ai.TensorFlow}
	}
	if len(o.Devices) == 0 {
		o.Devices = []string{"cpu"}
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	return &Driver{opts: o, models: map[string]*loaded{}}
}

var _ ai.Driver = (*Driver)(nil)

func errClosed() error { return greyerr.New(greyerr.Unavailable, "mem runtime: closed") }

// Info describes the runtime.
func (d *Driver) Info(ctx context.Context) (ai.RuntimeInfo, error) {
	if err := ctx.Err(); err != nil {
		return ai.RuntimeInfo{}, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return ai.RuntimeInfo{}, errClosed()
	}
	fw := map[ai.Framework]string{}
	for _, f := range d.opts.Frameworks {
		fw[f] = "mem-" + Version
	}
	return ai.RuntimeInfo{Name: "mem", Version: Version, Frameworks: fw, Devices: slices.Clone(d.opts.Devices)}, nil
}

// Load reads the model document at spec.Path (a file, or a directory
// holding model.json). A document that is not a model, a model for
// another framework than spec's, a framework or device the runtime does
// not claim: FailedPrecondition.
func (d *Driver) Load(ctx context.Context, spec ai.LoadSpec) (ai.LoadInfo, error) {
	if err := ctx.Err(); err != nil {
		return ai.LoadInfo{}, err
	}
	d.mu.RLock()
	closed, l := d.closed, d.models[spec.Key]
	d.mu.RUnlock()
	if closed {
		return ai.LoadInfo{}, errClosed()
	}
	if l != nil {
		return l.info, nil
	}
	start := time.Now()
	if !slices.Contains(d.opts.Frameworks, spec.Model.Framework) {
		return ai.LoadInfo{}, greyerr.New(greyerr.FailedPrecondition, "mem runtime: does not serve %s models", spec.Model.Framework)
	}
	dev, err := d.device(spec.Device)
	if err != nil {
		return ai.LoadInfo{}, err
	}
	path := spec.Path
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, DirFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return ai.LoadInfo{}, greyerr.Wrap(greyerr.FailedPrecondition, err, "mem runtime: read the artifact")
	}
	m, err := Parse(b)
	if err != nil {
		return ai.LoadInfo{}, err
	}
	if f := m.doc.Framework; f != "" && f != spec.Model.Framework {
		return ai.LoadInfo{}, greyerr.New(greyerr.FailedPrecondition, "mem runtime: the artifact is a %s model, pushed as %s", f, spec.Model.Framework)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ai.LoadInfo{}, errClosed()
	}
	if l := d.models[spec.Key]; l != nil {
		return l.info, nil
	}
	info := ai.LoadInfo{Device: dev, Took: time.Since(start)}
	d.models[spec.Key] = &loaded{model: m, info: info}
	d.loads++
	return info, nil
}

func (d *Driver) device(want string) (string, error) {
	switch {
	case want == "":
		for _, dev := range d.opts.Devices {
			if strings.HasPrefix(dev, "cuda") {
				return dev, nil
			}
		}
		return d.opts.Devices[0], nil
	case want == "cpu" && slices.Contains(d.opts.Devices, "cpu"):
		return "cpu", nil
	case strings.HasPrefix(want, "cuda"):
		for _, dev := range d.opts.Devices {
			if dev == want || (want == "cuda" && strings.HasPrefix(dev, "cuda:")) {
				return dev, nil
			}
		}
	}
	return "", greyerr.New(greyerr.FailedPrecondition, "mem runtime: no device %q (it has %s)", want, strings.Join(d.opts.Devices, ", "))
}

// Unload forgets the model under key.
func (d *Driver) Unload(ctx context.Context, key string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.models, key)
	return nil
}

// Infer runs the model under key (Model.Infer). A call whose context has
// no deadline gets the runtime's timeout.
func (d *Driver) Infer(ctx context.Context, key string, inputs []ai.Tensor, names []string) ([]ai.Tensor, error) {
	d.mu.RLock()
	closed, l := d.closed, d.models[key]
	d.mu.RUnlock()
	if closed {
		return nil, errClosed()
	}
	if l == nil {
		return nil, greyerr.New(greyerr.NotFound, "mem runtime: no model loaded under key %q", key)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.opts.Timeout)
		defer cancel()
	}
	d.mu.Lock()
	d.calls++
	if len(inputs) > 0 && len(inputs[0].Shape) > 0 {
		d.rows += inputs[0].Shape[0]
	}
	d.mu.Unlock()
	out, err := l.model.Infer(ctx, inputs, names)
	if err != nil {
		return nil, fmt.Errorf("mem runtime: %w", err)
	}
	return out, nil
}

// Loaded lists the keys of the loaded models, sorted (a test hook).
func (d *Driver) Loaded() []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	keys := make([]string, 0, len(d.models))
	for k := range d.models {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Loads counts the loads that read an artifact (a test hook: a cache in
// front of the runtime should keep it low).
func (d *Driver) Loads() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.loads
}

// Stats counts the Infer calls on loaded models and the rows they carried
// (a test hook: batching shows as rows/calls above 1).
func (d *Driver) Stats() (calls, rows int64) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.calls, d.rows
}

// Close unloads every model; later calls are Unavailable.
func (d *Driver) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	d.models = map[string]*loaded{}
	return nil
}

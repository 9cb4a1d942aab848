package ai

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/schemes"
)

// LoadSpec says which model a runtime should make ready.
type LoadSpec struct {
	// Key names the loaded model inside the runtime: Infer and Unload use
	// it. The executor uses the model's digest, so the same bytes pushed by
	// two tenants load once.
	Key string
	// Model is the registry's description of the version.
	Model Model
	// Path is a local copy of the artifact whose digest was checked: the
	// TorchScript file, or the SavedModel directory (the pushed tar
	// unpacked). Runtimes that serve models they hold themselves (remote
	// servers) ignore it.
	Path string
	// Device is "cpu", "cuda", or "" for the runtime's choice (CUDA when
	// the runtime has a GPU).
	Device string
}

// LoadInfo describes a loaded model.
type LoadInfo struct {
	// Device the model runs on ("cpu", "cuda:0").
	Device string
	// Took is how long the load took inside the runtime.
	Took time.Duration
	// Served is set by runtimes that serve their own copy of the model (a
	// remote server, which ignores LoadSpec.Path): what the server says it
	// serves. Nil for runtimes that load the checked artifact at Path.
	Served *ServedModel
}

// ServedModel is what a remote runtime serves in place of the artifact
// Grey checked: proofs name it next to the registry's digest.
type ServedModel struct {
	// Server is the server's URL, credentials removed.
	Server string `json:"server"`
	// Name and Version are the server's names for the model (Version ""
	// when the server serves one version under the name).
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	// Digest is the digest the server reports for the model, equal to the
	// registry's (a server reporting another digest fails the load), or
	// "" when the server reports none: then the registry's digest in a
	// proof names the artifact Grey resolved, not bytes Grey saw run.
	Digest string `json:"digest,omitempty"`
}

// RuntimeInfo describes a runtime, for proofs and for routing.
type RuntimeInfo struct {
	// Name of the runtime implementation ("grey-python", "oip", "tfserving",
	// "mem").
	Name string `json:"name"`
	// Version of the runtime implementation (or the remote server's).
	Version string `json:"version"`
	// Frameworks the runtime serves, each with its version ("2.6.0").
	Frameworks map[Framework]string `json:"frameworks"`
	// Devices the runtime can place models on ("cpu", "cuda:0", …).
	Devices []string `json:"devices"`
	// BLAS names the CPU linear-algebra library the runtime multiplies
	// with, as it reports it ("openblas: OpenBLAS 0.3.21 … threads=1
	// (/usr/lib/…/libopenblasp-r0.3.21.so)"); empty when it does not say.
	// Batching pays on CPU only with an optimised one (docs/INFERENCE.md).
	BLAS string `json:"blas,omitempty"`
}

// HasGPU reports whether a CUDA device is among i's devices.
func (i RuntimeInfo) HasGPU() bool {
	for _, d := range i.Devices {
		if len(d) >= 4 && d[:4] == "cuda" {
			return true
		}
	}
	return false
}

// Driver is what a runtime implementation provides. The Runtime portable
// type validates arguments and results around it; a driver may assume its
// arguments are valid.
//
// Errors: a driver returns a *greyerr.Error (or one wrapping it) with code
//   - Unavailable when the runtime itself failed (the process died, the
//     server did not answer): the work is retried, elsewhere or later;
//   - InvalidArgument when the inputs do not fit the model (wrong shape,
//     datatype or name), and FailedPrecondition when the artifact is not a
//     model for the framework: retrying cannot help;
//   - NotFound when Key names no loaded model;
//   - any other code, or ErrModel, when the model raised.
//
// A driver is safe for concurrent use.
type Driver interface {
	// Info describes the runtime. It may start the runtime.
	Info(ctx context.Context) (RuntimeInfo, error)
	// Load makes spec's model ready under spec.Key. Loading a key that is
	// loaded is a no-op that answers the first load's info.
	Load(ctx context.Context, spec LoadSpec) (LoadInfo, error)
	// Unload releases the model under key (no-op when none).
	Unload(ctx context.Context, key string) error
	// Infer runs the model under key on a batch of inputs (the batch
	// dimension first) and returns its outputs, each with the inputs'
	// number of rows along its first dimension. names, when not empty,
	// are the outputs wanted; else all.
	Infer(ctx context.Context, key string, inputs []Tensor, names []string) ([]Tensor, error)
	// Close stops the runtime and releases what it holds.
	Close() error
}

// ErrModel is wrapped by errors a model raised while running: retrying the
// same inputs would raise again.
var ErrModel = greyerr.New(greyerr.FailedPrecondition, "the model raised")

// Runtime is the portable type over a Driver: it checks inputs before and
// outputs after every call, so that the executor never splits a malformed
// batch.
type Runtime struct {
	drv  Driver
	name string
}

// NewRuntime wraps drv; name labels it in errors and metrics.
func NewRuntime(name string, drv Driver) *Runtime { return &Runtime{drv: drv, name: name} }

// Name is the runtime's configured name.
func (r *Runtime) Name() string { return r.name }

// Driver returns the driver (for As-style access in tests).
func (r *Runtime) Driver() Driver { return r.drv }

// Info describes the runtime.
func (r *Runtime) Info(ctx context.Context) (RuntimeInfo, error) {
	i, err := r.drv.Info(ctx)
	if err != nil {
		return RuntimeInfo{}, fmt.Errorf("runtime %s: %w", r.name, err)
	}
	return i, nil
}

// Load makes a model ready.
func (r *Runtime) Load(ctx context.Context, spec LoadSpec) (LoadInfo, error) {
	if spec.Key == "" {
		return LoadInfo{}, greyerr.Invalid("key", "a load needs a key")
	}
	if !spec.Model.Framework.Valid() {
		return LoadInfo{}, greyerr.Invalid("framework", "framework %q is not one Grey serves (pytorch, tensorflow)", spec.Model.Framework)
	}
	li, err := r.drv.Load(ctx, spec)
	if err != nil {
		return LoadInfo{}, fmt.Errorf("runtime %s: load %s:%s: %w", r.name, spec.Model.Name, spec.Model.Version, err)
	}
	return li, nil
}

// Unload releases a model.
func (r *Runtime) Unload(ctx context.Context, key string) error {
	if err := r.drv.Unload(ctx, key); err != nil {
		return fmt.Errorf("runtime %s: unload: %w", r.name, err)
	}
	return nil
}

// Infer runs a batch: every input valid and with the same number of rows;
// every output valid and with as many rows.
func (r *Runtime) Infer(ctx context.Context, key string, inputs []Tensor, names []string) ([]Tensor, error) {
	if len(inputs) == 0 {
		return nil, greyerr.Invalid("inputs", "an inference needs at least one input")
	}
	for i := range inputs {
		if err := inputs[i].Validate(fmt.Sprintf("inputs[%d]", i)); err != nil {
			return nil, err
		}
		if len(inputs[i].Shape) == 0 || inputs[i].Shape[0] != inputs[0].Shape[0] {
			return nil, greyerr.Invalid(fmt.Sprintf("inputs[%d].shape", i), "every input needs the same batch dimension first")
		}
	}
	out, err := r.drv.Infer(ctx, key, inputs, names)
	if err != nil {
		return nil, fmt.Errorf("runtime %s: %w", r.name, err)
	}
	rows := inputs[0].Shape[0]
	for i := range out {
		if err := out[i].Validate(fmt.Sprintf("outputs[%d]", i)); err != nil {
			return nil, greyerr.Wrap(greyerr.Internal, err, "runtime %s answered a malformed output", r.name)
		}
		if len(out[i].Shape) == 0 || out[i].Shape[0] != rows {
			return nil, greyerr.New(greyerr.Internal, "runtime %s answered output %q with shape %v for a batch of %d", r.name, out[i].Name, out[i].Shape, rows)
		}
	}
	return out, nil
}

// Close stops the runtime.
func (r *Runtime) Close() error { return r.drv.Close() }

// OpenOptions are what every runtime driver may use.
type OpenOptions struct {
	// Logger receives the runtime's log lines (nil: discarded).
	Logger *slog.Logger
	// Timeout bounds one inference when its context has no deadline
	// (GREY_INFERENCE_TIMEOUT; 0: 30s).
	Timeout time.Duration
}

// Opener opens a Driver for a runtime URL of its scheme.
type Opener interface {
	OpenDriver(ctx context.Context, u *url.URL, opts OpenOptions) (Driver, error)
}

// OpenerFunc adapts a function to Opener.
type OpenerFunc func(ctx context.Context, u *url.URL, opts OpenOptions) (Driver, error)

// OpenDriver calls f.
func (f OpenerFunc) OpenDriver(ctx context.Context, u *url.URL, opts OpenOptions) (Driver, error) {
	return f(ctx, u, opts)
}

// Registry maps runtime URL schemes to drivers. Binaries register the
// drivers they link; the core registers none.
type Registry struct {
	table *schemes.Table[Opener]
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{table: schemes.New[Opener]("ai", "runtime", redact)}
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Register makes scheme open with o.
func (r *Registry) Register(scheme string, o Opener) error { return r.table.Register(scheme, o) }

// Schemes lists the registered schemes.
func (r *Registry) Schemes() []string { return r.table.Schemes() }

// Open opens the runtime at rawURL, named name.
func (r *Registry) Open(ctx context.Context, name, rawURL string, opts OpenOptions) (*Runtime, error) {
	u, o, err := r.table.Lookup(rawURL)
	if err != nil {
		return nil, err
	}
	drv, err := o.OpenDriver(ctx, u, opts)
	if err != nil {
		return nil, fmt.Errorf("runtime %s (%s): %w", name, redact(rawURL), err)
	}
	return NewRuntime(name, drv), nil
}

// Package oipruntime is the runtime driver for any server speaking the
// Open Inference Protocol's REST API (KServe v2: KServe's model servers,
// Triton, Seldon MLServer, TorchServe's v2 mode), schemes oip+http and
// oip+https.
//
// The server holds its models: Load does not send the artifact (the
// LoadSpec's Path is ignored) but checks that the server has the model
// (GET /v2/models/{name}[/versions/{v}]/ready, then its metadata) and
// remembers the key. Infer posts the inputs as JSON tensors to
// /v2/models/{name}[/versions/{v}]/infer: as JSON tensors, or, when the
// inputs hold binary_min_bytes or more, with the binary tensor data
// extension (a JSON header of Inference-Header-Content-Length bytes, then
// the inputs' raw little-endian bytes; outputs asked for binary too, and
// read either way), which spares both sides printing and parsing a number
// per element.
//
// What the proof names: Grey's registry resolves the model and its digest
// as for any runtime, and LoadInfo.Served says what the server serves. When
// the server's model metadata reports a digest (a "digest" or "sha256"
// entry in its parameters, an extension some servers carry), the driver
// compares it with the registry's and fails the load on a mismatch: the
// proof's digest then names the bytes that ran. When it reports none (the
// Open Inference Protocol has no standard field for it, and KServe's
// server sends none), the proof's digest names the registry artifact
// Grey resolved, which the server was set up to serve but Grey did not
// see run; digest=require in the URL refuses such servers.
//
// URL: oip+http://host:port[/prefix]?param=value&…, parameters:
//
//	model=grey-name=server-name  the server's name for a Grey model (repeatable; default the same name)
//	versioned=false              leave the version out of the paths (servers with one version a name, such as KServe's Python server)
//	digest=require               fail a load when the server reports no digest
//	frameworks=pytorch,tensorflow  frameworks routed here (default both)
//	devices=cpu|cuda:0           what Info reports (default cpu)
//	timeout=30s                  bound of one call without a deadline (default the runtime's, 30s)
//	max_response_bytes=N         bound of an answer (default 256 MiB)
//	binary_min_bytes=N|off       inputs of N bytes or more go as binary tensors (default 65536; 0 always, off never)
//	ca_file=/path/ca.pem         CAs to trust for oip+https (default the system's)
//	token_file=/path/token       a bearer token sent with every request (read at open)
//
// Credentials in the URL (oip+https://user:password@host) are sent as basic
// authentication; errors and proofs name the server without them.
package oipruntime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/internal/remote"
	"github.com/grey-distributed/grey/greyerr"
)

// The schemes of the Open Inference Protocol runtime.
const (
	SchemeHTTP  = "oip+http"
	SchemeHTTPS = "oip+https"
)

const prefix = "oip"

// Register registers oip+http and oip+https in r.
func Register(r *ai.Registry) error {
	return remote.Register(r, OpenURL, SchemeHTTP, SchemeHTTPS)
}

// OpenURL opens a driver for an oip+http(s) URL. It does not contact the
// server (Info and Load do).
func OpenURL(u *url.URL, opts ai.OpenOptions) (*Driver, error) {
	o, ext, err := remote.ParseURL(u, prefix, []string{"binary_min_bytes"}, opts)
	if err != nil {
		return nil, err
	}
	binMin := int64(DefaultBinaryMinBytes)
	if v := ext.Get("binary_min_bytes"); v == "off" {
		binMin = -1
	} else if v != "" {
		if binMin, err = strconv.ParseInt(v, 10, 64); err != nil || binMin < 0 {
			return nil, greyerr.Invalid("url", "%s runtime: parameter binary_min_bytes: %q is not a byte count or off", prefix, v)
		}
	}
	c, err := remote.NewClient(o, prefix)
	if err != nil {
		return nil, err
	}
	return &Driver{c: c, o: c.Options(), keys: remote.NewKeys[*model](prefix), binMin: binMin}, nil
}

// DefaultBinaryMinBytes is the input size from which a request goes with
// binary tensors unless the URL says otherwise (binary_min_bytes).
const DefaultBinaryMinBytes = 64 << 10

// Driver is the Open Inference Protocol runtime. It is safe for concurrent
// use.
type Driver struct {
	c    *remote.Client
	o    *remote.Options
	keys *remote.Keys[*model]
	// binMin: inputs of this many bytes or more go binary; -1 never.
	binMin int64
}

var _ ai.Driver = (*Driver)(nil)

// TensorMeta is a tensor of a model's metadata.
type TensorMeta struct {
	// Name of the tensor.
	Name string `json:"name"`
	// Datatype of its elements.
	Datatype ai.Datatype `json:"datatype"`
	// Shape, -1 for a variable dimension.
	Shape []int64 `json:"shape"`
}

// ModelMeta is a model's metadata (GET /v2/models/{name}).
type ModelMeta struct {
	// Name of the model on the server.
	Name string `json:"name"`
	// Versions the server has (may be empty).
	Versions []string `json:"versions"`
	// Platform, such as "pytorch_libtorch".
	Platform string `json:"platform"`
	// Inputs and Outputs of the model (may be empty: then the server
	// checks the inputs alone).
	Inputs  []TensorMeta `json:"inputs"`
	Outputs []TensorMeta `json:"outputs"`
	// Parameters, an extension: "digest" ("sha256:<hex>") or "sha256"
	// (hex) name the served artifact.
	Parameters map[string]any `json:"parameters"`
}

// Digest returns the digest the metadata reports, "" when none.
func (m *ModelMeta) Digest() string {
	if d, ok := m.Parameters["digest"].(string); ok && d != "" {
		return strings.ToLower(d)
	}
	if d, ok := m.Parameters["sha256"].(string); ok && d != "" {
		return "sha256:" + strings.ToLower(strings.TrimPrefix(d, "sha256:"))
	}
	return ""
}

type model struct {
	path string // /v2/models/{name}[/versions/{v}]
	meta ModelMeta
	info ai.LoadInfo
}

// Info asks the server's metadata (GET /v2) and readiness
// (GET /v2/health/ready). Name is "oip"; Version is the server's name and
// version ("kserve 0.21.0"); framework versions are "unknown" (the protocol
// does not say them).
func (d *Driver) Info(ctx context.Context) (ai.RuntimeInfo, error) {
	if d.keys.Closed() {
		return ai.RuntimeInfo{}, d.keys.ErrClosed()
	}
	ctx, cancel := d.c.WithTimeout(ctx)
	defer cancel()
	status, body, err := d.c.Do(ctx, http.MethodGet, "/v2/health/ready", nil)
	if err != nil {
		return ai.RuntimeInfo{}, err
	}
	if status != http.StatusOK {
		return ai.RuntimeInfo{}, greyerr.New(greyerr.Unavailable, "oip runtime: %s is not ready (%d: %s)", d.c.Server(), status, remote.Message(body))
	}
	status, body, err = d.c.Do(ctx, http.MethodGet, "/v2", nil)
	if err != nil {
		return ai.RuntimeInfo{}, err
	}
	var sm struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	// Server metadata is informative only: a server that is ready but
	// answers it badly still serves.
	if status == http.StatusOK {
		_ = json.Unmarshal(body, &sm)
	}
	version := strings.TrimSpace(sm.Name + " " + sm.Version)
	if version == "" {
		version = "unknown"
	}
	return d.c.RuntimeInfo("oip", version), nil
}

// Load checks that the server has spec's model, ready, and keeps its
// metadata under spec.Key. A model the server lacks, another version, a
// digest that differs from the registry's (or none with digest=require),
// or a framework not routed here: FailedPrecondition. A server that does
// not answer, or a model not ready yet: Unavailable.
func (d *Driver) Load(ctx context.Context, spec ai.LoadSpec) (ai.LoadInfo, error) {
	if m, ok, err := d.keys.Lookup(spec.Key); err != nil || ok {
		if err != nil {
			return ai.LoadInfo{}, err
		}
		return m.info, nil
	}
	start := time.Now()
	dev, err := d.c.Placement(spec)
	if err != nil {
		return ai.LoadInfo{}, err
	}
	ctx, cancel := d.c.WithTimeout(ctx)
	defer cancel()
	name := d.o.ServerName(spec.Model.Name)
	path := "/v2/models/" + name
	version := ""
	if d.o.Versioned {
		version = spec.Model.Version
		path += "/versions/" + version
	}
	status, body, err := d.c.Do(ctx, http.MethodGet, path+"/ready", nil)
	if err != nil {
		return ai.LoadInfo{}, err
	}
	if status != http.StatusOK {
		if status == http.StatusServiceUnavailable {
			return ai.LoadInfo{}, greyerr.New(greyerr.Unavailable, "oip runtime: model %q is not ready on %s: %s", name, d.c.Server(), remote.Message(body))
		}
		return ai.LoadInfo{}, d.c.LoadError(status, body, name, version)
	}
	var ready struct {
		Ready *bool `json:"ready"`
	}
	if json.Unmarshal(body, &ready) == nil && ready.Ready != nil && !*ready.Ready {
		return ai.LoadInfo{}, greyerr.New(greyerr.Unavailable, "oip runtime: model %q is not ready on %s", name, d.c.Server())
	}
	status, body, err = d.c.Do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return ai.LoadInfo{}, err
	}
	if status != http.StatusOK {
		return ai.LoadInfo{}, d.c.LoadError(status, body, name, version)
	}
	var meta ModelMeta
	if err := json.Unmarshal(body, &meta); err != nil {
		return ai.LoadInfo{}, d.c.Malformed("model metadata", err)
	}
	if len(meta.Versions) > 0 && !slices.Contains(meta.Versions, spec.Model.Version) {
		return ai.LoadInfo{}, greyerr.New(greyerr.FailedPrecondition, "oip runtime: the server has versions %v of %q, not %q", meta.Versions, name, spec.Model.Version)
	}
	digest := meta.Digest()
	switch {
	case digest != "" && digest != strings.ToLower(spec.Model.Digest):
		return ai.LoadInfo{}, greyerr.New(greyerr.FailedPrecondition, "oip runtime: the server serves %q with digest %s, the registry's is %s", name, digest, spec.Model.Digest)
	case digest == "" && d.o.RequireDigest:
		return ai.LoadInfo{}, greyerr.New(greyerr.FailedPrecondition, "oip runtime: the server reports no digest for %q (digest=require)", name)
	}
	info := ai.LoadInfo{Device: dev, Took: time.Since(start), Served: &ai.ServedModel{Server: d.c.Server(), Name: name, Version: version, Digest: digest}}
	m, err := d.keys.Put(spec.Key, &model{path: path, meta: meta, info: info})
	if err != nil {
		return ai.LoadInfo{}, err
	}
	return m.info, nil
}

// Unload forgets key (the server keeps its model).
func (d *Driver) Unload(_ context.Context, key string) error {
	d.keys.Delete(key)
	return nil
}

type requestedOutput struct {
	Name       string         `json:"name"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

// binaryRequest is the JSON header of a request with binary tensors.
type binaryRequest struct {
	Inputs     []ai.BinaryEntry  `json:"inputs"`
	Outputs    []requestedOutput `json:"outputs,omitempty"`
	Parameters map[string]any    `json:"parameters"`
}

type inferRequest struct {
	Inputs  []ai.Tensor       `json:"inputs"`
	Outputs []requestedOutput `json:"outputs,omitempty"`
}

type inferResponse struct {
	Outputs []ai.Tensor `json:"outputs"`
}

// Infer checks the inputs against the model's metadata (when the server
// gave any), posts them, and returns the outputs asked for, in the order
// asked (else the server's). Codes: see remote.Client.InferError.
func (d *Driver) Infer(ctx context.Context, key string, inputs []ai.Tensor, names []string) ([]ai.Tensor, error) {
	m, err := d.keys.Get(key)
	if err != nil {
		return nil, err
	}
	if err := checkInputs(&m.meta, inputs); err != nil {
		return nil, err
	}
	if err := checkOutputs(&m.meta, names); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ctx, cancel := d.c.WithTimeout(ctx)
	defer cancel()
	var size int64
	for _, in := range inputs {
		size += int64(len(in.Data))
	}
	var (
		status int
		hdr    http.Header
		body   []byte
	)
	if d.binMin >= 0 && size >= d.binMin {
		entries, raw := ai.BinaryEntries(inputs)
		req := binaryRequest{Inputs: entries, Parameters: map[string]any{"binary_data_output": true}}
		for _, n := range names {
			req.Outputs = append(req.Outputs, requestedOutput{Name: n, Parameters: map[string]any{"binary_data": true}})
		}
		head, err := json.Marshal(req)
		if err != nil {
			return nil, fmt.Errorf("oip runtime: encode the request: %w", err)
		}
		b := append(head, raw...)
		status, hdr, body, err = d.c.DoBytes(ctx, http.MethodPost, m.path+"/infer", b, http.Header{
			"Content-Type":                  {"application/octet-stream"},
			ai.InferenceHeaderContentLength: {strconv.Itoa(len(head))},
		})
		if err != nil {
			return nil, err
		}
	} else {
		req := inferRequest{Inputs: inputs}
		for _, n := range names {
			req.Outputs = append(req.Outputs, requestedOutput{Name: n})
		}
		b, err := json.Marshal(req)
		if err != nil {
			return nil, fmt.Errorf("oip runtime: encode the request: %w", err)
		}
		status, hdr, body, err = d.c.DoBytes(ctx, http.MethodPost, m.path+"/infer", b, http.Header{"Content-Type": {"application/json"}})
		if err != nil {
			return nil, err
		}
	}
	if status != http.StatusOK {
		if hl := hdr.Get(ai.InferenceHeaderContentLength); hl != "" {
			if h, _, err := ai.SplitBinaryBody(body, hl); err == nil {
				body = h
			}
		}
		return nil, remote.CtxErr(ctx, d.c.InferError(status, body))
	}
	out, err := decodeResponse(body, hdr.Get(ai.InferenceHeaderContentLength), names)
	if err != nil {
		if greyerr.Is(err, greyerr.InvalidArgument) && !errors.Is(err, errMalformed) {
			return nil, err
		}
		return nil, d.c.Malformed("inference response", err)
	}
	return out, nil
}

var errMalformed = errors.New("malformed")

// decodeResponse reads an inference response's outputs and picks those
// asked for, in the order asked. An output asked for and missing is
// InvalidArgument; anything else wrong wraps errMalformed.
func decodeResponse(body []byte, headerLen string, names []string) ([]ai.Tensor, error) {
	var resp inferResponse
	if headerLen != "" {
		head, raw, err := ai.SplitBinaryBody(body, headerLen)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errMalformed, err)
		}
		var r struct {
			Outputs []json.RawMessage `json:"outputs"`
		}
		if err := json.Unmarshal(head, &r); err != nil {
			return nil, fmt.Errorf("%w: %w", errMalformed, err)
		}
		if resp.Outputs, err = ai.DecodeBinaryTensors(r.Outputs, raw, "outputs"); err != nil {
			return nil, fmt.Errorf("%w: %w", errMalformed, err)
		}
	} else if err := json.NewDecoder(bytes.NewReader(body)).Decode(&resp); err != nil {
		return nil, fmt.Errorf("%w: %w", errMalformed, err)
	}
	if len(names) == 0 {
		return resp.Outputs, nil
	}
	out := make([]ai.Tensor, 0, len(names))
	for _, n := range names {
		i := slices.IndexFunc(resp.Outputs, func(t ai.Tensor) bool { return t.Name == n })
		if i < 0 {
			return nil, greyerr.Invalid("outputs", "oip runtime: the model gave no output %q", n)
		}
		out = append(out, resp.Outputs[i])
	}
	return out, nil
}

// checkInputs holds inputs to the metadata: every input the model has,
// none it lacks, each of its datatype and rank, fixed dimensions equal.
func checkInputs(meta *ModelMeta, inputs []ai.Tensor) error {
	if len(meta.Inputs) == 0 {
		return nil
	}
	for i := range inputs {
		x := &inputs[i]
		field := fmt.Sprintf("inputs[%d]", i)
		j := slices.IndexFunc(meta.Inputs, func(t TensorMeta) bool { return t.Name == x.Name })
		if j < 0 {
			return greyerr.Invalid(field+".name", "the model has no input %q (it has %s)", x.Name, metaNames(meta.Inputs))
		}
		want := &meta.Inputs[j]
		if want.Datatype != "" && x.Datatype != want.Datatype {
			return greyerr.Invalid(field+".datatype", "input %q is %s, got %s", x.Name, want.Datatype, x.Datatype)
		}
		if want.Shape != nil {
			if len(x.Shape) != len(want.Shape) {
				return greyerr.Invalid(field+".shape", "input %q has shape %v, got %v", x.Name, want.Shape, x.Shape)
			}
			for k, dim := range want.Shape {
				if dim >= 0 && x.Shape[k] != dim {
					return greyerr.Invalid(field+".shape", "input %q has shape %v, got %v", x.Name, want.Shape, x.Shape)
				}
			}
		}
	}
	for _, want := range meta.Inputs {
		if !slices.ContainsFunc(inputs, func(t ai.Tensor) bool { return t.Name == want.Name }) {
			return greyerr.Invalid("inputs", "the model's input %q is missing", want.Name)
		}
	}
	return nil
}

func checkOutputs(meta *ModelMeta, names []string) error {
	if len(meta.Outputs) == 0 {
		return nil
	}
	for i, n := range names {
		if !slices.ContainsFunc(meta.Outputs, func(t TensorMeta) bool { return t.Name == n }) {
			return greyerr.Invalid(fmt.Sprintf("outputs[%d].name", i), "the model has no output %q (it has %s)", n, metaNames(meta.Outputs))
		}
	}
	return nil
}

func metaNames(ts []TensorMeta) string {
	out := make([]string, len(ts))
	for i := range ts {
		out[i] = ts[i].Name
	}
	return strings.Join(out, ", ")
}

// Close forgets every key; later calls are Unavailable.
func (d *Driver) Close() error {
	d.keys.Close()
	d.c.CloseIdle()
	return nil
}

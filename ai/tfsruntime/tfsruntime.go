// Package tfsruntime is the runtime driver for TensorFlow Serving's REST
// API, schemes tfserving+http and tfserving+https.
//
// The server holds its models: Load does not send the artifact (the
// LoadSpec's Path is ignored) but checks that the server has the version
// AVAILABLE (GET /v1/models/{name}[/versions/{v}]) and reads its signature
// (GET …/metadata), whose datatypes the driver needs: TF Serving's answers
// carry none. Infer posts to /v1/models/{name}[/versions/{v}]:predict, in
// the columnar form ({"inputs": {name: nested lists}}, answered with
// "outputs") or, with format=row, the row form ({"instances": [...]},
// answered with "predictions"). A version that is an integer goes in the
// path as /versions/N; any other (a registry version such as "stable") as
// /labels/NAME, TF Serving's version labels.
//
// What the proof names: TF Serving reports no digest of the model it
// serves, so LoadInfo.Served names the server, model and version with no
// digest, and a proof's digest names the registry artifact Grey resolved,
// which the server was set up to serve but Grey did not see run.
// digest=require therefore refuses every TF Serving model.
//
// TF Serving maps a model's own errors to HTTP statuses by their
// TensorFlow code: an op that rejects its input (INVALID_ARGUMENT,
// FAILED_PRECONDITION) answers 400, which this driver reports as
// InvalidArgument; only 500 (INTERNAL, UNKNOWN) is ai.ErrModel.
//
// URL: tfserving+http://host:port[/prefix]?param=value&…, parameters:
// those of the oip runtime (model, versioned, digest, frameworks, devices,
// timeout, max_response_bytes, ca_file) and
//
//	signature=serving_default  the signature to run (default serving_default)
//	format=columnar|row        the request form (default columnar)
package tfsruntime

import (
	"bytes"
	"context"
	"encoding/json"
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

// The schemes of the TF Serving runtime.
const (
	SchemeHTTP  = "tfserving+http"
	SchemeHTTPS = "tfserving+https"
)

// DefaultSignature is the signature run when the URL names none.
const DefaultSignature = "serving_default"

const prefix = "tfserving"

// Register registers tfserving+http and tfserving+https in r.
func Register(r *ai.Registry) error {
	return remote.Register(r, OpenURL, SchemeHTTP, SchemeHTTPS)
}

// OpenURL opens a driver for a tfserving+http(s) URL. It does not contact
// the server (Info and Load do).
func OpenURL(u *url.URL, opts ai.OpenOptions) (*Driver, error) {
	o, ext, err := remote.ParseURL(u, prefix, []string{"signature", "format"}, opts)
	if err != nil {
		return nil, err
	}
	d := &Driver{signature: DefaultSignature}
	if s := ext.Get("signature"); s != "" {
		d.signature = s
	}
	switch f := ext.Get("format"); f {
	case "", "columnar":
	case "row":
		d.rows = true
	default:
		return nil, greyerr.Invalid("url", "tfserving runtime: parameter format: %q is not columnar or row", f)
	}
	if d.c, err = remote.NewClient(o, prefix); err != nil {
		return nil, err
	}
	d.o = d.c.Options()
	d.keys = remote.NewKeys[*model](prefix)
	return d, nil
}

// Driver is the TF Serving runtime. It is safe for concurrent use.
type Driver struct {
	c         *remote.Client
	o         *remote.Options
	keys      *remote.Keys[*model]
	signature string
	rows      bool
}

var _ ai.Driver = (*Driver)(nil)

type tensorInfo struct {
	Dtype       string `json:"dtype"`
	TensorShape struct {
		Dim []struct {
			Size string `json:"size"`
		} `json:"dim"`
		UnknownRank bool `json:"unknown_rank"`
	} `json:"tensor_shape"`
}

type signatureDef struct {
	Inputs  map[string]tensorInfo `json:"inputs"`
	Outputs map[string]tensorInfo `json:"outputs"`
}

type metadataResponse struct {
	Metadata struct {
		SignatureDef struct {
			SignatureDef map[string]signatureDef `json:"signature_def"`
		} `json:"signature_def"`
	} `json:"metadata"`
}

type statusResponse struct {
	ModelVersionStatus []struct {
		Version string `json:"version"`
		State   string `json:"state"`
		Status  struct {
			ErrorCode    string `json:"error_code"`
			ErrorMessage string `json:"error_message"`
		} `json:"status"`
	} `json:"model_version_status"`
}

// spec is a tensor of the signature in Grey's terms.
type spec struct {
	datatype ai.Datatype
	shape    []int64 // nil: unknown rank; -1: any size
}

type model struct {
	path    string
	inputs  map[string]spec
	outputs map[string]spec
	order   []string // output names, sorted
	info    ai.LoadInfo
}

// dtypes maps TensorFlow's datatypes to Grey's.
var dtypes = map[string]ai.Datatype{
	"DT_FLOAT": ai.FP32, "DT_DOUBLE": ai.FP64, "DT_INT8": ai.Int8, "DT_INT16": ai.Int16,
	"DT_INT32": ai.Int32, "DT_INT64": ai.Int64, "DT_UINT8": ai.Uint8, "DT_UINT16": ai.Uint16,
	"DT_UINT32": ai.Uint32, "DT_UINT64": ai.Uint64, "DT_BOOL": ai.Bool,
}

// Info checks the server answers (GET /v1/models/{none}: TF Serving has
// no server metadata or health route, so any answer, even a 404, proves it
// up). Name is "tfserving"; versions are "unknown".
func (d *Driver) Info(ctx context.Context) (ai.RuntimeInfo, error) {
	if d.keys.Closed() {
		return ai.RuntimeInfo{}, d.keys.ErrClosed()
	}
	ctx, cancel := d.c.WithTimeout(ctx)
	defer cancel()
	status, body, err := d.c.Do(ctx, http.MethodGet, "/v1/models/grey-health-probe", nil)
	if err != nil {
		return ai.RuntimeInfo{}, err
	}
	if status >= 500 || status == http.StatusTooManyRequests {
		return ai.RuntimeInfo{}, greyerr.New(greyerr.Unavailable, "tfserving runtime: %s answered %d: %s", d.c.Server(), status, remote.Message(body))
	}
	return d.c.RuntimeInfo("tfserving", "unknown"), nil
}

// Load checks the server has spec's version AVAILABLE and reads the
// signature. Missing model or version, a signature the server lacks or
// whose datatypes Grey does not carry (DT_STRING, DT_HALF), a framework
// not routed here, digest=require: FailedPrecondition. A version still
// loading, a server that does not answer: Unavailable.
func (d *Driver) Load(ctx context.Context, ls ai.LoadSpec) (ai.LoadInfo, error) {
	if m, ok, err := d.keys.Lookup(ls.Key); err != nil || ok {
		if err != nil {
			return ai.LoadInfo{}, err
		}
		return m.info, nil
	}
	start := time.Now()
	dev, err := d.c.Placement(ls)
	if err != nil {
		return ai.LoadInfo{}, err
	}
	if d.o.RequireDigest {
		return ai.LoadInfo{}, greyerr.New(greyerr.FailedPrecondition, "tfserving runtime: TF Serving reports no model digest (digest=require)")
	}
	ctx, cancel := d.c.WithTimeout(ctx)
	defer cancel()
	name := d.o.ServerName(ls.Model.Name)
	path := "/v1/models/" + name
	version := ""
	if d.o.Versioned {
		version = ls.Model.Version
		if _, err := strconv.ParseInt(version, 10, 64); err == nil {
			path += "/versions/" + version
		} else {
			path += "/labels/" + version
		}
	}
	status, body, err := d.c.Do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return ai.LoadInfo{}, err
	}
	if status != http.StatusOK {
		return ai.LoadInfo{}, d.c.LoadError(status, body, name, version)
	}
	var st statusResponse
	if err := json.Unmarshal(body, &st); err != nil {
		return ai.LoadInfo{}, d.c.Malformed("model status", err)
	}
	available, states := false, []string{}
	for _, v := range st.ModelVersionStatus {
		available = available || v.State == "AVAILABLE"
		states = append(states, v.Version+"="+v.State)
	}
	if !available {
		return ai.LoadInfo{}, greyerr.New(greyerr.Unavailable, "tfserving runtime: no version of %q is AVAILABLE on %s (%s)", name, d.c.Server(), strings.Join(states, ", "))
	}
	status, body, err = d.c.Do(ctx, http.MethodGet, path+"/metadata", nil)
	if err != nil {
		return ai.LoadInfo{}, err
	}
	if status != http.StatusOK {
		return ai.LoadInfo{}, d.c.LoadError(status, body, name, version)
	}
	var md metadataResponse
	if err := json.Unmarshal(body, &md); err != nil {
		return ai.LoadInfo{}, d.c.Malformed("model metadata", err)
	}
	sig, ok := md.Metadata.SignatureDef.SignatureDef[d.signature]
	if !ok {
		return ai.LoadInfo{}, greyerr.New(greyerr.FailedPrecondition, "tfserving runtime: model %q has no signature %q", name, d.signature)
	}
	m := &model{path: path, inputs: map[string]spec{}, outputs: map[string]spec{}}
	for _, side := range []struct {
		from map[string]tensorInfo
		to   map[string]spec
	}{{sig.Inputs, m.inputs}, {sig.Outputs, m.outputs}} {
		for n, ti := range side.from {
			sp, err := toSpec(ti)
			if err != nil {
				return ai.LoadInfo{}, greyerr.New(greyerr.FailedPrecondition, "tfserving runtime: model %q, tensor %q: %v", name, n, err)
			}
			side.to[n] = sp
		}
	}
	if len(m.inputs) == 0 || len(m.outputs) == 0 {
		return ai.LoadInfo{}, greyerr.New(greyerr.FailedPrecondition, "tfserving runtime: signature %q of %q has no inputs or no outputs", d.signature, name)
	}
	for n := range m.outputs {
		m.order = append(m.order, n)
	}
	slices.Sort(m.order)
	m.info = ai.LoadInfo{Device: dev, Took: time.Since(start), Served: &ai.ServedModel{Server: d.c.Server(), Name: name, Version: version}}
	m, err = d.keys.Put(ls.Key, m)
	if err != nil {
		return ai.LoadInfo{}, err
	}
	return m.info, nil
}

func toSpec(ti tensorInfo) (spec, error) {
	dt, ok := dtypes[ti.Dtype]
	if !ok {
		return spec{}, fmt.Errorf("datatype %s is not one Grey carries", ti.Dtype)
	}
	sp := spec{datatype: dt}
	if !ti.TensorShape.UnknownRank {
		sp.shape = []int64{}
		for _, dim := range ti.TensorShape.Dim {
			n, err := strconv.ParseInt(dim.Size, 10, 64)
			if err != nil {
				return spec{}, fmt.Errorf("dimension %q is not a number", dim.Size)
			}
			sp.shape = append(sp.shape, n)
		}
	}
	return sp, nil
}

// Unload forgets key (the server keeps its model).
func (d *Driver) Unload(_ context.Context, key string) error {
	d.keys.Delete(key)
	return nil
}

// Infer checks the inputs against the signature, posts them and returns
// the outputs asked for (every output, sorted by name, when names is
// empty). TF Serving's REST API has no output filter: every output is
// computed and the others dropped.
func (d *Driver) Infer(ctx context.Context, key string, inputs []ai.Tensor, names []string) ([]ai.Tensor, error) {
	m, err := d.keys.Get(key)
	if err != nil {
		return nil, err
	}
	if err := m.check(inputs, names); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ctx, cancel := d.c.WithTimeout(ctx)
	defer cancel()
	req, err := d.request(inputs)
	if err != nil {
		return nil, err
	}
	status, body, err := d.c.Do(ctx, http.MethodPost, m.path+":predict", req)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, remote.CtxErr(ctx, d.c.InferError(status, body))
	}
	rows := inputs[0].Shape[0]
	var got map[string]ai.Tensor
	if d.rows {
		got, err = m.decodeRows(body)
	} else {
		got, err = m.decodeColumns(body)
	}
	if err != nil {
		return nil, d.c.Malformed("prediction", err)
	}
	if len(names) == 0 {
		names = m.order
	}
	out := make([]ai.Tensor, 0, len(names))
	for _, n := range names {
		t, ok := got[n]
		if !ok {
			return nil, d.c.Malformed("prediction", fmt.Errorf("no output %q", n))
		}
		if len(t.Shape) == 0 || t.Shape[0] != rows {
			return nil, d.c.Malformed("prediction", fmt.Errorf("output %q has shape %v for %d rows", n, t.Shape, rows))
		}
		out = append(out, t)
	}
	return out, nil
}

func (m *model) check(inputs []ai.Tensor, names []string) error {
	for i := range inputs {
		x := &inputs[i]
		field := fmt.Sprintf("inputs[%d]", i)
		sp, ok := m.inputs[x.Name]
		if !ok {
			return greyerr.Invalid(field+".name", "the signature has no input %q", x.Name)
		}
		if x.Datatype != sp.datatype {
			return greyerr.Invalid(field+".datatype", "input %q is %s, got %s", x.Name, sp.datatype, x.Datatype)
		}
		if sp.shape != nil {
			bad := len(x.Shape) != len(sp.shape)
			for k := 0; !bad && k < len(sp.shape); k++ {
				bad = sp.shape[k] >= 0 && x.Shape[k] != sp.shape[k]
			}
			if bad {
				return greyerr.Invalid(field+".shape", "input %q has shape %v, got %v", x.Name, sp.shape, x.Shape)
			}
		}
	}
	for n := range m.inputs {
		if !slices.ContainsFunc(inputs, func(t ai.Tensor) bool { return t.Name == n }) {
			return greyerr.Invalid("inputs", "the signature's input %q is missing", n)
		}
	}
	for i, n := range names {
		if _, ok := m.outputs[n]; !ok {
			return greyerr.Invalid(fmt.Sprintf("outputs[%d].name", i), "the signature has no output %q", n)
		}
	}
	return nil
}

func (d *Driver) request(inputs []ai.Tensor) (any, error) {
	if !d.rows {
		cols := map[string]json.RawMessage{}
		for i := range inputs {
			v, err := remote.Nested(&inputs[i])
			if err != nil {
				return nil, err
			}
			cols[inputs[i].Name] = v
		}
		return map[string]any{"signature_name": d.signature, "inputs": cols}, nil
	}
	instances := make([]map[string]json.RawMessage, inputs[0].Shape[0])
	for i := range instances {
		instances[i] = map[string]json.RawMessage{}
	}
	for i := range inputs {
		rows, err := remote.Rows(&inputs[i])
		if err != nil {
			return nil, err
		}
		for r, v := range rows {
			instances[r][inputs[i].Name] = v
		}
	}
	return map[string]any{"signature_name": d.signature, "instances": instances}, nil
}

func decode(body []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	return dec.Decode(v)
}

// decodeColumns reads {"outputs": {name: nested}} or, for a signature of
// one output, {"outputs": nested}.
func (m *model) decodeColumns(body []byte) (map[string]ai.Tensor, error) {
	var r struct {
		Outputs json.RawMessage `json:"outputs"`
	}
	if err := decode(body, &r); err != nil {
		return nil, err
	}
	if len(r.Outputs) == 0 {
		return nil, fmt.Errorf("no outputs")
	}
	raw := map[string]json.RawMessage{}
	if len(m.order) == 1 && bytes.TrimSpace(r.Outputs)[0] != '{' {
		raw[m.order[0]] = r.Outputs // one output: TF Serving leaves out its name
	} else if err := json.Unmarshal(r.Outputs, &raw); err != nil {
		return nil, fmt.Errorf("outputs: %w", err)
	}
	out := map[string]ai.Tensor{}
	for n, v := range raw {
		sp, ok := m.outputs[n]
		if !ok {
			continue
		}
		t, err := remote.FromNested(n, sp.datatype, v)
		if err != nil {
			return nil, err
		}
		out[n] = t
	}
	return out, nil
}

// decodeRows reads {"predictions": [row, …]}, each row an object by
// output name or, for a signature of one output, the output's value.
func (m *model) decodeRows(body []byte) (map[string]ai.Tensor, error) {
	var r struct {
		Predictions []any `json:"predictions"`
	}
	if err := decode(body, &r); err != nil {
		return nil, err
	}
	cols := map[string][]any{}
	for i, row := range r.Predictions {
		if len(m.order) == 1 {
			cols[m.order[0]] = append(cols[m.order[0]], row)
			continue
		}
		obj, ok := row.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("prediction %d is not an object of outputs", i)
		}
		for _, n := range m.order {
			v, ok := obj[n]
			if !ok {
				return nil, fmt.Errorf("prediction %d has no output %q", i, n)
			}
			cols[n] = append(cols[n], v)
		}
	}
	out := map[string]ai.Tensor{}
	for n, rows := range cols {
		if rows == nil {
			rows = []any{}
		}
		t, err := remote.StackRows(n, m.outputs[n].datatype, rows)
		if err != nil {
			return nil, err
		}
		out[n] = t
	}
	return out, nil
}

// Close forgets every key; later calls are Unavailable.
func (d *Driver) Close() error {
	d.keys.Close()
	d.c.CloseIdle()
	return nil
}

// Package tfstest is a fake TensorFlow Serving for tests: an httptest
// server that follows TF Serving's documented REST API (model status,
// model metadata with a signature_def, :predict in the columnar and the
// row form), serving memruntime models. It is a fake: no TF Serving
// binary installs on Grey's machines (there is no Debian or PyPI package
// of tensorflow_model_server), so the tfserving runtime is tested against
// this shape of the API only.
package tfstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/internal/remote"
	"github.com/grey-distributed/grey/ai/memruntime"
	"github.com/grey-distributed/grey/greyerr"
)

// Model is a model the fake serves.
type Model struct {
	// Name on the server.
	Name string
	// Versions AVAILABLE (integers; empty: "1").
	Versions []string
	// Labels map version labels to versions.
	Labels map[string]string
	// Outputs the signature has: memruntime.OutputY, OutputLabel or both
	// (empty: both). With one, answers take TF Serving's bare form.
	Outputs []string
	// Model computes.
	Model *memruntime.Model
}

// Server is the fake.
type Server struct {
	*httptest.Server
	mu     sync.Mutex
	models map[string]Model
	// Predicts counts predict requests.
	Predicts atomic.Int64
}

// New starts a fake serving models; Close it when done.
func New(models ...Model) *Server {
	s := &Server{models: map[string]Model{}}
	for _, m := range models {
		if len(m.Versions) == 0 {
			m.Versions = []string{"1"}
		}
		if len(m.Outputs) == 0 {
			m.Outputs = []string{memruntime.OutputY, memruntime.OutputLabel}
		}
		s.models[m.Name] = m
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Remove stops serving the named model.
func (s *Server) Remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.models, name)
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, msg string) {
	reply(w, status, map[string]string{"error": msg})
}

// serve routes /v1/models/{name}[/versions/{v}|/labels/{l}][/metadata|:predict].
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/models/")
	if !ok {
		fail(w, 404, "Malformed request: "+r.Method+" "+r.URL.Path)
		return
	}
	predict := strings.HasSuffix(rest, ":predict")
	rest = strings.TrimSuffix(rest, ":predict")
	metadata := strings.HasSuffix(rest, "/metadata")
	rest = strings.TrimSuffix(rest, "/metadata")
	parts := strings.Split(rest, "/")
	name, version := parts[0], ""
	s.mu.Lock()
	m, found := s.models[name]
	s.mu.Unlock()
	switch {
	case len(parts) == 3 && parts[1] == "versions":
		version = parts[2]
	case len(parts) == 3 && parts[1] == "labels":
		version, ok = m.Labels[parts[2]]
		if !ok {
			fail(w, 404, fmt.Sprintf("Unrecognized servable version label: %s", parts[2]))
			return
		}
	case len(parts) != 1:
		fail(w, 404, "Malformed request: "+r.URL.Path)
		return
	}
	if !found || (version != "" && !slices.Contains(m.Versions, version)) {
		fail(w, 404, fmt.Sprintf("Servable not found for request: Specific(%s, %s)", name, version))
		return
	}
	if version == "" {
		version = m.Versions[len(m.Versions)-1]
	}
	switch {
	case predict && r.Method == http.MethodPost:
		s.predict(w, r, m)
	case metadata && r.Method == http.MethodGet:
		s.metadata(w, m, version)
	case !predict && !metadata && r.Method == http.MethodGet:
		var st []map[string]any
		for _, v := range m.Versions {
			if len(parts) == 1 || v == version {
				st = append(st, map[string]any{"version": v, "state": "AVAILABLE", "status": map[string]string{"error_code": "OK", "error_message": ""}})
			}
		}
		reply(w, 200, map[string]any{"model_version_status": st})
	default:
		fail(w, 405, "method not allowed")
	}
}

func info(sp memruntime.TensorSpec) map[string]any {
	dims := []map[string]string{{"size": "-1", "name": ""}}
	for _, d := range sp.Shape {
		dims = append(dims, map[string]string{"size": fmt.Sprint(d), "name": ""})
	}
	dt := map[ai.Datatype]string{ai.FP32: "DT_FLOAT", ai.Int64: "DT_INT64"}[sp.Datatype]
	return map[string]any{"dtype": dt, "tensor_shape": map[string]any{"dim": dims, "unknown_rank": false}, "name": "serving_default_" + sp.Name + ":0"}
}

func (s *Server) metadata(w http.ResponseWriter, m Model, version string) {
	ins, outs := m.Model.Signature()
	in, out := map[string]any{}, map[string]any{}
	for _, sp := range ins {
		in[sp.Name] = info(sp)
	}
	for _, sp := range outs {
		if slices.Contains(m.Outputs, sp.Name) {
			out[sp.Name] = info(sp)
		}
	}
	reply(w, 200, map[string]any{
		"model_spec": map[string]any{"name": m.Name, "signature_name": "", "version": version},
		"metadata": map[string]any{"signature_def": map[string]any{
			"signature_def": map[string]any{"serving_default": map[string]any{"inputs": in, "outputs": out, "method_name": "tensorflow/serving/predict"}},
		}},
	})
}

type predictRequest struct {
	SignatureName string `json:"signature_name"`
	Inputs        any    `json:"inputs"`
	Instances     []any  `json:"instances"`
}

func (s *Server) predict(w http.ResponseWriter, r *http.Request, m Model) {
	s.Predicts.Add(1)
	var req predictRequest
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		fail(w, 400, "JSON Parse error: "+err.Error())
		return
	}
	_, _ = io.Copy(io.Discard, r.Body) // the server notices a client that left only once the body is read
	if req.SignatureName != "" && req.SignatureName != "serving_default" {
		fail(w, 400, "Serving signature name: \""+req.SignatureName+"\" not found in signature def")
		return
	}
	var x any
	rowForm := req.Instances != nil
	switch {
	case rowForm && req.Inputs != nil:
		fail(w, 400, "Only one of 'instances' or 'inputs' should be specified")
		return
	case rowForm:
		rows := make([]any, len(req.Instances))
		for i, inst := range req.Instances {
			obj, isObj := inst.(map[string]any)
			if !isObj {
				rows[i] = inst
				continue
			}
			for k := range obj {
				if k != memruntime.Input {
					fail(w, 400, "instance has an input the signature lacks: "+k)
					return
				}
			}
			rows[i] = obj[memruntime.Input]
		}
		x = rows
	default:
		if obj, isObj := req.Inputs.(map[string]any); isObj {
			for k := range obj {
				if k != memruntime.Input {
					fail(w, 400, "inputs has an input the signature lacks: "+k)
					return
				}
			}
			x = obj[memruntime.Input]
		} else {
			x = req.Inputs
		}
	}
	if x == nil {
		fail(w, 400, "missing input "+memruntime.Input)
		return
	}
	t, err := remote.FromValue(memruntime.Input, ai.FP32, x)
	if err != nil {
		fail(w, 400, err.Error())
		return
	}
	outs, err := m.Model.Infer(r.Context(), []ai.Tensor{t}, m.Outputs)
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return
	case greyerr.Is(err, greyerr.InvalidArgument):
		fail(w, 400, err.Error())
		return
	default:
		fail(w, 500, err.Error())
		return
	}
	if rowForm {
		reply(w, 200, map[string]any{"predictions": rowsOf(outs)})
		return
	}
	cols := map[string]json.RawMessage{}
	for i := range outs {
		cols[outs[i].Name], _ = remote.Nested(&outs[i])
	}
	if len(outs) == 1 {
		reply(w, 200, map[string]any{"outputs": cols[outs[0].Name]})
		return
	}
	reply(w, 200, map[string]any{"outputs": cols})
}

func rowsOf(outs []ai.Tensor) []any {
	per := make([][]json.RawMessage, len(outs))
	for i := range outs {
		per[i], _ = remote.Rows(&outs[i])
	}
	rows := make([]any, outs[0].Shape[0])
	for r := range rows {
		if len(outs) == 1 {
			rows[r] = per[0][r]
			continue
		}
		obj := map[string]json.RawMessage{}
		for i := range outs {
			obj[outs[i].Name] = per[i][r]
		}
		rows[r] = obj
	}
	return rows
}

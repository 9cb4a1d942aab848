// Package oiptest is a fake Open Inference Protocol server for tests: an
// httptest server that follows the REST API of the protocol (KServe v2:
// health, server and model metadata, model readiness, inference with JSON
// or binary tensors),
// serving memruntime models. It is a fake, written from the protocol's
// documentation; the oip runtime's tests also run against a real KServe
// model server when one is installed (GREY_TEST_KSERVE_URL).
package oiptest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/memruntime"
	"github.com/grey-distributed/grey/greyerr"
)

// Model is a model the fake serves.
type Model struct {
	// Name on the server.
	Name string
	// Versions served (empty: the server serves one version and reports
	// none; a request naming a version is then a 404).
	Versions []string
	// Digest reported in the metadata's parameters ("" reports none).
	Digest string
	// Model computes.
	Model *memruntime.Model
}

// Server is the fake.
type Server struct {
	*httptest.Server
	mu     sync.Mutex
	models map[string]Model
	ready  atomic.Bool
	// Infers counts inference requests.
	Infers atomic.Int64
	// BinaryInfers counts those with binary tensors.
	BinaryInfers atomic.Int64
}

// New starts a fake serving models; Close it when done.
func New(models ...Model) *Server {
	s := &Server{models: map[string]Model{}}
	s.ready.Store(true)
	for _, m := range models {
		s.models[m.Name] = m
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/health/ready", s.health)
	mux.HandleFunc("GET /v2/health/live", func(w http.ResponseWriter, _ *http.Request) { reply(w, 200, map[string]bool{"live": true}) })
	mux.HandleFunc("GET /v2", func(w http.ResponseWriter, _ *http.Request) {
		reply(w, 200, map[string]any{"name": "grey-oip-fake", "version": "1", "extensions": []string{}})
	})
	mux.HandleFunc("GET /v2/models/{name}", s.metadata)
	mux.HandleFunc("GET /v2/models/{name}/versions/{version}", s.metadata)
	mux.HandleFunc("GET /v2/models/{name}/ready", s.modelReady)
	mux.HandleFunc("GET /v2/models/{name}/versions/{version}/ready", s.modelReady)
	mux.HandleFunc("POST /v2/models/{name}/infer", s.infer)
	mux.HandleFunc("POST /v2/models/{name}/versions/{version}/infer", s.infer)
	s.Server = httptest.NewServer(mux)
	return s
}

// SetReady makes the server ready or not (503 on health and models).
func (s *Server) SetReady(ok bool) { s.ready.Store(ok) }

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

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	if !s.ready.Load() {
		fail(w, 503, "server not ready")
		return
	}
	reply(w, 200, map[string]bool{"ready": true})
}

// model finds the request's model and version, answering 404 or 503 when
// it cannot.
func (s *Server) model(w http.ResponseWriter, r *http.Request) (Model, bool) {
	if !s.ready.Load() {
		fail(w, 503, "server not ready")
		return Model{}, false
	}
	s.mu.Lock()
	m, ok := s.models[r.PathValue("name")]
	s.mu.Unlock()
	v := r.PathValue("version")
	if !ok || (v != "" && !slices.Contains(m.Versions, v)) {
		fail(w, 404, "model "+r.PathValue("name")+" version "+v+" not found")
		return Model{}, false
	}
	return m, true
}

func (s *Server) modelReady(w http.ResponseWriter, r *http.Request) {
	if m, ok := s.model(w, r); ok {
		reply(w, 200, map[string]any{"name": m.Name, "ready": true})
	}
}

func tensorMeta(specs []memruntime.TensorSpec) []map[string]any {
	out := make([]map[string]any, len(specs))
	for i, sp := range specs {
		out[i] = map[string]any{"name": sp.Name, "datatype": sp.Datatype, "shape": append([]int64{-1}, sp.Shape...)}
	}
	return out
}

func (s *Server) metadata(w http.ResponseWriter, r *http.Request) {
	m, ok := s.model(w, r)
	if !ok {
		return
	}
	in, out := m.Model.Signature()
	md := map[string]any{"name": m.Name, "platform": "grey_mem", "inputs": tensorMeta(in), "outputs": tensorMeta(out)}
	if len(m.Versions) > 0 {
		md["versions"] = m.Versions
	}
	if m.Digest != "" {
		md["parameters"] = map[string]any{"digest": m.Digest}
	}
	reply(w, 200, md)
}

type request struct {
	ID      string      `json:"id"`
	Inputs  []ai.Tensor `json:"inputs"`
	Outputs []struct {
		Name string `json:"name"`
	} `json:"outputs"`
}

func (s *Server) infer(w http.ResponseWriter, r *http.Request) {
	m, ok := s.model(w, r)
	if !ok {
		return
	}
	s.Infers.Add(1)
	var req request
	binary := r.Header.Get(ai.InferenceHeaderContentLength)
	if binary != "" {
		// The binary tensor data extension: a JSON header, then the
		// inputs' bytes.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		head, raw, err := ai.SplitBinaryBody(body, binary)
		if err == nil {
			var h struct {
				ID      string            `json:"id"`
				Inputs  []json.RawMessage `json:"inputs"`
				Outputs []struct {
					Name string `json:"name"`
				} `json:"outputs"`
			}
			if err = json.Unmarshal(head, &h); err == nil {
				req.ID, req.Outputs = h.ID, h.Outputs
				req.Inputs, err = ai.DecodeBinaryTensors(h.Inputs, raw, "inputs")
			}
		}
		if err != nil {
			fail(w, 400, "malformed inference request: "+err.Error())
			return
		}
		s.BinaryInfers.Add(1)
	} else if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		fail(w, 400, "malformed inference request: "+err.Error())
		return
	}
	// The server notices a client that left only once the body is read.
	_, _ = io.Copy(io.Discard, r.Body)
	var names []string
	for _, o := range req.Outputs {
		names = append(names, o.Name)
	}
	out, err := m.Model.Infer(r.Context(), req.Inputs, names)
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return // the client left
	case greyerr.Is(err, greyerr.InvalidArgument):
		fail(w, 400, err.Error())
		return
	default:
		fail(w, 500, err.Error())
		return
	}
	if binary != "" {
		// Binary outputs too, as Triton and KServe answer
		// binary_data_output.
		entries, raw := ai.BinaryEntries(out)
		head, _ := json.Marshal(map[string]any{"model_name": m.Name, "model_version": r.PathValue("version"), "id": req.ID, "outputs": entries})
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set(ai.InferenceHeaderContentLength, strconv.Itoa(len(head)))
		w.WriteHeader(200)
		_, _ = w.Write(append(head, raw...))
		return
	}
	reply(w, 200, map[string]any{"model_name": m.Name, "model_version": r.PathValue("version"), "id": req.ID, "outputs": out})
}

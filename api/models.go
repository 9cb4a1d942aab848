package api

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/modelstore"
	"github.com/grey-distributed/grey/artifact"
	"github.com/grey-distributed/grey/greyerr"
)

// Model routes: the tenant's model registry for the inference kind. Every
// route is tenant-scoped: another tenant's model is answered 404.

func init() {
	// Let the spec validator check model pushes (a TorchScript file, or the
	// tar of a SavedModel directory) and downloads.
	openapi3filter.RegisterBodyDecoder("application/x-tar", openapi3filter.FileBodyDecoder)
}

// modelTransferTimeout bounds one model push or download (models are up
// to ai.max_model_bytes, 2 GiB by default).
const modelTransferTimeout = 30 * time.Minute

// tenantModelRegistry returns the caller's tenant and the model registry, or
// writes the error and returns false.
func (s *Server) tenantModelRegistry(w http.ResponseWriter, r *http.Request) (string, *modelstore.Store, bool) {
	ten, err := tenantOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return "", nil, false
	}
	if s.opts.ModelRegistry == nil {
		s.writeError(w, r, greyerr.New(greyerr.Unimplemented, "this server has no model registry"))
		return "", nil, false
	}
	return ten, s.opts.ModelRegistry, true
}

// pushModel serves POST /api/v1/models/{name}/versions/{version}
// ?framework=pytorch|tensorflow: the body is the artifact, streamed to a
// spool file and checked before it is stored. 201 for a new version, 200
// when the version exists with these bytes, 409 with other bytes.
func (s *Server) pushModel(w http.ResponseWriter, r *http.Request) {
	ten, store, ok := s.tenantModelRegistry(w, r)
	if !ok {
		return
	}
	fw := r.URL.Query().Get("framework")
	if fw == "" {
		s.writeError(w, r, greyerr.Invalid("framework", "is required: pytorch or tensorflow"))
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, _ := mime.ParseMediaType(ct)
		if mt != "application/octet-stream" && mt != "application/x-tar" {
			s.writeError(w, r, greyerr.Invalid("Content-Type", "must be application/octet-stream (a TorchScript file) or application/x-tar (a SavedModel directory), got %q", ct))
			return
		}
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(modelTransferTimeout))
	body := &maxBytesBody{r: http.MaxBytesReader(w, r.Body, store.MaxBytes()), max: store.MaxBytes()}
	spec := modelstore.PushSpec{Name: r.PathValue("name"), Version: r.PathValue("version"), Framework: ai.Framework(fw)}
	m, created, err := store.Push(r.Context(), ten, spec, body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeStored(w, created, "/api/v1/models/"+m.Name+"/versions/"+m.Version, m)
}

// maxBytesBody turns http.MaxBytesReader's error into TooLarge naming
// the setting.
type maxBytesBody struct {
	r   io.Reader
	max int64
}

func (b *maxBytesBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	var mbe *http.MaxBytesError
	if err != nil && errors.As(err, &mbe) {
		e := greyerr.New(greyerr.TooLarge, "model exceeds %d bytes (ai.max_model_bytes)", b.max)
		e.Field = "body"
		return n, e
	}
	return n, err
}

// modelList is the body of GET /api/v1/models.
type modelList struct {
	Models     []ai.Model `json:"models"`
	NextCursor string     `json:"next_cursor"`
}

// listModels serves GET /api/v1/models: a page of the tenant's model
// versions by name and version (?name= keeps the names starting with it).
func (s *Server) listModels(w http.ResponseWriter, r *http.Request) {
	ten, store, ok := s.tenantModelRegistry(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > modelstore.MaxList {
			s.writeError(w, r, greyerr.Invalid("limit", "must be an integer between 1 and %d", modelstore.MaxList))
			return
		}
		limit = n
	}
	ms, next, err := store.List(r.Context(), ten, modelstore.ListOptions{Name: q.Get("name"), Cursor: q.Get("cursor"), Limit: limit})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, modelList{Models: ms, NextCursor: next})
}

// getModel serves GET /api/v1/models/{name}: the model's versions and
// aliases.
func (s *Server) getModel(w http.ResponseWriter, r *http.Request) {
	ten, store, ok := s.tenantModelRegistry(w, r)
	if !ok {
		return
	}
	info, err := store.Describe(r.Context(), ten, r.PathValue("name"))
	s.reply(w, r, info, err)
}

// getModelVersion serves GET /api/v1/models/{name}/versions/{version}.
func (s *Server) getModelVersion(w http.ResponseWriter, r *http.Request) {
	ten, store, ok := s.tenantModelRegistry(w, r)
	if !ok {
		return
	}
	m, err := store.Get(r.Context(), ten, ai.ModelRef{Name: r.PathValue("name"), Version: r.PathValue("version")})
	s.reply(w, r, m, err)
}

// getModelAlias serves GET /api/v1/models/{name}/aliases/{alias}: the
// version the alias names.
func (s *Server) getModelAlias(w http.ResponseWriter, r *http.Request) {
	ten, store, ok := s.tenantModelRegistry(w, r)
	if !ok {
		return
	}
	m, err := store.Get(r.Context(), ten, ai.ModelRef{Name: r.PathValue("name"), Alias: r.PathValue("alias")})
	s.reply(w, r, m, err)
}

// aliasBody is the body of PUT /api/v1/models/{name}/aliases/{alias}.
type aliasBody struct {
	Version string `json:"version"`
}

// setModelAlias serves PUT /api/v1/models/{name}/aliases/{alias}: points
// the alias at a version (creating or moving it).
func (s *Server) setModelAlias(w http.ResponseWriter, r *http.Request) {
	ten, store, ok := s.tenantModelRegistry(w, r)
	if !ok {
		return
	}
	var body aliasBody
	if err := s.decode(w, r, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if body.Version == "" {
		s.writeError(w, r, greyerr.Invalid("version", "is required"))
		return
	}
	m, err := store.SetAlias(r.Context(), ten, r.PathValue("name"), r.PathValue("alias"), body.Version)
	s.reply(w, r, m, err)
}

// deleteModelAlias serves DELETE /api/v1/models/{name}/aliases/{alias}.
func (s *Server) deleteModelAlias(w http.ResponseWriter, r *http.Request) {
	ten, store, ok := s.tenantModelRegistry(w, r)
	if !ok {
		return
	}
	if err := store.DeleteAlias(r.Context(), ten, r.PathValue("name"), r.PathValue("alias")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// deleteModelVersion serves DELETE /api/v1/models/{name}/versions/{version}
// (409 while a user alias names the version).
func (s *Server) deleteModelVersion(w http.ResponseWriter, r *http.Request) {
	ten, store, ok := s.tenantModelRegistry(w, r)
	if !ok {
		return
	}
	if err := store.Delete(r.Context(), ten, r.PathValue("name"), r.PathValue("version")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// modelContent serves GET /api/v1/models/{ref}/content: the artifact's
// bytes, named by digest ("sha256:<hex>", how a worker-only node fetches
// a model) or by a model reference ("name:version", "name@alias",
// "name"). The bytes are checked against the digest while they stream: a
// damaged blob cuts the connection, so the client never takes it for the
// model (and clients check the digest too).
func (s *Server) modelContent(w http.ResponseWriter, r *http.Request) {
	ten, store, ok := s.tenantModelRegistry(w, r)
	if !ok {
		return
	}
	ref := r.PathValue("ref")
	var digest string
	var size int64
	if strings.HasPrefix(ref, artifact.DigestPrefix) {
		a, err := store.Stat(r.Context(), ten, ref)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		digest, size = a.Digest, a.Size
	} else {
		mr, err := ai.ParseModelRef(ref)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		m, err := store.Get(r.Context(), ten, mr)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		digest, size = m.Digest, m.Size
	}
	body, err := store.Fetch(r.Context(), ten, digest)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer body.Close()
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(modelTransferTimeout))
	h := w.Header()
	h.Set("Content-Type", modelstore.ContentType)
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	h.Set("Cache-Control", "private, max-age=31536000, immutable")
	h.Set("ETag", `"`+digest+`"`)
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, body); err != nil {
		s.logger.Warn("model download cut", "tenant", ten, "digest", digest, "err", err)
		panic(http.ErrAbortHandler) // the client must not take a partial or damaged body for the model
	}
}

package api

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/modules"
)

// Module routes (issue #4): the tenant's WebAssembly modules for the wasm
// task kind, content-addressed by SHA-256. Every route is tenant-scoped:
// another tenant's module is answered 404.

func init() {
	// Let the spec validator check module uploads and downloads.
	openapi3filter.RegisterBodyDecoder("application/wasm", openapi3filter.FileBodyDecoder)
}

// moduleTransferTimeout bounds one module upload or download.
const moduleTransferTimeout = 10 * time.Minute

func (s *Server) moduleStore(w http.ResponseWriter, r *http.Request) *modules.Store {
	if s.opts.Modules == nil {
		s.writeError(w, r, greyerr.New(greyerr.Unimplemented, "this server has no module store"))
	}
	return s.opts.Modules
}

// tenantModules returns the caller's tenant and the module store, or
// writes the error and returns false.
func (s *Server) tenantModules(w http.ResponseWriter, r *http.Request) (string, *modules.Store, bool) {
	ten, err := tenantOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return "", nil, false
	}
	store := s.moduleStore(w, r)
	return ten, store, store != nil
}

// uploadModule stores the request body, the raw .wasm bytes, after the wasm
// executor compiled it. 201 for a new module, 200 if the tenant had it.
func (s *Server) uploadModule(w http.ResponseWriter, r *http.Request) {
	ten, store, ok := s.tenantModules(w, r)
	if !ok {
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, _ := mime.ParseMediaType(ct)
		if mt != "application/wasm" && mt != "application/octet-stream" {
			s.writeError(w, r, greyerr.Invalid("Content-Type", "must be application/wasm (the raw .wasm bytes), got %q", ct))
			return
		}
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(moduleTransferTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, store.MaxBytes()))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			e := greyerr.New(greyerr.TooLarge, "module exceeds %d bytes (executors.wasm.max_module_bytes)", store.MaxBytes())
			e.Field = "body"
			s.writeError(w, r, e)
			return
		}
		s.writeError(w, r, greyerr.Wrap(greyerr.InvalidArgument, err, "read module"))
		return
	}
	m, created, err := store.Put(r.Context(), ten, body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeStored(w, created, "/api/v1/modules/"+m.Digest, m)
}

// getModule describes one of the tenant's modules.
func (s *Server) getModule(w http.ResponseWriter, r *http.Request) {
	ten, store, ok := s.tenantModules(w, r)
	if !ok {
		return
	}
	m, err := store.Stat(r.Context(), ten, r.PathValue("digest"))
	s.reply(w, r, m, err)
}

// listModules serves GET /api/v1/modules: the tenant's modules.
func (s *Server) listModules(w http.ResponseWriter, r *http.Request) {
	ten, store, ok := s.tenantModules(w, r)
	if !ok {
		return
	}
	ms, err := store.List(r.Context(), ten)
	s.reply(w, r, moduleList{Modules: ms}, err)
}

// moduleList is the body of GET /api/v1/modules.
type moduleList struct {
	Modules []modules.Module `json:"modules"`
}

// deleteModule serves DELETE /api/v1/modules/{digest}: removes one of the
// tenant's modules, freeing its storage quota. Tasks that name it fail
// from then on with "module not found". 204, or 404 if the tenant has no
// such module. (With roles, an operator's route.)
func (s *Server) deleteModule(w http.ResponseWriter, r *http.Request) {
	ten, store, ok := s.tenantModules(w, r)
	if !ok {
		return
	}
	if err := store.Delete(r.Context(), ten, r.PathValue("digest")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// moduleContent sends the bytes of one of the tenant's modules: how a
// remote worker, which cannot read the servers' bucket, gets a module.
func (s *Server) moduleContent(w http.ResponseWriter, r *http.Request) {
	ten, store, ok := s.tenantModules(w, r)
	if !ok {
		return
	}
	b, err := store.Get(r.Context(), ten, r.PathValue("digest"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(moduleTransferTimeout))
	h := w.Header()
	h.Set("Content-Type", modules.ContentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "private, max-age=31536000, immutable")
	h.Set("ETag", `"`+modules.Digest(b)+`"`)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

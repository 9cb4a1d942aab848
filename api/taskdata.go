package api

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/taskdata"
)

// Task data routes (docs/TASKS.md): uploads of large payloads, results
// stored by reference, and the signed URLs Grey serves for a bucket that
// cannot sign (file://). Every route but the signed ones is tenant-scoped;
// a signed URL is its own credential, bound to one tenant, key, method and
// expiry.

// dataTransferTimeout bounds one upload or download through Grey.
const dataTransferTimeout = 10 * time.Minute

// tenantData is the preamble of the tenant's task-data routes: the
// request's tenant and the task data store; ok false when it has answered
// the request with the error.
func (s *Server) tenantData(w http.ResponseWriter, r *http.Request) (string, *taskdata.Store, bool) {
	ten, err := tenantOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return "", nil, false
	}
	store := s.taskData(w, r)
	return ten, store, store != nil
}

func (s *Server) taskData(w http.ResponseWriter, r *http.Request) *taskdata.Store {
	if s.opts.TaskData == nil {
		s.writeError(w, r, greyerr.New(greyerr.Unimplemented, "this server has no task data store (tasks.data_url)"))
	}
	return s.opts.TaskData
}

// uploadRequest is the body of POST /api/v1/uploads.
type uploadRequest struct {
	// Size is the payload's size in bytes, when known: checked against
	// the object limit and the storage quota before any byte moves.
	Size int64 `json:"size,omitempty"`
	// Expiry is how long the URL lasts (default 15m, at most 24h).
	Expiry string `json:"expiry,omitempty"`
}

func parseExpiry(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second || d > taskdata.MaxURLExpiry {
		return 0, greyerr.Invalid("expiry", "must be a duration between 1s and %s, got %q", taskdata.MaxURLExpiry, v)
	}
	return d, nil
}

// createUpload reserves an upload and answers the signed PUT URL and the
// payload_ref to submit with.
func (s *Server) createUpload(w http.ResponseWriter, r *http.Request) {
	ten, store, ok := s.tenantData(w, r)
	if !ok {
		return
	}
	var req uploadRequest
	if r.ContentLength != 0 {
		if err := s.decode(w, r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	exp, err := parseExpiry(req.Expiry)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	up, err := store.NewUpload(r.Context(), ten, req.Size, exp)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, up)
}

// signedURL is the answer to GET /api/v1/tasks/{id}/result/url.
type signedURL struct {
	// URL is the signed GET URL (a path, relative to the API's base URL,
	// when Grey serves it).
	URL string `json:"url"`
	// ExpiresAt is when it stops working.
	ExpiresAt time.Time `json:"expires_at"`
	// Size and SHA256 describe the object.
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// taskResult writes a completed task's result bytes (application/json),
// read from the bucket when it is stored by reference.
func (s *Server) taskResult(w http.ResponseWriter, r *http.Request) {
	ten, err := tenantOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	b, t, err := s.eng.Result(r.Context(), ten, r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ct := "application/json"
	if task.IsBinaryPayload(b) {
		ct = taskdata.BinaryContentType // an inference response in the binary form
	}
	w.Header().Set("Content-Type", ct)
	if t.ResultRef != nil {
		w.Header().Set("X-Grey-Result-Ref", t.ResultRef.Ref)
		w.Header().Set("X-Grey-Result-Sha256", t.ResultRef.SHA256)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// taskResultURL answers a signed GET URL of a completed task's stored
// result (FailedPrecondition when the result is inline).
func (s *Server) taskResultURL(w http.ResponseWriter, r *http.Request) {
	ten, err := tenantOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	exp, err := parseExpiry(r.URL.Query().Get("expiry"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	t, err := s.eng.Get(r.Context(), ten, r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	store := s.taskData(w, r)
	if store == nil {
		return
	}
	if t.ResultRef == nil {
		s.writeError(w, r, greyerr.New(greyerr.FailedPrecondition, "task %s has no stored result (status %s; results up to tasks.max_payload_bytes stay inline: GET /api/v1/tasks/{id}/result)", t.ID, t.Status))
		return
	}
	u, at, err := store.SignURL(r.Context(), ten, t.ResultRef.Ref, http.MethodGet, exp)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, signedURL{URL: u, ExpiresAt: at, Size: t.ResultRef.Size, SHA256: t.ResultRef.SHA256})
}

// getObject streams an object of the tenant's task data (uploads/...,
// results/...): what `greyctl proof verify --fetch` hashes.
func (s *Server) getObject(w http.ResponseWriter, r *http.Request) {
	ten, store, ok := s.tenantData(w, r)
	if !ok {
		return
	}
	rc, size, err := store.Open(r.Context(), ten, r.PathValue("key"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer rc.Close()
	rctl := http.NewResponseController(w)
	_ = rctl.SetWriteDeadline(time.Now().Add(dataTransferTimeout))
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, rc)
}

// signedData serves a URL Grey signed (taskdata.Signer): GET streams the
// object, PUT stores the body as an upload. The signature authorises it.
func (s *Server) signedData(w http.ResponseWriter, r *http.Request) {
	store := s.taskData(w, r)
	if store == nil {
		return
	}
	rctl := http.NewResponseController(w)
	_ = rctl.SetReadDeadline(time.Now().Add(dataTransferTimeout))
	_ = rctl.SetWriteDeadline(time.Now().Add(dataTransferTimeout))
	q := r.URL.Query()
	tenant := r.PathValue("tenant")
	key, err := store.CheckSigned(r.Method, tenant, r.PathValue("key"), q.Get("expires"), q.Get("sig"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if r.Method == http.MethodPut {
		n, err := store.PutUpload(r.Context(), tenant, key, r.Body)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"payload_ref": key, "size": n})
		return
	}
	rc, size, err := store.Open(r.Context(), tenant, key)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, rc)
}

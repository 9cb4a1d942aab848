package api

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/membership"
	"github.com/grey-distributed/grey/worker"
)

func (s *Server) lease(w http.ResponseWriter, r *http.Request) {
	var req worker.LeaseRequest
	if err := s.decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	resp, err := s.eng.Lease(r.Context(), &req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request) {
	var req worker.HeartbeatRequest
	if err := s.decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	resp, err := s.eng.Heartbeat(r.Context(), &req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) complete(w http.ResponseWriter, r *http.Request) {
	var req worker.CompleteRequest
	if err := s.decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	resp, err := s.eng.Complete(r.Context(), &req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) cluster(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.eng.Cluster(s.opts.APIAddr))
}

func (s *Server) nodes(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, membership.NodeList{Nodes: s.eng.Cluster(s.opts.APIAddr).Members})
}

// payloadTransferTimeout bounds the write of one payload body.
const payloadTransferTimeout = 5 * time.Minute

// taskPayload streams the payload object of a task to the worker holding
// its current lease (?worker_id=&attempt=), with its length and SHA-256
// (X-Grey-Payload-SHA256) as recorded at submit: the worker checks the
// bytes against them before use.
func (s *Server) taskPayload(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	attempt, err := strconv.Atoi(q.Get("attempt"))
	if err != nil {
		s.writeError(w, r, greyerr.Invalid("attempt", "must be an integer, got %q", q.Get("attempt")))
		return
	}
	rc, ref, err := s.eng.OpenPayload(r.Context(), &worker.PayloadRequest{TaskID: r.PathValue("id"), Attempt: attempt, WorkerID: q.Get("worker_id")})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer rc.Close()
	ctl := http.NewResponseController(w)
	_ = ctl.SetWriteDeadline(time.Now().Add(payloadTransferTimeout))
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(ref.Size, 10))
	h.Set(PayloadSHA256Header, ref.SHA256)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = io.CopyN(w, rc, ref.Size)
}

// PayloadSHA256Header carries the recorded SHA-256 (lower-case hex) of a
// payload object served to a worker.
const PayloadSHA256Header = "X-Grey-Payload-SHA256"

package api

import (
	"net/http"

	"github.com/grey-distributed/grey/engine"
)

func (s *Server) join(w http.ResponseWriter, r *http.Request) {
	var req engine.JoinRequest
	if err := s.decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	resp, err := s.eng.Join(r.Context(), &req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) removeNode(w http.ResponseWriter, r *http.Request) {
	if err := s.eng.RemoveMember(r.Context(), r.PathValue("id")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// self answers with this node's own view (never forwarded).
func (s *Server) self(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.eng.Cluster(s.opts.APIAddr))
}

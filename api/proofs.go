package api

import (
	"net/http"

	"github.com/grey-distributed/grey/proof"
)

// keysResponse is the body of GET /api/v1/cluster/keys.
type keysResponse struct {
	Keys []proof.NodeKey `json:"keys"`
}

// taskProof serves GET /api/v1/tasks/{id}/proof: the envelope, its short
// form and the server's check of it.
func (s *Server) taskProof(w http.ResponseWriter, r *http.Request) {
	ten, err := tenantOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rec, err := s.eng.Proof(r.Context(), ten, r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// replay serves POST /api/v1/tasks/{id}/replay.
func (s *Server) replay(w http.ResponseWriter, r *http.Request) {
	ten, err := tenantOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out, err := s.eng.Replay(r.Context(), ten, r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// keys serves GET /api/v1/cluster/keys: every node's proof-signing public
// key, for verifiers.
func (s *Server) keys(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, keysResponse{Keys: s.eng.SigningKeys()})
}

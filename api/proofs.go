package api

import (
	"net/http"

	"github.com/grey-distributed/grey/proof"
)

// keysResponse is the body of GET /api/v1/cluster/keys.
type keysResponse struct {
	Keys []proof.NodeKey `json:"keys"`
}

// keys serves GET /api/v1/cluster/keys: every node's proof-signing public
// key, for verifiers.
func (s *Server) keys(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, keysResponse{Keys: s.eng.SigningKeys()})
}

package api

import (
	"net/http"

	"github.com/grey-distributed/grey/apitypes"
)

// eventsStatus serves GET /api/v1/cluster/events: each event source with
// its per-tenant lag and each event sink with its watermark (the relay's
// replicated cursor) and lag. Followers forward it to the leader, which
// runs the consumers.
func (s *Server) eventsStatus(w http.ResponseWriter, r *http.Request) {
	st := apitypes.EventsStatus{Sources: []apitypes.EventSource{}, Sinks: []apitypes.EventSink{}}
	if s.opts.Events != nil {
		st = s.opts.Events()
		if st.Sources == nil {
			st.Sources = []apitypes.EventSource{}
		}
		if st.Sinks == nil {
			st.Sinks = []apitypes.EventSink{}
		}
	}
	writeJSON(w, http.StatusOK, st)
}

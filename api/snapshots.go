package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/greyerr"
)

// Snapshot response headers.
const (
	SnapshotIndexHeader = "X-Grey-Snapshot-Index"
	SnapshotTermHeader  = "X-Grey-Snapshot-Term"
	ClusterIDHeader     = "X-Grey-Cluster-Id"
)

// snapshotTransferTimeout bounds one snapshot upload or download (the
// server's read timeout is meant for ordinary requests).
const snapshotTransferTimeout = time.Hour

// saveSnapshot streams a fresh Raft snapshot in the snapshot file format.
func (s *Server) saveSnapshot(w http.ResponseWriter, r *http.Request) {
	sf, err := s.eng.OpenSnapshot()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer sf.Close()
	h := sf.Header
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(snapshotTransferTimeout))
	hd := w.Header()
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Content-Length", strconv.FormatInt(sf.Len(), 10))
	hd.Set("Content-Disposition", `attachment; filename="`+SnapshotFileName(h.CreatedAt, h.Index)+`"`)
	hd.Set(SnapshotIndexHeader, strconv.FormatUint(h.Index, 10))
	hd.Set(SnapshotTermHeader, strconv.FormatUint(h.Term, 10))
	hd.Set(ClusterIDHeader, h.ClusterID)
	w.WriteHeader(http.StatusOK)
	if n, err := sf.WriteTo(w); err != nil {
		// The status is sent; the short body (Content-Length) tells the client.
		s.logger.Warn("snapshot download cut", "written", n, "of", sf.Len(), "err", err)
	}
}

// restoreSnapshot replaces the cluster's state with the snapshot file in
// the request body.
func (s *Server) restoreSnapshot(w http.ResponseWriter, r *http.Request) {
	force := false
	if v := r.URL.Query().Get("force"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			s.writeError(w, r, greyerr.Invalid("force", "must be true or false, got %q", v))
			return
		}
		force = b
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/octet-stream") {
		s.writeError(w, r, greyerr.Invalid("Content-Type", "must be application/octet-stream (a snapshot file), got %q", ct))
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(snapshotTransferTimeout))
	info, err := s.eng.RestoreSnapshot(r.Context(), r.Body, engine.RestoreOptions{Force: force})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// SnapshotFileName is the name of a snapshot file taken at t covering Raft
// index idx: grey-snapshot-<UTC time>-<index>.snap, which sorts by time.
func SnapshotFileName(t time.Time, idx uint64) string {
	return "grey-snapshot-" + t.UTC().Format(SnapshotTimeFormat) + "-" + strconv.FormatUint(idx, 10) + ".snap"
}

// SnapshotTimeFormat is the time layout of snapshot file names.
const SnapshotTimeFormat = "20060102T150405.000Z"

package apitypes

import (
	"encoding/hex"
	"time"
)

// SnapshotFormat is the version of the snapshot file envelope.
//
// A snapshot file is three parts:
//
//  1. a header line, JSON: {"grey_snapshot":1,"cluster_id":…,"node_id":…,
//     "index":…,"term":…,"size":…,"created_at":…} and a newline (a
//     SnapshotHeader);
//  2. the payload: exactly size bytes, the state store's snapshot (JSON
//     lines with its own version header), as Raft keeps it in
//     <data-dir>/raft/snapshots;
//  3. a checksum line, exactly SnapshotChecksumLine of the SHA-256 of
//     parts 1 and 2 (every byte before the checksum line).
//
// Nothing may follow the checksum line. A file cut anywhere, or with any
// byte changed, is refused.
const SnapshotFormat = 1

// SnapshotHeader is the first line of a snapshot file.
type SnapshotHeader struct {
	// Format is SnapshotFormat ("grey_snapshot" marks the file as Grey's).
	Format int `json:"grey_snapshot"`
	// ClusterID is the cluster the snapshot was taken from.
	ClusterID string `json:"cluster_id"`
	// NodeID is the server that took it.
	NodeID string `json:"node_id,omitempty"`
	// Index and Term are the Raft log position the snapshot covers.
	Index uint64 `json:"index"`
	Term  uint64 `json:"term"`
	// Size is the payload's length in bytes.
	Size int64 `json:"size"`
	// CreatedAt is when the snapshot was asked for (UTC): it holds every
	// write acknowledged before.
	CreatedAt time.Time `json:"created_at"`
}

// Info is what h says about its file, as a SnapshotInfo (the counts of a
// restore are not in the header: they stay zero).
func (h *SnapshotHeader) Info() *SnapshotInfo {
	return &SnapshotInfo{ClusterID: h.ClusterID, NodeID: h.NodeID, Index: h.Index, Term: h.Term, Size: h.Size, CreatedAt: h.CreatedAt}
}

// SnapshotChecksum is the last line of a snapshot file.
type SnapshotChecksum struct {
	// SHA256 is the lower-case hex SHA-256 of every byte before the line.
	SHA256 string `json:"sha256"`
}

// SnapshotChecksumLine is the exact checksum line for the digest sum,
// newline included: {"sha256":"<lower-case hex>"}. A file's line must
// equal it byte for byte.
func SnapshotChecksumLine(sum []byte) []byte {
	return []byte(`{"sha256":"` + hex.EncodeToString(sum) + "\"}\n")
}

// SnapshotInfo describes a snapshot file: its header, and after a restore
// (POST /api/v1/cluster/snapshot) what it held.
type SnapshotInfo struct {
	// ClusterID is the cluster the snapshot was taken from.
	ClusterID string `json:"cluster_id"`
	// NodeID is the server that took it.
	NodeID string `json:"node_id,omitempty"`
	// Index and Term are the Raft log position it covers (in its cluster).
	Index uint64 `json:"index"`
	Term  uint64 `json:"term"`
	// Size is the payload's length in bytes (the file is a little longer).
	Size int64 `json:"size"`
	// CreatedAt is when the file was written.
	CreatedAt time.Time `json:"created_at"`
	// Tasks and Tenants count what a restored snapshot held (0 on save).
	Tasks   int `json:"tasks"`
	Tenants int `json:"tenants"`
	// Forced is true when a restore replaced another cluster's state
	// because the caller passed force.
	Forced bool `json:"forced,omitempty"`
}

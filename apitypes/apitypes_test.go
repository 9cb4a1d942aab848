package apitypes_test

import (
	"crypto/sha256"
	"encoding/json"
	"testing"
	"time"

	"github.com/grey-distributed/grey/apitypes"
)

// The checksum line is the JSON of SnapshotChecksum and a newline, so a
// reader may decode it; a file must carry exactly these bytes.
func TestSnapshotChecksumLine(t *testing.T) {
	sum := sha256.Sum256([]byte("grey"))
	line := apitypes.SnapshotChecksumLine(sum[:])
	var c apitypes.SnapshotChecksum
	if err := json.Unmarshal(line, &c); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(c)
	if string(line) != string(b)+"\n" || len(c.SHA256) != 64 {
		t.Fatalf("line %q, re-encoded %q", line, b)
	}
}

// The header line decodes into the header, and Info carries every header
// field a SnapshotInfo has.
func TestSnapshotHeaderInfo(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	line := `{"grey_snapshot":1,"cluster_id":"c1","node_id":"s1","index":42,"term":3,"size":1000,"created_at":"2026-01-02T03:04:05Z"}`
	var h apitypes.SnapshotHeader
	if err := json.Unmarshal([]byte(line), &h); err != nil {
		t.Fatal(err)
	}
	if h.Format != apitypes.SnapshotFormat {
		t.Fatalf("format %d", h.Format)
	}
	got := *h.Info()
	want := apitypes.SnapshotInfo{ClusterID: "c1", NodeID: "s1", Index: 42, Term: 3, Size: 1000, CreatedAt: at}
	if got != want {
		t.Fatalf("Info = %+v, want %+v", got, want)
	}
}

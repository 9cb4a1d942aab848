package cluster_test

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/grey-distributed/grey/cluster"
	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/task"
)

// snapshotFile writes a snapshot file of a node holding a few tasks.
func snapshotFile(t *testing.T) (*greytest.Node, []byte) {
	t.Helper()
	n := greytest.NewNode(t, engine.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 3 {
		if _, err := n.Engine.Submit(ctx, "acme", []task.Spec{{Kind: "noop", Payload: []byte(`{"i":` + strconv.Itoa(i) + `}`)}}, false); err != nil {
			t.Fatal(err)
		}
	}
	sf, err := n.Raft.OpenSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	var buf bytes.Buffer
	if _, err := sf.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if int64(buf.Len()) != sf.Len() {
		t.Fatalf("WriteTo wrote %d bytes, Len says %d", buf.Len(), sf.Len())
	}
	return n, buf.Bytes()
}

func TestSnapshotFileRoundTrip(t *testing.T) {
	t.Parallel()
	n, file := snapshotFile(t)
	st, err := cluster.ReadSnapshot(bytes.NewReader(file), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Header.Format != cluster.SnapshotFormat || st.Header.ClusterID != n.Store.ClusterID() || st.Header.ClusterID == "" ||
		st.Header.NodeID != "test-1" || st.Header.Index == 0 || st.Header.Term == 0 || st.Header.Size <= 0 {
		t.Errorf("header %+v", st.Header)
	}
	if st.Store.Len() != 3 || st.Store.Len() != n.Store.Len() {
		t.Errorf("staged store holds %d tasks, want 3", st.Store.Len())
	}
	// Nothing new since: the same snapshot is opened again.
	sf, err := n.Raft.OpenSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	if sf.Header.Index != st.Header.Index {
		t.Errorf("second open covers index %d, first %d", sf.Header.Index, st.Header.Index)
	}
}

// TestReadSnapshotRefusesDamage cuts the file at every length and flips
// every byte in turn: each must be refused as InvalidArgument.
func TestReadSnapshotRefusesDamage(t *testing.T) {
	t.Parallel()
	_, file := snapshotFile(t)
	dir := t.TempDir()
	check := func(what string, b []byte) {
		t.Helper()
		st, err := cluster.ReadSnapshot(bytes.NewReader(b), dir)
		if err == nil {
			st.Close()
			i := bytes.IndexByte(file, '\n')
			t.Fatalf("%s: accepted (header ends at %d, size %d): %q", what, i, len(file), b[max(0, len(b)-100):])
		}
		if !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Fatalf("%s: error %v, want invalid_argument", what, err)
		}
	}
	for i := range len(file) {
		check("cut at "+strconv.Itoa(i), file[:i])
	}
	b := bytes.Clone(file)
	for i := range b {
		for _, bit := range []byte{0x01, 0x20} {
			b[i] ^= bit
			check("bit flipped at "+strconv.Itoa(i), b)
			b[i] ^= bit
		}
	}
	check("extra newline", append(bytes.Clone(file), '\n'))
}

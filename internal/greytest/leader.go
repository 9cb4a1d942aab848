package greytest

import (
	"io"
	"testing"
	"time"

	"github.com/grey-distributed/grey/cluster"
	"github.com/grey-distributed/grey/state"
)

// Leader opens a one-server Raft cluster over a new state store in a
// temporary directory, waits until it leads, and shuts it down when t ends.
func Leader(t testing.TB) (*cluster.Node, *state.Store) {
	t.Helper()
	st := state.New()
	n, err := cluster.Open(cluster.Config{
		NodeID: "s1", DataDir: t.TempDir(), BindAddr: "127.0.0.1:0", Bootstrap: true,
		HeartbeatTimeout: 200 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond,
		LeaderLeaseTimeout: 100 * time.Millisecond, Logger: Logger(t), LogOutput: io.Discard,
	}, st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown(false) })
	Eventually(t, 10*time.Second, n.IsLeader)
	return n, st
}

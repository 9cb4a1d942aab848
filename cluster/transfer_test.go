package cluster_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/grey-distributed/grey/cluster"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/state"
)

func plainNode(t *testing.T, id string, bootstrap bool) *cluster.Node {
	t.Helper()
	n, err := cluster.Open(cluster.Config{
		NodeID: id, DataDir: t.TempDir(), BindAddr: "127.0.0.1:0", Bootstrap: bootstrap,
		HeartbeatTimeout: 500 * time.Millisecond, ElectionTimeout: 500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond, Logger: greytest.Logger(t), LogOutput: io.Discard,
	}, state.New())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown(false) })
	return n
}

// A leader about to stop hands over: another voter leads when
// TransferLeadership returns. On a follower, and alone, it does nothing.
func TestTransferLeadership(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s1 := plainNode(t, "s1", true)
	if err := s1.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	greytest.Eventually(t, 10*time.Second, s1.IsLeader)
	if err := s1.TransferLeadership(); err != nil || !s1.IsLeader() {
		t.Fatalf("alone: %v, leader %v (want a no-op)", err, s1.IsLeader())
	}
	s2, s3 := plainNode(t, "s2", false), plainNode(t, "s3", false)
	for _, n := range []*cluster.Node{s2, s3} {
		if err := s1.AddVoter(ctx, n.ID(), n.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	barrier(t, s1, s2, s3)
	if err := s2.TransferLeadership(); err != nil {
		t.Fatalf("on a follower: %v", err)
	}
	if err := s1.TransferLeadership(); err != nil {
		t.Fatalf("transfer: %v", err)
	}
	if s1.IsLeader() {
		t.Fatal("s1 still leads after the transfer")
	}
	greytest.Eventually(t, 5*time.Second, func() bool { return s2.IsLeader() || s3.IsLeader() })
}

package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/greytest"
)

func TestJoinBadInputLeavesClusterUnchanged(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{})
	ctx := context.Background()
	self := n.Raft.LocalAddr()
	greytest.Eventually(t, 5*time.Second, func() bool { return n.Store.ClusterID() != "" })
	cases := []struct {
		name string
		req  engine.JoinRequest
		code greyerr.Code
	}{
		{"duplicate node id at another address", engine.JoinRequest{NodeID: "test-1", RaftAddr: "127.0.0.1:1", APIAddr: "http://127.0.0.1:2"}, greyerr.AlreadyExists},
		{"raft address of another node", engine.JoinRequest{NodeID: "n9", RaftAddr: self, APIAddr: "http://127.0.0.1:2"}, greyerr.AlreadyExists},
		{"another cluster's data", engine.JoinRequest{NodeID: "n9", RaftAddr: "127.0.0.1:1", APIAddr: "http://127.0.0.1:2", ClusterID: "not-this-cluster"}, greyerr.FailedPrecondition},
		{"bad node id", engine.JoinRequest{NodeID: "a/b", RaftAddr: "127.0.0.1:1", APIAddr: "http://127.0.0.1:2"}, greyerr.InvalidArgument},
		{"bad api address", engine.JoinRequest{NodeID: "n9", RaftAddr: "127.0.0.1:1", APIAddr: "ftp://x"}, greyerr.InvalidArgument},
		{"bad raft address", engine.JoinRequest{NodeID: "n9", RaftAddr: "nowhere", APIAddr: "http://127.0.0.1:2"}, greyerr.InvalidArgument},
	}
	for _, c := range cases {
		_, err := n.Engine.Join(ctx, &c.req)
		if !greyerr.Is(err, c.code) {
			t.Errorf("%s: err = %v, want %s", c.name, err, c.code)
		}
	}
	servers, err := n.Raft.Servers()
	if err != nil || len(servers) != 1 || string(servers[0].ID) != "test-1" {
		t.Fatalf("configuration changed: %v %+v", err, servers)
	}
	if nodes := n.Store.Nodes(); len(nodes) > 1 {
		t.Fatalf("registry changed: %+v", nodes)
	}
	// Joining again as itself (a restart) is a no-op.
	if _, err := n.Engine.Join(ctx, &engine.JoinRequest{NodeID: "test-1", RaftAddr: self, APIAddr: "http://127.0.0.1:2"}); err != nil {
		t.Fatalf("rejoin as itself: %v", err)
	}
}

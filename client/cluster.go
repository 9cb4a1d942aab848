package client

import (
	"context"
	"net/http"
	"time"

	"github.com/grey-distributed/grey/task"
)

// Raft states of a server node (ClusterInfo.State).
const (
	StateLeader    = "leader"
	StateFollower  = "follower"
	StateCandidate = "candidate"
	// StateShutdown is reported by a server while it stops.
	StateShutdown = "shutdown"
	// StateUnknown is a node state (NodeInfo.State) the answering node cannot tell.
	StateUnknown = "unknown"
)

// Node roles (NodeInfo.Role).
const (
	RoleServer = "server"
	RoleWorker = "worker"
)

// Raft suffrage of a server (NodeInfo.Suffrage).
const (
	SuffrageVoter    = "voter"
	SuffrageNonvoter = "nonvoter"
)

// ClusterInfo is the answering node's view of the Raft cluster.
type ClusterInfo struct {
	// NodeID is the answering node.
	NodeID string `json:"node_id"`
	// State is its Raft state: leader, follower, candidate (or shutdown).
	State string `json:"state"`
	// LeaderID is the current leader (empty while none is known).
	LeaderID string `json:"leader_id"`
	// LeaderAddr is the leader's API address (empty while none is known).
	LeaderAddr string `json:"leader_addr"`
	// Term is the current Raft term.
	Term uint64 `json:"term"`
	// CommitIndex is the highest log index known to be committed.
	CommitIndex uint64 `json:"commit_index"`
	// AppliedIndex is the highest log index applied to the state machine.
	AppliedIndex uint64 `json:"applied_index"`
	// LastSnapshotIndex is the log index of the latest snapshot.
	LastSnapshotIndex uint64 `json:"last_snapshot_index"`
	// QuorumSize is the number of voters needed for a majority.
	QuorumSize int `json:"quorum_size"`
	// Members are the Raft servers.
	Members []NodeInfo `json:"members"`
	// Tasks counts the tasks held in Raft by status.
	Tasks map[task.Status]int `json:"tasks"`
}

// NodeInfo describes one server or worker.
type NodeInfo struct {
	// ID is the node id.
	ID string `json:"id"`
	// RaftAddr is its Raft transport address (servers).
	RaftAddr string `json:"raft_addr,omitempty"`
	// APIAddr is its HTTP API address.
	APIAddr string `json:"api_addr,omitempty"`
	// Role is server or worker.
	Role string `json:"role"`
	// Suffrage is voter or nonvoter (servers).
	Suffrage string `json:"suffrage,omitempty"`
	// State is leader, follower or unknown.
	State string `json:"state"`
	// LastContact is when the answering node last heard from it (nil if never).
	LastContact *time.Time `json:"last_contact"`
	// Labels are the node's labels (matched against task constraints).
	Labels map[string]string `json:"labels,omitempty"`
}

// Cluster returns the answering server's view of the cluster.
func (c *Client) Cluster(ctx context.Context) (*ClusterInfo, error) {
	var ci ClusterInfo
	if err := c.do(ctx, http.MethodGet, "/api/v1/cluster", nil, nil, &ci); err != nil {
		return nil, err
	}
	return &ci, nil
}

// Nodes lists the servers and workers known to the cluster.
func (c *Client) Nodes(ctx context.Context) ([]NodeInfo, error) {
	var resp struct {
		Nodes []NodeInfo `json:"nodes"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/cluster/nodes", nil, nil, &resp); err != nil {
		return nil, err
	}
	return resp.Nodes, nil
}

// Health checks liveness (GET /healthz): nil when a server answers OK.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", nil, nil, nil)
}

// Ready checks readiness (GET /readyz): nil when a server reports that it
// serves requests. Since a 503 moves on to the next server, with several
// servers configured it reports whether any of them is ready; the error of a
// not-ready cluster has code Unavailable.
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/readyz", nil, nil, nil)
}

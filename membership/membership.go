// Package membership holds the wire types of cluster membership shared by
// the server (engine, api) and the Go client: the cluster facts of GET
// /api/v1/cluster, the members of GET /api/v1/cluster/nodes, and the join
// request and answer. It is a leaf package: no server code comes with it.
package membership

import (
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
	// ClusterID identifies the cluster (set once by its first leader).
	ClusterID string `json:"cluster_id"`
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
	// LogFeatures are the Raft log formats beyond the base ones that the
	// leader writes, because every server registered it reads them
	// (state.ServerFeatures; empty while a cluster is being upgraded).
	LogFeatures []string `json:"log_features"`
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
	// KeyID names the node's proof-signing key ("" when it has none).
	KeyID string `json:"key_id,omitempty"`
	// WarmModels are the digests of the models the node's workers hold
	// loaded, as last reported to the leader (none on other servers).
	WarmModels []string `json:"warm_models,omitempty"`
	// Features are the log formats a server registered it reads
	// (state.ServerFeatures of its build; none from an older build).
	Features []string `json:"features,omitempty"`
}

// JoinRequest asks the cluster to admit a node (POST /api/v1/cluster/join).
type JoinRequest struct {
	// NodeID is the joining node's id.
	NodeID string `json:"node_id"`
	// RaftAddr is its Raft address (servers).
	RaftAddr string `json:"raft_addr,omitempty"`
	// APIAddr is the base URL of its API.
	APIAddr string `json:"api_addr"`
	// Role is server (a Raft voter) or worker.
	Role string `json:"role"`
	// ClusterID is the cluster the node already belongs to ("" if new).
	ClusterID string `json:"cluster_id,omitempty"`
	// Labels the node offers.
	Labels map[string]string `json:"labels,omitempty"`
	// PublicKey is the node's ed25519 proof-signing public key (base64 in
	// JSON); the cluster registers it under its key id.
	PublicKey []byte `json:"public_key,omitempty"`
	// Features are the Raft log formats a joining server reads beyond the
	// base ones (state.ServerFeatures); a server of an older build sends
	// none, and the leader then keeps to the base formats.
	Features []string `json:"features,omitempty"`
}

// JoinResponse answers a join.
type JoinResponse struct {
	// ClusterID of the cluster joined.
	ClusterID string `json:"cluster_id"`
	// LeaderID is the leader that admitted the node.
	LeaderID string `json:"leader_id"`
}

// NodeList is the answer of GET /api/v1/cluster/nodes.
type NodeList struct {
	// Nodes are the cluster's members, as in ClusterInfo.Members.
	Nodes []NodeInfo `json:"nodes"`
}

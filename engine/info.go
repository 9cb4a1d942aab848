package engine

import (
	"time"

	"github.com/grey-distributed/grey/task"
)

// ClusterInfo is the API's view of the cluster (GET /api/v1/cluster).
type ClusterInfo struct {
	NodeID            string              `json:"node_id"`
	State             string              `json:"state"`
	LeaderID          string              `json:"leader_id"`
	LeaderAddr        string              `json:"leader_addr"`
	Term              uint64              `json:"term"`
	CommitIndex       uint64              `json:"commit_index"`
	AppliedIndex      uint64              `json:"applied_index"`
	LastSnapshotIndex uint64              `json:"last_snapshot_index"`
	QuorumSize        int                 `json:"quorum_size"`
	Members           []NodeInfo          `json:"members"`
	Tasks             map[task.Status]int `json:"tasks"`
}

// NodeInfo describes one member (GET /api/v1/cluster/nodes).
type NodeInfo struct {
	ID          string            `json:"id"`
	RaftAddr    string            `json:"raft_addr"`
	APIAddr     string            `json:"api_addr,omitempty"`
	Role        string            `json:"role"`
	Suffrage    string            `json:"suffrage"`
	State       string            `json:"state"`
	LastContact *time.Time        `json:"last_contact"`
	Labels      map[string]string `json:"labels,omitempty"`
}

// Cluster returns the cluster facts.
func (e *Engine) Cluster(apiAddr string) *ClusterInfo {
	in := e.node.Info()
	ci := &ClusterInfo{
		NodeID: in.NodeID, State: in.State, LeaderID: in.LeaderID, LeaderAddr: in.LeaderAddr,
		Term: in.Term, CommitIndex: in.CommitIndex, AppliedIndex: in.AppliedIndex,
		LastSnapshotIndex: in.LastSnapshotIndex, Tasks: e.store.Counts(), Members: []NodeInfo{},
	}
	voters := 0
	for _, s := range in.Servers {
		suff := "nonvoter"
		if s.Suffrage == 0 {
			suff = "voter"
			voters++
		}
		st := "follower"
		if string(s.ID) == in.LeaderID {
			st = "leader"
		}
		ni := NodeInfo{ID: string(s.ID), RaftAddr: string(s.Address), Role: "server", Suffrage: suff, State: st}
		if string(s.ID) == in.NodeID {
			ni.APIAddr = apiAddr
			now := time.Now().UTC()
			ni.LastContact = &now
		} else if !in.LastContact.IsZero() && string(s.ID) == in.LeaderID {
			lc := in.LastContact.UTC()
			ni.LastContact = &lc
		}
		ci.Members = append(ci.Members, ni)
	}
	ci.QuorumSize = voters/2 + 1
	return ci
}

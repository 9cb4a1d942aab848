package engine

import (
	"slices"
	"strings"
	"time"

	"github.com/grey-distributed/grey/membership"
	"github.com/grey-distributed/grey/state"
)

// ClusterInfo is the API's view of the cluster (GET /api/v1/cluster).
type ClusterInfo = membership.ClusterInfo

// NodeInfo describes one member (GET /api/v1/cluster/nodes).
type NodeInfo = membership.NodeInfo

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
		if reg := e.store.Node(string(s.ID)); reg != nil {
			ni.APIAddr, ni.Labels, ni.KeyID, ni.Features = reg.APIAddr, reg.Labels, reg.KeyID, reg.Features
		}
		switch {
		case string(s.ID) == in.NodeID:
			if apiAddr != "" {
				ni.APIAddr = apiAddr
			}
			now := time.Now().UTC()
			ni.LastContact = &now
		case in.NodeID == in.LeaderID:
			if lc := e.lastContact(string(s.ID)); !lc.IsZero() {
				lc = lc.UTC()
				ni.LastContact = &lc
			}
		case string(s.ID) == in.LeaderID && !in.LastContact.IsZero():
			lc := in.LastContact.UTC()
			ni.LastContact = &lc
		}
		ci.Members = append(ci.Members, ni)
	}
	ci.QuorumSize = voters/2 + 1
	ci.LogFeatures = []string{}
	for _, f := range state.ServerFeatures() {
		if e.serversHave(f) {
			ci.LogFeatures = append(ci.LogFeatures, f)
		}
	}
	if api := e.LeaderAPI(); api != "" {
		ci.LeaderAddr = api
	}
	for _, n := range e.store.Nodes() {
		if n.Role == "worker" {
			ci.Members = append(ci.Members, NodeInfo{ID: n.ID, APIAddr: n.APIAddr, Role: "worker", Suffrage: "nonvoter", State: "worker", Labels: n.Labels, KeyID: n.KeyID})
		}
	}
	// The models each node's workers hold warm, as reported to this
	// node's scheduler with their lease requests (a leader's only; an idle
	// worker asks again at least every long poll, 30 s by default): a
	// node's in-process pool leases as "<node id>/builtin".
	if warm := e.sched.WarmModels(time.Now(), 2*time.Minute); len(warm) > 0 {
		byNode := map[string][]string{}
		for w, ms := range warm {
			id, _, _ := strings.Cut(w, "/")
			byNode[id] = append(byNode[id], ms...)
		}
		for i := range ci.Members {
			if ms := byNode[ci.Members[i].ID]; len(ms) > 0 {
				slices.Sort(ms)
				ci.Members[i].WarmModels = slices.Compact(ms)
			}
		}
	}
	ci.ClusterID = e.store.ClusterID()
	return ci
}

// Ready reports whether this server can serve reads and writes, and if not
// why: a leader must have applied every entry of earlier terms (its
// scheduler is enabled only then); a follower must know a leader and have
// applied up to its commit index.
func (e *Engine) Ready() (bool, string) {
	in := e.node.Progress()
	switch {
	case in.LeaderID == "":
		return false, "no Raft leader yet"
	case in.LeaderID == in.NodeID:
		if !e.sched.Enabled() {
			return false, "leader is replaying its log"
		}
	case in.AppliedIndex < in.CommitIndex:
		return false, "follower is catching up"
	}
	return true, ""
}

// Refusing says why this node refuses new tasks while it serves
// everything else ("" when it accepts them): the archive's backlog is at
// its bound. /readyz reports it as not ready, so that a load balancer
// sends submissions elsewhere; reads, leases and reports go on.
func (e *Engine) Refusing() string {
	if e.archiveBacklogFull() != nil {
		return e.archiveDegraded()
	}
	return ""
}

// Degraded lists what works but not fully (by component: "archive", and
// what Config.Health names, such as "events_kafka_source"), for
// /readyz: the node serves, but something the operator should know about
// is failing.
func (e *Engine) Degraded() map[string]string {
	var out map[string]string
	if e.cfg.Health != nil {
		for k, v := range e.cfg.Health() {
			if v == "" {
				continue
			}
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	if why := e.archiveDegraded(); why != "" {
		if out == nil {
			out = map[string]string{}
		}
		out[ArchiveSink] = why
	}
	return out
}

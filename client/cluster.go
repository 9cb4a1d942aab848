package client

import (
	"context"
	"net/http"

	"github.com/grey-distributed/grey/membership"
)

// Node states, roles and suffrage (see package membership).
const (
	StateLeader      = membership.StateLeader
	StateFollower    = membership.StateFollower
	StateCandidate   = membership.StateCandidate
	StateShutdown    = membership.StateShutdown
	StateUnknown     = membership.StateUnknown
	RoleServer       = membership.RoleServer
	RoleWorker       = membership.RoleWorker
	SuffrageVoter    = membership.SuffrageVoter
	SuffrageNonvoter = membership.SuffrageNonvoter
)

// ClusterInfo is the answering node's view of the Raft cluster.
type ClusterInfo = membership.ClusterInfo

// NodeInfo describes one server or worker.
type NodeInfo = membership.NodeInfo

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
	var resp membership.NodeList
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

// Readiness is the body of a ready node's /readyz.
type Readiness struct {
	// Status is "ready", or "degraded" when something works but not fully.
	Status string `json:"status"`
	// Degraded says what and why, by component ("archive").
	Degraded map[string]string `json:"degraded,omitempty"`
}

// Readiness returns the node's readiness: an error (Unavailable, with the
// reason) when it is not ready, else its status and what is degraded.
func (c *Client) Readiness(ctx context.Context) (*Readiness, error) {
	var r Readiness
	if err := c.do(ctx, http.MethodGet, "/readyz", nil, nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

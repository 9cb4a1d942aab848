package client

import (
	"context"
	"net/http"
	"net/url"
)

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
}

// JoinResponse answers a join.
type JoinResponse struct {
	// ClusterID of the cluster joined.
	ClusterID string `json:"cluster_id"`
	// LeaderID is the leader that admitted the node.
	LeaderID string `json:"leader_id"`
}

// Join asks the cluster to admit a node; any server forwards to the leader.
func (c *Client) Join(ctx context.Context, req *JoinRequest) (*JoinResponse, error) {
	var out JoinResponse
	if err := c.do(ctx, http.MethodPost, "/api/v1/cluster/join", nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveNode removes a server from the Raft configuration (or a worker's
// registration).
func (c *Client) RemoveNode(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/cluster/nodes/"+url.PathEscape(id), nil, nil, nil)
}

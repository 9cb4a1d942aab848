package client

import (
	"context"

	"github.com/grey-distributed/grey/membership"
	"net/http"
	"net/url"
)

// JoinRequest asks the cluster to admit a node (POST /api/v1/cluster/join).
type JoinRequest = membership.JoinRequest

// JoinResponse answers a join.
type JoinResponse = membership.JoinResponse

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

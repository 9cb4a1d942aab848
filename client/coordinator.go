package client

import (
	"context"
	"net/http"

	"github.com/grey-distributed/grey/worker"
)

// Lease asks for up to req.Max tasks matching the worker's kinds and labels,
// holding the request open up to req.Wait (at most 60s) when none is ready.
// It implements worker.Coordinator.
func (c *Client) Lease(ctx context.Context, req *worker.LeaseRequest) (*worker.LeaseResponse, error) {
	var resp worker.LeaseResponse
	if err := c.do(ctx, http.MethodPost, "/api/v1/workers/lease", nil, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Heartbeat extends the worker's leases and returns those it lost. It
// implements worker.Coordinator.
func (c *Client) Heartbeat(ctx context.Context, req *worker.HeartbeatRequest) (*worker.HeartbeatResponse, error) {
	var resp worker.HeartbeatResponse
	if err := c.do(ctx, http.MethodPost, "/api/v1/workers/heartbeat", nil, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Complete reports starts and outcomes, fenced by attempt number, and returns
// one result per report. It implements worker.Coordinator.
func (c *Client) Complete(ctx context.Context, req *worker.CompleteRequest) (*worker.CompleteResponse, error) {
	var resp worker.CompleteResponse
	if err := c.do(ctx, http.MethodPost, "/api/v1/workers/complete", nil, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

var _ worker.Coordinator = (*Client)(nil)

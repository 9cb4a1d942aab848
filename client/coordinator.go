package client

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
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

// FetchPayload streams the payload object of a task the worker holds the
// current lease of (GET /api/v1/workers/tasks/{id}/payload; the lease's
// Assignment.PayloadFetch). It implements worker.PayloadFetcher; the
// worker checks the bytes against the lease's PayloadObject. The caller
// closes the reader.
func (c *Client) FetchPayload(ctx context.Context, req *worker.PayloadRequest) (io.ReadCloser, error) {
	if !task.ValidID(req.TaskID) {
		return nil, greyerr.Invalid("task_id", "%q is not a task id", req.TaskID)
	}
	q := url.Values{"worker_id": {req.WorkerID}, "attempt": {strconv.Itoa(req.Attempt)}}
	resp, err := c.send(ctx, &request{method: http.MethodGet, path: "/api/v1/workers/tasks/" + url.PathEscape(req.TaskID) + "/payload",
		query: q, accept: "application/octet-stream"})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, decodeError(resp)
	}
	return resp.Body, nil
}

var _ worker.PayloadFetcher = (*Client)(nil)

package client

import (
	"context"
	"net/http"

	"github.com/grey-distributed/grey/apitypes"
)

// EventsStatus is the answer of GET /api/v1/cluster/events.
type EventsStatus = apitypes.EventsStatus

// EventSource is one event source of an EventsStatus.
type EventSource = apitypes.EventSource

// EventSink is one event sink of an EventsStatus.
type EventSink = apitypes.EventSink

// EventsStatus reports the cluster's event sources (per-tenant consumer
// lag) and sinks (watermark and lag); an admin route.
func (c *Client) EventsStatus(ctx context.Context) (*EventsStatus, error) {
	var st EventsStatus
	if err := c.do(ctx, http.MethodGet, "/api/v1/cluster/events", nil, nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

package apitypes

import "time"

// EventSource is one event source (a broker Grey takes task submissions
// from) as the leader sees it.
type EventSource struct {
	// Name is the broker: kafka, rabbitmq (or mem in tests).
	Name string `json:"name"`
	// URL is where it connects, password masked.
	URL string `json:"url"`
	// Running says whether the serving node consumes it (it leads).
	Running bool `json:"running"`
	// Lag is, per tenant, the messages published and not yet
	// acknowledged, as the broker tells (as of LagAt); TotalLag sums it.
	Lag      map[string]int64 `json:"lag,omitempty"`
	TotalLag int64            `json:"total_lag"`
	LagAt    time.Time        `json:"lag_at,omitempty"`
	// Paused lists tenants held back because their quota refuses
	// submissions (backpressure).
	Paused []string `json:"paused,omitempty"`
	// Consumed and DeadLettered count messages since the node started.
	Consumed     int64 `json:"consumed"`
	DeadLettered int64 `json:"dead_lettered"`
	// Failures counts consecutive failures to reach the broker; LastError
	// is the last one.
	Failures    int       `json:"failures"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitempty"`
}

// EventSink is one event sink (a broker Grey publishes results and
// lifecycle events to), followed by the relay from a replicated cursor.
type EventSink struct {
	// Name is the broker: kafka, rabbitmq (or mem in tests).
	Name string `json:"name"`
	// Relay is the relay sink's name (events_<name>): its metrics are
	// grey_<relay>_lag_tasks and friends.
	Relay string `json:"relay"`
	// URL is where it connects, password masked.
	URL string `json:"url"`
	// Watermark is the Raft index through which every finished task was
	// published and acknowledged (the replicated cursor).
	Watermark uint64 `json:"watermark"`
	// LagTasks counts finished tasks not yet published; LagSeconds is how
	// long ago the oldest of them finished.
	LagTasks   int     `json:"lag_tasks"`
	LagSeconds float64 `json:"lag_seconds"`
	// Failures counts consecutive failed deliveries on the leader;
	// LastError is the last one.
	Failures     int       `json:"failures"`
	LastError    string    `json:"last_error,omitempty"`
	LastErrorAt  time.Time `json:"last_error_at,omitempty"`
	LastDelivery time.Time `json:"last_delivery,omitempty"`
	// Lifecycle lists the statuses published as lifecycle events
	// ("completed,failed,cancelled" by default).
	Lifecycle string `json:"lifecycle,omitempty"`
	// LifecycleDropped counts non-terminal lifecycle events this node
	// left out (best effort: queue full, broker refusing too long).
	LifecycleDropped int `json:"lifecycle_dropped,omitempty"`
}

// EventsStatus is the answer of GET /api/v1/cluster/events.
type EventsStatus struct {
	// Sources are the configured event sources, by name.
	Sources []EventSource `json:"sources"`
	// Sinks are the configured event sinks, by name.
	Sinks []EventSink `json:"sinks"`
}

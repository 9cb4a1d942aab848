// Package audit writes Grey's audit log: one JSON line per mutating or
// administrative action and per refused request (who, which tenant, what,
// on which resource, the outcome, the request and trace ids). It never
// writes credentials, payloads or results.
package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Outcomes of an Event.
const (
	// Allowed: the action was allowed and answered with a success status.
	Allowed = "allowed"
	// Denied: authentication or authorization refused the request.
	Denied = "denied"
	// Failed: the action was allowed but failed (validation, conflict...).
	Failed = "failed"
)

// Event is one audit line.
type Event struct {
	// Time of the answer (UTC).
	Time time.Time `json:"time"`
	// Subject of the principal ("" when authentication failed).
	Subject string `json:"principal"`
	// Method is how the principal authenticated.
	Method string `json:"auth_method,omitempty"`
	// Tenant the request acted for, if any.
	Tenant string `json:"tenant,omitempty"`
	// Action is the permission the route needs (task.submit, tenant.admin...)
	// or "authenticate" for a refused credential.
	Action string `json:"action"`
	// HTTPMethod and Route identify the API route.
	HTTPMethod string `json:"method"`
	// Route is the route pattern (not the raw path).
	Route string `json:"route,omitempty"`
	// Resource names the object acted on (a task id, a tenant id, a node).
	Resource string `json:"resource,omitempty"`
	// Outcome is Allowed, Denied or Failed.
	Outcome string `json:"outcome"`
	// Status is the HTTP status of the answer.
	Status int `json:"status"`
	// Reason is the refusal's code or reason, for denials and failures.
	Reason string `json:"reason,omitempty"`
	// RequestID identifies the request (X-Request-Id, or one made up).
	RequestID string `json:"request_id,omitempty"`
	// TraceID is the W3C trace id of the request, when traced.
	TraceID string `json:"trace_id,omitempty"`
	// Remote is the client address.
	Remote string `json:"remote,omitempty"`
}

// Log writes events as JSON lines to a sink. A nil *Log discards events
// (the audit log is off). It is safe for concurrent use.
type Log struct {
	mu     sync.Mutex
	w      io.Writer
	closer io.Closer
	// Count, when set, is called once per written event (metrics).
	Count func()
}

// New returns a log writing to w.
func New(w io.Writer) *Log { return &Log{w: w} }

// Open returns the log of a configured sink: "" or "off" (nil: no audit
// log), "stdout", "stderr", or a file path (appended to, created 0600).
func Open(sink string) (*Log, error) {
	switch sink {
	case "", "off":
		return nil, nil
	case "stdout":
		return New(os.Stdout), nil
	case "stderr":
		return New(os.Stderr), nil
	}
	f, err := os.OpenFile(sink, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return &Log{w: f, closer: f}, nil
}

// Enabled reports whether events are written.
func (l *Log) Enabled() bool { return l != nil }

// Write records ev (a zero Time is set to now).
func (l *Log) Write(ev Event) {
	if l == nil {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return
	}
	b = append(b, '\n')
	l.mu.Lock()
	_, _ = l.w.Write(b)
	l.mu.Unlock()
	if l.Count != nil {
		l.Count()
	}
}

// Close closes a file sink.
func (l *Log) Close() error {
	if l == nil || l.closer == nil {
		return nil
	}
	return l.closer.Close()
}

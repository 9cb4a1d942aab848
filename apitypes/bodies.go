package apitypes

import (
	"time"

	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/tenant"
)

// BatchRequest is the body of POST /api/v1/tasks/batch: 1 to 1000 specs,
// created all or none.
type BatchRequest struct {
	Tasks []task.Spec `json:"tasks"`
}

// BatchResponse is the answer to POST /api/v1/tasks/batch: the tasks in
// the order of the request's specs.
type BatchResponse struct {
	Tasks []*task.Task `json:"tasks"`
}

// TaskPage is one page of GET /api/v1/tasks.
type TaskPage struct {
	// Tasks of the page, newest first.
	Tasks []*task.Task `json:"tasks"`
	// NextCursor fetches the next page; empty on the last page.
	NextCursor string `json:"next_cursor"`
}

// TenantList is the answer of GET /api/v1/tenants, sorted by id.
type TenantList struct {
	Tenants []*tenant.Tenant `json:"tenants"`
}

// UpdateTenantRequest is the body of PUT /api/v1/tenants/{id}: the whole
// new quota (required; omitted fields mean no limit).
type UpdateTenantRequest struct {
	Quota *tenant.Quota `json:"quota"`
}

// CreateAPIKeyRequest is the body of POST /api/v1/apikeys: a key to create.
type CreateAPIKeyRequest struct {
	// Tenant the key acts for; empty means the request's tenant ("*" for
	// admin keys).
	Tenant string `json:"tenant,omitempty"`
	// Role is admin, operator, viewer or worker.
	Role string `json:"role"`
	// Kinds limits a worker key to these task kinds.
	Kinds []string `json:"kinds,omitempty"`
	// Name and Description label the key.
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	// ExpiresIn is a lifetime such as "90d", "12w" or "36h"; ExpiresAt an
	// absolute expiry (RFC 3339). Give one, or neither for a key that never
	// expires.
	ExpiresIn string     `json:"expires_in,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

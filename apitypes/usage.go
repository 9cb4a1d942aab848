package apitypes

import (
	"time"

	"github.com/grey-distributed/grey/tenant"
)

// TenantLoad is a tenant's current load.
type TenantLoad struct {
	// Queued counts unfinished tasks.
	Queued int `json:"queued"`
	// StoredBytes is every byte the tenant stores: payload and result
	// bytes held in the state plus BlobBytes.
	StoredBytes int64 `json:"stored_bytes"`
	// BlobBytes are the bytes of its objects in blob buckets: wasm
	// modules, uploads and stored results.
	BlobBytes int64 `json:"blob_bytes,omitempty"`
}

// TenantUsage is one tenant's usage and cost over a period.
type TenantUsage struct {
	TenantID string       `json:"tenant_id"`
	Usage    tenant.Usage `json:"usage"`
	Cost     tenant.Cost  `json:"cost"`
	// Load is the tenant's current load (not limited to the period).
	Load TenantLoad `json:"load"`
}

// UsageReport is the answer of GET /api/v1/cluster/usage.
type UsageReport struct {
	// From and To are the period asked for (nil for an open end).
	From *time.Time `json:"from"`
	To   *time.Time `json:"to"`
	// Prices is the server's price table.
	Prices tenant.Prices `json:"prices"`
	// Tenants in id order.
	Tenants []TenantUsage `json:"tenants"`
	// Total sums the tenants' costs.
	Total tenant.Cost `json:"total"`
}

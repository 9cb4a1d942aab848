package archive

import (
	"encoding/json"
	"time"

	"github.com/grey-distributed/grey/task"
)

// Record is one finished task as archived.
type Record struct {
	// Task is the task as the Raft state held it when it finished: spec,
	// status, attempts, result (or result_ref), usage, error, times, proof
	// id, with CostTags and CostUSD filled in. Its status is terminal and
	// FinishedAt is set.
	Task *task.Task `json:"task"`
	// Proof is the task's signed proof envelope (DSSE JSON) as stored in
	// Raft, nil when the task has no proof.
	Proof json.RawMessage `json:"proof,omitempty"`
}

// Filter selects records in List and Count. The zero Filter selects all of
// a tenant's records.
type Filter struct {
	// Statuses to include (all when empty); each must be terminal.
	Statuses []task.Status
	// Kind to include (all when empty).
	Kind string
	// FinishedFrom, when not zero, keeps records finished at or after it.
	FinishedFrom time.Time
	// FinishedTo, when not zero, keeps records finished before it.
	FinishedTo time.Time
	// Labels keeps records whose task requires every one of these worker
	// labels with the same value (task.Spec.Labels).
	Labels map[string]string
}

// Query is a List request of the portable Store.
type Query struct {
	Filter
	// Limit is the page size, 1 to MaxLimit (0: DefaultLimit).
	Limit int
	// Cursor is the Next of an earlier Page of the same tenant and filter
	// ("" for the first page).
	Cursor string
}

// Page is one page of List.
type Page struct {
	// Records are newest first (task id descending: ids are UUIDv7, so
	// this is submission order).
	Records []Record
	// Next is the cursor of the following page, "" after the last.
	Next string
}

// Page sizes.
const (
	// DefaultLimit is the page size when a Query names none.
	DefaultLimit = 100
	// MaxLimit bounds a page.
	MaxLimit = 1000
)

// DriverQuery is a List request as a driver sees it: the filter, a page
// size and a position, already validated and decoded by the Store.
type DriverQuery struct {
	Filter
	// Limit is the number of records to return at most (>= 1).
	Limit int
	// Before, when not empty, keeps records whose task id is strictly less
	// than it (ids compare as strings).
	Before string
}

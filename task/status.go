package task

// Status is where a task is in its lifecycle.
type Status string

// The states of DESIGN §5.
const (
	// Pending: accepted, waiting to be leased (possibly for run_at, a parent
	// or its state_key turn).
	Pending Status = "pending"
	// Leased: handed to a worker, which has not reported the start yet.
	Leased Status = "leased"
	// Running: the worker started executing it.
	Running Status = "running"
	// Retrying: an attempt failed and another comes at NextAttemptAt.
	Retrying Status = "retrying"
	// Completed: finished successfully (terminal).
	Completed Status = "completed"
	// Failed: finished unsuccessfully, retries exhausted or permanent (terminal).
	Failed Status = "failed"
	// Cancelled: cancelled by a client (terminal).
	Cancelled Status = "cancelled"
)

// Statuses lists every status, in lifecycle order.
var Statuses = []Status{Pending, Leased, Running, Retrying, Completed, Failed, Cancelled}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	for _, v := range Statuses {
		if v == s {
			return true
		}
	}
	return false
}

// Terminal reports whether no further transition can happen from s.
func (s Status) Terminal() bool {
	return s == Completed || s == Failed || s == Cancelled
}

// Active reports whether a worker holds the task (leased or running).
func (s Status) Active() bool { return s == Leased || s == Running }

var transitions = map[Status][]Status{
	Pending:  {Leased, Failed, Cancelled},
	Leased:   {Running, Retrying, Failed, Cancelled},
	Running:  {Completed, Retrying, Failed, Cancelled},
	Retrying: {Leased, Failed, Cancelled},
}

// CanTransition reports whether a task may move from one status to another.
func CanTransition(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

package task

import (
	"github.com/google/uuid"
)

// ID identifies a task: a UUIDv7 in its canonical string form, so that ids
// sort by creation time.
type ID = string

// NewID returns a fresh UUIDv7 string. It is called by the API layer before a
// command enters Raft, never inside the state machine.
func NewID() (ID, error) {
	u, err := uuid.NewV7()
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// ValidID reports whether s is a well-formed UUID string.
func ValidID(s string) bool {
	if len(s) != 36 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

package task

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("1.5s", "100ms"); a bare JSON number is read as milliseconds.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var ms float64
	if err := json.Unmarshal(b, &ms); err != nil {
		return fmt.Errorf("invalid duration %s: want a string like \"1.5s\" or milliseconds", b)
	}
	// Converting an out-of-range float to an integer is implementation
	// defined (on amd64 every huge value becomes the most negative one).
	ns := ms * float64(time.Millisecond)
	if ns >= math.MaxInt64 || ns < math.MinInt64 {
		return fmt.Errorf("invalid duration %s: out of range (at most about 292 years)", b)
	}
	*d = Duration(ns)
	return nil
}

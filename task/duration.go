package task

import (
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"time"
)

var durationType = reflect.TypeFor[Duration]()

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("1.5s", "100ms"); a bare JSON number is read as milliseconds.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	// The string holds only digits, '.', '-', letters and 'µ', which
	// encoding/json writes unescaped, as strconv does: the same bytes
	// without a reflective encoder per task (every archived task carries
	// durations).
	return strconv.AppendQuote(make([]byte, 0, 24), time.Duration(d).String()), nil
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
			// A type error lets encoding/json name the field.
			return &json.UnmarshalTypeError{Value: "string " + strconv.Quote(s), Type: durationType}
		}
		*d = Duration(v)
		return nil
	}
	var ms float64
	if err := json.Unmarshal(b, &ms); err != nil {
		return &json.UnmarshalTypeError{Value: string(b), Type: durationType}
	}
	// Converting an out-of-range float to an integer is implementation
	// defined (on amd64 every huge value becomes the most negative one).
	ns := ms * float64(time.Millisecond)
	if ns >= math.MaxInt64 || ns < math.MinInt64 {
		return &json.UnmarshalTypeError{Value: "number " + string(b) + " (out of range)", Type: durationType}
	}
	*d = Duration(ns)
	return nil
}

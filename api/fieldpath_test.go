package api

import (
	"reflect"
	"testing"

	"github.com/grey-distributed/grey/task"
)

func TestUnknownFieldPath(t *testing.T) {
	type inner struct {
		A int `json:"a"`
	}
	type doc struct {
		task.Spec
		Items []inner            `json:"items"`
		ByKey map[string]inner   `json:"by_key"`
		Ptr   *inner             `json:"ptr"`
		Raw   map[string]float64 `json:"raw"`
	}
	for _, tc := range []struct{ raw, name, want string }{
		{`{"kind":"x","zap":1}`, "zap", "zap"},
		{`{"kind":"x","constraints":{"zap":1}}`, "zap", "constraints.zap"}, // embedded Spec's field
		{`{"items":[{"a":1},{"zap":2}]}`, "zap", "items[1].zap"},
		{`{"by_key":{"k":{"zap":2}}}`, "zap", "by_key.k.zap"},
		{`{"PTR":{"zap":2}}`, "zap", "PTR.zap"}, // keys match case-insensitively
		{`not json`, "zap", "zap"},
	} {
		if got := unknownFieldPath([]byte(tc.raw), reflect.TypeOf(&doc{}), tc.name); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.raw, got, tc.want)
		}
	}
}

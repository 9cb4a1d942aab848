package remote

import (
	"net/url"
	"strings"
	"testing"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/greyerr"
)

// Placement picks the asked device ("cuda": the first cuda:N, none: the
// URL's first) and refuses a framework not routed here or a device the
// URL does not name, naming the runtime.
func TestPlacement(t *testing.T) {
	base, _ := url.Parse("http://127.0.0.1:1")
	c, err := NewClient(Options{Base: base, Frameworks: []ai.Framework{ai.PyTorch}, Devices: []string{"cpu", "cuda:1"}}, "oip")
	if err != nil {
		t.Fatal(err)
	}
	spec := func(fw ai.Framework, dev string) ai.LoadSpec {
		return ai.LoadSpec{Model: ai.Model{Framework: fw}, Device: dev}
	}
	for dev, want := range map[string]string{"": "cpu", "cuda": "cuda:1", "cuda:1": "cuda:1", "cpu": "cpu"} {
		if got, err := c.Placement(spec(ai.PyTorch, dev)); err != nil || got != want {
			t.Errorf("Placement(%q) = %q, %v; want %q", dev, got, err, want)
		}
	}
	for _, s := range []ai.LoadSpec{spec(ai.TensorFlow, ""), spec(ai.PyTorch, "cuda:0")} {
		_, err := c.Placement(s)
		if greyerr.CodeOf(err) != greyerr.FailedPrecondition || !strings.Contains(err.Error(), "oip runtime: ") {
			t.Errorf("Placement(%+v) = %v, want FailedPrecondition from the oip runtime", s, err)
		}
	}
	info := c.RuntimeInfo("oip", "v1")
	if info.Frameworks[ai.PyTorch] != "unknown" || len(info.Frameworks) != 1 || len(info.Devices) != 2 || info.Version != "v1" {
		t.Errorf("RuntimeInfo = %+v", info)
	}
}

package ai_test

import (
	"maps"
	"testing"

	"github.com/grey-distributed/grey/ai"
)

func TestLabels(t *testing.T) {
	if l := ai.Labels(nil); l != nil {
		t.Fatalf("no runtimes: %v", l)
	}
	cpu := ai.RuntimeInfo{Name: "grey-python", Frameworks: map[ai.Framework]string{ai.PyTorch: "1.13"}, Devices: []string{"cpu"}}
	gpu := ai.RuntimeInfo{Name: "grey-python", Frameworks: map[ai.Framework]string{ai.TensorFlow: "2.21", "onnx": "1"}, Devices: []string{"cpu", "cuda:0"}}
	want := map[string]string{"grey.ai/pytorch": "true"}
	if l := ai.Labels([]ai.RuntimeInfo{cpu}); !maps.Equal(l, want) {
		t.Fatalf("cpu runtime: %v, want %v", l, want)
	}
	want = map[string]string{"grey.ai/pytorch": "true", "grey.ai/tensorflow": "true", "gpu": "true"}
	if l := ai.Labels([]ai.RuntimeInfo{cpu, gpu}); !maps.Equal(l, want) {
		t.Fatalf("two runtimes: %v, want %v", l, want)
	}
	got := ai.MergeLabels(map[string]string{"gpu": "false", "zone": "a"}, want)
	if !maps.Equal(got, map[string]string{"grey.ai/pytorch": "true", "grey.ai/tensorflow": "true", "gpu": "false", "zone": "a"}) {
		t.Fatalf("merge: %v", got)
	}
	if ai.FrameworkLabel(ai.PyTorch) != "grey.ai/pytorch" {
		t.Fatal(ai.FrameworkLabel(ai.PyTorch))
	}
}

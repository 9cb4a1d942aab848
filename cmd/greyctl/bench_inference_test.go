package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/grey-distributed/grey/ai"
)

// --model submits inference tasks whose payloads are OIP requests with one
// random input of --input-shape and --datatype; bad flags are usage errors.
func TestBenchInference(t *testing.T) {
	t.Parallel()
	f := newFakeGrey(t)
	env := map[string]string{"GREY_SERVER": f.srv.URL}
	r := greyctl(t, env, "bench", "--tasks", "40", "--batch", "8", "--model", "mlp@stable", "--input-shape", "2,3", "--datatype", "fp64", "--input-name", "x", "-q")
	if r.code != 0 {
		t.Fatalf("bench --model: %+v", r)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res["model"] != "mlp@stable" || res["tasks"] != 40.0 {
		t.Fatalf("result %q (%v), want model mlp@stable and 40 tasks", r.stdout, err)
	}
	f.mu.Lock()
	specs := f.specs
	f.mu.Unlock()
	if len(specs) != 40 {
		t.Fatalf("%d tasks submitted, want 40", len(specs))
	}
	distinct := map[string]bool{}
	for _, s := range specs {
		var req ai.Request
		if s.Kind != ai.Kind || json.Unmarshal(s.Payload, &req) != nil {
			t.Fatalf("spec kind %q payload %s", s.Kind, s.Payload)
		}
		in := req.Inputs
		if req.Model != "mlp@stable" || len(in) != 1 || in[0].Name != "x" || in[0].Datatype != ai.FP64 ||
			len(in[0].Shape) != 2 || in[0].Shape[0] != 2 || in[0].Shape[1] != 3 || len(in[0].Data) != 6*8 {
			t.Fatalf("request = %+v", req)
		}
		if err := in[0].Validate("inputs[0]"); err != nil {
			t.Fatal(err)
		}
		distinct[string(s.Payload)] = true
	}
	if len(distinct) < 10 {
		t.Errorf("only %d distinct payloads among 40 tasks: inputs are not random", len(distinct))
	}
	for _, args := range [][]string{
		{"--model", "Bad Name"},
		{"--model", "mlp", "--input-shape", "0,16"},
		{"--model", "mlp", "--input-shape", "1,x"},
		{"--model", "mlp", "--input-shape", "1000000,1000000"},
		{"--model", "mlp", "--datatype", "FP8"},
		{"--model", "mlp", "--kind", "noop"},
		{"--model", "mlp", "--payload", "{}"},
		{"--kind", "inference"},
		{"--payload-binary"},
		{"--model", "mlp", "--payload-binary", "--scenario", "noisy-neighbor"},
	} {
		r := greyctl(t, env, append([]string{"bench", "--tasks", "1", "-q"}, args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, "--") {
			t.Errorf("greyctl bench %q = %+v, want a usage error (exit code 2)", args, r)
		}
	}
}

// The inference counters of --server-metrics become the run's cache hit
// rate, mean model load time and mean batch size.
func TestInferenceDelta(t *testing.T) {
	t.Parallel()
	expo := func(hits, misses, loadSum, loads, rows, batches string) string {
		return `# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 1
# TYPE go_memstats_mallocs_total counter
go_memstats_mallocs_total 10
# TYPE grey_inference_cache_hits_total counter
grey_inference_cache_hits_total{model="mlp"} ` + hits + `
# TYPE grey_inference_cache_misses_total counter
grey_inference_cache_misses_total{model="mlp"} ` + misses + `
# TYPE grey_inference_model_load_seconds histogram
grey_inference_model_load_seconds_bucket{le="+Inf"} ` + loads + `
grey_inference_model_load_seconds_sum ` + loadSum + `
grey_inference_model_load_seconds_count ` + loads + `
# TYPE grey_inference_batch_size histogram
grey_inference_batch_size_bucket{le="+Inf"} ` + batches + `
grey_inference_batch_size_sum ` + rows + `
grey_inference_batch_size_count ` + batches + `
`
	}
	before, err := parseCost(strings.NewReader(expo("0", "0", "0", "0", "0", "0")), "a")
	if err != nil {
		t.Fatal(err)
	}
	after, err := parseCost(strings.NewReader(expo("99", "1", "0.5", "2", "800", "100")), "a")
	if err != nil {
		t.Fatal(err)
	}
	d := inferenceDelta(before.inference, after.inference)
	if d == nil || d.CacheHitRate == nil || *d.CacheHitRate != 0.99 || d.ModelLoads != 2 || *d.ModelLoadMs != 250 || *d.MeanBatchSize != 8 || d.MeanQueueDelayMs != nil {
		t.Fatalf("delta = %+v", d)
	}
	plain, err := parseCost(strings.NewReader("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1\n# TYPE go_memstats_mallocs_total counter\ngo_memstats_mallocs_total 1\n"), "b")
	if err != nil {
		t.Fatal(err)
	}
	if d := inferenceDelta(plain.inference, plain.inference); d != nil {
		t.Fatalf("a server without inference metrics: %+v", d)
	}
}

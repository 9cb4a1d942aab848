package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/client"
)

// inferencePayloads is how many distinct random requests --model cycles
// through: enough that results differ, few enough to build at once.
const inferencePayloads = 256

// maxBenchTensorBytes bounds one generated input tensor.
const maxBenchTensorBytes = 1 << 20

// parseShape parses --input-shape ("1,16"): positive dimensions, the batch
// dimension first.
func parseShape(s string) ([]int64, error) {
	var shape []int64
	n := int64(1)
	for _, f := range strings.Split(s, ",") {
		d, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil || d < 1 || d > 1<<20 {
			return nil, usageErrorf("--input-shape %q: want positive dimensions separated by commas, such as 1,16", s)
		}
		n *= d
		if n > maxBenchTensorBytes {
			return nil, usageErrorf("--input-shape %q: too many elements (at most %d bytes per tensor)", s, maxBenchTensorBytes)
		}
		shape = append(shape, d)
	}
	if len(shape) > 8 {
		return nil, usageErrorf("--input-shape %q: at most 8 dimensions", s)
	}
	return shape, nil
}

// inferenceRequests returns n inference payloads for model, each one input
// tensor named name of the given shape and datatype with random elements
// (floats in [-1, 1), integers in [0, 100), booleans).
func inferenceRequests(model, name string, shape []int64, dt ai.Datatype, n int, rng *rand.Rand) ([]json.RawMessage, error) {
	if _, err := ai.ParseModelRef(model); err != nil {
		return nil, usageErrorf("--model %q: %v", model, err)
	}
	sz := dt.Size()
	if sz == 0 {
		return nil, usageErrorf("--datatype %q: want one of BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP32, FP64", dt)
	}
	elems := int64(1)
	for _, d := range shape {
		elems *= d
	}
	if elems*int64(sz) > maxBenchTensorBytes {
		return nil, usageErrorf("--input-shape × --datatype: %d bytes per tensor, at most %d", elems*int64(sz), maxBenchTensorBytes)
	}
	out := make([]json.RawMessage, n)
	for i := range out {
		data := make([]byte, elems*int64(sz))
		for e := int64(0); e < elems; e++ {
			putRandom(data[e*int64(sz):], dt, rng)
		}
		req := ai.Request{Model: model, Inputs: []ai.Tensor{{Name: name, Shape: shape, Datatype: dt, Data: data}}}
		if err := req.Inputs[0].Validate("inputs[0]"); err != nil {
			return nil, err
		}
		b, err := json.Marshal(req)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func putRandom(b []byte, dt ai.Datatype, rng *rand.Rand) {
	le := binary.LittleEndian
	i := rng.Uint64() % 100
	switch dt {
	case ai.FP32:
		le.PutUint32(b, math.Float32bits(float32(rng.Float64()*2-1)))
	case ai.FP64:
		le.PutUint64(b, math.Float64bits(rng.Float64()*2-1))
	case ai.Bool:
		b[0] = byte(i & 1)
	case ai.Uint8, ai.Int8:
		b[0] = byte(i)
	case ai.Uint16, ai.Int16:
		le.PutUint16(b, uint16(i))
	case ai.Uint32, ai.Int32:
		le.PutUint32(b, uint32(i))
	default:
		le.PutUint64(b, i)
	}
}

// inferenceStats are the model server's counters the bench reads before
// and after a run (absent on a server without the inference kind).
type inferenceStats struct {
	seen                     bool
	cacheHits, cacheMisses   float64
	loadSeconds, loads       float64
	batchRows, batches       float64
	queueSeconds, queueCalls float64
}

// inferenceFamilies adds the grey_inference_* families of one scrape.
func (s *inferenceStats) add(fams map[string]*dto.MetricFamily) {
	counter := func(name string, dst *float64) {
		f, ok := fams[name]
		if !ok {
			return
		}
		s.seen = true
		for _, m := range f.GetMetric() {
			if c := m.GetCounter(); c != nil {
				*dst += c.GetValue()
			} else if u := m.GetUntyped(); u != nil {
				*dst += u.GetValue()
			}
		}
	}
	histogram := func(name string, sum, count *float64) {
		f, ok := fams[name]
		if !ok {
			return
		}
		s.seen = true
		for _, m := range f.GetMetric() {
			if h := m.GetHistogram(); h != nil {
				*sum += h.GetSampleSum()
				*count += float64(h.GetSampleCount())
			}
		}
	}
	counter("grey_inference_cache_hits_total", &s.cacheHits)
	counter("grey_inference_cache_misses_total", &s.cacheMisses)
	histogram("grey_inference_model_load_seconds", &s.loadSeconds, &s.loads)
	histogram("grey_inference_batch_size", &s.batchRows, &s.batches)
	histogram("grey_inference_queue_delay_seconds", &s.queueSeconds, &s.queueCalls)
}

// inferenceResult is the "inference" object of a bench line run with
// --model and --server-metrics: the servers' inference counters over the
// run.
type inferenceResult struct {
	// CacheHitRate is hits / (hits + misses) of the model cache.
	CacheHitRate *float64 `json:"cache_hit_rate,omitempty"`
	// ModelLoads and ModelLoadMs: how many model loads, their mean time.
	ModelLoads  float64  `json:"model_loads"`
	ModelLoadMs *float64 `json:"model_load_ms,omitempty"`
	// MeanBatchSize is the mean rows per model call.
	MeanBatchSize *float64 `json:"mean_batch_size,omitempty"`
	// MeanQueueDelayMs is the mean time a request waited for its batch.
	MeanQueueDelayMs *float64 `json:"mean_queue_delay_ms,omitempty"`
}

// inferenceDelta is what happened between two samples (nil when the
// servers expose no inference metrics).
func inferenceDelta(before, after inferenceStats) *inferenceResult {
	if !after.seen {
		return nil
	}
	ratio := func(num, den float64, scale float64, digits int) *float64 {
		if den <= 0 {
			return nil
		}
		v := round(num/den*scale, digits)
		return &v
	}
	hits, misses := after.cacheHits-before.cacheHits, after.cacheMisses-before.cacheMisses
	return &inferenceResult{
		CacheHitRate:     ratio(hits, hits+misses, 1, 4),
		ModelLoads:       after.loads - before.loads,
		ModelLoadMs:      ratio(after.loadSeconds-before.loadSeconds, after.loads-before.loads, 1000, 2),
		MeanBatchSize:    ratio(after.batchRows-before.batchRows, after.batches-before.batches, 1, 2),
		MeanQueueDelayMs: ratio(after.queueSeconds-before.queueSeconds, after.queueCalls-before.queueCalls, 1000, 3),
	}
}

// add2 adds another server's counters.
func (s *inferenceStats) add2(o inferenceStats) {
	s.seen = s.seen || o.seen
	s.cacheHits += o.cacheHits
	s.cacheMisses += o.cacheMisses
	s.loadSeconds += o.loadSeconds
	s.loads += o.loads
	s.batchRows += o.batchRows
	s.batches += o.batches
	s.queueSeconds += o.queueSeconds
	s.queueCalls += o.queueCalls
}

// payloadAt is the payload of a generated task: one of Payloads at random
// when --model made them, else Payload.
func (c *benchConfig) payloadAt() json.RawMessage {
	if len(c.Payloads) > 0 {
		return c.Payloads[rand.IntN(len(c.Payloads))]
	}
	return c.Payload
}

// binaryBodies returns the requests in the Open Inference Protocol binary
// form (the same tensors: header JSON, then their raw bytes).
func binaryBodies(reqs []json.RawMessage) ([][]byte, error) {
	out := make([][]byte, len(reqs))
	for i, b := range reqs {
		var req ai.Request
		if err := json.Unmarshal(b, &req); err != nil {
			return nil, err
		}
		es, raw := ai.BinaryEntries(req.Inputs)
		h, err := json.Marshal(map[string]any{"model": req.Model, "inputs": es})
		if err != nil {
			return nil, err
		}
		out[i] = ai.AppendBinaryBody(nil, h, raw)
	}
	return out, nil
}

// uploadBodies uploads every body once for each tenant's client (a tenant
// sees only its own uploads) and returns their payload_refs per tenant.
func uploadBodies(ctx context.Context, clients []*client.Client, bodies [][]byte) ([][]string, error) {
	refs := make([][]string, len(clients))
	for i, c := range clients {
		refs[i] = make([]string, len(bodies))
		for k, b := range bodies {
			ref, err := c.UploadPayload(ctx, b)
			if err != nil {
				return nil, fmt.Errorf("upload of binary body %d: %w", k, err)
			}
			refs[i][k] = ref
		}
	}
	return refs, nil
}

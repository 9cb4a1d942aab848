package inference_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/batch"
	"github.com/grey-distributed/grey/executor/inference"
	"github.com/grey-distributed/grey/worker"
)

// BenchmarkWork measures the executor's own cost per task (decode, model
// resolution, cache, batching, response) with a runtime that costs
// nothing, from 64 concurrent callers, batched and not.
func BenchmarkWork(b *testing.B) {
	for _, size := range []int{1, 32} {
		b.Run(fmt.Sprintf("max_batch_size=%d", size), func(b *testing.B) {
			f := newFixture(b, func(c *inference.Config) {
				c.Batching = batch.Config{MaxBatchSize: size, MaxQueueDelay: time.Millisecond}
			})
			f.src.push("acme", "mlp", ai.PyTorch, "torch:double")
			p := payload("mlp", 1, 1)
			b.SetParallelism(32)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := f.exec.Work(context.Background(), job("acme", p)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/float64(f.drv.calls.Load()), "rows/call")
		})
	}
}

// BenchmarkEncodeResult measures encoding a one-row response for a server
// that stores results over 1 MiB by reference (the worker's path for every
// inference result).
func BenchmarkEncodeResult(b *testing.B) {
	f := newFixture(b, nil)
	f.src.push("acme", "mlp", ai.PyTorch, "torch:double")
	out, err := f.exec.Work(context.Background(), job("acme", payload("mlp", 1, 1)))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, bin, err := worker.EncodeResultFor(out, 1<<20); err != nil || bin {
			b.Fatal(bin, err)
		}
	}
}

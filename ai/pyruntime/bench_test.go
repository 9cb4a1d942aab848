package pyruntime_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/pyruntime/pyruntimetest"
)

// BenchmarkPythonHop measures one inference through the driver on the
// tiny MLP (8→16→4, FP32) at batch 1 and 32: the cost of the Python hop
// (frame out, numpy/torch in the process, frame back) plus a model that
// itself takes a few microseconds. It reports µs per call and per row.
func BenchmarkPythonHop(b *testing.B) {
	py := pyruntimetest.TorchPython(b)
	f := fixture(b, py, pyruntimetest.TorchMLP, 32)
	d := open(b, py, "?device=cpu", ai.OpenOptions{})
	key := load(b, d, f)
	ctx := context.Background()
	for _, rows := range []int64{1, 32} {
		in := f.Inputs[0]
		in.Shape = []int64{rows, 8}
		in.Data = in.Data[:rows*8*4]
		b.Run(fmt.Sprintf("batch=%d", rows), func(b *testing.B) {
			for i := 0; i < 20; i++ { // warm the interpreter's caches
				if _, err := d.Infer(ctx, key, []ai.Tensor{in}, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := d.Infer(ctx, key, []ai.Tensor{in}, nil); err != nil {
					b.Fatal(err)
				}
			}
			perCall := float64(b.Elapsed().Microseconds()) / float64(b.N)
			b.ReportMetric(perCall, "µs/call")
			b.ReportMetric(perCall/float64(rows), "µs/row")
		})
	}
}

// BenchmarkPythonHopParallel is BenchmarkPythonHop at batch 1 with calls
// pipelined from several goroutines (the process still runs them one at
// a time).
func BenchmarkPythonHopParallel(b *testing.B) {
	py := pyruntimetest.TorchPython(b)
	f := fixture(b, py, pyruntimetest.TorchMLP, 32)
	d := open(b, py, "?device=cpu", ai.OpenOptions{})
	key := load(b, d, f)
	in := f.Inputs[0]
	in.Shape = []int64{1, 8}
	in.Data = in.Data[:32]
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := d.Infer(context.Background(), key, []ai.Tensor{in}, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/call")
}

// BenchmarkColdLoad measures a model's first load on a fresh driver: the
// process start, importing torch, and torch.jit.load of the MLP. It
// reports the whole and the runtime's own load time (LoadInfo.Took).
func BenchmarkColdLoad(b *testing.B) {
	py := pyruntimetest.TorchPython(b)
	f := fixture(b, py, pyruntimetest.TorchMLP, 1)
	var took float64
	for b.Loop() {
		d := open(b, py, "?device=cpu", ai.OpenOptions{})
		li, err := d.Load(context.Background(), f.Spec(""))
		if err != nil {
			b.Fatal(err)
		}
		took += float64(li.Took.Milliseconds())
		b.StopTimer()
		if err := d.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/cold-load")
	b.ReportMetric(took/float64(b.N), "ms/load-in-runtime")
}

package runtimetest

import (
	"fmt"
	"testing"

	"github.com/grey-distributed/grey/ai"
)

// Bench measures a driver's cost per Infer call on the harness's model
// (through ai.Runtime, as the executor calls it): batches of 1 and 32
// rows one call at a time, and batches of 1 row from parallel callers
// (b.RunParallel). The 1-row figure, against memruntime's, is the
// per-call overhead of the runtime's hop (a process or a server).
func Bench(b *testing.B, h Harness) {
	if h.Open == nil {
		b.Fatal("runtimetest: Harness.Open is nil")
	}
	s := &suite{h: h}
	d := h.Open(b)
	if d == nil {
		b.Fatal("runtimetest: the harness returned a nil driver")
	}
	rt := ai.NewRuntime("bench", d)
	b.Cleanup(func() { _ = rt.Close() })
	key := s.load(b, rt, ai.LoadSpec{})
	c := ctx(b)
	for _, n := range []int{1, 32} {
		in, _ := stack(b, s.rows(b, n, int64(n)))
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := rt.Infer(c, key, in, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
		})
	}
	in, _ := stack(b, s.rows(b, 1, 99))
	b.Run("rows=1/parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := rt.Infer(c, key, in, nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

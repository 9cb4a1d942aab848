package oipruntime_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/memruntime"
	"github.com/grey-distributed/grey/ai/oipruntime/oiptest"
)

// BenchmarkInfer measures one inference call of a small MLP (4-8-3) through
// the mem runtime (in process, no hop), the oip runtime against the
// in-process fake (the HTTP and JSON hop alone), and the oip runtime
// against a real KServe model server (the hop plus KServe's Python
// request handling and numpy), for a batch of 1 and of 64 rows. The
// difference between mem and oip is the per-call overhead of the OIP hop.
//
//	GREY_TEST_KSERVE_URL=file://…/python go test -run '^$' -bench Infer ./ai/oipruntime/
func BenchmarkInfer(b *testing.B) {
	doc := memruntime.MLP(11, 4, 8, 3)
	s := spec("mlp", "1")
	s.Key = "k"
	rows := func(n int) []ai.Tensor {
		r := make([][]float32, n)
		for i := range r {
			r[i] = []float32{0.1, -0.2, 0.3, float32(i%7) / 7}
		}
		return []ai.Tensor{memruntime.Tensor(r)}
	}
	run := func(b *testing.B, d ai.Driver) {
		rt := ai.NewRuntime("bench", d)
		defer rt.Close()
		if _, err := rt.Load(ctx(b), s); err != nil {
			b.Fatal(err)
		}
		for _, n := range []int{1, 64} {
			in := rows(n)
			b.Run(map[int]string{1: "rows=1", 64: "rows=64"}[n], func(b *testing.B) {
				c := ctx(b)
				for i := 0; i < b.N; i++ {
					if _, err := rt.Infer(c, "k", in, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
	b.Run("mem", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "m.json")
		if err := os.WriteFile(path, doc.Marshal(), 0o600); err != nil {
			b.Fatal(err)
		}
		s.Path = path
		run(b, memruntime.Open(memruntime.Options{}))
	})
	b.Run("oip-fake", func(b *testing.B) {
		m, _ := memruntime.Parse(doc.Marshal())
		srv := oiptest.New(oiptest.Model{Name: "mlp", Versions: []string{"1"}, Model: m})
		defer srv.Close()
		run(b, open(b, "oip+"+srv.URL))
	})
	b.Run("oip-kserve", func(b *testing.B) {
		run(b, open(b, startKServe(b, doc)))
	})
}

package proof

import (
	"fmt"
	"strings"
	"testing"
)

func inferencePayload(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"model":"mlp","inputs":[{"name":"input__0","shape":[1,` + fmt.Sprint(n) + `],"datatype":"FP32","data":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%g", float32(i)*0.3711-1.25)
	}
	b.WriteString(`]}]}`)
	return []byte(b.String())
}

// BenchmarkJSONDigest is the digest of an inference payload of 16 and 1024
// FP32 numbers (a proof digests the payload and the result of every task).
func BenchmarkJSONDigest(b *testing.B) {
	for _, n := range []int{16, 1024} {
		p := inferencePayload(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(p)))
			for i := 0; i < b.N; i++ {
				JSONDigest(p)
			}
		})
	}
}

// BenchmarkCanonForm is the canonical form alone (no digest) of a small
// canonical object, the same unsorted, and the inference payloads.
func BenchmarkCanonForm(b *testing.B) {
	for _, c := range []struct{ name, in string }{
		{"canonical", `{"i":12345,"name":"resize","ok":true,"size":[640,480]}`},
		{"unsorted", `{"i":12345,"name":"resize","size":[640,480],"ok":true}`},
		{"tensor16", string(inferencePayload(16))},
		{"tensor1024", string(inferencePayload(1024))},
	} {
		in := []byte(c.in)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				_, _ = Canonicalize(in)
			}
		})
	}
}

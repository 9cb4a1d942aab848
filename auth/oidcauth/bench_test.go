package oidcauth

import (
	"context"
	"testing"
)

// BenchmarkVerifyCold verifies a fresh RS256 token each time (signature,
// claims, mapping): the token cache is off.
func BenchmarkVerifyCold(b *testing.B) {
	for _, mk := range []func(testing.TB, string) signingKey{newRSA, newEC, newEd} {
		k := mk(b, "k")
		b.Run(string(k.alg), func(b *testing.B) {
			f := newFixture(b, func(o *Options) { o.TokenCacheSize = 0 }, k)
			tok := sign(b, k, f.claims(nil))
			ctx := context.Background()
			if _, err := f.a.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := f.a.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyCached verifies the same token again: a SHA-256 and a
// cache hit.
func BenchmarkVerifyCached(b *testing.B) {
	f := newFixture(b, nil)
	tok := sign(b, f.key, f.claims(nil))
	ctx := context.Background()
	if _, err := f.a.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := f.a.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

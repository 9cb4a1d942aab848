package modelstore_test

import (
	"sync"
	"testing"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/modelstore"
	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/blobstore/fileblob"
)

// Resolve keeps its answers for ResolveTTL: a write through the same Store
// is seen at once, one by another Store on the same bucket (another
// server) once the answer expires.
func TestResolveKeepsAnswers(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	a, dir := newStore(t, modelstore.Options{Now: clock, ResolveTTL: 2 * time.Second})
	u, err := fileblob.URL(dir)
	if err != nil {
		t.Fatal(err)
	}
	reg := blobstore.NewRegistry()
	if err := fileblob.Register(reg); err != nil {
		t.Fatal(err)
	}
	b, err := modelstore.Open(t.Context(), reg, u, modelstore.Options{Now: clock, TempDir: t.TempDir()}, blobstore.Options{Environment: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	latest := ai.ModelRef{Name: "mlp", Alias: ai.LatestAlias}
	resolve := func(s *modelstore.Store) string {
		t.Helper()
		m, err := s.Resolve(t.Context(), "acme", latest)
		if err != nil {
			t.Fatal(err)
		}
		return m.Version
	}
	push(t, a, "acme", "mlp", "v1", ai.PyTorch, torchScript(t, "1"))
	if v := resolve(a); v != "v1" {
		t.Fatalf("latest = %s, want v1", v)
	}
	push(t, a, "acme", "mlp", "v2", ai.PyTorch, torchScript(t, "2"))
	if v := resolve(a); v != "v2" {
		t.Fatalf("after a push through the same store latest = %s, want v2 at once", v)
	}
	push(t, b, "acme", "mlp", "v3", ai.PyTorch, torchScript(t, "3"))
	if v := resolve(a); v != "v2" {
		t.Fatalf("another store's push seen before the answer expired: latest = %s", v)
	}
	mu.Lock()
	now = now.Add(3 * time.Second)
	mu.Unlock()
	if v := resolve(a); v != "v3" {
		t.Fatalf("after the TTL latest = %s, want v3", v)
	}
	// Another tenant's name is still NotFound, whatever is kept.
	if _, err := a.Resolve(t.Context(), "globex", latest); err == nil {
		t.Fatal("globex resolved acme's model")
	}
}

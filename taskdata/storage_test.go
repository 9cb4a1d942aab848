package taskdata_test

import (
	"context"
	"sync"
	"testing"

	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/blobstore/memblob"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/taskdata"
)

// counter is a StorageFunc over an in-memory count per tenant, refusing
// enforced growth past max.
type counter struct {
	mu  sync.Mutex
	max int64
	n   map[string]int64
}

func (c *counter) add(_ context.Context, tenant string, delta int64, enforce bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if enforce && delta > 0 && c.max > 0 && c.n[tenant]+delta > c.max {
		return greyerr.New(greyerr.TooLarge, "over quota")
	}
	c.n[tenant] += delta
	return nil
}

func (c *counter) get(tenant string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[tenant]
}

// An object uploaded straight to the bucket counts once when first named,
// however many submits race to name it; an object over quota is refused
// and not counted; stored results count and their collection gives the
// bytes back, per tenant.
func TestStorageCounted(t *testing.T) {
	b, err := memblob.Open(blobstore.Options{Environment: "test"})
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{max: 1000, n: map[string]int64{}}
	s, err := taskdata.New(b, taskdata.Options{MaxObjectBytes: 1 << 20, InlineMax: 16, Storage: c.add})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	raw, _ := s.Bucket().Prefixed("tenants/acme")
	if err := raw.Put(ctx, "uploads/u1", []byte(`{"a":1}`), nil); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.ResolvePayload(ctx, "payload_ref", "acme", "uploads/u1"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := c.get("acme"); got != 7 {
		t.Fatalf("after 8 submits of one 7-byte upload: %d bytes counted, want 7", got)
	}
	big := make([]byte, 1000)
	for i := range big {
		big[i] = '1'
	}
	if err := raw.Put(ctx, "uploads/big", big, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ResolvePayload(ctx, "payload_ref", "acme", "uploads/big"); greyerr.CodeOf(err) != greyerr.TooLarge {
		t.Fatalf("upload over quota: %v, want TooLarge", err)
	}
	if got := c.get("acme"); got != 7 {
		t.Fatalf("after a refused upload: %d bytes counted, want 7", got)
	}
	const id = "0190a1b2-0000-7000-8000-000000000001"
	if _, err := s.StoreResult(ctx, "acme", id, []byte(`"a stored result"`)); err != nil {
		t.Fatal(err)
	}
	if got := c.get("acme"); got != 7+17 {
		t.Fatalf("after a stored result: %d, want %d", got, 7+17)
	}
	if n, err := s.SweepResults(ctx, func(string, string) bool { return false }); err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v", n, err)
	}
	if got := c.get("acme"); got != 7 {
		t.Fatalf("after the result's collection: %d, want 7", got)
	}
	if got := c.get("other"); got != 0 {
		t.Fatalf("another tenant: %d", got)
	}
}

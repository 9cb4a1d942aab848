package server

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/task"
)

// tenantUsage is one tenant's row of the usage API.
func tenantUsage(t *testing.T, c *client.Client, tenant string) client.TenantUsage {
	t.Helper()
	r, err := c.Usage(context.Background(), client.UsageOptions{Tenant: tenant})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range r.Tenants {
		if u.TenantID == tenant {
			return u
		}
	}
	return client.TenantUsage{TenantID: tenant}
}

// A pushed module counts in the tenant's stored bytes and so in its
// byte-seconds (GB-months) and storage cost; deleting it takes the bytes
// away again; another tenant's counters do not move.
func TestModuleBytesInLedger(t *testing.T) {
	s, mk := startDataServer(t, "", 0, func(cfg *config.Config) { cfg.Tenants.Cost.Prices.GBMonthUSD = 1000 })
	ctx := context.Background()
	acme, other := mk("acme"), mk("other")
	ot, err := other.Submit(ctx, task.Spec{Kind: "echo", Payload: []byte(`"hi"`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Wait(ctx, ot.ID); err != nil {
		t.Fatal(err)
	}
	otherBefore := tenantUsage(t, other, "other").Load
	wasm, err := os.ReadFile("../examples/wasm/echo/echo.wasm")
	if err != nil {
		t.Fatal(err)
	}
	// Pushes of one module racing each other count it once.
	mods := make([]*client.Module, 4)
	var wg sync.WaitGroup
	for i := range mods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := acme.PushModule(ctx, wasm)
			if err != nil {
				t.Error(err)
			}
			mods[i] = m
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	mod := mods[0]
	u := tenantUsage(t, acme, "acme")
	if u.Load.BlobBytes != int64(len(wasm)) || u.Load.StoredBytes < int64(len(wasm)) {
		t.Fatalf("after a %d-byte push: load %+v", len(wasm), u.Load)
	}
	// Pushing the same module again stores nothing more.
	if _, err := acme.PushModule(ctx, wasm); err != nil {
		t.Fatal(err)
	}
	if got := tenantUsage(t, acme, "acme").Load.BlobBytes; got != int64(len(wasm)) {
		t.Fatalf("after a repeated push: blob bytes %d, want %d", got, len(wasm))
	}
	time.Sleep(1100 * time.Millisecond)
	u = tenantUsage(t, acme, "acme")
	if min := float64(len(wasm)); u.Usage.ByteSeconds < min || u.Cost.Storage <= 0 {
		t.Fatalf("a second later: byte-seconds %.0f (want ≥ %.0f), storage cost %v", u.Usage.ByteSeconds, min, u.Cost.Storage)
	}
	req, _ := http.NewRequest(http.MethodDelete, "http://"+s.HTTPAddr()+"/api/v1/modules/"+mod.Digest, nil)
	req.Header.Set(client.TenantHeader, "acme")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("delete module: %d", resp.StatusCode)
	}
	after := tenantUsage(t, acme, "acme")
	if after.Load.BlobBytes != 0 {
		t.Fatalf("after delete: load %+v, want no blob bytes", after.Load)
	}
	time.Sleep(500 * time.Millisecond)
	if again := tenantUsage(t, acme, "acme"); again.Usage.ByteSeconds-after.Usage.ByteSeconds > 1 {
		t.Fatalf("byte-seconds still grow after delete: %.0f → %.0f", after.Usage.ByteSeconds, again.Usage.ByteSeconds)
	}
	if got := tenantUsage(t, other, "other").Load; got != otherBefore {
		t.Fatalf("other tenant's load moved: %+v → %+v", otherBefore, got)
	}
}

// Two uploads racing for the last bytes of the quota: the replicated
// reservation lets one through and refuses the other with 413, and the
// refused one's bytes are not counted.
func TestConcurrentUploadsOverQuota(t *testing.T) {
	_, mk := startDataServer(t, "", 6<<20)
	ctx := context.Background()
	c := mk("acme")
	var urls []string
	for range 2 {
		up, err := c.CreateUpload(ctx, 4<<20, 0)
		if err != nil {
			t.Fatal(err)
		}
		urls = append(urls, up.URL)
	}
	body := bigJSON(4<<20, 'c')
	codes := make([]int, len(urls))
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPut, u, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	ok, refused := 0, 0
	for _, code := range codes {
		switch code {
		case http.StatusOK:
			ok++
		case http.StatusRequestEntityTooLarge:
			refused++
		}
	}
	if ok != 1 || refused != 1 {
		t.Fatalf("two concurrent 4 MiB uploads under a 6 MiB quota answered %v, want one 200 and one 413", codes)
	}
	if got := tenantUsage(t, c, "acme").Load.BlobBytes; got != int64(len(body)) {
		t.Fatalf("blob bytes %d, want %d (the accepted upload only)", got, len(body))
	}
}

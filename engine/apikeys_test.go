package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/greytest"
)

var anonAdmin = &auth.Principal{Subject: "anonymous", Method: auth.MethodNone, Grants: []auth.Grant{{Tenant: auth.AllTenants, Role: auth.RoleAdmin}}}

// TestAPIKeyUseIsBatched: a key used for every request costs about one Raft
// write per interval, not one per request.
func TestAPIKeyUseIsBatched(t *testing.T) {
	t.Parallel()
	const interval = 100 * time.Millisecond
	n := greytest.NewNode(t, engine.Config{APIKeyUseInterval: interval})
	ctx := context.Background()
	var ids []string
	for _, tenant := range []string{"a", "b", "c"} {
		k, err := n.Engine.CreateAPIKey(ctx, anonAdmin, engine.CreateAPIKeyRequest{Tenant: tenant, Role: auth.RoleWorker})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, k.Key.ID)
	}
	// Let start-up writes settle, then use every key 3,000 times in ~600ms.
	time.Sleep(2 * interval)
	before := n.Store.Index()
	start := time.Now()
	for i := range 3000 {
		n.Engine.APIKeyUsed(ids[i%3], time.Now())
		if i%30 == 0 {
			time.Sleep(6 * time.Millisecond)
		}
	}
	elapsed := time.Since(start)
	time.Sleep(3 * interval)
	writes := n.Store.Index() - before
	// One batch per interval at most, plus slack for other leader writes.
	if limit := uint64(elapsed/interval) + 6; writes > limit {
		t.Errorf("%d uses of 3 keys over %v made %d Raft writes, want at most %d", 3000, elapsed, writes, limit)
	}
	for _, id := range ids {
		k, err := n.Engine.GetAPIKey(ctx, "", id)
		if err != nil || k.LastUsedAt.IsZero() || k.LastUsedAt.Before(start) {
			t.Errorf("key %s: last used %v (%v)", id, k.LastUsedAt, err)
		}
	}
	// Unknown keys are ignored.
	n.Engine.APIKeyUsed("nosuchkeyaaaaaaa", time.Now())
}

func TestAPIKeyEngineChecks(t *testing.T) {
	t.Parallel()
	n := greytest.NewNode(t, engine.Config{})
	ctx := context.Background()
	op := &auth.Principal{Subject: "op", Grants: []auth.Grant{{Tenant: "a", Role: auth.RoleOperator}}}
	for _, tc := range []struct {
		name string
		p    *auth.Principal
		req  engine.CreateAPIKeyRequest
		want greyerr.Code
	}{
		{"no principal", nil, engine.CreateAPIKeyRequest{Tenant: "a", Role: auth.RoleViewer}, greyerr.Unauthenticated},
		{"operator makes admin", op, engine.CreateAPIKeyRequest{Tenant: "*", Role: auth.RoleAdmin}, greyerr.PermissionDenied},
		{"long name", anonAdmin, engine.CreateAPIKeyRequest{Tenant: "a", Role: auth.RoleViewer, Name: string(make([]byte, 101))}, greyerr.InvalidArgument},
		{"two-line name", anonAdmin, engine.CreateAPIKeyRequest{Tenant: "a", Role: auth.RoleViewer, Name: "a\nb"}, greyerr.InvalidArgument},
		{"long description", anonAdmin, engine.CreateAPIKeyRequest{Tenant: "a", Role: auth.RoleViewer, Description: string(make([]byte, 1001))}, greyerr.InvalidArgument},
		{"expired already", anonAdmin, engine.CreateAPIKeyRequest{Tenant: "a", Role: auth.RoleViewer, ExpiresAt: time.Now().Add(-time.Second)}, greyerr.InvalidArgument},
	} {
		if _, err := n.Engine.CreateAPIKey(ctx, tc.p, tc.req); !greyerr.Is(err, tc.want) {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
		}
	}
	if got := n.Engine.ListAPIKeys(ctx, ""); len(got) != 0 {
		t.Errorf("refused creates stored %d keys", len(got))
	}
	// Kinds are sorted and deduplicated.
	k, err := n.Engine.CreateAPIKey(ctx, op, engine.CreateAPIKeyRequest{Tenant: "a", Role: auth.RoleWorker, Kinds: []string{"b", "a", "b"}})
	if err != nil || len(k.Key.Kinds) != 2 || k.Key.Kinds[0] != "a" {
		t.Errorf("kinds: %+v, %v", k, err)
	}
	if _, err := n.Engine.RevokeAPIKey(ctx, "b", k.Key.ID); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("revoke through another tenant: %v", err)
	}
	if _, err := n.Engine.RevokeAPIKey(ctx, "", "../etc"); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("revoke a malformed id: %v", err)
	}
	if _, err := n.Engine.LookupAPIKey(ctx, "nosuchkeyaaaaaaa"); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("lookup unknown: %v", err)
	}
}

package state_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/auth/apikey"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/state"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newKey(t *testing.T, tenant string, role auth.Role, at time.Time) (*state.APIKey, apikey.Token) {
	t.Helper()
	tok, err := apikey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return &state.APIKey{ID: tok.ID, Tenant: tenant, Role: role, CreatedAt: at, SecretHash: tok.Hash(), Name: "k-" + tenant}, tok
}

func TestAPIKeyLifecycle(t *testing.T) {
	t.Parallel()
	s := state.New()
	ka, tokA := newKey(t, "a", auth.RoleWorker, t0)
	ka.Kinds = []string{"resize"}
	kb, _ := newKey(t, "b", auth.RoleViewer, t0.Add(time.Second))
	kadm, _ := newKey(t, auth.AllTenants, auth.RoleAdmin, t0.Add(2*time.Second))
	for i, k := range []*state.APIKey{ka, kb, kadm} {
		got, err := s.PutAPIKey(uint64(i+1), &state.APIKeyPutRequest{Now: k.CreatedAt, Key: k})
		if err != nil {
			t.Fatalf("put %s: %v", k.ID, err)
		}
		if got.SecretHash != nil {
			t.Errorf("put returned the secret hash")
		}
	}
	if _, err := s.PutAPIKey(4, &state.APIKeyPutRequest{Now: t0, Key: ka}); !greyerr.Is(err, greyerr.AlreadyExists) {
		t.Errorf("duplicate put: %v, want already_exists", err)
	}
	// Lookup keeps the hash (for the authenticator); lists do not.
	if got := s.APIKey(ka.ID); got == nil || !tokA.Matches(got) {
		t.Fatalf("APIKey(%s) = %+v", ka.ID, got)
	}
	all := s.APIKeys("")
	if len(all) != 3 || all[0].ID != ka.ID || all[2].ID != kadm.ID {
		t.Fatalf("APIKeys(\"\") = %v, want a, b, admin in creation order", ids(all))
	}
	for _, k := range all {
		if k.SecretHash != nil {
			t.Errorf("list carries the hash of %s", k.ID)
		}
	}
	if got := s.APIKeys("a"); len(got) != 1 || got[0].ID != ka.ID || !slices.Equal(got[0].Kinds, []string{"resize"}) {
		t.Errorf("APIKeys(a) = %+v", got)
	}
	if got := s.APIKeys("c"); len(got) != 0 {
		t.Errorf("APIKeys(c) = %v", ids(got))
	}

	// Revoke, scoped to a tenant: another tenant's key is not found.
	if _, err := s.RevokeAPIKey(5, &state.APIKeyRevokeRequest{Now: t0, ID: ka.ID, Tenant: "b"}); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("revoke through another tenant: %v, want not_found", err)
	}
	if _, err := s.RevokeAPIKey(5, &state.APIKeyRevokeRequest{Now: t0, ID: "nosuchkeyaaaaaaa"}); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("revoke unknown: %v", err)
	}
	rev := t0.Add(time.Hour)
	got, err := s.RevokeAPIKey(6, &state.APIKeyRevokeRequest{Now: rev, ID: ka.ID, Tenant: "a"})
	if err != nil || !got.RevokedAt.Equal(rev) || got.SecretHash != nil {
		t.Fatalf("revoke = %+v, %v", got, err)
	}
	// Again: keeps the first time.
	got, err = s.RevokeAPIKey(7, &state.APIKeyRevokeRequest{Now: rev.Add(time.Hour), ID: ka.ID})
	if err != nil || !got.RevokedAt.Equal(rev) {
		t.Errorf("second revoke = %+v, %v", got, err)
	}

	// Last use moves forward only; unknown ids are skipped.
	n := s.MarkAPIKeysUsed(8, &state.APIKeyUsedRequest{Now: t0, Uses: []state.APIKeyUse{
		{ID: kb.ID, At: t0.Add(5 * time.Minute)}, {ID: "gone", At: t0},
	}})
	if n != 1 || !s.APIKey(kb.ID).LastUsedAt.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("MarkAPIKeysUsed = %d, last used %v", n, s.APIKey(kb.ID).LastUsedAt)
	}
	if n := s.MarkAPIKeysUsed(9, &state.APIKeyUsedRequest{Now: t0, Uses: []state.APIKeyUse{{ID: kb.ID, At: t0}}}); n != 0 {
		t.Errorf("an older use changed %d keys", n)
	}
	if !s.APIKey(kb.ID).LastUsedAt.Equal(t0.Add(5 * time.Minute)) {
		t.Errorf("an older use moved last used back")
	}
	if s.Index() != 9 {
		t.Errorf("Index = %d, want 9", s.Index())
	}
}

func TestAPIKeySnapshotRoundTrip(t *testing.T) {
	t.Parallel()
	s := state.New()
	ka, tokA := newKey(t, "a", auth.RoleOperator, t0)
	ka.ExpiresAt = t0.Add(90 * 24 * time.Hour)
	ka.Description = "ci"
	kb, _ := newKey(t, "b", auth.RoleWorker, t0.Add(time.Second))
	kb.Kinds = []string{"x", "y"}
	for i, k := range []*state.APIKey{ka, kb} {
		if _, err := s.PutAPIKey(uint64(i+1), &state.APIKeyPutRequest{Now: t0, Key: k}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.RevokeAPIKey(3, &state.APIKeyRevokeRequest{Now: t0.Add(time.Minute), ID: kb.ID}); err != nil {
		t.Fatal(err)
	}
	s.MarkAPIKeysUsed(4, &state.APIKeyUsedRequest{Now: t0, Uses: []state.APIKeyUse{{ID: ka.ID, At: t0.Add(2 * time.Minute)}}})

	var buf bytes.Buffer
	if _, err := s.Snapshot().WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	r := state.New()
	if err := r.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{ka.ID, kb.ID} {
		want, _ := json.Marshal(s.APIKey(id))
		got, _ := json.Marshal(r.APIKey(id))
		if !bytes.Equal(got, want) {
			t.Errorf("key %s after restore:\n got %s\nwant %s", id, got, want)
		}
	}
	if k := r.APIKey(ka.ID); k == nil || !tokA.Matches(k) {
		t.Error("the restored key does not verify its token")
	}
	if got := r.APIKeys(""); len(got) != 2 {
		t.Errorf("restored list = %v", ids(got))
	}
	// A second snapshot of the restored store is byte-identical.
	var buf2 bytes.Buffer
	if _, err := r.Snapshot().WriteTo(&buf2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), buf2.Bytes()) {
		t.Error("snapshot of the restored store differs")
	}
}

func ids(ks []*state.APIKey) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.ID
	}
	return out
}

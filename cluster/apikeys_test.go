package cluster_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/auth/apikey"
	"github.com/grey-distributed/grey/cluster"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/state"
)

func TestFSMAPIKeys(t *testing.T) {
	t.Parallel()
	tok, _ := apikey.Generate()
	k := &state.APIKey{ID: tok.ID, Tenant: "acme", Role: auth.RoleWorker, Kinds: []string{"resize"}, CreatedAt: t0, SecretHash: tok.Hash()}
	logs := [][]byte{
		encode(t, cluster.APIKeyPutMsg, &state.APIKeyPutRequest{Now: t0, Key: k}),
		encode(t, cluster.APIKeyPutMsg, &state.APIKeyPutRequest{Now: t0, Key: k}),
		batchEntry(t, func(b *cluster.Batch) {
			cluster.Add(b, cluster.APIKeyUsed(&state.APIKeyUsedRequest{Now: t0, Uses: []state.APIKeyUse{{ID: tok.ID, At: t0.Add(time.Minute)}}}))
			cluster.Add(b, cluster.APIKeyRevoke(&state.APIKeyRevokeRequest{Now: t0.Add(time.Hour), ID: tok.ID, Tenant: "acme"}))
		}),
		encode(t, cluster.APIKeyRevokeMsg, &state.APIKeyRevokeRequest{Now: t0, ID: tok.ID, Tenant: "globex"}),
	}
	st, out := apply(t, logs)
	if got, ok := out[0].(*apikey.Key); !ok || got.ID != tok.ID || got.SecretHash != nil {
		t.Errorf("put = %#v", out[0])
	}
	if err, _ := out[1].(error); !greyerr.Is(err, greyerr.AlreadyExists) {
		t.Errorf("second put = %v", out[1])
	}
	if err, _ := out[3].(error); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("revoke through another tenant = %v", out[3])
	}
	got := st.APIKey(tok.ID)
	if got == nil || !tok.Matches(got) || !got.LastUsedAt.Equal(t0.Add(time.Minute)) || !got.RevokedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("stored %+v", got)
	}
	// Same log, same state; the snapshot keeps the key.
	st2, _ := apply(t, logs)
	b := snapshotBytes(t, st)
	if !bytes.Equal(b, snapshotBytes(t, st2)) {
		t.Error("same log, different state")
	}
	r := state.New()
	if err := r.Restore(bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	if rk := r.APIKey(tok.ID); rk == nil || !tok.Matches(rk) || !rk.RevokedAt.Equal(got.RevokedAt) {
		t.Errorf("restored %+v", rk)
	}
	for mt, name := range map[cluster.MsgType]string{cluster.APIKeyPutMsg: "apikey_put", cluster.APIKeyRevokeMsg: "apikey_revoke", cluster.APIKeyUsedMsg: "apikey_used"} {
		if mt.String() != name {
			t.Errorf("%d.String() = %q, want %q", mt, mt.String(), name)
		}
	}
}

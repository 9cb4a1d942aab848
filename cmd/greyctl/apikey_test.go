package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/grey-distributed/grey/api"
	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/auth/apikeyauth"
	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/internal/greytest"
)

// keyServer serves the real API of a single-node engine; a request with an
// API key acts as the key's principal, the admin token as the bootstrap
// admin (auth.mode: apikey).
func keyServer(t *testing.T) (*greytest.Node, map[string]string) {
	t.Helper()
	n := greytest.NewNode(t, engine.Config{})
	chain := &auth.Chain{Realm: "grey", Authenticators: []auth.Authenticator{auth.NewAdminToken(testAdminToken), apikeyauth.New(n.Engine)}}
	srv := httptest.NewServer(api.New(n.Engine, api.Options{AdminToken: testAdminToken, Auth: chain, Logger: greytest.Logger(t)}))
	t.Cleanup(srv.Close)
	return n, map[string]string{"GREY_SERVER": srv.URL, "GREY_TOKEN": testAdminToken}
}

func TestAPIKeyCommands(t *testing.T) {
	t.Parallel()
	n, env := keyServer(t)

	// create prints the key and, last, its token.
	r := greyctl(t, env, "apikey", "create", "--tenant", "acme", "--role", "operator", "--expires", "90d", "--name", "ops")
	if r.code != 0 {
		t.Fatalf("create: %+v", r)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	opToken := lines[len(lines)-1]
	if !strings.HasPrefix(opToken, "grey_") || !strings.Contains(r.stdout, "Role:     operator") || !strings.Contains(r.stderr, "shown only once") {
		t.Fatalf("create printed %+v", r)
	}
	id := strings.Split(opToken, "_")[1]
	if k := n.Engine.Store().APIKey(id); k == nil || k.Tenant != "acme" || k.Name != "ops" || k.ExpiresAt.IsZero() {
		t.Fatalf("stored %+v", k)
	}

	// The operator key, by flag or environment, creates a worker key for
	// its tenant (the global --tenant), with kinds; -o json has the token.
	opEnv := map[string]string{"GREY_SERVER": env["GREY_SERVER"], "GREY_API_KEY": opToken, "GREY_TENANT": "acme"}
	r = greyctl(t, opEnv, "apikey", "create", "--role", "worker", "--kinds", "resize, thumb", "--expires", "never", "-o", "json")
	var created client.CreatedAPIKey
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &created) != nil {
		t.Fatalf("worker key: %+v", r)
	}
	if created.Key.Tenant != "acme" || strings.Join(created.Key.Kinds, ",") != "resize,thumb" || !created.Key.ExpiresAt.IsZero() ||
		created.Key.CreatedBy != "apikey:"+id || !strings.HasPrefix(created.Token, "grey_"+created.Key.ID+"_") {
		t.Errorf("worker key = %+v", created)
	}
	if r := greyctl(t, opEnv, "apikey", "create", "--role", "admin"); r.code != 1 || !strings.Contains(r.stderr, "permission_denied") {
		t.Errorf("operator creates an admin key: %+v", r)
	}
	for _, args := range [][]string{
		{"apikey", "create"}, // no role
		{"apikey", "create", "--role", "viewer", "--expires", "9x"}, // bad lifetime
		{"apikey", "revoke"}, // no id
	} {
		if r := greyctl(t, opEnv, args...); r.code != 2 {
			t.Errorf("%v: %+v, want a usage error", args, r)
		}
	}

	// list never prints a secret.
	r = greyctl(t, opEnv, "apikey", "list")
	if r.code != 0 || !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, created.Key.ID) || !strings.Contains(r.stdout, "active") {
		t.Fatalf("list: %+v", r)
	}
	for _, tok := range []string{opToken, created.Token} {
		if strings.Contains(r.stdout, tok[strings.LastIndex(tok, "_")+1:]) {
			t.Errorf("list shows a secret:\n%s", r.stdout)
		}
	}
	r = greyctl(t, env, "apikey", "list", "--all", "-o", "json")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 2 || strings.Contains(r.stdout, "secret") {
		t.Errorf("list --all: %+v", r)
	}

	// revoke: the key stops working.
	if r := greyctl(t, opEnv, "apikey", "revoke", created.Key.ID); r.code != 0 || !strings.Contains(r.stdout, "revoked api key "+created.Key.ID) {
		t.Fatalf("revoke: %+v", r)
	}
	workerEnv := map[string]string{"GREY_SERVER": env["GREY_SERVER"], "GREY_TENANT": "acme"}
	if r := greyctl(t, workerEnv, "--api-key", created.Token, "apikey", "list"); r.code != 1 || !strings.Contains(r.stderr, "revoked") {
		t.Errorf("revoked key: %+v", r)
	}
	if r := greyctl(t, opEnv, "apikey", "list"); !strings.Contains(r.stdout, "revoked") {
		t.Errorf("list after revoke: %+v", r)
	}
	// A malformed key is refused before anything is sent, without echo.
	if r := greyctl(t, workerEnv, "--api-key", "grey_NOTAKEY_secretsecret", "apikey", "list"); r.code != 2 || strings.Contains(r.stderr, "secretsecret") {
		t.Errorf("malformed key: %+v", r)
	}
}

func TestCredentialChoice(t *testing.T) {
	t.Parallel()
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"api_keys":[]}`))
	}))
	t.Cleanup(srv.Close)
	key := "grey_aaaaaaaaaaaaaaaa_" + strings.Repeat("b", 51) + "a"
	key2 := "grey_cccccccccccccccc_" + strings.Repeat("d", 51) + "a"
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string // "" with code 2: refused
	}{
		{"none", nil, nil, ""},
		{"token env", map[string]string{"GREY_TOKEN": "t-env"}, nil, "Bearer t-env"},
		{"api key env", map[string]string{"GREY_API_KEY": key}, nil, "Bearer " + key},
		{"token flag beats key env", map[string]string{"GREY_API_KEY": key}, []string{"--token", "t-flag"}, "Bearer t-flag"},
		{"key flag beats token env", map[string]string{"GREY_TOKEN": "t-env"}, []string{"--api-key", key2}, "Bearer " + key2},
		{"key flag beats key env", map[string]string{"GREY_API_KEY": key}, []string{"--api-key", key2}, "Bearer " + key2},
		{"both in env", map[string]string{"GREY_TOKEN": "t", "GREY_API_KEY": key}, nil, "refused"},
		{"both flags", nil, []string{"--token", "t", "--api-key", key}, "refused"},
	}
	for _, tc := range cases {
		env := map[string]string{"GREY_SERVER": srv.URL}
		for k, v := range tc.env {
			env[k] = v
		}
		got = nil
		r := greyctl(t, env, append(tc.args, "apikey", "list")...)
		if tc.want == "refused" {
			if r.code != 2 || len(got) != 0 {
				t.Errorf("%s: %+v, sent %v; want a usage error", tc.name, r, got)
			}
			continue
		}
		if r.code != 0 || len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s: %+v, sent %q, want %q", tc.name, r, got, tc.want)
		}
	}
}

package apikeyauth_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/auth/apikey"
	"github.com/grey-distributed/grey/auth/apikeyauth"
	"github.com/grey-distributed/grey/greyerr"
)

// keys is an in-memory apikeyauth.Keys.
type keys struct {
	mu   sync.Mutex
	m    map[string]*apikey.Key
	used map[string]time.Time
	err  error
}

func (k *keys) LookupAPIKey(_ context.Context, id string) (*apikey.Key, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err != nil {
		return nil, k.err
	}
	if r := k.m[id]; r != nil {
		return r, nil
	}
	return nil, greyerr.New(greyerr.NotFound, "api key %s not found", id)
}

func (k *keys) APIKeyUsed(id string, at time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.used[id] = at
}

var now = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)

func setup(t *testing.T) (*keys, *apikeyauth.Authenticator, map[string]string) {
	t.Helper()
	ks := &keys{m: map[string]*apikey.Key{}, used: map[string]time.Time{}}
	toks := map[string]string{}
	add := func(name string, k apikey.Key) {
		tok, err := apikey.Generate()
		if err != nil {
			t.Fatal(err)
		}
		k.ID, k.SecretHash = tok.ID, tok.Hash()
		ks.m[k.ID] = &k
		toks[name] = tok.String()
	}
	add("worker", apikey.Key{Tenant: "acme", Role: auth.RoleWorker, Kinds: []string{"resize"}, Name: "resizer", ExpiresAt: now.Add(time.Hour)})
	add("admin", apikey.Key{Tenant: auth.AllTenants, Role: auth.RoleAdmin})
	add("expired", apikey.Key{Tenant: "acme", Role: auth.RoleViewer, ExpiresAt: now})
	add("revoked", apikey.Key{Tenant: "acme", Role: auth.RoleViewer, RevokedAt: now.Add(-time.Minute)})
	a := apikeyauth.New(ks, apikeyauth.WithClock(func() time.Time { return now }))
	return ks, a, toks
}

func authenticate(a *apikeyauth.Authenticator, header string) (*auth.Principal, error) {
	r := httptest.NewRequest("GET", "/api/v1/tasks", nil)
	if header != "" {
		r.Header.Set("Authorization", header)
	}
	return a.Authenticate(context.Background(), r)
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	ks, a, toks := setup(t)
	if a.Name() != "apikey" {
		t.Errorf("Name = %q", a.Name())
	}
	p, err := authenticate(a, "Bearer "+toks["worker"])
	if err != nil {
		t.Fatal(err)
	}
	id := strings.Split(toks["worker"], "_")[1]
	want := auth.Grant{Tenant: "acme", Role: auth.RoleWorker, Kinds: []string{"resize"}}
	if p.Subject != "apikey:"+id || p.Method != auth.MethodAPIKey || p.Name != "resizer" || len(p.Grants) != 1 ||
		p.Grants[0].Tenant != want.Tenant || p.Grants[0].Role != want.Role || strings.Join(p.Grants[0].Kinds, ",") != "resize" ||
		!p.Expires.Equal(now.Add(time.Hour)) {
		t.Errorf("principal = %+v", p)
	}
	if !ks.used[id].Equal(now) {
		t.Errorf("use not recorded: %v", ks.used)
	}
	// The scheme is case-insensitive.
	if p, err := authenticate(a, "bearer "+toks["admin"]); err != nil || p.Grants[0].Role != auth.RoleAdmin || p.Grants[0].Tenant != auth.AllTenants {
		t.Errorf("admin key: %+v, %v", p, err)
	}
}

func TestOtherCredentialsAreLeftToOthers(t *testing.T) {
	t.Parallel()
	_, a, toks := setup(t)
	for _, h := range []string{"", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "Basic dXNlcjpwYXNz", "Bearer", "Token " + toks["worker"], toks["worker"]} {
		if p, err := authenticate(a, h); !errors.Is(err, auth.ErrNoCredentials) {
			t.Errorf("%q: %+v, %v; want ErrNoCredentials", h, p, err)
		}
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	ks, a, toks := setup(t)
	good := toks["worker"]
	id := strings.Split(good, "_")[1]
	secret := strings.Split(good, "_")[2]
	other, _ := apikey.Generate()
	wrongSecret := "grey_" + id + "_" + strings.Split(other.String(), "_")[2]
	cases := []struct {
		name, token, want string
	}{
		{"malformed", "grey_short", "invalid api key"},
		{"upper case", "grey_" + strings.ToUpper(good[5:]), "invalid api key"},
		{"unknown id", other.String(), "is not valid"},
		{"wrong secret", wrongSecret, "is not valid"},
		{"expired", toks["expired"], "expired at"},
		{"revoked", toks["revoked"], "was revoked at"},
	}
	for _, tc := range cases {
		p, err := authenticate(a, "Bearer "+tc.token)
		if p != nil || !greyerr.Is(err, greyerr.Unauthenticated) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %+v, %v; want unauthenticated %q", tc.name, p, err, tc.want)
			continue
		}
		sec := tc.token[strings.LastIndex(tc.token, "_")+1:]
		if len(sec) > 4 && strings.Contains(err.Error(), sec) {
			t.Errorf("%s: the error echoes the secret: %v", tc.name, err)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error echoes a secret: %v", tc.name, err)
		}
	}
	// No use is recorded for a refused key.
	for _, name := range []string{"expired", "revoked"} {
		if _, ok := ks.used[strings.Split(toks[name], "_")[1]]; ok {
			t.Errorf("use recorded for the %s key", name)
		}
	}
	if _, ok := ks.used[id]; ok {
		t.Error("use recorded for a wrong secret")
	}
	// A store failure is not reported as a bad key.
	ks.err = greyerr.New(greyerr.Unavailable, "store down")
	if _, err := authenticate(a, "Bearer "+good); !greyerr.Is(err, greyerr.Unavailable) {
		t.Errorf("store failure: %v", err)
	}
}

package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grey-distributed/grey/api"
	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/auth/apikeyauth"
	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/greytest"
)

// keyServer is the API of a real single-node engine behind a minimal
// stand-in for the auth middleware: every request must carry an API key,
// which apikeyauth verifies against the engine; the principal goes into
// the request context as the real middleware puts it.
type keyServer struct {
	t    *testing.T
	node *greytest.Node
	url  string
	hc   *http.Client

	mu sync.Mutex
	h  http.Handler
}

func newKeyServer(t *testing.T) *keyServer {
	t.Helper()
	v, err := validator()
	if err != nil {
		t.Fatal(err)
	}
	ks := &keyServer{t: t, node: greytest.NewNode(t, engine.Config{APIKeyUseInterval: 50 * time.Millisecond})}
	ks.rebuild()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.mu.Lock()
		h := ks.h
		ks.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	ks.url = srv.URL
	ks.hc = &http.Client{Transport: &specTransport{t: t, v: v, next: srv.Client().Transport}}
	return ks
}

// rebuild serves the node's current engine (after a restart), with API
// keys as the only credential (auth.mode: apikey).
func (ks *keyServer) rebuild() {
	eng := ks.node.Engine
	h := api.New(eng, api.Options{Logger: greytest.Logger(ks.t), Auth: &auth.Chain{Authenticators: []auth.Authenticator{apikeyauth.New(eng)}, Realm: "grey"}})
	ks.mu.Lock()
	ks.h = h
	ks.mu.Unlock()
}

// specTransport holds every exchange of the client to openapi.yaml.
type specTransport struct {
	t    *testing.T
	v    *api.Validator
	next http.RoundTripper
}

func (s *specTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	reqErr := s.v.ValidateRequest(req, body)
	resp, err := s.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	// A request the spec refuses must be refused by the server too.
	if reqErr != nil && resp.StatusCode != http.StatusBadRequest {
		s.t.Errorf("%s %s: request does not match the API spec (%v) yet the server answered %d", req.Method, req.URL.Path, reqErr, resp.StatusCode)
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(rb))
	if err := s.v.ValidateResponse(req, resp.StatusCode, resp.Header, rb); err != nil {
		s.t.Errorf("%s %s: response %d does not match the API spec: %v\n%s", req.Method, req.URL.Path, resp.StatusCode, err, rb)
	}
	return resp, nil
}

// client returns a Go client authenticating with token, acting for tenant.
func (ks *keyServer) client(token, tenant string) *client.Client {
	ks.t.Helper()
	opts := []client.Option{client.WithAPIKey(token), client.WithHTTPClient(ks.hc)}
	if tenant != "" {
		opts = append(opts, client.WithTenant(tenant))
	}
	c, err := client.New(ks.url, opts...)
	if err != nil {
		ks.t.Fatal(err)
	}
	return c
}

// raw GETs path with token and returns the body.
func (ks *keyServer) raw(token, path string) (int, string) {
	ks.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, ks.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ks.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func wantCode(t *testing.T, what string, err error, code greyerr.Code) {
	t.Helper()
	if !greyerr.Is(err, code) {
		t.Errorf("%s: err = %v, want %s", what, err, code)
	}
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	ks := newKeyServer(t)
	ctx := context.Background()

	// The first admin key comes from the engine (greyd's bootstrap path:
	// auth mode none, or an existing admin).
	anon := &auth.Principal{Subject: "anonymous", Method: auth.MethodNone, Grants: []auth.Grant{{Tenant: auth.AllTenants, Role: auth.RoleAdmin}}}
	boot, err := ks.node.Engine.CreateAPIKey(ctx, anon, engine.CreateAPIKeyRequest{Tenant: auth.AllTenants, Role: auth.RoleAdmin, Name: "bootstrap"})
	if err != nil {
		t.Fatal(err)
	}
	admin := ks.client(boot.Token, "")

	// An admin creates an operator key for acme: the token comes back once.
	before := time.Now()
	ops, err := admin.CreateAPIKey(ctx, client.NewAPIKey{Tenant: "acme", Role: "operator", ExpiresIn: "90d", Name: "ops", Description: "acme operations"})
	if err != nil {
		t.Fatal(err)
	}
	k := ops.Key
	if !strings.HasPrefix(ops.Token, "grey_"+k.ID+"_") || k.Tenant != "acme" || k.Role != "operator" || k.Name != "ops" ||
		k.CreatedBy != "apikey:"+boot.Key.ID || k.ExpiresAt.Before(before.Add(90*24*time.Hour)) || k.ExpiresAt.After(time.Now().Add(90*24*time.Hour)) {
		t.Fatalf("created %+v (token %d chars)", k, len(ops.Token))
	}
	op := ks.client(ops.Token, "acme")

	// The operator creates a worker key for its own tenant (the client's).
	wk, err := op.CreateAPIKey(ctx, client.NewAPIKey{Role: "worker", Kinds: []string{"resize", "thumb"}, ExpiresIn: "12w", Name: "resizer"})
	if err != nil {
		t.Fatal(err)
	}
	if wk.Key.Tenant != "acme" || strings.Join(wk.Key.Kinds, ",") != "resize,thumb" || wk.Key.CreatedBy != "apikey:"+k.ID {
		t.Errorf("worker key = %+v", wk.Key)
	}
	// ... but no admin key, and nothing for another tenant.
	_, err = op.CreateAPIKey(ctx, client.NewAPIKey{Role: "admin"})
	wantCode(t, "operator creates an admin key", err, greyerr.PermissionDenied)
	_, err = op.CreateAPIKey(ctx, client.NewAPIKey{Tenant: "beta", Role: "viewer"})
	wantCode(t, "operator creates a key for beta", err, greyerr.PermissionDenied)
	_, err = admin.CreateAPIKey(ctx, client.NewAPIKey{Tenant: "acme", Role: "owner"})
	wantCode(t, "unknown role", err, greyerr.InvalidArgument)
	_, err = admin.CreateAPIKey(ctx, client.NewAPIKey{Tenant: "acme", Role: "viewer", ExpiresIn: "soon"})
	wantCode(t, "bad lifetime", err, greyerr.InvalidArgument)
	past := time.Now().Add(-time.Hour)
	_, err = admin.CreateAPIKey(ctx, client.NewAPIKey{Tenant: "acme", Role: "viewer", ExpiresAt: &past})
	wantCode(t, "expiry in the past", err, greyerr.InvalidArgument)

	// A viewer and a worker manage no keys.
	vk, err := admin.CreateAPIKey(ctx, client.NewAPIKey{Tenant: "acme", Role: "viewer"})
	if err != nil {
		t.Fatal(err)
	}
	viewer := ks.client(vk.Token, "acme")
	_, err = viewer.CreateAPIKey(ctx, client.NewAPIKey{Role: "viewer"})
	wantCode(t, "viewer creates", err, greyerr.PermissionDenied)
	_, err = viewer.ListAPIKeys(ctx, "")
	wantCode(t, "viewer lists", err, greyerr.PermissionDenied)
	_, err = ks.client(wk.Token, "acme").ListAPIKeys(ctx, "")
	wantCode(t, "worker lists", err, greyerr.PermissionDenied)

	// Lists: the operator sees acme's keys only; the admin sees all, or
	// one tenant's.
	mine, err := op.ListAPIKeys(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := keyIDs(mine); got != strings.Join([]string{k.ID, wk.Key.ID, vk.Key.ID}, ",") {
		t.Errorf("operator's list = %s", got)
	}
	_, err = op.ListAPIKeys(ctx, "beta")
	wantCode(t, "operator lists beta", err, greyerr.PermissionDenied)
	all, err := admin.ListAPIKeys(ctx, "")
	if err != nil || len(all) != 4 || all[0].ID != boot.Key.ID {
		t.Errorf("admin's list = %s, %v", keyIDs(all), err)
	}
	if acme, err := admin.ListAPIKeys(ctx, "acme"); err != nil || len(acme) != 3 {
		t.Errorf("admin's acme list = %s, %v", keyIDs(acme), err)
	}
	if admins, err := admin.ListAPIKeys(ctx, "*"); err != nil || keyIDs(admins) != boot.Key.ID {
		t.Errorf("admin's admin-key list = %s, %v", keyIDs(admins), err)
	}

	// The list never carries a secret or a hash.
	status, body := ks.raw(boot.Token, "/api/v1/apikeys")
	if status != http.StatusOK {
		t.Fatalf("raw list: %d %s", status, body)
	}
	for _, tok := range []string{boot.Token, ops.Token, wk.Token, vk.Token} {
		secret := tok[strings.LastIndex(tok, "_")+1:]
		if strings.Contains(body, secret) {
			t.Errorf("the list contains a secret: %s", body)
		}
	}
	for _, id := range []string{k.ID, wk.Key.ID} {
		h := ks.node.Engine.Store().APIKey(id).SecretHash
		for _, enc := range []string{base64.StdEncoding.EncodeToString(h), base64.RawURLEncoding.EncodeToString(h), hexString(h)} {
			if strings.Contains(body, enc) {
				t.Errorf("the list contains a secret hash: %s", body)
			}
		}
	}
	if strings.Contains(body, "secret") || strings.Contains(body, "token") {
		t.Errorf("the list names a secret or token field: %s", body)
	}

	// Last use is recorded (the leader writes it in batches).
	greytest.Eventually(t, 10*time.Second, func() bool {
		ls, err := admin.ListAPIKeys(ctx, "acme")
		return err == nil && len(ls) > 0 && !ls[0].LastUsedAt.IsZero() && ls[0].ID == k.ID
	})
	if ls, _ := admin.ListAPIKeys(ctx, "acme"); ls[2].ID != vk.Key.ID || ls[2].LastUsedAt.IsZero() {
		t.Errorf("the viewer key's use (refused requests still authenticate) was not recorded: %+v", ls[2])
	}

	// Revoking: another tenant's operator does not find the key; acme's
	// operator revokes it, and it stops working at once.
	bk, err := admin.CreateAPIKey(ctx, client.NewAPIKey{Tenant: "beta", Role: "operator"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ks.client(bk.Token, "beta").RevokeAPIKey(ctx, wk.Key.ID)
	wantCode(t, "beta revokes acme's key", err, greyerr.NotFound)
	_, err = op.RevokeAPIKey(ctx, "nosuchkeyaaaaaaa")
	wantCode(t, "revoke unknown", err, greyerr.NotFound)
	rev, err := op.RevokeAPIKey(ctx, wk.Key.ID)
	if err != nil || rev.RevokedAt.IsZero() || rev.ID != wk.Key.ID {
		t.Fatalf("revoke = %+v, %v", rev, err)
	}
	_, err = ks.client(wk.Token, "acme").ListAPIKeys(ctx, "")
	wantCode(t, "revoked key", err, greyerr.Unauthenticated)
	if err != nil && (!strings.Contains(err.Error(), "revoked") || strings.Contains(err.Error(), wk.Token[len(wk.Token)-20:])) {
		t.Errorf("revoked key: %v", err)
	}
	if again, err := admin.RevokeAPIKey(ctx, wk.Key.ID); err != nil || !again.RevokedAt.Equal(rev.RevokedAt) {
		t.Errorf("second revoke = %+v, %v", again, err)
	}

	// An expired key is refused.
	soon := time.Now().Add(time.Second)
	ek, err := admin.CreateAPIKey(ctx, client.NewAPIKey{Tenant: "acme", Role: "operator", ExpiresAt: &soon})
	if err != nil {
		t.Fatal(err)
	}
	expiring := ks.client(ek.Token, "acme")
	if _, err := expiring.ListAPIKeys(ctx, ""); err != nil {
		t.Fatalf("a key before its expiry: %v", err)
	}
	time.Sleep(time.Until(soon) + 50*time.Millisecond)
	_, err = expiring.ListAPIKeys(ctx, "")
	wantCode(t, "expired key", err, greyerr.Unauthenticated)
	if err != nil && !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired key: %v", err)
	}

	// Unknown keys and wrong secrets get the same answer.
	_, err = ks.client("grey_aaaaaaaaaaaaaaaa_"+strings.Repeat("a", 52), "acme").ListAPIKeys(ctx, "")
	wantCode(t, "unknown key", err, greyerr.Unauthenticated)
	forged := ops.Token[:len(ops.Token)-52] + strings.Repeat("a", 52)
	_, err = ks.client(forged, "acme").ListAPIKeys(ctx, "")
	wantCode(t, "wrong secret", err, greyerr.Unauthenticated)

	// Keys survive a restart from a snapshot: live ones work, revoked ones
	// stay revoked.
	ks.node.Restart(true)
	ks.rebuild()
	if ls, err := op.ListAPIKeys(ctx, ""); err != nil || len(ls) != 4 {
		t.Errorf("after restart, the operator lists %s, %v", keyIDs(ls), err)
	}
	_, err = ks.client(wk.Token, "acme").ListAPIKeys(ctx, "")
	wantCode(t, "revoked key after restart", err, greyerr.Unauthenticated)
}

// TestAPIKeysDevMode: in auth mode none with an admin token, the anonymous
// caller (operator and worker on every tenant) may not create keys; the
// admin token may.
func TestAPIKeysDevMode(t *testing.T) {
	t.Parallel()
	e := newEnv(t, engine.Config{}, api.Options{AdminToken: "s3cret-admin"})
	body := map[string]any{"tenant": "acme", "role": "worker", "kinds": []string{"noop"}, "expires_in": "1d"}
	r := e.do(t, call{method: "POST", path: "/api/v1/apikeys", body: body})
	if r.status != http.StatusForbidden {
		t.Errorf("without the admin token: %d %s, want 403", r.status, r.body)
	}
	var created struct {
		Key   map[string]any `json:"key"`
		Token string         `json:"token"`
	}
	r = e.ok(t, call{method: "POST", path: "/api/v1/apikeys", body: body, header: map[string]string{"Authorization": "Bearer s3cret-admin"}}, http.StatusCreated, &created)
	if created.Key["created_by"] != auth.SubjectAdminToken || created.Key["tenant"] != "acme" || !strings.HasPrefix(created.Token, "grey_") {
		t.Errorf("created %+v", created)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", r.header.Get("Cache-Control"))
	}
	// Malformed bodies are refused by the spec and the server alike.
	for _, b := range []any{
		map[string]any{"role": "worker", "secret_hash": "AAAA"},
		map[string]any{"role": "worker", "expires_in": "1d", "expires_at": time.Now().Add(time.Hour)},
	} {
		r := e.do(t, call{method: "POST", path: "/api/v1/apikeys", body: b, header: map[string]string{"Authorization": "Bearer s3cret-admin"}, bad: true})
		if r.status != http.StatusBadRequest {
			t.Errorf("%v: %d %s", b, r.status, r.body)
		}
	}
}

func keyIDs(ks []*client.APIKey) string {
	ids := make([]string, len(ks))
	for i, k := range ks {
		ids[i] = k.ID
	}
	return strings.Join(ids, ",")
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

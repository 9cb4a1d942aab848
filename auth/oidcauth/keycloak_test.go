package oidcauth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/internal/testenv"
)

// The acceptance tests run against the Keycloak of scripts/services.sh and
// its realm scripts/keycloak/grey-realm.json.

// kcToken asks Keycloak's token endpoint for an access token.
func kcToken(t *testing.T, iss string, form url.Values) string {
	t.Helper()
	resp, err := http.PostForm(iss+"/protocol/openid-connect/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token endpoint: %s: %s", resp.Status, body)
	}
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.AccessToken == "" {
		t.Fatalf("token endpoint answered %s", body)
	}
	return out.AccessToken
}

func passwordGrant(t *testing.T, iss, user, password string) string {
	return kcToken(t, iss, url.Values{"grant_type": {"password"}, "client_id": {"greyctl"}, "username": {user}, "password": {password}, "scope": {"openid"}})
}

func keycloakAuth(t *testing.T, iss string, mod func(*Options)) *Authenticator {
	t.Helper()
	o := Options{
		Issuer: iss, Audience: []string{"grey"}, Leeway: 30 * time.Second,
		JWKSRefreshInterval: time.Second, JWKSMaxAge: time.Minute, TokenCacheSize: 100,
		Claims: auth.DefaultClaimRules(),
	}
	if mod != nil {
		mod(&o)
	}
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Discover(context.Background()); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestKeycloakPasswordGrant(t *testing.T) {
	iss := testenv.KeycloakIssuer(t)
	a := keycloakAuth(t, iss, nil)
	for _, tc := range []struct {
		user, password string
		want           []auth.Grant
	}{
		{"alice", "alice-password", []auth.Grant{{Tenant: "acme", Role: auth.RoleOperator}}},
		{"bob", "bob-password", []auth.Grant{{Tenant: "acme", Role: auth.RoleViewer}}},
		{"carol", "carol-password", []auth.Grant{{Tenant: "globex", Role: auth.RoleOperator}}},
		{"grey-admin", "admin-password", []auth.Grant{{Tenant: auth.AllTenants, Role: auth.RoleAdmin}}},
	} {
		p, err := a.Authenticate(context.Background(), bearer(passwordGrant(t, iss, tc.user, tc.password)))
		if err != nil {
			t.Fatalf("%s: %v", tc.user, err)
		}
		if p.Name != tc.user || !strings.HasPrefix(p.Subject, "oidc:"+iss+"#") || p.Method != auth.MethodOIDC {
			t.Errorf("%s: principal %+v", tc.user, p)
		}
		if !reflect.DeepEqual(p.Grants, tc.want) {
			t.Errorf("%s: grants %+v, want %+v", tc.user, p.Grants, tc.want)
		}
	}
}

func TestKeycloakGroupBindings(t *testing.T) {
	iss := testenv.KeycloakIssuer(t)
	// dave has no permissions attribute, only the acme-operators group
	a := keycloakAuth(t, iss, func(o *Options) {
		o.Claims.Bindings = []auth.Binding{{Value: "acme-operators", Tenant: "acme", Role: auth.RoleOperator}}
	})
	p, err := a.Authenticate(context.Background(), bearer(passwordGrant(t, iss, "dave", "dave-password")))
	if err != nil {
		t.Fatal(err)
	}
	if want := []auth.Grant{{Tenant: "acme", Role: auth.RoleOperator}}; !reflect.DeepEqual(p.Grants, want) {
		t.Fatalf("grants %+v, want %+v", p.Grants, want)
	}
}

func TestKeycloakClientCredentials(t *testing.T) {
	iss := testenv.KeycloakIssuer(t)
	a := keycloakAuth(t, iss, nil)
	tok := kcToken(t, iss, url.Values{"grant_type": {"client_credentials"}, "client_id": {"grey-worker"}, "client_secret": {"grey-worker-secret"}})
	p, err := a.Authenticate(context.Background(), bearer(tok))
	if err != nil {
		t.Fatal(err)
	}
	if want := []auth.Grant{{Tenant: "acme", Role: auth.RoleWorker}}; !reflect.DeepEqual(p.Grants, want) {
		t.Fatalf("grants %+v, want %+v", p.Grants, want)
	}
	// a wrong audience: the same token for an authenticator expecting another
	b := keycloakAuth(t, iss, func(o *Options) { o.Audience = []string{"not-grey"} })
	p, err = b.Authenticate(context.Background(), bearer(tok))
	refused(t, p, err, "audience")
}

// kcAdmin calls Keycloak's admin REST API on one realm.
type kcAdmin struct {
	t     *testing.T
	base  string // http://host:port
	realm string
	token string
}

func (k *kcAdmin) do(method, path string, body any, out any) int {
	k.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	u := k.base + "/admin/realms"
	if k.realm != "" {
		u += "/" + k.realm
	}
	req, _ := http.NewRequest(method, u+path, rd)
	req.Header.Set("Authorization", "Bearer "+k.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		k.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		k.t.Fatalf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			k.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

type kcComponent struct {
	ID           string              `json:"id,omitempty"`
	Name         string              `json:"name"`
	ProviderID   string              `json:"providerId"`
	ProviderType string              `json:"providerType"`
	ParentID     string              `json:"parentId"`
	Config       map[string][]string `json:"config"`
}

type kcKeys struct {
	Active map[string]string `json:"active"`
	Keys   []struct {
		Kid        string `json:"kid"`
		Algorithm  string `json:"algorithm"`
		ProviderID string `json:"providerId"`
		Status     string `json:"status"`
	} `json:"keys"`
}

// TestKeycloakKeyRotation rotates a realm's RS256 key through the admin
// API: a new rsa-generated provider with a higher priority, the old one
// removed. A token signed by the old key is refused afterwards, one by the
// new key accepted. It runs on a realm of its own, made and removed here,
// so that tests using the grey realm at the same time are not disturbed.
func TestKeycloakKeyRotation(t *testing.T) {
	kc := strings.TrimRight(testenv.ServiceURL(t, "keycloak"), "/")
	// the master realm's bootstrap admin of scripts/services.sh
	adminToken := kcToken(t, kc+"/realms/master", url.Values{
		"grant_type": {"password"}, "client_id": {"admin-cli"}, "username": {"admin"}, "password": {"admin"}})
	name := fmt.Sprintf("grey-rotation-%d", time.Now().UnixNano())
	root := &kcAdmin{t: t, base: kc, token: adminToken}
	root.do(http.MethodPost, "", map[string]any{
		"realm": name, "enabled": true, "sslRequired": "none",
		"users": []any{map[string]any{
			"username": "alice", "enabled": true, "email": "alice@acme.example", "emailVerified": true,
			"firstName": "Alice", "lastName": "Acme",
			"credentials": []any{map[string]any{"type": "password", "value": "alice-password", "temporary": false}},
		}},
		"clients": []any{map[string]any{
			"clientId": "greyctl", "enabled": true, "publicClient": true, "directAccessGrantsEnabled": true,
			"protocolMappers": []any{
				map[string]any{"name": "audience grey", "protocol": "openid-connect", "protocolMapper": "oidc-audience-mapper",
					"config": map[string]string{"included.custom.audience": "grey", "access.token.claim": "true"}},
				map[string]any{"name": "permissions", "protocol": "openid-connect", "protocolMapper": "oidc-hardcoded-claim-mapper",
					"config": map[string]string{"claim.name": "permissions", "claim.value": "acme:operator", "jsonType.label": "String", "access.token.claim": "true"}},
			},
		}},
	}, nil)
	t.Cleanup(func() { root.do(http.MethodDelete, "/"+name, nil, nil) })
	iss := kc + "/realms/" + name
	a := keycloakAuth(t, iss, nil)
	ctx := context.Background()

	oldTok := passwordGrant(t, iss, "alice", "alice-password")
	if _, err := a.Verify(ctx, oldTok); err != nil {
		t.Fatalf("before rotation: %v", err)
	}
	adm := &kcAdmin{t: t, base: kc, realm: name, token: adminToken}
	var before kcKeys
	adm.do(http.MethodGet, "/keys", nil, &before)
	oldKid := before.Active["RS256"]
	var oldProvider string
	for _, k := range before.Keys {
		if k.Kid == oldKid {
			oldProvider = k.ProviderID
		}
	}
	if oldKid == "" || oldProvider == "" {
		t.Fatalf("no active RS256 key: %+v", before)
	}

	var realm struct {
		ID string `json:"id"`
	}
	adm.do(http.MethodGet, "", nil, &realm)
	adm.do(http.MethodPost, "/components", kcComponent{
		Name: fmt.Sprintf("rsa-rotated-%d", time.Now().UnixNano()), ProviderID: "rsa-generated",
		ProviderType: "org.keycloak.keys.KeyProvider", ParentID: realm.ID,
		Config: map[string][]string{"priority": {fmt.Sprint(time.Now().Unix())}, "enabled": {"true"}, "active": {"true"}, "algorithm": {"RS256"}, "keySize": {"2048"}},
	}, nil)
	adm.do(http.MethodDelete, "/components/"+oldProvider, nil, nil)

	var after kcKeys
	adm.do(http.MethodGet, "/keys", nil, &after)
	newKid := after.Active["RS256"]
	if newKid == "" || newKid == oldKid {
		t.Fatalf("rotation did not change the active key: %q -> %q", oldKid, newKid)
	}
	for _, k := range after.Keys {
		if k.Kid == oldKid {
			t.Fatalf("old key %s still published after its provider was removed", oldKid)
		}
	}

	time.Sleep(1100 * time.Millisecond) // JWKSRefreshInterval
	newTok := passwordGrant(t, iss, "alice", "alice-password")
	p, err := a.Verify(ctx, newTok)
	if err != nil {
		t.Fatalf("token of the new key refused: %v", err)
	}
	if want := []auth.Grant{{Tenant: "acme", Role: auth.RoleOperator}}; !reflect.DeepEqual(p.Grants, want) {
		t.Fatalf("grants %+v", p.Grants)
	}
	p, err = a.Verify(ctx, oldTok)
	refused(t, p, err, "unknown kid")
	// a fresh authenticator (cold key set) refuses it too
	p, err = keycloakAuth(t, iss, nil).Verify(ctx, oldTok)
	refused(t, p, err, "unknown kid")
}

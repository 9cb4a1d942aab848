package config

import (
	"strings"
	"testing"
)

func TestAuthIdentityValidation(t *testing.T) {
	t.Parallel()
	const oidcOn = "auth:\n  mode: [oidc]\n  oidc:\n    issuer: https://sso.example.com/realms/grey\n    audience: [grey]\n"
	cases := []struct {
		name string
		yaml string
		env  []string
		want string // "" = valid; else a substring of the error
	}{
		{"oidc ok", oidcOn, nil, ""},
		{"oidc off needs nothing", "auth:\n  mode: [none]\n", nil, ""},
		{"issuer required", "auth:\n  mode: [oidc]\n  oidc:\n    audience: [grey]\n", nil, "auth.oidc.issuer"},
		{"audience required", "auth:\n  mode: [oidc]\n  oidc:\n    issuer: https://sso.example.com/r\n", nil, "auth.oidc.audience"},
		{"provider URL from env", "auth:\n  mode: [oidc]\n  oidc:\n    audience: [grey]\n", []string{"GREY_IAM_PROVIDER", "https://sso.example.com/realms/grey"}, ""},
		{"preset needs issuer", "auth:\n  mode: [oidc]\n  oidc:\n    audience: [grey]\n", []string{"GREY_IAM_PROVIDER", "keycloak"}, "auth.oidc.issuer"},
		{"preset with issuer", oidcOn, []string{"GREY_IAM_PROVIDER", "keycloak"}, ""},
		{"unknown preset", oidcOn, []string{"GREY_IAM_PROVIDER", "okta-ish"}, "auth.oidc.provider"},
		{"provider and issuer disagree", oidcOn, []string{"GREY_IAM_PROVIDER", "https://other.example.com/"}, "names another issuer"},
		{"plain http off loopback", "auth:\n  mode: [oidc]\n  oidc:\n    issuer: http://sso.example.com/r\n    audience: [grey]\n", nil, "https"},
		{"plain http on loopback", "auth:\n  mode: [oidc]\n  oidc:\n    issuer: http://127.0.0.1:8080/realms/grey\n    audience: [grey]\n", nil, ""},
		{"alg none", oidcOn + "    algorithms: [RS256, none]\n", nil, "alg none"},
		{"alg None any case", oidcOn + "    algorithms: [NoNe]\n", nil, "alg none"},
		{"alg HS256", oidcOn + "    algorithms: [HS256]\n", nil, "HMAC"},
		{"alg unknown", oidcOn + "    algorithms: [RSA1_5]\n", nil, "auth.oidc.algorithms[0]"},
		{"no algs", oidcOn + "    algorithms: []\n", nil, "auth.oidc.algorithms"},
		{"leeway too big", oidcOn + "    leeway: 1h\n", nil, "auth.oidc.leeway"},
		{"refresh too short", oidcOn + "    jwks_refresh_interval: 10ms\n", nil, "auth.oidc.jwks_refresh_interval"},
		{"max age below refresh", oidcOn + "    jwks_refresh_interval: 1m\n    jwks_max_age: 30s\n", nil, "auth.oidc.jwks_max_age"},
		{"cache negative", oidcOn + "    token_cache_size: -1\n", nil, "auth.oidc.token_cache_size"},
		{"claim name bad", "auth:\n  claims:\n    permissions: \"a b\"\n", nil, "auth.claims.permissions"},
		{"claim off", "auth:\n  claims:\n    permissions: \"-\"\n", nil, ""},
		{"binding ok", "auth:\n  claims:\n    bindings:\n      - {value: acme-ops, tenant: acme, role: operator}\n", nil, ""},
		{"binding bad role", "auth:\n  claims:\n    bindings:\n      - {value: x, tenant: acme, role: root}\n", nil, "bindings[0].role"},
		{"binding star not admin", "auth:\n  claims:\n    bindings:\n      - {value: x, tenant: \"*\", role: viewer}\n", nil, "bindings[0].tenant"},
		{"binding bad tenant", "auth:\n  claims:\n    bindings:\n      - {value: x, tenant: Acme!, role: viewer}\n", nil, "bindings[0].tenant"},
		{"binding kinds not worker", "auth:\n  claims:\n    bindings:\n      - {value: x, tenant: acme, role: viewer, kinds: [wasm]}\n", nil, "bindings[0].kinds"},
		{"binding bad glob", "auth:\n  claims:\n    bindings:\n      - {value: \"[\", tenant: acme, role: viewer}\n", nil, "bindings[0].value"},
		{"saml ok", "auth:\n  mode: [saml]\n  saml:\n    root_url: https://grey.example.com\n    idp_metadata: https://sso.example.com/realms/grey/protocol/saml/descriptor\n", nil, ""},
		{"saml metadata file", "auth:\n  mode: [saml]\n  saml:\n    root_url: https://grey.example.com\n    idp_metadata: /etc/grey/idp.xml\n", nil, ""},
		{"saml needs root", "auth:\n  mode: [saml]\n  saml:\n    idp_metadata: /etc/grey/idp.xml\n", nil, "auth.saml.root_url"},
		{"saml root http off loopback", "auth:\n  mode: [saml]\n  saml:\n    root_url: http://grey.example.com\n    idp_metadata: /x.xml\n", nil, "auth.saml.root_url"},
		{"saml needs metadata", "auth:\n  mode: [saml]\n  saml:\n    root_url: https://grey.example.com\n", nil, "auth.saml.idp_metadata"},
		{"saml cert without key", "auth:\n  saml:\n    cert_file: /a.pem\n", nil, "auth.saml.key_file"},
		{"saml ttl", "auth:\n  saml:\n    session_ttl: 1s\n", nil, "auth.saml.session_ttl"},
		{"saml cookie name", "auth:\n  saml:\n    cookie_name: \"a b\"\n", nil, "auth.saml.cookie_name"},
		{"binding empty value", "auth:\n  claims:\n    bindings:\n      - {tenant: acme, role: viewer}\n", nil, "bindings[0].value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadBytes([]byte(tc.yaml), "grey.yaml", env(tc.env...))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted; want an error naming %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %v does not name %q", err, tc.want)
			}
		})
	}
}

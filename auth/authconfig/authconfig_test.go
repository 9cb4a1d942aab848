package authconfig

import (
	"reflect"
	"testing"
	"time"

	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/auth/oidcauth"
	"github.com/grey-distributed/grey/auth/samlauth"
	"github.com/grey-distributed/grey/config"
)

func TestDefaultsMatch(t *testing.T) {
	c := config.Default()
	if got := Claims(c.Auth.Claims); !reflect.DeepEqual(got, auth.DefaultClaimRules()) {
		t.Fatalf("default claims %+v differ from auth.DefaultClaimRules %+v", got, auth.DefaultClaimRules())
	}
	o := OIDC(c.Auth)
	if !reflect.DeepEqual(o.Algorithms, oidcauth.DefaultAlgorithms()) || o.JWKSRefreshInterval != oidcauth.DefaultJWKSRefreshInterval || o.JWKSMaxAge != oidcauth.DefaultJWKSMaxAge {
		t.Fatalf("default OIDC options %+v differ from oidcauth's defaults", o)
	}
}

func TestConvert(t *testing.T) {
	c, err := config.LoadBytes([]byte(`
auth:
  mode: [oidc]
  oidc:
    issuer: https://sso.example.com/realms/grey
    audience: [grey]
    leeway: 10s
  claims:
    permissions: "-"
    bindings:
      - {value: acme-workers, tenant: acme, role: worker, kinds: [wasm]}
`), "grey.yaml", func(k string) (string, bool) {
		if k == "GREY_IAM_PROVIDER" {
			return "keycloak", true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	o := OIDC(c.Auth)
	if o.Issuer != "https://sso.example.com/realms/grey" || o.Leeway != 10*time.Second || o.Claims.Permissions != "" {
		t.Fatalf("options %+v", o)
	}
	want := []auth.Binding{{Claim: "", Value: "acme-workers", Tenant: "acme", Role: auth.RoleWorker, Kinds: []string{"wasm"}}}
	if !reflect.DeepEqual(o.Claims.Bindings, want) {
		t.Fatalf("bindings %+v", o.Claims.Bindings)
	}
	if _, err := oidcauth.New(o); err != nil {
		t.Fatal(err)
	}
}

func TestSAMLOptions(t *testing.T) {
	c := config.Default()
	c.Auth.SAML.RootURL = "https://grey.example.com"
	c.Auth.SAML.IDPMetadata = "https://sso.example.com/realms/grey/protocol/saml/descriptor"
	o, err := SAML(c.Auth)
	if err != nil {
		t.Fatal(err)
	}
	if o.IDPMetadataURL != c.Auth.SAML.IDPMetadata || o.SessionTTL != 8*time.Hour || o.CookieName != samlauth.DefaultCookieName {
		t.Fatalf("options %+v", o)
	}
	c.Auth.SAML.IDPMetadata = "/nonexistent/idp.xml"
	if _, err := SAML(c.Auth); err == nil {
		t.Fatal("a missing metadata file was accepted")
	}
	c.Auth.SAML.IDPMetadata = ""
	c.Auth.SAML.SessionKeyFile = "/nonexistent/key"
	if _, err := SAML(c.Auth); err == nil {
		t.Fatal("a missing session key file was accepted")
	}
}

func TestKeycloakExampleConfig(t *testing.T) {
	c, err := config.Load("../../examples/auth/keycloak.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	o := OIDC(c.Auth)
	if o.Issuer != "http://127.0.0.1:18180/realms/grey" || len(o.Claims.Bindings) != 1 {
		t.Fatalf("options %+v", o)
	}
	if _, err := oidcauth.New(o); err != nil {
		t.Fatal(err)
	}
	s, err := SAML(c.Auth)
	if err != nil || s.IDPMetadataURL == "" || s.EntityID != "grey-saml" {
		t.Fatalf("saml options %+v, %v", s, err)
	}
}

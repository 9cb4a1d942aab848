package smoke

import (
	"slices"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/grey-distributed/grey/internal/testenv"
)

// Fixtures built into internal/testsvc/oidcprovider.
const (
	oidcServiceClient = "grey-service"
	oidcServiceSecret = "grey-service-secret"
	oidcCLIClient     = "grey-cli"
	oidcCLISecret     = "grey-cli-secret"
)

type greyClaims struct {
	Subject  string   `json:"sub"`
	TenantID string   `json:"grey_tenant_id"`
	Roles    []string `json:"grey_roles"`
}

func TestOIDC(t *testing.T) {
	issuer := testenv.ServiceURL(t, "oidc")
	ctx := ctxFor(t, 30*time.Second)

	// Discovery.
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	var disco struct {
		GrantTypes []string `json:"grant_types_supported"`
		JWKSURI    string   `json:"jwks_uri"`
		Claims     []string `json:"claims_supported"`
	}
	if err := provider.Claims(&disco); err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"client_credentials", "password"} {
		if !slices.Contains(disco.GrantTypes, g) {
			t.Errorf("grant_types_supported %v lacks %s", disco.GrantTypes, g)
		}
	}
	if disco.JWKSURI == "" || !slices.Contains(disco.Claims, "grey_tenant_id") {
		t.Errorf("discovery: jwks_uri=%q claims=%v", disco.JWKSURI, disco.Claims)
	}

	t.Run("client_credentials", func(t *testing.T) {
		cc := clientcredentials.Config{ClientID: oidcServiceClient, ClientSecret: oidcServiceSecret,
			TokenURL: provider.Endpoint().TokenURL, Scopes: []string{"openid"}}
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatalf("token: %v", err)
		}
		// The access token is a JWT signed with a key from jwks_uri.
		at, err := provider.VerifierContext(ctx, &oidc.Config{ClientID: oidcServiceClient}).Verify(ctx, tok.AccessToken)
		if err != nil {
			t.Fatalf("verify access token against JWKS: %v", err)
		}
		var c greyClaims
		if err := at.Claims(&c); err != nil {
			t.Fatal(err)
		}
		if c.Subject != oidcServiceClient || c.TenantID != "tenant-system" || !slices.Contains(c.Roles, "service") {
			t.Fatalf("claims = %+v", c)
		}
		if _, err := (&clientcredentials.Config{ClientID: oidcServiceClient, ClientSecret: "wrong",
			TokenURL: provider.Endpoint().TokenURL}).Token(ctx); err == nil {
			t.Fatal("wrong client secret was accepted")
		}
	})

	t.Run("password", func(t *testing.T) {
		conf := oauth2.Config{ClientID: oidcCLIClient, ClientSecret: oidcCLISecret,
			Endpoint: provider.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}
		tok, err := conf.PasswordCredentialsToken(ctx, "alice", "alice-password")
		if err != nil {
			t.Fatalf("token: %v", err)
		}
		rawID, _ := tok.Extra("id_token").(string)
		if rawID == "" {
			t.Fatal("no id_token in password grant response")
		}
		verifier := provider.VerifierContext(ctx, &oidc.Config{ClientID: oidcCLIClient})
		idt, err := verifier.Verify(ctx, rawID)
		if err != nil {
			t.Fatalf("verify id_token against JWKS: %v", err)
		}
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			t.Fatalf("at_hash: %v", err)
		}
		var c greyClaims
		if err := idt.Claims(&c); err != nil {
			t.Fatal(err)
		}
		if c.Subject != "alice" || c.TenantID != "tenant-a" || !slices.Equal(c.Roles, []string{"admin", "operator"}) {
			t.Fatalf("id_token claims = %+v", c)
		}
		at, err := verifier.Verify(ctx, tok.AccessToken)
		if err != nil {
			t.Fatalf("verify access token: %v", err)
		}
		c = greyClaims{}
		if err := at.Claims(&c); err != nil || c.TenantID != "tenant-a" {
			t.Fatalf("access token claims = %+v, %v", c, err)
		}
		if _, err := conf.PasswordCredentialsToken(ctx, "alice", "wrong"); err == nil {
			t.Fatal("wrong password was accepted")
		}
	})
}

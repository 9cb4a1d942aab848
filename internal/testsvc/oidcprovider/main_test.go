package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// startProvider serves the provider in-process on a loopback port.
func startProvider(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	h, err := newHandler(issuer, defaultFixtures())
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: h}}
	srv.Start()
	t.Cleanup(srv.Close)
	return issuer
}

type claims struct {
	Sub      string   `json:"sub"`
	TenantID string   `json:"grey_tenant_id"`
	Roles    []string `json:"grey_roles"`
}

func TestGrantsAndClaims(t *testing.T) {
	issuer := startProvider(t)
	ctx := context.Background()
	p, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatal(err)
	}
	var disco struct {
		GrantTypes []string `json:"grant_types_supported"`
	}
	if err := p.Claims(&disco); err != nil || !slices.Contains(disco.GrantTypes, "password") || !slices.Contains(disco.GrantTypes, "client_credentials") {
		t.Fatalf("grant_types_supported = %v (%v)", disco.GrantTypes, err)
	}

	cc := clientcredentials.Config{ClientID: "grey-service", ClientSecret: "grey-service-secret", TokenURL: p.Endpoint().TokenURL}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	at, err := p.Verifier(&oidc.Config{ClientID: "grey-service"}).Verify(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	var c claims
	if err := at.Claims(&c); err != nil || c.TenantID != "tenant-system" || !slices.Equal(c.Roles, []string{"service", "scheduler"}) {
		t.Fatalf("client_credentials claims %+v, %v", c, err)
	}

	conf := oauth2.Config{ClientID: "grey-cli", ClientSecret: "grey-cli-secret", Endpoint: p.Endpoint(), Scopes: []string{"openid"}}
	tok, err = conf.PasswordCredentialsToken(ctx, "bob", "bob-password")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&oidc.Config{ClientID: "grey-cli"}).Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	c = claims{}
	if err := idt.Claims(&c); err != nil || c.Sub != "bob" || c.TenantID != "tenant-b" || !slices.Equal(c.Roles, []string{"viewer"}) {
		t.Fatalf("password id_token claims %+v, %v", c, err)
	}
}

func TestRejections(t *testing.T) {
	issuer := startProvider(t)
	ctx := context.Background()
	ep := oauth2.Endpoint{TokenURL: issuer + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader}
	// grey-service may not use the password grant.
	if _, err := (&oauth2.Config{ClientID: "grey-service", ClientSecret: "grey-service-secret", Endpoint: ep}).
		PasswordCredentialsToken(ctx, "alice", "alice-password"); err == nil {
		t.Error("password grant allowed for a client without it")
	}
	if _, err := (&oauth2.Config{ClientID: "grey-cli", ClientSecret: "grey-cli-secret", Endpoint: ep}).
		PasswordCredentialsToken(ctx, "alice", "nope"); err == nil {
		t.Error("wrong password accepted")
	}
	if _, err := (&clientcredentials.Config{ClientID: "nobody", ClientSecret: "x", TokenURL: ep.TokenURL}).Token(ctx); err == nil {
		t.Error("unknown client accepted")
	}
}

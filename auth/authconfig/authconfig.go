// Package authconfig converts the auth blocks of config into the options
// of the identity drivers (auth.ClaimRules, oidcauth.Options,
// samlauth.Options), so that the drivers do not depend on config and
// cmd/greyd wires them in one line each:
//
//	oidc, err := oidcauth.New(authconfig.OIDC(cfg.Auth))
//	opts, err := authconfig.SAML(cfg.Auth)
//	sp, err := samlauth.New(ctx, opts) // mount sp.Handler() at samlauth.PathPrefix
package authconfig

import (
	"fmt"
	"os"
	"strings"

	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/auth/oidcauth"
	"github.com/grey-distributed/grey/auth/samlauth"
	"github.com/grey-distributed/grey/config"
)

// Claims returns the claim rules of auth.claims ("-" turns a source off).
func Claims(c config.ClaimsConfig) auth.ClaimRules {
	name := func(s string) string {
		if s == "-" {
			return ""
		}
		return s
	}
	r := auth.ClaimRules{
		Permissions: name(c.Permissions), Tenant: name(c.Tenant), Roles: name(c.Roles), Username: name(c.Username),
	}
	for _, b := range c.Bindings {
		r.Bindings = append(r.Bindings, auth.Binding{
			Claim: b.Claim, Value: b.Value, Tenant: b.Tenant, Role: auth.Role(b.Role), Kinds: append([]string(nil), b.Kinds...),
		})
	}
	return r
}

// OIDC returns the options of the OIDC authenticator from the auth block:
// the issuer from GREY_IAM_PROVIDER (auth.oidc.provider) when it is a URL,
// else from auth.oidc.issuer.
func OIDC(a config.AuthConfig) oidcauth.Options {
	o := a.OIDC
	return oidcauth.Options{
		Issuer:              o.IssuerURL(),
		Audience:            append([]string(nil), o.Audience...),
		Algorithms:          append([]string(nil), o.Algorithms...),
		Leeway:              o.Leeway.Std(),
		JWKSRefreshInterval: o.JWKSRefreshInterval.Std(),
		JWKSMaxAge:          o.JWKSMaxAge.Std(),
		TokenCacheSize:      o.TokenCacheSize,
		CAFile:              o.CAFile,
		Claims:              Claims(a.Claims),
	}
}

// SAML returns the options of the SAML service provider from the auth
// block, reading the files it names (IdP metadata file, SP key pair,
// session key).
func SAML(a config.AuthConfig) (samlauth.Options, error) {
	c := a.SAML
	o := samlauth.Options{
		RootURL: c.RootURL, EntityID: c.EntityID, SessionTTL: c.SessionTTL.Std(), CookieName: c.CookieName,
		Claims: Claims(a.Claims),
	}
	if strings.Contains(c.IDPMetadata, "://") {
		o.IDPMetadataURL = c.IDPMetadata
	} else if c.IDPMetadata != "" {
		b, err := os.ReadFile(c.IDPMetadata)
		if err != nil {
			return o, fmt.Errorf("auth.saml.idp_metadata: %w", err)
		}
		o.IDPMetadata = b
	}
	if c.CertFile != "" {
		k, cert, err := samlauth.LoadKeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return o, fmt.Errorf("auth.saml.cert_file: %w", err)
		}
		o.Key, o.Certificate = k, cert
	}
	if c.SessionKeyFile != "" {
		k, err := samlauth.LoadSessionKey(c.SessionKeyFile)
		if err != nil {
			return o, fmt.Errorf("auth.saml.session_key_file: %w", err)
		}
		o.SessionKey = k
	}
	return o, nil
}

package main

import (
	"context"
	"net/http"

	"github.com/grey-distributed/grey/api"
	"github.com/grey-distributed/grey/auth/authconfig"
	"github.com/grey-distributed/grey/auth/oidcauth"
	"github.com/grey-distributed/grey/auth/samlauth"
	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/server"
)

// identityOptions builds the identity drivers of the enabled auth modes
// (OIDC bearer tokens, the SAML service provider): greyd is where drivers
// are linked. API keys and node certificates are Grey's own and built by
// the server.
func identityOptions(ctx context.Context, cfg *config.Config) ([]server.Option, error) {
	var opts []server.Option
	if cfg.Auth.Mode.Has("oidc") {
		a, err := oidcauth.New(authconfig.OIDC(cfg.Auth))
		if err != nil {
			return nil, &config.Error{Key: "auth.oidc", Msg: err.Error()}
		}
		opts = append(opts, server.WithAuthenticators(a))
	}
	if cfg.Auth.Mode.Has("saml") {
		o, err := authconfig.SAML(cfg.Auth)
		if err != nil {
			return nil, &config.Error{Key: "auth.saml", Msg: err.Error()}
		}
		sp, err := samlauth.New(ctx, o)
		if err != nil {
			return nil, &config.Error{Key: "auth.saml", Msg: err.Error()}
		}
		h := sp.Handler()
		const who = "anyone: SAML browser sign-in (the IdP's signed assertion is the credential)"
		opts = append(opts, server.WithAuthenticators(sp), server.WithPublicRoutes(
			api.PublicRoute{Method: http.MethodGet, Pattern: samlauth.MetadataPath, Who: who, Handler: h},
			api.PublicRoute{Method: http.MethodPost, Pattern: samlauth.ACSPath, Who: who, Handler: h},
			api.PublicRoute{Method: http.MethodGet, Pattern: samlauth.LoginPath, Who: who, Handler: h},
			api.PublicRoute{Method: http.MethodPost, Pattern: samlauth.LogoutPath, Who: who, Handler: h},
		))
	}
	return opts, nil
}

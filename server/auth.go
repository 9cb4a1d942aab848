package server

import (
	"fmt"
	"github.com/grey-distributed/grey/archive"
	"net/http"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/api"
	"github.com/grey-distributed/grey/audit"
	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/auth/apikeyauth"
	"github.com/grey-distributed/grey/auth/mtlsauth"
	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/events"
	"github.com/grey-distributed/grey/greyerr"
)

// Option configures New.
type Option func(*options)

type options struct {
	authenticators []auth.Authenticator
	public         []api.PublicRoute
	blobs          *blobstore.Registry
	archives       *archive.Registry
	archive        *archive.Store
	events         *events.Registry
	runtimes       *ai.Registry   // model runtime drivers (WithRuntimeRegistry)
	models         ai.ModelSource // models for inference (WithModelSource)
}

// WithAuthenticators provides the authenticators of the enabled auth
// modes (cmd/greyd links the drivers, oidcauth, apikeyauth...): each
// auth.mode other than none needs one whose Name is the mode.
func WithAuthenticators(a ...auth.Authenticator) Option {
	return func(o *options) { o.authenticators = append(o.authenticators, a...) }
}

// WithPublicRoutes adds the routes of an identity driver that need no
// principal (the SAML service provider's) to the API's route table.
func WithPublicRoutes(r ...api.PublicRoute) Option {
	return func(o *options) { o.public = append(o.public, r...) }
}

// authChain builds the API's authentication chain: nil in mode none (the
// API's development principal, plus http.admin_token), else the admin
// token (when set), one authenticator per enabled mode, and, when the
// cluster has a CA, node certificates (mTLS), which is how servers and
// worker-only nodes call each other. API keys are Grey's own records, so
// the apikey mode is built here over keys; the other modes' drivers come
// from cmd/greyd. keys may be nil to check the configuration only.
func authChain(cfg *config.Config, o *options, keys apikeyauth.Keys) (*auth.Chain, error) {
	if !cfg.Auth.Mode.Enabled() {
		return nil, nil
	}
	c := &auth.Chain{Realm: "grey"}
	if cfg.HTTP.AdminToken != "" {
		c.Authenticators = append(c.Authenticators, auth.NewAdminToken(string(cfg.HTTP.AdminToken)))
	}
	for _, m := range cfg.Auth.Mode {
		var found auth.Authenticator
		for _, a := range o.authenticators {
			if a.Name() == m {
				found = a
				break
			}
		}
		if found == nil && m == string(auth.MethodAPIKey) {
			found = apikeyauth.New(keys)
		}
		if found == nil {
			return nil, &config.Error{Key: "auth.mode", Msg: fmt.Sprintf("mode %q is not available in this greyd build", m)}
		}
		c.Authenticators = append(c.Authenticators, found)
	}
	if cfg.TLS.CAFile != "" {
		c.Authenticators = append(c.Authenticators, mtlsauth.New())
	}
	return c, nil
}

// openAudit opens the configured audit sink and counts its lines in m.
func openAudit(cfg *config.Config, count func()) (*audit.Log, error) {
	l, err := audit.Open(cfg.AuditSink())
	if err != nil {
		return nil, fmt.Errorf("auth.audit.sink: %w", err)
	}
	if l != nil {
		l.Count = count
	}
	return l, nil
}

// debugGuard protects the pprof handlers of the metrics listener: with
// authentication on, they need a principal with auth.PermDebug (admin);
// in mode none (loopback only, see config.CheckExposure) they are open.
func debugGuard(chain *auth.Chain) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if chain == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := chain.Authenticate(r.Context(), r)
			if err != nil {
				w.Header().Set("WWW-Authenticate", chain.Challenge(err))
				http.Error(w, "unauthenticated", http.StatusUnauthorized)
				return
			}
			if !p.Can(auth.PermDebug, "") {
				http.Error(w, string(greyerr.PermissionDenied), http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

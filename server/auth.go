package server

import (
	"fmt"
	"net/http"

	"github.com/grey-distributed/grey/audit"
	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/greyerr"
)

// Option configures New.
type Option func(*options)

type options struct {
	authenticators []auth.Authenticator
}

// WithAuthenticators provides the authenticators of the enabled auth
// modes (cmd/greyd links the drivers, oidcauth, apikeyauth...): each
// auth.mode other than none needs one whose Name is the mode.
func WithAuthenticators(a ...auth.Authenticator) Option {
	return func(o *options) { o.authenticators = append(o.authenticators, a...) }
}

// authChain builds the API's authentication chain: nil in mode none (the
// API's development principal, plus http.admin_token), else the admin
// token (when set) followed by one authenticator per enabled mode.
func authChain(cfg *config.Config, o *options) (*auth.Chain, error) {
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
		if found == nil {
			return nil, &config.Error{Key: "auth.mode", Msg: fmt.Sprintf("mode %q is not available in this greyd build", m)}
		}
		c.Authenticators = append(c.Authenticators, found)
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

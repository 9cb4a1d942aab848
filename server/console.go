package server

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/grey-distributed/grey/api"
	"github.com/grey-distributed/grey/console"
)

// withConsole serves the web console at console.Prefix beside the API.
// The console calls the API in process as the browser's principal, so
// it adds no route and no permission of its own; in mode none it is as
// loopback-only as the API (the start-up check covers http.addr).
func withConsole(a *api.Server, public []api.PublicRoute, logger *slog.Logger) (http.Handler, error) {
	var sso []console.SSOLink
	for _, pr := range public {
		// An identity driver's browser sign-in (the SAML service provider's
		// GET .../login?return_to=).
		if pr.Method == http.MethodGet && strings.HasSuffix(pr.Pattern, "/login") {
			sso = append(sso, console.SSOLink{Name: "Sign in with single sign-on (SAML)", URL: pr.Pattern})
		}
	}
	con, err := console.New(console.Options{API: a, SSO: sso, Logger: logger.With("component", "console")})
	if err != nil {
		return nil, err
	}
	// A prefix switch, not a ServeMux: the API's requests reach it as they
	// came (the metrics middleware reads the pattern its mux sets on them).
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ui" || strings.HasPrefix(r.URL.Path, console.Prefix) {
			con.ServeHTTP(w, r)
			return
		}
		a.ServeHTTP(w, r)
	}), nil
}

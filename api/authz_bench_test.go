package api_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/grey-distributed/grey/api"
	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/internal/greytest"
)

// BenchmarkAuthorize measures one cheap tenant route (GET a missing task:
// authentication, tenant resolution, permission check, a store lookup)
// in mode none and with a bearer token, for the cost of the middleware.
func BenchmarkAuthorize(b *testing.B) {
	n := greytest.NewNode(b, engine.Config{})
	for _, bc := range []struct {
		name string
		opts api.Options
		tok  string
	}{
		{"none", api.Options{}, ""},
		{"token", api.Options{Auth: &auth.Chain{Authenticators: []auth.Authenticator{testPrincipals()}}}, tokOperator},
	} {
		srv := api.New(n.Engine, bc.opts)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			req := httptest.NewRequest(http.MethodGet, "/api/v1/tasks/"+zeroID+"?consistency=stale", nil)
			req.Header.Set(api.TenantHeader, "a")
			if bc.tok != "" {
				req.Header.Set("Authorization", "Bearer "+bc.tok)
			}
			for b.Loop() {
				w := httptest.NewRecorder()
				srv.ServeHTTP(w, req)
				if w.Code != http.StatusNotFound {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}

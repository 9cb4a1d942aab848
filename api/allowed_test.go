package api_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/grey-distributed/grey/api"
	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/greyerr"
)

// Allowed, the check the web console uses to decide what to show, agrees
// with the route table for every route, role and tenant: the same
// principals are allowed, refused (403) or asked to authenticate (401),
// and an unknown route is an internal error, not "allowed".
func TestAllowedAgreesWithTheRouteTable(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	srv := api.New(e.node.Engine, api.Options{Auth: &auth.Chain{Authenticators: []auth.Authenticator{
		auth.NewAdminToken("bootstrap-admin-token-0123456789"), testPrincipals(),
	}}})
	roles := []struct{ role, tok string }{
		{"admin", tokAdmin}, {"operator", tokOperator}, {"viewer", tokViewer}, {"worker", tokWorker}, {"none", ""},
	}
	for _, rt := range srv.Routes() {
		for _, r := range roles {
			for _, tenant := range []string{"a", "b"} {
				req, _ := http.NewRequest(rt.Method, "http://x"+rt.Pattern, nil)
				req.Header.Set(auth.TenantHeader, tenant)
				if r.tok != "" {
					req.Header.Set("Authorization", "Bearer "+r.tok)
				}
				p, err := srv.Allowed(req, rt.Method, rt.Pattern)
				label := rt.Key() + " as " + r.role + " on " + tenant
				allowed := allowedRoles[rt.Key()]
				switch {
				case rt.Scope == api.ScopePublic || slices.Contains(allowed, "public"):
					if err != nil {
						t.Errorf("%s: public route refused: %v", label, err)
					}
				case r.role == "none":
					if greyerr.CodeOf(err) != greyerr.Unauthenticated || p != nil {
						t.Errorf("%s: %v (principal %v), want unauthenticated", label, err, p)
					}
				case rt.Scope == api.ScopeTenant && tenant == "b" && r.role != "admin":
					if greyerr.CodeOf(err) != greyerr.PermissionDenied {
						t.Errorf("%s: %v, want permission_denied (tenant not allowed)", label, err)
					}
				case slices.Contains(allowed, r.role):
					if err != nil {
						t.Errorf("%s: refused: %v", label, err)
					}
					if p == nil {
						t.Errorf("%s: no principal", label)
					}
				default:
					if greyerr.CodeOf(err) != greyerr.PermissionDenied {
						t.Errorf("%s: %v, want permission_denied", label, err)
					}
				}
			}
		}
	}
	req, _ := http.NewRequest(http.MethodGet, "http://x/api/v1/nothing", nil)
	req.Header.Set("Authorization", "Bearer "+tokAdmin)
	if _, err := srv.Allowed(req, http.MethodGet, "/api/v1/nothing"); greyerr.CodeOf(err) != greyerr.Internal {
		t.Fatalf("unknown route: %v, want internal", err)
	}
}

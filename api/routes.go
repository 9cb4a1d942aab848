package api

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/grey-distributed/grey/greyerr"

	"github.com/grey-distributed/grey/auth"
)

// Scope says how a route's permission is checked.
type Scope string

// The scopes of routes.
const (
	// ScopePublic routes need no credential: health, readiness, the spec.
	ScopePublic Scope = "public"
	// ScopeTenant routes act for the request's tenant (X-Grey-Tenant
	// chooses among the principal's): the permission is checked there.
	ScopeTenant Scope = "tenant"
	// ScopeCluster routes act on the whole cluster: the permission must be
	// held on every tenant (admin), except auth.PermClusterRead.
	ScopeCluster Scope = "cluster"
	// ScopeWorker routes (the lease protocol) need the permission on at
	// least one tenant; the engine then limits the work to the tenants and
	// kinds the principal is granted.
	ScopeWorker Scope = "worker"
)

// Route is one API route: what it matches and what the caller needs.
type Route struct {
	// Method and Pattern as in an http.ServeMux pattern "METHOD PATTERN".
	Method  string
	Pattern string
	// Permission the caller needs ("" for ScopePublic).
	Permission auth.Permission
	// Scope of the permission check.
	Scope Scope
	// Who may call it, in words (docs/AUTH.md repeats the table).
	Who string

	handler http.HandlerFunc
}

// PublicRoute is a route served by an identity driver outside /api/v1
// that needs no credential (it is how a credential is obtained).
type PublicRoute struct {
	// Method and Pattern as in an http.ServeMux pattern.
	Method, Pattern string
	// Who may call it, in words.
	Who string
	// Handler serves it.
	Handler http.Handler
}

// Key is the mux pattern, "METHOD /path".
func (r Route) Key() string { return r.Method + " " + r.Pattern }

// routes is THE route table: the mux is built from it, and every route
// names the permission it needs. A test walks it against every role and
// fails when the mux serves a route the table lacks.
func (s *Server) routeTable() []Route {
	const (
		readers   = "admin; operator, viewer of the tenant"
		operators = "admin; operator of the tenant"
		workers   = "admin; worker (its tenants and kinds only)"
		admins    = "admin"
		everyone  = "any authenticated principal"
		anyone    = "anyone, no credential"
	)
	t, c, w, p := ScopeTenant, ScopeCluster, ScopeWorker, ScopePublic
	return []Route{
		{"POST", "/api/v1/tasks", auth.PermTaskSubmit, t, operators, s.submit},
		{"POST", "/api/v1/tasks/batch", auth.PermTaskSubmit, t, operators, s.submitBatch},
		{"GET", "/api/v1/tasks", auth.PermTaskRead, t, readers, s.list},
		{"GET", "/api/v1/tasks/watch", auth.PermTaskRead, t, readers, s.watch},
		{"GET", "/api/v1/tasks/{id}", auth.PermTaskRead, t, readers, byID(s, s.eng.Get)},
		{"DELETE", "/api/v1/tasks/{id}", auth.PermTaskCancel, t, operators, byID(s, s.eng.Cancel)},
		{"GET", "/api/v1/tasks/{id}/wait", auth.PermTaskRead, t, readers, s.wait},
		{"GET", "/api/v1/tasks/{id}/proof", auth.PermTaskRead, t, readers, byID(s, s.eng.Proof)},
		{"POST", "/api/v1/tasks/{id}/replay", auth.PermTaskReplay, t, operators, byID(s, s.eng.Replay)},
		{"GET", "/api/v1/tasks/{id}/result", auth.PermTaskRead, t, readers, s.taskResult},
		{"GET", "/api/v1/tasks/{id}/result/url", auth.PermTaskRead, t, readers, s.taskResultURL},
		{"POST", "/api/v1/uploads", auth.PermTaskSubmit, t, operators, s.createUpload},
		{"GET", "/api/v1/objects/{key...}", auth.PermTaskRead, t, readers, s.getObject},
		{"PUT", "/api/v1/signed/{tenant}/{key...}", "", p, "anyone holding a URL Grey signed (its signature authorises one method on one key until its expiry)", s.signedData},
		{"GET", "/api/v1/signed/{tenant}/{key...}", "", p, "anyone holding a URL Grey signed (its signature authorises one method on one key until its expiry)", s.signedData},
		{"POST", "/api/v1/workers/lease", auth.PermWorkerLease, w, workers, s.lease},
		{"POST", "/api/v1/workers/heartbeat", auth.PermWorkerLease, w, workers, s.heartbeat},
		{"POST", "/api/v1/workers/complete", auth.PermWorkerLease, w, workers, s.complete},
		{"GET", "/api/v1/workers/tasks/{id}/payload", auth.PermWorkerLease, w, "admin; worker holding the task's current lease (its tenants and kinds only)", s.taskPayload},
		{"GET", "/api/v1/cluster", auth.PermClusterRead, c, everyone, s.cluster},
		{"GET", "/api/v1/cluster/nodes", auth.PermClusterRead, c, everyone, s.nodes},
		{"GET", "/api/v1/cluster/self", auth.PermClusterRead, c, everyone, s.self},
		{"GET", "/api/v1/cluster/keys", auth.PermClusterRead, c, everyone, s.keys},
		{"POST", "/api/v1/cluster/join", auth.PermNodeRegister, w, "admin; worker (its own worker-only node, not a server)", s.join},
		{"DELETE", "/api/v1/cluster/nodes/{id}", auth.PermClusterAdmin, c, admins, s.removeNode},
		{"POST", "/api/v1/tenants", auth.PermTenantAdmin, c, admins, s.createTenant},
		{"GET", "/api/v1/tenants", auth.PermTenantAdmin, c, admins, s.listTenants},
		{"GET", "/api/v1/tenants/{id}", auth.PermTenantAdmin, c, admins, s.getTenant},
		{"PUT", "/api/v1/tenants/{id}", auth.PermTenantAdmin, c, admins, s.updateTenant},
		{"DELETE", "/api/v1/tenants/{id}", auth.PermTenantAdmin, c, admins, s.deleteTenant},
		{"GET", "/api/v1/cluster/usage", auth.PermTenantAdmin, c, admins, s.usage},
		{"GET", "/api/v1/cluster/events", auth.PermClusterAdmin, c, admins, s.eventsStatus},
		{"GET", "/api/v1/cluster/snapshot", auth.PermSnapshot, c, admins, s.saveSnapshot},
		{"POST", "/api/v1/cluster/snapshot", auth.PermSnapshot, c, admins, s.restoreSnapshot},
		{"POST", "/api/v1/modules", auth.PermModuleWrite, t, operators, s.uploadModule},
		{"GET", "/api/v1/modules", auth.PermModuleRead, t, readers + ", worker of the tenant", s.listModules},
		{"GET", "/api/v1/modules/{digest}", auth.PermModuleRead, t, readers + ", worker of the tenant", s.getModule},
		{"DELETE", "/api/v1/modules/{digest}", auth.PermModuleWrite, t, operators, s.deleteModule},
		{"GET", "/api/v1/modules/{digest}/content", auth.PermModuleRead, t, readers + ", worker of the tenant", s.moduleContent},
		{"POST", "/api/v1/models/{name}/versions/{version}", auth.PermModelWrite, t, operators, s.pushModel},
		{"GET", "/api/v1/models", auth.PermModelRead, t, readers + ", worker of the tenant", s.listModels},
		{"GET", "/api/v1/models/{name}", auth.PermModelRead, t, readers + ", worker of the tenant", s.getModel},
		{"GET", "/api/v1/models/{name}/versions/{version}", auth.PermModelRead, t, readers + ", worker of the tenant", s.getModelVersion},
		{"DELETE", "/api/v1/models/{name}/versions/{version}", auth.PermModelWrite, t, operators, s.deleteModelVersion},
		{"GET", "/api/v1/models/{name}/aliases/{alias}", auth.PermModelRead, t, readers + ", worker of the tenant", s.getModelAlias},
		{"PUT", "/api/v1/models/{name}/aliases/{alias}", auth.PermModelWrite, t, operators, s.setModelAlias},
		{"DELETE", "/api/v1/models/{name}/aliases/{alias}", auth.PermModelWrite, t, operators, s.deleteModelAlias},
		{"GET", "/api/v1/models/{ref}/content", auth.PermModelRead, t, readers + ", worker of the tenant", s.modelContent},
		{"POST", "/api/v1/apikeys", auth.PermAPIKeyManage, t, operators + " (only an admin creates admin keys)", s.createAPIKey},
		{"GET", "/api/v1/apikeys", auth.PermAPIKeyManage, t, operators + " (admin: every tenant with ?tenant=)", s.listAPIKeys},
		{"DELETE", "/api/v1/apikeys/{id}", auth.PermAPIKeyManage, t, operators + " (another tenant's key is 404)", s.revokeAPIKey},
		{"GET", "/api/v1/openapi.yaml", "", p, anyone, s.openapi},
		{"GET", "/healthz", "", p, anyone, s.healthz},
		{"GET", "/readyz", "", p, anyone, s.readyz},
	}
}

// Routes returns the route table (for documentation and tests).
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// buildMux registers every route of the table, each behind the
// authorization middleware, and the catch-all 404.
func (s *Server) buildMux() {
	s.routes = s.routeTable()
	for _, pr := range s.opts.Public {
		s.routes = append(s.routes, Route{Method: pr.Method, Pattern: pr.Pattern, Scope: ScopePublic, Who: pr.Who, handler: pr.Handler.ServeHTTP})
	}
	paths := map[string]bool{}
	for _, rt := range s.routes {
		rt.handler = s.nonEmptyQuery(rt.handler)
		s.mux.Handle(rt.Key(), s.authorize(rt))
		paths[rt.Pattern] = true
	}
	s.mux.HandleFunc("/", s.notFound)
	// A literal path that a wildcard route of another method also matches
	// (GET /api/v1/tasks/batch is GET /api/v1/tasks/{id}): its other
	// methods answer 405 with Allow, as for any known path, not the
	// wildcard route's 404.
	s.synthetic = map[string]bool{}
	for p := range paths {
		if strings.Contains(p, "{") {
			continue
		}
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			probe := &http.Request{Method: m, URL: &url.URL{Path: p}, Header: http.Header{}}
			_, pattern := s.mux.Handler(probe)
			_, matched, _ := strings.Cut(pattern, " ")
			if pattern != "" && pattern != "/" && matched != p {
				key := m + " " + p
				s.synthetic[key] = true
				s.mux.HandleFunc(key, s.notFound)
			}
		}
	}
}

// emptyMeansAbsent reports whether the spec allows query parameter name
// an empty value, meaning "not given" (the first page of a list).
func emptyMeansAbsent(name string) bool { return name == "cursor" }

// nonEmptyQuery refuses a query parameter given with an empty value
// ("?status=", "?to="): the spec gives none an empty value (but
// emptyMeansAbsent), and reading one as "absent" would silently drop the
// filter the caller meant to set.
func (s *Server) nonEmptyQuery(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != "" {
			for name, vs := range r.URL.Query() {
				if emptyMeansAbsent(name) {
					continue
				}
				for _, v := range vs {
					if v == "" {
						s.writeError(w, r, greyerr.Invalid(name, "must not be empty (leave the parameter out for its default)"))
						return
					}
				}
			}
		}
		next(w, r)
	}
}

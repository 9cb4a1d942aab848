// Package api serves Grey's REST API under /api/v1 (described by
// openapi.yaml, which is embedded and served at /api/v1/openapi.yaml):
// tasks, the worker lease protocol, cluster facts, health and readiness.
// Errors are JSON {code, message, field?, reason?} with the status from
// greyerr.HTTPStatus; every task route is scoped to the caller's tenant.
package api

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/modules"
	"github.com/grey-distributed/grey/telemetry/tracing"
)

// TenantHeader carries the tenant in dev mode (no authentication).
const TenantHeader = "X-Grey-Tenant"

// DefaultTenant is the tenant of requests without TenantHeader.
const DefaultTenant = "default"

// Options configure the API server.
type Options struct {
	// MaxBodyBytes bounds request bodies (default 8 MiB).
	MaxBodyBytes int64
	// APIAddr is this node's advertised API address (for cluster facts).
	APIAddr string
	// Logger receives request errors.
	Logger *slog.Logger
	// Refused, when set, is called with the caller's tenant for every error
	// response (metrics count quota refusals).
	Refused func(tenant string, err error)
	// NodeID names this server in forwarded requests.
	NodeID string
	// AdminToken, when set, is required (Authorization: Bearer) on the
	// admin routes (tenants, usage). Without it they are open (dev mode).
	AdminToken string
	// Modules is the wasm module store behind /api/v1/modules (issue #4);
	// nil answers those routes 501.
	Modules *modules.Store
}

// Server is the HTTP API of one greyd server.
type Server struct {
	eng    *engine.Engine
	opts   Options
	mux    *http.ServeMux
	logger *slog.Logger
	fwd    forwarder
	h      http.Handler
}

// New returns the API over eng.
func New(eng *engine.Engine, opts Options) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 8 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{eng: eng, opts: opts, mux: http.NewServeMux(), logger: opts.Logger}
	s.routes()
	// Trace context and a server span for every request (telemetry/tracing).
	s.h = tracing.Handler(s.forward(s.mux))
	return s
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("POST /api/v1/tasks", s.submit)
	m.HandleFunc("POST /api/v1/tasks/batch", s.submitBatch)
	m.HandleFunc("GET /api/v1/tasks", s.list)
	m.HandleFunc("GET /api/v1/tasks/watch", s.watch)
	m.HandleFunc("GET /api/v1/tasks/{id}", byID(s, s.eng.Get))
	m.HandleFunc("DELETE /api/v1/tasks/{id}", byID(s, s.eng.Cancel))
	m.HandleFunc("GET /api/v1/tasks/{id}/wait", s.wait)
	m.HandleFunc("GET /api/v1/tasks/{id}/proof", byID(s, s.eng.Proof))
	m.HandleFunc("POST /api/v1/tasks/{id}/replay", byID(s, s.eng.Replay))
	m.HandleFunc("POST /api/v1/workers/lease", s.lease)
	m.HandleFunc("POST /api/v1/workers/heartbeat", s.heartbeat)
	m.HandleFunc("POST /api/v1/workers/complete", s.complete)
	m.HandleFunc("GET /api/v1/cluster", s.cluster)
	m.HandleFunc("GET /api/v1/cluster/nodes", s.nodes)
	m.HandleFunc("GET /api/v1/cluster/self", s.self)
	m.HandleFunc("GET /api/v1/cluster/keys", s.keys)
	m.HandleFunc("POST /api/v1/cluster/join", s.admin(s.join))
	m.HandleFunc("DELETE /api/v1/cluster/nodes/{id}", s.admin(s.removeNode))
	m.HandleFunc("POST /api/v1/tenants", s.admin(s.createTenant))
	m.HandleFunc("GET /api/v1/tenants", s.admin(s.listTenants))
	m.HandleFunc("GET /api/v1/tenants/{id}", s.admin(s.getTenant))
	m.HandleFunc("PUT /api/v1/tenants/{id}", s.admin(s.updateTenant))
	m.HandleFunc("DELETE /api/v1/tenants/{id}", s.admin(s.deleteTenant))
	m.HandleFunc("GET /api/v1/cluster/usage", s.admin(s.usage))
	m.HandleFunc("GET /api/v1/cluster/snapshot", s.admin(s.saveSnapshot))
	m.HandleFunc("POST /api/v1/cluster/snapshot", s.admin(s.restoreSnapshot))
	m.HandleFunc("POST /api/v1/modules", s.uploadModule)                  // issue #4: wasm modules
	m.HandleFunc("GET /api/v1/modules", s.listModules)                    // issue #4
	m.HandleFunc("GET /api/v1/modules/{digest}", s.getModule)             // issue #4
	m.HandleFunc("DELETE /api/v1/modules/{digest}", s.deleteModule)       // operator role
	m.HandleFunc("GET /api/v1/modules/{digest}/content", s.moduleContent) // issue #4
	m.HandleFunc("GET /api/v1/openapi.yaml", s.openapi)
	m.HandleFunc("GET /healthz", s.healthz)
	m.HandleFunc("GET /readyz", s.readyz)
	m.HandleFunc("/", s.notFound)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.h.ServeHTTP(w, r)
}

// Mux returns the route multiplexer without forwarding, for middleware
// that needs the matched pattern.
func (s *Server) Mux() *http.ServeMux { return s.mux }

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(Spec())
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if ok, why := s.eng.Ready(); !ok {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Code: "unavailable", Message: why})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotFound, errorBody{Code: "not_found", Message: "no route for " + r.Method + " " + r.URL.Path})
}

// serverTimeout caps long polls so a stuck client cannot hold a handler forever.
const serverTimeout = 5 * time.Minute

// Package api serves Grey's REST API under /api/v1 (described by
// openapi.yaml, which is embedded and served at /api/v1/openapi.yaml):
// tasks, the worker lease protocol, cluster facts, health and readiness.
// Errors are JSON {code, message, field?, reason?} with the status from
// greyerr.HTTPStatus; every task route is scoped to the caller's tenant.
package api

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/grey-distributed/grey/ai/modelstore"
	"github.com/grey-distributed/grey/apitypes"
	"github.com/grey-distributed/grey/audit"
	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/modules"
	"github.com/grey-distributed/grey/taskdata"
	"github.com/grey-distributed/grey/telemetry/tracing"
)

// TenantHeader chooses among the tenants the caller may act for
// (docs/AUTH.md); in mode none it names any tenant.
const TenantHeader = auth.TenantHeader

// DefaultTenant is the tenant of requests without TenantHeader from a
// principal on every tenant (an admin, or mode none).
const DefaultTenant = auth.DefaultTenant

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
	// AdminToken, when set, is the bootstrap admin credential
	// (Authorization: Bearer): an admin principal, method "token". In mode
	// none it is then required on the cluster-admin routes.
	AdminToken string
	// Auth authenticates requests. Nil is mode none: the anonymous
	// development principal (auth.Development), plus AdminToken.
	Auth *auth.Chain
	// Audit receives the audit log; nil writes none.
	Audit *audit.Log
	// AuthResult, when set, is called once per authorized route request
	// with AuthAllowed, AuthAnonymous, AuthUnauthenticated or AuthDenied.
	AuthResult func(result string)
	// Modules is the wasm module store behind /api/v1/modules (issue #4);
	// nil answers those routes 501.
	Modules *modules.Store
	// ModelRegistry is the model registry behind /api/v1/models; nil
	// answers those routes 501.
	ModelRegistry *modelstore.Store
	// TaskData is the task data store behind /api/v1/uploads, task results
	// by reference and /api/v1/signed/ (nil answers those routes 501).
	TaskData *taskdata.Store
	// Public are routes of identity drivers that need no principal (the
	// SAML service provider's metadata, ACS, login and logout); they join
	// the route table as public routes.
	Public []PublicRoute
	// PeerTLS, when set, is the TLS config of requests forwarded to the
	// leader: the node certificate, and the cluster CA to verify it by.
	PeerTLS *tls.Config
	// Events, when set, reports the event sources and sinks for
	// GET /api/v1/cluster/events (nil: none configured).
	Events func() apitypes.EventsStatus
}

// Server is the HTTP API of one greyd server.
type Server struct {
	eng    *engine.Engine
	opts   Options
	mux    *http.ServeMux
	logger *slog.Logger
	fwd    forwarder
	h      http.Handler
	chain  *auth.Chain
	routes []Route
	// synthetic are the mux patterns that only answer 405 (buildMux).
	synthetic map[string]bool
	// fields caches the JSON fields of request types (strict decoding).
	fields fieldCache
}

// New returns the API over eng.
func New(eng *engine.Engine, opts Options) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 8 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{eng: eng, opts: opts, mux: http.NewServeMux(), logger: opts.Logger, chain: opts.Auth}
	if s.chain == nil {
		s.chain = &auth.Chain{Anonymous: auth.Development(opts.AdminToken != "")}
		if opts.AdminToken != "" {
			s.chain.Authenticators = []auth.Authenticator{auth.NewAdminToken(opts.AdminToken)}
		}
	}
	s.buildMux()
	// Trace context and a server span for every request (telemetry/tracing).
	s.h = tracing.Handler(s.forward(s.mux))
	return s
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
	if why := s.eng.Refusing(); why != "" {
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Code: "unavailable", Message: why})
		return
	}
	if d := s.eng.Degraded(); len(d) > 0 {
		writeJSON(w, http.StatusOK, map[string]any{"status": "degraded", "degraded": d})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// notFound answers a request no route matched: 405 with Allow when the
// path has routes for other methods (the catch-all pattern hides the mux's
// own 405), else 404.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	var allow []string
	// The methods the route table uses, in Allow's order.
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/" && !s.synthetic[pattern] {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Code: string(greyerr.MethodNotAllowed),
			Message: fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", "))})
		return
	}
	writeJSON(w, http.StatusNotFound, errorBody{Code: "not_found", Message: "no route for " + r.Method + " " + r.URL.Path})
}

// serverTimeout caps long polls so a stuck client cannot hold a handler forever.
const serverTimeout = 5 * time.Minute

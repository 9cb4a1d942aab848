package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"

	"go.opentelemetry.io/otel/trace"

	"github.com/grey-distributed/grey/audit"
	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/httpstatus"
)

// Results of grey_auth_requests_total{result} (Options.AuthResult).
const (
	// AuthAllowed: a credential was verified and the route allowed.
	AuthAllowed = "allowed"
	// AuthAnonymous: mode none, no credential, the route allowed.
	AuthAnonymous = "anonymous"
	// AuthUnauthenticated: no credential, or one refused (401).
	AuthUnauthenticated = "unauthenticated"
	// AuthDenied: authenticated, but the tenant or route is not allowed (403).
	AuthDenied = "denied"
)

// RequestIDHeader carries the request id that audit lines name; a
// request without one gets a random id, echoed in the answer.
const RequestIDHeader = "X-Request-Id"

type tenantKey struct{}

// tenantOf returns the tenant the authorization middleware resolved for
// the request.
func tenantOf(r *http.Request) (string, error) {
	if t, ok := r.Context().Value(tenantKey{}).(string); ok {
		return t, nil
	}
	return "", greyerr.New(greyerr.Internal, "no tenant resolved for %s %s", r.Method, r.URL.Path)
}

// authorize wraps rt's handler: it authenticates the request once through
// the chain, puts the principal (and, for tenant routes, the tenant) in
// the context, checks rt's permission, and writes the audit line.
func (s *Server) authorize(rt Route) http.Handler {
	if rt.Scope == ScopePublic {
		return rt.handler
	}
	audited := rt.Method != http.MethodGet && rt.Method != http.MethodHead ||
		rt.Permission.IsCluster() && rt.Permission != auth.PermClusterRead
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.chain.Authenticate(r.Context(), r)
		if err != nil {
			s.authResult(AuthUnauthenticated)
			w.Header().Set("WWW-Authenticate", s.chain.Challenge(err))
			s.deny(w, r, rt, nil, "", err)
			return
		}
		ctx := auth.WithPrincipal(r.Context(), p)
		ten, err := s.permit(p, rt, r)
		if rt.Scope == ScopeTenant {
			ctx = context.WithValue(ctx, tenantKey{}, ten)
		}
		r = r.WithContext(ctx)
		if err != nil {
			if greyerr.CodeOf(err) == greyerr.Unauthenticated {
				s.authResult(AuthUnauthenticated)
				w.Header().Set("WWW-Authenticate", s.chain.Challenge(nil))
			} else {
				s.authResult(AuthDenied)
			}
			s.deny(w, r, rt, p, ten, err)
			return
		}
		if p.Method == auth.MethodNone {
			s.authResult(AuthAnonymous)
		} else {
			s.authResult(AuthAllowed)
		}
		if !audited || !s.opts.Audit.Enabled() {
			rt.handler(w, r)
			return
		}
		sw := httpstatus.Wrap(w)
		rid := requestID(sw, r)
		rt.handler(sw, r)
		code := sw.Code()
		if code == 0 {
			code = http.StatusOK
		}
		outcome := audit.Allowed
		if code >= 400 {
			outcome = audit.Failed
		}
		s.opts.Audit.Write(s.event(r, rt, p, ten, outcome, code, "", rid))
	})
}

// permit checks rt's permission for principal p on request r: the tenant
// (resolved from r's X-Grey-Tenant for tenant routes) and nil when allowed.
// authorize and Allowed share it, so the console and the API refuse alike.
func (s *Server) permit(p *auth.Principal, rt Route, r *http.Request) (string, error) {
	var ten string
	var err error
	switch rt.Scope {
	case ScopeTenant:
		if ten, err = auth.ResolveTenant(p, r.Header.Get(auth.TenantHeader)); err == nil && !p.Can(rt.Permission, ten) {
			err = s.forbidden(p, rt)
		}
	case ScopeCluster:
		if !p.Can(rt.Permission, "") {
			err = s.forbidden(p, rt)
		}
	case ScopeWorker:
		if !p.CanAny(rt.Permission) {
			err = s.forbidden(p, rt)
		}
	}
	return ten, err
}

// Allowed authenticates r as the route middleware does and reports
// whether its principal may call the route of the table with this method
// and pattern ("DELETE", "/api/v1/tasks/{id}"): the principal (nil when
// r carries no accepted credential), and nil or the refusal the route
// would answer. It writes no audit line: callers ask it to decide what to
// show, and the route itself still checks and audits the call. An unknown
// route is an Internal error.
func (s *Server) Allowed(r *http.Request, method, pattern string) (*auth.Principal, error) {
	for _, rt := range s.routes {
		if rt.Method != method || rt.Pattern != pattern {
			continue
		}
		if rt.Scope == ScopePublic {
			return nil, nil
		}
		p, err := s.chain.Authenticate(r.Context(), r)
		if err != nil {
			return nil, err
		}
		_, err = s.permit(p, rt, r)
		return p, err
	}
	return nil, greyerr.New(greyerr.Internal, "no route %s %s in the route table", method, pattern)
}

// forbidden is the refusal of a principal whose roles lack rt's
// permission. The anonymous principal of mode none is told to
// authenticate instead (401): a credential would give it more.
func (s *Server) forbidden(p *auth.Principal, rt Route) error {
	if p.Method == auth.MethodNone {
		return greyerr.New(greyerr.Unauthenticated, "this route needs a credential with the %s permission", rt.Permission)
	}
	e := greyerr.New(greyerr.PermissionDenied, "the principal's roles do not allow %s", rt.Permission)
	e.Reason = auth.ReasonRoleNotAllowed
	return e
}

// deny answers a refused request and audits it.
func (s *Server) deny(w http.ResponseWriter, r *http.Request, rt Route, p *auth.Principal, ten string, err error) {
	rid := requestID(w, r)
	s.writeError(w, r, err)
	if s.opts.Audit.Enabled() {
		reason := string(greyerr.CodeOf(err))
		var ge *greyerr.Error
		if errors.As(err, &ge) && ge.Reason != "" {
			reason = ge.Reason
		}
		s.opts.Audit.Write(s.event(r, rt, p, ten, audit.Denied, greyerr.HTTPStatus(greyerr.CodeOf(err)), reason, rid))
	}
}

// event builds the audit line of a request.
func (s *Server) event(r *http.Request, rt Route, p *auth.Principal, ten, outcome string, status int, reason, rid string) audit.Event {
	ev := audit.Event{
		Tenant: ten, Action: string(rt.Permission), HTTPMethod: r.Method, Route: rt.Pattern,
		Resource: resourceOf(r), Outcome: outcome, Status: status, Reason: reason,
		RequestID: rid, Remote: r.RemoteAddr,
	}
	if p != nil {
		ev.Subject, ev.Method = p.Subject, string(p.Method)
	} else {
		ev.Action = "authenticate"
	}
	if sc := trace.SpanContextFromContext(r.Context()); sc.HasTraceID() {
		ev.TraceID = sc.TraceID().String()
	}
	return ev
}

// resourceOf names the object of a request from its path values.
func resourceOf(r *http.Request) string {
	for _, k := range []string{"id", "digest"} {
		if v := r.PathValue(k); v != "" {
			if len(v) > 128 {
				v = v[:128]
			}
			return v
		}
	}
	return ""
}

// requestID returns the request's id (its X-Request-Id when well-formed,
// else a new random one) and sets it on the answer.
func requestID(w http.ResponseWriter, r *http.Request) string {
	if id := w.Header().Get(RequestIDHeader); id != "" {
		return id
	}
	id := r.Header.Get(RequestIDHeader)
	if len(id) == 0 || len(id) > 128 || !printable(id) {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	w.Header().Set(RequestIDHeader, id)
	return id
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\' {
			return false
		}
	}
	return true
}

func (s *Server) authResult(result string) {
	if s.opts.AuthResult != nil {
		s.opts.AuthResult(result)
	}
}

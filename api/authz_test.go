package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/grey-distributed/grey/api"
	"github.com/grey-distributed/grey/audit"
	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/worker"
)

// The tokens of the static test authenticator: OIDC and API keys are
// separate authenticators; the middleware sees only principals.
const (
	tokAdmin    = "tok-admin"
	tokOperator = "tok-operator-a"
	tokViewer   = "tok-viewer-a"
	tokWorker   = "tok-worker-a-noop"
	tokWorkerB  = "tok-worker-b"
	tokWorkerA2 = "tok-worker-a-2"
)

func testPrincipals() auth.Static {
	return auth.Static{
		tokAdmin:    {Subject: "test:admin", Method: auth.MethodAPIKey, Grants: []auth.Grant{{Tenant: auth.AllTenants, Role: auth.RoleAdmin}}},
		tokOperator: {Subject: "test:op-a", Method: auth.MethodAPIKey, Grants: []auth.Grant{{Tenant: "a", Role: auth.RoleOperator}}},
		tokViewer:   {Subject: "test:viewer-a", Method: auth.MethodAPIKey, Grants: []auth.Grant{{Tenant: "a", Role: auth.RoleViewer}}},
		tokWorker:   {Subject: "test:worker-a", Method: auth.MethodAPIKey, Grants: []auth.Grant{{Tenant: "a", Role: auth.RoleWorker, Kinds: []string{"noop"}}}},
		tokWorkerB:  {Subject: "test:worker-b", Method: auth.MethodAPIKey, Grants: []auth.Grant{{Tenant: "b", Role: auth.RoleWorker}}},
		tokWorkerA2: {Subject: "test:worker-a2", Method: auth.MethodAPIKey, Grants: []auth.Grant{{Tenant: "a", Role: auth.RoleWorker}}},
	}
}

// syncBuffer collects audit lines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) events(t *testing.T) []audit.Event {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []audit.Event
	for _, l := range bytes.Split(bytes.TrimSpace(s.b.Bytes()), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var ev audit.Event
		if err := json.Unmarshal(l, &ev); err != nil {
			t.Fatalf("audit line %q: %v", l, err)
		}
		out = append(out, ev)
	}
	return out
}

// authEnv is an API with authentication on (the static authenticator
// after the bootstrap admin token) and an audit log.
type authEnv struct {
	*env
	audit   *syncBuffer
	results map[string]int
	mu      sync.Mutex
	routes  []api.Route
}

func newAuthEnv(t *testing.T) *authEnv {
	t.Helper()
	ae := &authEnv{audit: &syncBuffer{}, results: map[string]int{}}
	opts := api.Options{
		Auth: &auth.Chain{Authenticators: []auth.Authenticator{
			auth.NewAdminToken("bootstrap-admin-token-0123456789"), testPrincipals(),
		}},
		Audit: audit.New(ae.audit),
		AuthResult: func(r string) {
			ae.mu.Lock()
			ae.results[r]++
			ae.mu.Unlock()
		},
	}
	ae.env = newEnv(t, engine.Config{}, opts)
	ae.routes = api.New(ae.node.Engine, opts).Routes()
	return ae
}

func authHeader(tok string) map[string]string {
	if tok == "" {
		return nil
	}
	return map[string]string{"Authorization": "Bearer " + tok}
}

// submitAs submits a noop task for tenant as the admin.
func (e *authEnv) submitAs(t *testing.T, tok, tenant, kind string) *task.Task {
	t.Helper()
	var tk task.Task
	e.ok(t, call{method: "POST", path: "/api/v1/tasks", tenant: tenant, header: authHeader(tok), body: map[string]any{"kind": kind}}, http.StatusCreated, &tk)
	return &tk
}

// allowedRoles is the expected outcome of the route table, written out by
// hand: the roles (of tenant a, or admin) allowed on each route. It must
// name every route of the table, and nothing else.
var allowedRoles = map[string][]string{
	"POST /api/v1/tasks":                              {"admin", "operator"},
	"POST /api/v1/tasks/batch":                        {"admin", "operator"},
	"GET /api/v1/tasks":                               {"admin", "operator", "viewer"},
	"GET /api/v1/tasks/watch":                         {"admin", "operator", "viewer"},
	"GET /api/v1/tasks/{id}":                          {"admin", "operator", "viewer"},
	"DELETE /api/v1/tasks/{id}":                       {"admin", "operator"},
	"GET /api/v1/tasks/{id}/wait":                     {"admin", "operator", "viewer"},
	"GET /api/v1/tasks/{id}/proof":                    {"admin", "operator", "viewer"},
	"POST /api/v1/tasks/{id}/replay":                  {"admin", "operator"},
	"POST /api/v1/workers/lease":                      {"admin", "worker"},
	"POST /api/v1/workers/heartbeat":                  {"admin", "worker"},
	"POST /api/v1/workers/complete":                   {"admin", "worker"},
	"GET /api/v1/workers/tasks/{id}/payload":          {"admin", "worker"},
	"GET /api/v1/cluster":                             {"admin", "operator", "viewer", "worker"},
	"GET /api/v1/cluster/nodes":                       {"admin", "operator", "viewer", "worker"},
	"GET /api/v1/cluster/self":                        {"admin", "operator", "viewer", "worker"},
	"GET /api/v1/cluster/keys":                        {"admin", "operator", "viewer", "worker"},
	"POST /api/v1/cluster/join":                       {"admin", "worker"},
	"DELETE /api/v1/cluster/nodes/{id}":               {"admin"},
	"POST /api/v1/tenants":                            {"admin"},
	"GET /api/v1/tenants":                             {"admin"},
	"GET /api/v1/tenants/{id}":                        {"admin"},
	"PUT /api/v1/tenants/{id}":                        {"admin"},
	"DELETE /api/v1/tenants/{id}":                     {"admin"},
	"GET /api/v1/cluster/usage":                       {"admin"},
	"GET /api/v1/cluster/events":                      {"admin"},
	"GET /api/v1/cluster/snapshot":                    {"admin"},
	"POST /api/v1/cluster/snapshot":                   {"admin"},
	"POST /api/v1/modules":                            {"admin", "operator"},
	"GET /api/v1/modules":                             {"admin", "operator", "viewer", "worker"},
	"GET /api/v1/modules/{digest}":                    {"admin", "operator", "viewer", "worker"},
	"DELETE /api/v1/modules/{digest}":                 {"admin", "operator"},
	"GET /api/v1/modules/{digest}/content":            {"admin", "operator", "viewer", "worker"},
	"POST /api/v1/models/{name}/versions/{version}":   {"admin", "operator"},
	"GET /api/v1/models":                              {"admin", "operator", "viewer", "worker"},
	"GET /api/v1/models/{name}":                       {"admin", "operator", "viewer", "worker"},
	"GET /api/v1/models/{name}/versions/{version}":    {"admin", "operator", "viewer", "worker"},
	"DELETE /api/v1/models/{name}/versions/{version}": {"admin", "operator"},
	"GET /api/v1/models/{name}/aliases/{alias}":       {"admin", "operator", "viewer", "worker"},
	"PUT /api/v1/models/{name}/aliases/{alias}":       {"admin", "operator"},
	"DELETE /api/v1/models/{name}/aliases/{alias}":    {"admin", "operator"},
	"GET /api/v1/models/{ref}/content":                {"admin", "operator", "viewer", "worker"},
	"POST /api/v1/apikeys":                            {"admin", "operator"},
	"GET /api/v1/apikeys":                             {"admin", "operator"},
	"DELETE /api/v1/apikeys/{id}":                     {"admin", "operator"},
	"GET /api/v1/tasks/{id}/result":                   {"admin", "operator", "viewer"},
	"GET /api/v1/tasks/{id}/result/url":               {"admin", "operator", "viewer"},
	"POST /api/v1/uploads":                            {"admin", "operator"},
	"GET /api/v1/objects/{key...}":                    {"admin", "operator", "viewer"},
	"PUT /api/v1/signed/{tenant}/{key...}":            {"public"},
	"GET /api/v1/signed/{tenant}/{key...}":            {"public"},
	"GET /api/v1/openapi.yaml":                        {"public"},
	"GET /healthz":                                    {"public"},
	"GET /readyz":                                     {"public"},
}

// TestRouteTableCoversTheMux fails when the mux serves a route that the
// table does not list (every operation of the spec, probed through the
// mux, must land on a table route), or when the table and the expected
// matrix disagree on the set of routes.
func TestRouteTableCoversTheMux(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	srv := api.New(e.node.Engine, api.Options{})
	table := map[string]bool{}
	for _, r := range srv.Routes() {
		if table[r.Key()] {
			t.Errorf("route %s listed twice", r.Key())
		}
		table[r.Key()] = true
		if _, ok := allowedRoles[r.Key()]; !ok {
			t.Errorf("route %s is in the table but not in the test's matrix", r.Key())
		}
		if (r.Scope == api.ScopePublic) != (r.Permission == "") {
			t.Errorf("route %s: scope %s with permission %q", r.Key(), r.Scope, r.Permission)
		}
		if r.Permission != "" && !r.Permission.Valid() {
			t.Errorf("route %s: unknown permission %q", r.Key(), r.Permission)
		}
	}
	for k := range allowedRoles {
		if !table[k] {
			t.Errorf("matrix route %s is not in the table", k)
		}
	}
	doc, err := openapi3.NewLoader().LoadFromData(api.Spec())
	if err != nil {
		t.Fatal(err)
	}
	inSpec := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			inSpec[method+" "+path] = true
		}
	}
	for k := range table {
		if !inSpec[strings.ReplaceAll(k, "...}", "}")] && !notInSpec[k] {
			t.Errorf("route %s is not described in openapi.yaml", k)
		}
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			p := strings.NewReplacer("{id}", zeroID, "{digest}", strings.Repeat("a", 64)).Replace(path)
			_, pattern := srv.Mux().Handler(httptest.NewRequest(method, p, nil))
			if pattern == "/" || pattern == "" {
				t.Errorf("%s %s (in the spec) is not served by the mux", method, path)
				continue
			}
			if !table[pattern] {
				t.Errorf("the mux serves %s (for %s %s) but the route table does not list it", pattern, method, path)
			}
		}
	}
}

// TestRouteMatrix walks every route of the table × every role × own and
// other tenant (and an other-tenant object named from the own tenant):
// allowed routes never answer 401/403, denied ones answer 403 with the
// reason, a missing credential 401 with WWW-Authenticate, and another
// tenant's task is 404 to everyone but its own.
func TestRouteMatrix(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	ownTask := e.submitAs(t, tokAdmin, "a", "noop")
	otherTask := e.submitAs(t, tokAdmin, "b", "noop")
	roles := []struct{ role, tok string }{
		{"admin", tokAdmin}, {"operator", tokOperator}, {"viewer", tokViewer}, {"worker", tokWorker}, {"none", ""},
	}
	for _, rt := range e.routes {
		allowed := allowedRoles[rt.Key()]
		for _, r := range roles {
			for _, tc := range []struct {
				name, tenant, taskID string
				other                bool
			}{
				{"own", "a", ownTask.ID, false},
				{"other", "b", otherTask.ID, true},
				{"cross", "a", otherTask.ID, false},
			} {
				path := rt.Pattern
				path = strings.ReplaceAll(path, "{id}", map[bool]string{true: "zz-none", false: tc.taskID}[strings.Contains(path, "/tenants/") || strings.Contains(path, "/nodes/")])
				path = strings.ReplaceAll(path, "{digest}", strings.Repeat("a", 64))
				if strings.HasSuffix(path, "/wait") {
					path += "?timeout=0s"
				}
				c := call{method: rt.Method, path: path, tenant: tc.tenant, header: authHeader(r.tok), bad: true}
				if rt.Method == "POST" || rt.Method == "PUT" {
					c.body = "{}"
				}
				if rt.Key() == "POST /api/v1/modules" {
					c.body, c.contentType = []byte("\x00asm"), "application/wasm"
				}
				if rt.Key() == "POST /api/v1/cluster/snapshot" {
					c.body, c.contentType = []byte("not a snapshot"), "application/octet-stream"
				}
				if rt.Key() == "DELETE /api/v1/tasks/{id}" || rt.Key() == "POST /api/v1/tasks/{id}/replay" {
					// Keep the tasks: act on an unknown id of the tenant.
					if tc.name != "cross" {
						path = strings.ReplaceAll(rt.Pattern, "{id}", zeroID)
						c.path = path
					}
				}
				var status int
				var body []byte
				var hdr http.Header
				if rt.Key() == "GET /api/v1/tasks/watch" || notInSpec[rt.Key()] {
					status, hdr, body = e.statusOnly(t, c)
				} else {
					rep := e.do(t, c)
					status, hdr, body = rep.status, rep.header, rep.body
				}
				label := rt.Key() + " as " + r.role + " (" + tc.name + ")"
				isAllowed := slices.Contains(allowed, r.role) || slices.Contains(allowed, "public")
				// Another tenant's header: only the admin acts for b.
				tenantRoute := rt.Scope == api.ScopeTenant
				if tenantRoute && tc.other && r.role != "admin" && r.role != "none" {
					if status != http.StatusForbidden || !strings.Contains(string(body), auth.ReasonTenantNotAllowed) {
						t.Errorf("%s: status %d body %s, want 403 %s", label, status, body, auth.ReasonTenantNotAllowed)
					}
					continue
				}
				switch {
				case slices.Contains(allowed, "public"):
					if status == 401 || status == 403 {
						t.Errorf("%s: public route answered %d", label, status)
					}
				case r.role == "none":
					if status != http.StatusUnauthorized || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer ") {
						t.Errorf("%s: status %d WWW-Authenticate %q, want 401 with a Bearer challenge", label, status, hdr.Get("WWW-Authenticate"))
					}
				case isAllowed:
					if status == 401 || status == 403 {
						t.Errorf("%s: allowed role answered %d: %s", label, status, body)
					}
					// Another tenant's task named from the own tenant: 404.
					if tc.name == "cross" && tenantRoute && strings.Contains(rt.Pattern, "/tasks/{id}") && r.role != "admin" && status != http.StatusNotFound {
						t.Errorf("%s: another tenant's task answered %d, want 404", label, status)
					}
				default:
					if status != http.StatusForbidden || !strings.Contains(string(body), "permission_denied") {
						t.Errorf("%s: status %d body %s, want 403 permission_denied", label, status, body)
					}
				}
			}
		}
	}
	// The other tenant's task is still pending: nothing was changed.
	if got := e.node.Store.Lookup(otherTask.ID); got == nil || got.Status != task.Pending {
		t.Fatalf("tenant b's task after the matrix: %+v, want pending", got)
	}
}

// notInSpec are routes the spec does not describe: their answers are not
// held to it (none: every route is in the spec).
var notInSpec = map[string]bool{}

// statusOnly sends c and returns as soon as the headers arrive (for
// streams).
func (e *authEnv) statusOnly(t *testing.T, c call) (int, http.Header, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, _ := e.request(t, ctx, c)
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	defer resp.Body.Close()
	var body []byte
	if resp.StatusCode >= 400 {
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		body = b.Bytes()
	}
	return resp.StatusCode, resp.Header, body
}

// lease asks for work as tok.
func (e *authEnv) lease(t *testing.T, tok, workerID string, kinds ...string) (int, *worker.LeaseResponse, []byte) {
	t.Helper()
	rep := e.do(t, call{method: "POST", path: "/api/v1/workers/lease", header: authHeader(tok),
		body: worker.LeaseRequest{WorkerID: workerID, Kinds: kinds, Max: 100}})
	var lr worker.LeaseResponse
	if rep.status == http.StatusOK {
		if err := json.Unmarshal(rep.body, &lr); err != nil {
			t.Fatal(err)
		}
	}
	return rep.status, &lr, rep.body
}

func TestMissingAndRefusedCredentials(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	for _, tc := range []struct {
		name   string
		header map[string]string
		errTok bool
	}{
		{"missing", nil, false},
		{"unknown token", authHeader("not-a-known-token"), true},
		{"basic scheme", map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, true},
		{"64 KiB header", authHeader(strings.Repeat("x", 64<<10)), true},
	} {
		rep := e.do(t, call{method: "POST", path: "/api/v1/tasks", tenant: "a", header: tc.header, body: map[string]any{"kind": "noop"}})
		if rep.status != http.StatusUnauthorized {
			t.Fatalf("%s: status %d, want 401: %s", tc.name, rep.status, rep.body)
		}
		ch := rep.header.Get("WWW-Authenticate")
		if !strings.HasPrefix(ch, `Bearer realm="grey"`) || strings.Contains(ch, "invalid_token") != tc.errTok {
			t.Fatalf("%s: WWW-Authenticate %q", tc.name, ch)
		}
		if len(rep.body) > 1024 {
			t.Fatalf("%s: the answer echoes the credential (%d bytes)", tc.name, len(rep.body))
		}
	}
	if n := e.node.Store.Len(); n != 0 {
		t.Fatalf("%d tasks stored after refused submits", n)
	}
	evs := e.audit.events(t)
	if len(evs) != 4 {
		t.Fatalf("%d audit lines, want 4: %+v", len(evs), evs)
	}
	for _, ev := range evs {
		if ev.Outcome != audit.Denied || ev.Status != 401 || ev.Subject != "" || ev.Action != "authenticate" || ev.RequestID == "" {
			t.Fatalf("audit line %+v", ev)
		}
	}
	e.audit.mu.Lock()
	if bytes.Contains(e.audit.b.Bytes(), []byte("xxxxxxxx")) || bytes.Contains(e.audit.b.Bytes(), []byte("not-a-known")) {
		t.Fatal("the audit log holds a credential")
	}
	e.audit.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.results[api.AuthUnauthenticated] != 4 {
		t.Fatalf("auth results %v", e.results)
	}
}

func TestTenantSelection(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	// Operator of a: no header means a; a header naming b is 403.
	tk := e.submitAs(t, tokOperator, "", "noop")
	if tk.TenantID != "a" {
		t.Fatalf("tenant %q, want a (the principal's only tenant)", tk.TenantID)
	}
	rep := e.do(t, call{method: "POST", path: "/api/v1/tasks", tenant: "b", header: authHeader(tokOperator), body: map[string]any{"kind": "noop"}})
	if rep.status != http.StatusForbidden || !strings.Contains(string(rep.body), `"reason":"tenant_not_allowed"`) {
		t.Fatalf("operator of a acting for b: %d %s", rep.status, rep.body)
	}
	// A 64 KiB tenant header is refused without being echoed.
	rep = e.do(t, call{method: "GET", path: "/api/v1/tasks", tenant: strings.Repeat("a", 64<<10), header: authHeader(tokOperator), bad: true})
	if rep.status != http.StatusBadRequest || len(rep.body) > 1024 {
		t.Fatalf("64 KiB tenant header: %d (%d bytes)", rep.status, len(rep.body))
	}
	// Admin without a header: default; with one: any tenant.
	if tk := e.submitAs(t, tokAdmin, "", "noop"); tk.TenantID != auth.DefaultTenant {
		t.Fatalf("admin without header: tenant %q", tk.TenantID)
	}
	bt := e.submitAs(t, tokAdmin, "b", "noop")
	// b's task is 404 to a's operator (its own tenant), 403 when naming b.
	if rep := e.do(t, call{method: "GET", path: "/api/v1/tasks/" + bt.ID, header: authHeader(tokOperator)}); rep.status != http.StatusNotFound {
		t.Fatalf("b's task from a: %d", rep.status)
	}
	// The denial is audited with the principal and the tenant asked for.
	var found bool
	for _, ev := range e.audit.events(t) {
		if ev.Outcome == audit.Denied && ev.Subject == "test:op-a" && ev.Reason == auth.ReasonTenantNotAllowed && ev.Status == 403 {
			found = true
		}
	}
	if !found {
		t.Fatalf("no audit line for the tenant denial: %+v", e.audit.events(t))
	}
}

func TestViewerCannotSubmit(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	for _, c := range []call{
		{method: "POST", path: "/api/v1/tasks", body: map[string]any{"kind": "noop"}},
		{method: "POST", path: "/api/v1/tasks/batch", body: map[string]any{"tasks": []any{map[string]any{"kind": "noop"}}}},
	} {
		c.header = authHeader(tokViewer)
		rep := e.do(t, c)
		if rep.status != http.StatusForbidden || !strings.Contains(string(rep.body), `"reason":"role_not_allowed"`) {
			t.Fatalf("viewer %s %s: %d %s", c.method, c.path, rep.status, rep.body)
		}
	}
	if n := e.node.Store.Len(); n != 0 {
		t.Fatalf("%d tasks stored", n)
	}
	// It may read.
	if rep := e.do(t, call{method: "GET", path: "/api/v1/tasks", header: authHeader(tokViewer)}); rep.status != http.StatusOK {
		t.Fatalf("viewer list: %d", rep.status)
	}
}

// TestWorkerLeasesOnlyItsTenantsAndKinds: the worker of tenant a, kind
// noop, asking for every kind, gets a's noop task only; the worker of b
// gets b's; an anonymous caller (the exploit: lease another tenant's task,
// read its payload and complete it with a forged result) gets 401.
func TestWorkerLeasesOnlyItsTenantsAndKinds(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	aNoop := e.submitAs(t, tokAdmin, "a", "noop")
	aEcho := e.submitAs(t, tokAdmin, "a", "echo")
	bNoop := e.submitAs(t, tokAdmin, "b", "noop")

	// The anonymous exploit.
	if st, _, _ := e.lease(t, "", "evil", "noop", "echo"); st != http.StatusUnauthorized {
		t.Fatalf("anonymous lease: %d", st)
	}
	rep := e.do(t, call{method: "POST", path: "/api/v1/workers/complete", body: worker.CompleteRequest{WorkerID: "evil",
		Reports: []worker.Report{{TaskID: bNoop.ID, Attempt: 1, Status: task.Completed, Result: json.RawMessage(`"forged"`)}}}})
	if rep.status != http.StatusUnauthorized {
		t.Fatalf("anonymous complete: %d", rep.status)
	}
	// Viewers and operators are no workers.
	if st, _, _ := e.lease(t, tokOperator, "op", "noop"); st != http.StatusForbidden {
		t.Fatalf("operator lease: %d", st)
	}

	st, lr, body := e.lease(t, tokWorker, "wa", "noop", "echo")
	if st != http.StatusOK || len(lr.Tasks) != 1 || lr.Tasks[0].TaskID != aNoop.ID {
		t.Fatalf("worker of a/noop leased %d %s, want only %s", st, body, aNoop.ID)
	}
	st, lr, body = e.lease(t, tokWorkerB, "wb", "noop", "echo")
	if st != http.StatusOK || len(lr.Tasks) != 1 || lr.Tasks[0].TaskID != bNoop.ID {
		t.Fatalf("worker of b leased %d %s, want only %s", st, body, bNoop.ID)
	}
	if got := e.node.Store.Lookup(aEcho.ID); got.Status != task.Pending {
		t.Fatalf("a's echo task is %s, want pending (no worker may lease it)", got.Status)
	}
	got := e.node.Store.Lookup(aNoop.ID)
	if got.Lease == nil || got.Lease.Principal != "test:worker-a" || got.Attempts[0].Principal != "test:worker-a" {
		t.Fatalf("lease %+v attempts %+v: want the principal recorded", got.Lease, got.Attempts)
	}
}

// TestReportForAnotherPrincipalsLease: a worker principal that knows the
// worker id, task id and attempt of another principal's lease can neither
// extend it nor report it.
func TestReportForAnotherPrincipalsLease(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	tk := e.submitAs(t, tokAdmin, "a", "noop")
	if st, lr, body := e.lease(t, tokWorker, "w1", "noop"); st != 200 || len(lr.Tasks) != 1 {
		t.Fatalf("lease: %d %s", st, body)
	}
	for _, tok := range []string{tokWorkerA2, tokWorkerB} {
		rep := e.do(t, call{method: "POST", path: "/api/v1/workers/complete", header: authHeader(tok), body: worker.CompleteRequest{WorkerID: "w1",
			Reports: []worker.Report{{TaskID: tk.ID, Attempt: 1, Status: task.Completed, Result: json.RawMessage(`"forged"`)}}}})
		var cr worker.CompleteResponse
		if rep.status != 200 || json.Unmarshal(rep.body, &cr) != nil || len(cr.Results) != 1 || cr.Results[0].Accepted {
			t.Fatalf("%s completing w1's lease: %d %s, want refused", tok, rep.status, rep.body)
		}
		rep = e.do(t, call{method: "POST", path: "/api/v1/workers/heartbeat", header: authHeader(tok), body: worker.HeartbeatRequest{WorkerID: "w1",
			Leases: []worker.LeaseRef{{TaskID: tk.ID, Attempt: 1}}}})
		var hr worker.HeartbeatResponse
		if rep.status != 200 || json.Unmarshal(rep.body, &hr) != nil || len(hr.Lost) != 1 {
			t.Fatalf("%s heartbeating w1's lease: %d %s, want it lost", tok, rep.status, rep.body)
		}
	}
	if got := e.node.Store.Lookup(tk.ID); got.Status != task.Leased || got.Result != nil {
		t.Fatalf("task after forged reports: %s result %s", got.Status, got.Result)
	}
	// The holder completes it.
	rep := e.do(t, call{method: "POST", path: "/api/v1/workers/complete", header: authHeader(tokWorker), body: worker.CompleteRequest{WorkerID: "w1",
		Reports: []worker.Report{{TaskID: tk.ID, Attempt: 1, Status: task.Completed, Result: json.RawMessage(`"ok"`)}}}})
	var cr worker.CompleteResponse
	if rep.status != 200 || json.Unmarshal(rep.body, &cr) != nil || !cr.Results[0].Accepted {
		t.Fatalf("holder's complete: %d %s", rep.status, rep.body)
	}
	// The audit log names the principal of each report.
	subjects := map[string]bool{}
	for _, ev := range e.audit.events(t) {
		if ev.Route == "/api/v1/workers/complete" {
			subjects[ev.Subject] = true
		}
	}
	if !subjects["test:worker-a"] || !subjects["test:worker-a2"] || !subjects["test:worker-b"] {
		t.Fatalf("audit subjects of complete: %v", subjects)
	}
}

// TestAdminTokenBootstrap: http.admin_token is an admin credential next to
// the other authenticators.
func TestAdminTokenBootstrap(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	rep := e.do(t, call{method: "GET", path: "/api/v1/tenants", header: authHeader("bootstrap-admin-token-0123456789")})
	if rep.status != http.StatusOK {
		t.Fatalf("admin token: %d %s", rep.status, rep.body)
	}
	var ev *audit.Event
	for _, x := range e.audit.events(t) {
		if x.Route == "/api/v1/tenants" {
			ev = &x
		}
	}
	if ev == nil || ev.Subject != auth.SubjectAdminToken || ev.Outcome != audit.Allowed || ev.Action != string(auth.PermTenantAdmin) {
		t.Fatalf("audit of an admin read: %+v", ev)
	}
}

package api_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/api"
	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/tenant"
	"github.com/grey-distributed/grey/worker"
)

// The tests below cover the admin routes (tenants and usage) and the quota
// and cost behaviour of the task routes, held to openapi.yaml like the rest
// (see api_test.go for the helpers).

// adminToken is the admin token of the servers that require one.
const adminToken = "0123456789abcdef"

type tenantsReply struct {
	Tenants []*tenant.Tenant `json:"tenants"`
}

// usageReport mirrors engine.UsageReport's JSON with the client's view of
// the load (decoding into the engine's own type would hide a renamed field).
type usageReport struct {
	From    *time.Time `json:"from"`
	To      *time.Time `json:"to"`
	Prices  tenant.Prices
	Tenants []struct {
		TenantID string       `json:"tenant_id"`
		Usage    tenant.Usage `json:"usage"`
		Cost     tenant.Cost  `json:"cost"`
		Load     struct {
			Queued      int   `json:"queued"`
			StoredBytes int64 `json:"stored_bytes"`
		} `json:"load"`
	} `json:"tenants"`
	Total tenant.Cost `json:"total"`
}

// bearer returns c sending the token as a bearer token.
func bearer(c call, token string) call {
	h := map[string]string{"Authorization": "Bearer " + token}
	for k, v := range c.header {
		h[k] = v
	}
	c.header = h
	return c
}

// createTenant creates a tenant (quota is a tenant.Quota or a JSON-able map)
// and requires 201.
func (e *env) createTenant(t *testing.T, token, id string, quota any) *tenant.Tenant {
	t.Helper()
	var tn tenant.Tenant
	c := call{method: "POST", path: "/api/v1/tenants", body: map[string]any{"id": id, "quota": quota}}
	if token != "" {
		c = bearer(c, token)
	}
	e.ok(t, c, http.StatusCreated, &tn)
	if tn.ID != id || tn.CreatedAt.IsZero() || !tn.UpdatedAt.Equal(tn.CreatedAt) || tn.AutoCreated {
		t.Fatalf("created tenant = %+v", tn)
	}
	return &tn
}

func (e *env) getTenant(t *testing.T, token, id string) *tenant.Tenant {
	t.Helper()
	var tn tenant.Tenant
	c := call{method: "GET", path: "/api/v1/tenants/" + id}
	if token != "" {
		c = bearer(c, token)
	}
	e.ok(t, c, http.StatusOK, &tn)
	return &tn
}

func (e *env) listTenants(t *testing.T, token string) []*tenant.Tenant {
	t.Helper()
	var tl tenantsReply
	c := call{method: "GET", path: "/api/v1/tenants"}
	if token != "" {
		c = bearer(c, token)
	}
	r := e.ok(t, c, http.StatusOK, &tl)
	if tl.Tenants == nil {
		t.Fatalf("tenant list is not an array: %s", r.body)
	}
	return tl.Tenants
}

func tenantIDs(ts []*tenant.Tenant) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	return out
}

func (e *env) usage(t *testing.T, token, query string) usageReport {
	t.Helper()
	var u usageReport
	c := call{method: "GET", path: "/api/v1/cluster/usage" + query}
	if token != "" {
		c = bearer(c, token)
	}
	e.ok(t, c, http.StatusOK, &u)
	return u
}

// retryAfter returns the Retry-After seconds of a response.
func retryAfter(t *testing.T, r reply) int {
	t.Helper()
	n, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || n < 1 {
		t.Fatalf("Retry-After = %q, want a positive number of seconds", r.header.Get("Retry-After"))
	}
	return n
}

// quotaFail sends a well-formed request that a quota refuses and checks
// the status, code, field and reason (and Retry-After as fail does).
func (e *env) quotaFail(t *testing.T, c call, status int, code greyerr.Code, field, reason string) reply {
	t.Helper()
	r := e.do(t, c)
	var eb errBody
	if err := json.Unmarshal(r.body, &eb); err != nil {
		t.Fatalf("%s %s: status %d, body %s: %v", c.method, c.path, r.status, r.body, err)
	}
	if r.status != status || eb.Code != string(code) || eb.Field != field || eb.Reason != reason {
		t.Fatalf("%s %s: %d {code %q, field %q, reason %q}, want %d {code %q, field %q, reason %q}; message: %s",
			c.method, c.path, r.status, eb.Code, eb.Field, eb.Reason, status, code, field, reason, eb.Message)
	}
	if ra := r.header.Get("Retry-After"); (status == http.StatusTooManyRequests) != (ra != "") {
		t.Errorf("%s %s: status %d with Retry-After %q", c.method, c.path, status, ra)
	}
	return r
}

// newStrictEnv is newEnv on a node that does not create tenants on first use.
func newStrictEnv(t *testing.T, cfg engine.Config, opts api.Options) *env {
	t.Helper()
	v, err := validator()
	if err != nil {
		t.Fatalf("NewValidator: %v", err)
	}
	n := greytest.NewStrictNode(t, cfg)
	if opts.Logger == nil {
		opts.Logger = greytest.Logger(t)
	}
	srv := httptest.NewServer(api.New(n.Engine, opts))
	t.Cleanup(srv.Close)
	return &env{node: n, url: srv.URL, hc: srv.Client(), v: v}
}

// ---------------------------------------------------------------------------

func TestTenantCRUD(t *testing.T) {
	t.Parallel()
	e := newEnv(t, engine.Config{Kinds: []string{"manual"}}, api.Options{})

	if l := e.listTenants(t, ""); len(l) != 0 {
		t.Fatalf("fresh node lists tenants %v", tenantIDs(l))
	}

	full := tenant.Quota{
		Weight: 2.5, MaxRunning: 3, MaxQueued: 100, SubmitRate: 50, SubmitBurst: 10,
		MaxPayloadBytes: 4096, MaxStorageBytes: 1 << 20, AllowedKinds: []string{"noop", "manual"},
		MaxTaskTimeout: task.Duration(time.Minute),
	}
	acme := e.createTenant(t, "", "acme", full)
	if !quotaEqual(acme.Quota, full) {
		t.Errorf("acme quota = %+v, want %+v", acme.Quota, full)
	}
	// Zero fields are "no limit"; weight 0 becomes 1. The quota may be left out.
	globex := e.createTenant(t, "", "globex", tenant.Quota{})
	if !quotaEqual(globex.Quota, tenant.Quota{Weight: 1}) {
		t.Errorf("globex quota = %+v, want weight 1 and no limits", globex.Quota)
	}
	var bare tenant.Tenant
	e.ok(t, call{method: "POST", path: "/api/v1/tenants", body: `{"id":"bare-1_x"}`}, http.StatusCreated, &bare)
	if !quotaEqual(bare.Quota, tenant.Quota{Weight: 1}) {
		t.Errorf("tenant without quota = %+v", bare)
	}
	// Durations also read as milliseconds, like task timeouts.
	var ms tenant.Tenant
	e.ok(t, call{method: "POST", path: "/api/v1/tenants", body: `{"id":"ms","quota":{"max_task_timeout":"1500ms","weight":0.5}}`}, http.StatusCreated, &ms)
	if ms.Quota.MaxTaskTimeout.D() != 1500*time.Millisecond || ms.Quota.Weight != 0.5 {
		t.Errorf("quota = %+v", ms.Quota)
	}

	// An existing id is 409 and changes nothing.
	e.fail(t, call{method: "POST", path: "/api/v1/tenants", body: map[string]any{"id": "acme", "quota": map[string]any{"weight": 9}}}, http.StatusConflict, greyerr.AlreadyExists, "")
	if g := e.getTenant(t, "", "acme"); !tenantEqual(g, acme) {
		t.Errorf("acme after a duplicate create = %+v, want %+v", g, acme)
	}

	if l := e.listTenants(t, ""); !slices.Equal(tenantIDs(l), []string{"acme", "bare-1_x", "globex", "ms"}) {
		t.Errorf("list = %v, want sorted by id", tenantIDs(l))
	}

	// Update replaces the whole quota; created_at stays.
	time.Sleep(2 * time.Millisecond)
	var up tenant.Tenant
	e.ok(t, call{method: "PUT", path: "/api/v1/tenants/acme", body: map[string]any{"quota": map[string]any{"weight": 5, "max_queued": 7}}}, http.StatusOK, &up)
	if !quotaEqual(up.Quota, tenant.Quota{Weight: 5, MaxQueued: 7}) || !up.CreatedAt.Equal(acme.CreatedAt) || !up.UpdatedAt.After(acme.UpdatedAt) || up.ID != "acme" {
		t.Errorf("updated = %+v (created %s)", up, acme.CreatedAt)
	}
	if g := e.getTenant(t, "", "acme"); !tenantEqual(g, &up) {
		t.Errorf("get after update = %+v, want %+v", g, up)
	}

	// Delete: the tenant is gone from get, list, update and delete.
	var del tenant.Tenant
	e.ok(t, call{method: "DELETE", path: "/api/v1/tenants/globex"}, http.StatusOK, &del)
	if !tenantEqual(&del, globex) {
		t.Errorf("deleted = %+v, want %+v", del, globex)
	}
	e.fail(t, call{method: "GET", path: "/api/v1/tenants/globex"}, http.StatusNotFound, greyerr.NotFound, "")
	e.fail(t, call{method: "DELETE", path: "/api/v1/tenants/globex"}, http.StatusNotFound, greyerr.NotFound, "")
	e.fail(t, call{method: "PUT", path: "/api/v1/tenants/globex", body: map[string]any{"quota": map[string]any{}}}, http.StatusNotFound, greyerr.NotFound, "")
	if l := e.listTenants(t, ""); !slices.Equal(tenantIDs(l), []string{"acme", "bare-1_x", "ms"}) {
		t.Errorf("list after delete = %v", tenantIDs(l))
	}
	// It can be created again.
	e.createTenant(t, "", "globex", map[string]any{"weight": 3})

	// A tenant with unfinished tasks cannot be deleted; once they are
	// cancelled it can.
	tk := e.submit(t, "acme", map[string]any{"kind": "manual"})
	e.fail(t, call{method: "DELETE", path: "/api/v1/tenants/acme"}, http.StatusConflict, greyerr.FailedPrecondition, "")
	if g := e.getTenant(t, "", "acme"); !tenantEqual(g, &up) {
		t.Errorf("acme after a refused delete = %+v", g)
	}
	e.ok(t, call{method: "DELETE", path: "/api/v1/tasks/" + tk.ID, tenant: "acme"}, http.StatusOK, nil)
	e.ok(t, call{method: "DELETE", path: "/api/v1/tenants/acme"}, http.StatusOK, nil)
	// Its finished task stays readable.
	if g := e.get(t, "acme", tk.ID); g.Status != task.Cancelled {
		t.Errorf("task of the deleted tenant = %s", g.Status)
	}

	// In dev mode a submit creates its tenant with the default quota.
	e.submit(t, "newbie", map[string]any{"kind": "noop"})
	nb := e.getTenant(t, "", "newbie")
	if !nb.AutoCreated || nb.Quota.Weight != 1 {
		t.Errorf("auto-created tenant = %+v", nb)
	}
}

// quotaEqual compares quotas (AllowedKinds nil == empty).
func quotaEqual(a, b tenant.Quota) bool {
	return a.Weight == b.Weight && a.MaxRunning == b.MaxRunning && a.MaxQueued == b.MaxQueued &&
		a.SubmitRate == b.SubmitRate && a.SubmitBurst == b.SubmitBurst && a.MaxPayloadBytes == b.MaxPayloadBytes &&
		a.MaxStorageBytes == b.MaxStorageBytes && a.MaxTaskTimeout == b.MaxTaskTimeout && slices.Equal(a.AllowedKinds, b.AllowedKinds)
}

func tenantEqual(a, b *tenant.Tenant) bool {
	return a.ID == b.ID && quotaEqual(a.Quota, b.Quota) && a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt) && a.AutoCreated == b.AutoCreated
}

func TestTenantAdminToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, engine.Config{}, api.Options{AdminToken: adminToken})
	e.createTenant(t, adminToken, "acme", tenant.Quota{MaxQueued: 5})
	before := e.getTenant(t, adminToken, "acme")

	routes := []call{
		{method: "POST", path: "/api/v1/tenants", body: map[string]any{"id": "intruder", "quota": map[string]any{}}},
		{method: "GET", path: "/api/v1/tenants"},
		{method: "GET", path: "/api/v1/tenants/acme"},
		{method: "PUT", path: "/api/v1/tenants/acme", body: map[string]any{"quota": map[string]any{"max_queued": 1000}}},
		{method: "DELETE", path: "/api/v1/tenants/acme"},
		{method: "GET", path: "/api/v1/cluster/usage"},
		{method: "GET", path: "/api/v1/cluster/usage?tenant=acme"},
	}
	creds := []struct {
		name   string
		header map[string]string
	}{
		{"missing", nil},
		{"wrong token", map[string]string{"Authorization": "Bearer fedcba9876543210"}},
		{"token prefix", map[string]string{"Authorization": "Bearer " + adminToken[:8]}},
		{"token with suffix", map[string]string{"Authorization": "Bearer " + adminToken + "x"}},
		{"empty bearer", map[string]string{"Authorization": "Bearer "}},
		{"not bearer", map[string]string{"Authorization": "Basic " + adminToken}},
		{"bare token", map[string]string{"Authorization": adminToken}},
	}
	for _, r := range routes {
		for _, cr := range creds {
			c := r
			c.header = cr.header
			res := e.do(t, c)
			if res.status != http.StatusUnauthorized {
				t.Fatalf("%s %s with %s credentials: status %d, want 401; body %s", c.method, c.path, cr.name, res.status, res.body)
			}
			var eb errBody
			if err := json.Unmarshal(res.body, &eb); err != nil || eb.Code != string(greyerr.Unauthenticated) || eb.Message == "" {
				t.Errorf("%s %s (%s): error body %s", c.method, c.path, cr.name, res.body)
			}
			if !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s (%s): WWW-Authenticate %q", c.method, c.path, cr.name, res.header.Get("WWW-Authenticate"))
			}
		}
	}
	// Nothing changed.
	if l := e.listTenants(t, adminToken); !slices.Equal(tenantIDs(l), []string{"acme"}) {
		t.Errorf("tenants after refused requests = %v", tenantIDs(l))
	}
	if g := e.getTenant(t, adminToken, "acme"); !tenantEqual(g, before) {
		t.Errorf("acme after refused requests = %+v, want %+v", g, before)
	}

	// The right token works on every route.
	e.createTenant(t, adminToken, "globex", tenant.Quota{})
	var up tenant.Tenant
	e.ok(t, bearer(call{method: "PUT", path: "/api/v1/tenants/globex", body: map[string]any{"quota": map[string]any{"weight": 2}}}, adminToken), http.StatusOK, &up)
	if up.Quota.Weight != 2 {
		t.Errorf("update with the token = %+v", up)
	}
	if u := e.usage(t, adminToken, "?tenant=acme"); len(u.Tenants) != 1 || u.Tenants[0].TenantID != "acme" {
		t.Errorf("usage with the token = %+v", u)
	}
	e.ok(t, bearer(call{method: "DELETE", path: "/api/v1/tenants/globex"}, adminToken), http.StatusOK, nil)

	// Task routes are not admin routes: the token is not needed there (in
	// dev mode the tenant header is), and the tenant quota applies.
	e.submit(t, "acme", map[string]any{"kind": "noop"})
	if l := e.list(t, "acme", ""); len(l.Tasks) != 1 {
		t.Errorf("acme lists %d tasks", len(l.Tasks))
	}

	// Without a token configured the admin routes are open.
	open := newEnv(t, engine.Config{}, api.Options{})
	open.createTenant(t, "", "acme", tenant.Quota{})
	// ...and a stray Authorization header does no harm.
	open.getTenant(t, "whatever", "acme")
}

func TestTenantBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, engine.Config{}, api.Options{})
	acme := e.createTenant(t, "", "acme", tenant.Quota{Weight: 2, MaxQueued: 10, AllowedKinds: []string{"noop"}})

	long := strings.Repeat("a", 64)
	longer := strings.Repeat("b", 65)
	create := func(body string) call { return call{method: "POST", path: "/api/v1/tenants", body: body} }
	update := func(id, body string) call { return call{method: "PUT", path: "/api/v1/tenants/" + id, body: body} }
	cases := []struct {
		name   string
		c      call
		status int
		code   greyerr.Code
		field  string
	}{
		// Ids in the body.
		{"create id with slash", create(`{"id":"a/b"}`), 400, greyerr.InvalidArgument, "id"},
		{"create id dot-dot", create(`{"id":"../x"}`), 400, greyerr.InvalidArgument, "id"},
		{"create id escaped", create(`{"id":"a%2Fb"}`), 400, greyerr.InvalidArgument, "id"},
		{"create id 64 bytes", create(`{"id":"` + long + `"}`), 400, greyerr.InvalidArgument, "id"},
		{"create id 65 bytes", create(`{"id":"` + longer + `"}`), 400, greyerr.InvalidArgument, "id"},
		{"create id empty", create(`{"id":""}`), 400, greyerr.InvalidArgument, "id"},
		{"create id missing", create(`{"quota":{}}`), 400, greyerr.InvalidArgument, "id"},
		{"create id upper case", create(`{"id":"Acme"}`), 400, greyerr.InvalidArgument, "id"},
		{"create id leading dash", create(`{"id":"-acme"}`), 400, greyerr.InvalidArgument, "id"},
		{"create id multibyte", create(`{"id":"acmé"}`), 400, greyerr.InvalidArgument, "id"},
		{"create id not a string", create(`{"id":42}`), 400, greyerr.InvalidArgument, "id"},
		// Quotas: negative or absurd.
		{"negative weight", create(`{"id":"x","quota":{"weight":-1}}`), 400, greyerr.InvalidArgument, "quota.weight"},
		{"absurd weight", create(`{"id":"x","quota":{"weight":1001}}`), 400, greyerr.InvalidArgument, "quota.weight"},
		{"weight not a number", create(`{"id":"x","quota":{"weight":"heavy"}}`), 400, greyerr.InvalidArgument, "quota.weight"},
		{"negative max_running", create(`{"id":"x","quota":{"max_running":-1}}`), 400, greyerr.InvalidArgument, "quota.max_running"},
		{"absurd max_running", create(`{"id":"x","quota":{"max_running":2000000000}}`), 400, greyerr.InvalidArgument, "quota.max_running"},
		{"negative max_queued", create(`{"id":"x","quota":{"max_queued":-5}}`), 400, greyerr.InvalidArgument, "quota.max_queued"},
		{"overflowing max_queued", create(`{"id":"x","quota":{"max_queued":1e30}}`), 400, greyerr.InvalidArgument, "quota.max_queued"},
		{"fractional max_queued", create(`{"id":"x","quota":{"max_queued":1.5}}`), 400, greyerr.InvalidArgument, "quota.max_queued"},
		{"negative submit_rate", create(`{"id":"x","quota":{"submit_rate":-1,"submit_burst":1}}`), 400, greyerr.InvalidArgument, "quota.submit_rate"},
		{"absurd submit_rate", create(`{"id":"x","quota":{"submit_rate":1e12,"submit_burst":1}}`), 400, greyerr.InvalidArgument, "quota.submit_rate"},
		{"rate without burst", create(`{"id":"x","quota":{"submit_rate":10}}`), 400, greyerr.InvalidArgument, "quota.submit_burst"},
		{"negative submit_burst", create(`{"id":"x","quota":{"submit_burst":-1}}`), 400, greyerr.InvalidArgument, "quota.submit_burst"},
		{"negative max_payload_bytes", create(`{"id":"x","quota":{"max_payload_bytes":-1}}`), 400, greyerr.InvalidArgument, "quota.max_payload_bytes"},
		{"absurd max_payload_bytes", create(`{"id":"x","quota":{"max_payload_bytes":1073741824}}`), 400, greyerr.InvalidArgument, "quota.max_payload_bytes"},
		{"negative max_storage_bytes", create(`{"id":"x","quota":{"max_storage_bytes":-1}}`), 400, greyerr.InvalidArgument, "quota.max_storage_bytes"},
		{"absurd max_storage_bytes", create(`{"id":"x","quota":{"max_storage_bytes":1152921504606846976}}`), 400, greyerr.InvalidArgument, "quota.max_storage_bytes"},
		{"negative max_task_timeout", create(`{"id":"x","quota":{"max_task_timeout":"-1s"}}`), 400, greyerr.InvalidArgument, "quota.max_task_timeout"},
		{"malformed max_task_timeout", create(`{"id":"x","quota":{"max_task_timeout":"soon"}}`), 400, greyerr.InvalidArgument, "quota.max_task_timeout"},
		{"bad allowed kind", create(`{"id":"x","quota":{"allowed_kinds":["Bad Kind"]}}`), 400, greyerr.InvalidArgument, "quota.allowed_kinds"},
		{"allowed kinds not a list", create(`{"id":"x","quota":{"allowed_kinds":"noop"}}`), 400, greyerr.InvalidArgument, "quota.allowed_kinds"},
		// The server names the unknown field with its path.
		{"unknown quota field", create(`{"id":"x","quota":{"max_cpu":4}}`), 400, greyerr.InvalidArgument, "quota.max_cpu"},
		{"unknown field", create(`{"id":"x","owner":"bob"}`), 400, greyerr.InvalidArgument, "owner"},
		{"server-set field", create(`{"id":"x","created_at":"2026-01-01T00:00:00Z"}`), 400, greyerr.InvalidArgument, "created_at"},
		{"auto_created", create(`{"id":"x","auto_created":true}`), 400, greyerr.InvalidArgument, "created_at"},
		{"malformed body", create(`{"id":"x"`), 400, greyerr.InvalidArgument, "body"},
		{"empty body", create(``), 400, greyerr.InvalidArgument, "body"},
		{"wrong content type", call{method: "POST", path: "/api/v1/tenants", body: `{"id":"x"}`, contentType: "text/plain"}, 400, greyerr.InvalidArgument, "Content-Type"},

		// Updates: bad quotas leave the tenant as it was.
		{"update negative max_queued", update("acme", `{"quota":{"max_queued":-1}}`), 400, greyerr.InvalidArgument, "quota.max_queued"},
		{"update absurd weight", update("acme", `{"quota":{"weight":1e9}}`), 400, greyerr.InvalidArgument, "quota.weight"},
		{"update rate without burst", update("acme", `{"quota":{"submit_rate":1}}`), 400, greyerr.InvalidArgument, "quota.submit_burst"},
		{"update unknown field", update("acme", `{"quota":{},"id":"acme"}`), 400, greyerr.InvalidArgument, "id"},
		{"update malformed", update("acme", `{"quota":`), 400, greyerr.InvalidArgument, "body"},
		{"update unknown tenant", update("nobody", `{"quota":{"weight":2}}`), 404, greyerr.NotFound, ""},
		{"update escaped slash", update("a%2Fb", `{"quota":{}}`), 400, greyerr.InvalidArgument, "id"},
		{"update escaped dot-dot", update("..%2Fx", `{"quota":{}}`), 400, greyerr.InvalidArgument, "id"},
		{"update 65-byte id", update(longer, `{"quota":{}}`), 400, greyerr.InvalidArgument, "id"},
		// A literal ../x is cleaned by the router (a redirect to a path
		// outside /tenants): nothing is updated.
		{"update dot-dot path", update("../x", `{"quota":{}}`), 404, greyerr.NotFound, ""},

		// Reads and deletes: unknown and malformed ids are 404.
		{"get unknown", call{method: "GET", path: "/api/v1/tenants/nobody"}, 404, greyerr.NotFound, ""},
		{"get escaped slash", call{method: "GET", path: "/api/v1/tenants/a%2Fb"}, 404, greyerr.NotFound, ""},
		{"get escaped dot-dot", call{method: "GET", path: "/api/v1/tenants/..%2Fx"}, 404, greyerr.NotFound, ""},
		{"get dot-dot path", call{method: "GET", path: "/api/v1/tenants/../x"}, 404, greyerr.NotFound, ""},
		{"get 64-byte id", call{method: "GET", path: "/api/v1/tenants/" + long}, 404, greyerr.NotFound, ""},
		{"get upper case", call{method: "GET", path: "/api/v1/tenants/ACME"}, 404, greyerr.NotFound, ""},
		{"delete unknown", call{method: "DELETE", path: "/api/v1/tenants/nobody"}, 404, greyerr.NotFound, ""},
		{"delete escaped slash", call{method: "DELETE", path: "/api/v1/tenants/a%2Fb"}, 404, greyerr.NotFound, ""},
		{"delete escaped dot-dot", call{method: "DELETE", path: "/api/v1/tenants/..%2Facme"}, 404, greyerr.NotFound, ""},
		{"delete dot-dot path", call{method: "DELETE", path: "/api/v1/tenants/../x"}, 404, greyerr.NotFound, ""},
		{"delete 65-byte id", call{method: "DELETE", path: "/api/v1/tenants/" + longer}, 404, greyerr.NotFound, ""},

		// Usage parameters.
		{"usage bad tenant", call{method: "GET", path: "/api/v1/cluster/usage?tenant=A%2Fb"}, 400, greyerr.InvalidArgument, "tenant"},
		{"usage bad from", call{method: "GET", path: "/api/v1/cluster/usage?from=yesterday"}, 400, greyerr.InvalidArgument, "from"},
		{"usage date without time", call{method: "GET", path: "/api/v1/cluster/usage?to=2026-01-01"}, 400, greyerr.InvalidArgument, "to"},
		{"usage from after to", call{method: "GET", path: "/api/v1/cluster/usage?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z"}, 400, greyerr.InvalidArgument, "from"},
		{"usage empty period", call{method: "GET", path: "/api/v1/cluster/usage?from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z"}, 400, greyerr.InvalidArgument, "from"},
	}
	t.Run("cases", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.c.bad = true
				e.fail(t, tc.c, tc.status, tc.code, tc.field)
			})
		}
	})
	// Nothing changed.
	if l := e.listTenants(t, ""); !slices.Equal(tenantIDs(l), []string{"acme"}) {
		t.Errorf("tenants after bad requests = %v", tenantIDs(l))
	}
	if g := e.getTenant(t, "", "acme"); !tenantEqual(g, acme) {
		t.Errorf("acme after bad requests = %+v, want %+v", g, acme)
	}
	e.storeLen(t, 0)
	// The 63-byte id is the longest accepted.
	e.createTenant(t, "", long[:63], tenant.Quota{})
}

func TestQuotaEnforcement(t *testing.T) {
	t.Parallel()
	e := newEnv(t, engine.Config{Kinds: []string{"manual"}}, api.Options{})
	e.createTenant(t, "", "kinds", tenant.Quota{AllowedKinds: []string{"noop", "manual"}})
	e.createTenant(t, "", "small", tenant.Quota{MaxPayloadBytes: 16})
	e.createTenant(t, "", "queued", tenant.Quota{MaxQueued: 3})
	e.createTenant(t, "", "rate", tenant.Quota{SubmitRate: 0.01, SubmitBurst: 2})
	e.createTenant(t, "", "timeout", tenant.Quota{MaxTaskTimeout: task.Duration(time.Second)})
	e.createTenant(t, "", "storage", tenant.Quota{MaxStorageBytes: 20})

	submit := func(tenant string, spec any) call {
		return call{method: "POST", path: "/api/v1/tasks", tenant: tenant, body: spec}
	}
	batch := func(tenant string, specs ...map[string]any) call {
		return call{method: "POST", path: "/api/v1/tasks/batch", tenant: tenant, body: map[string]any{"tasks": specs}}
	}
	noop := map[string]any{"kind": "manual"}
	payload := func(n int) map[string]any { // a JSON string of n bytes
		return map[string]any{"kind": "manual", "payload": strings.Repeat("x", n-2)}
	}

	// allowed_kinds: 403, the batch refused whole.
	e.quotaFail(t, submit("kinds", map[string]any{"kind": "echo"}), 403, greyerr.PermissionDenied, "kind", "allowed_kinds")
	e.quotaFail(t, batch("kinds", noop, map[string]any{"kind": "noop"}, map[string]any{"kind": "sleep"}), 403, greyerr.PermissionDenied, "tasks[2].kind", "allowed_kinds")
	e.storeLen(t, 0)
	e.submit(t, "kinds", noop)

	// max_payload_bytes: 413 (below the server's own limit).
	e.quotaFail(t, submit("small", payload(17)), 413, greyerr.TooLarge, "payload", "max_payload_bytes")
	e.quotaFail(t, batch("small", payload(16), payload(17)), 413, greyerr.TooLarge, "tasks[1].payload", "max_payload_bytes")
	e.storeLen(t, 1)
	e.submit(t, "small", payload(16))

	// max_task_timeout: 400.
	e.quotaFail(t, submit("timeout", map[string]any{"kind": "manual", "timeout": "2s"}), 400, greyerr.InvalidArgument, "timeout", "max_task_timeout")
	e.submit(t, "timeout", map[string]any{"kind": "manual", "timeout": "1s"})
	e.storeLen(t, 3)

	// max_queued: 429 with Retry-After, all or nothing.
	r := e.quotaFail(t, batch("queued", noop, noop, noop, noop), 429, greyerr.ResourceExhausted, "", "max_queued")
	retryAfter(t, r)
	e.storeLen(t, 3)
	var br batchReply
	e.ok(t, batch("queued", noop, noop, map[string]any{"kind": "manual", "idempotency_key": "k"}), http.StatusCreated, &br)
	r = e.quotaFail(t, submit("queued", noop), 429, greyerr.ResourceExhausted, "", "max_queued")
	retryAfter(t, r)
	// A replay of an idempotency key creates nothing: allowed at the limit.
	var again task.Task
	e.ok(t, submit("queued", map[string]any{"kind": "manual", "idempotency_key": "k"}), http.StatusOK, &again)
	if again.ID != br.Tasks[2].ID {
		t.Errorf("replay = %s, want %s", again.ID, br.Tasks[2].ID)
	}
	e.storeLen(t, 6)
	// Another tenant is not held back by it.
	e.submit(t, "other", noop)
	// Cancelling frees the quota.
	e.ok(t, call{method: "DELETE", path: "/api/v1/tasks/" + br.Tasks[0].ID, tenant: "queued"}, http.StatusOK, nil)
	e.submit(t, "queued", noop)
	e.storeLen(t, 8)

	// submit_rate: the burst passes, then 429 with Retry-After; a batch
	// beyond the burst can never pass.
	e.submit(t, "rate", noop)
	e.submit(t, "rate", noop)
	r = e.quotaFail(t, submit("rate", noop), 429, greyerr.ResourceExhausted, "", "submit_rate")
	if s := retryAfter(t, r); s < 50 || s > 101 {
		t.Errorf("submit_rate Retry-After = %ds, want about 100s at 0.01 tasks/s", s)
	}
	e.quotaFail(t, batch("rate", noop, noop, noop), 400, greyerr.InvalidArgument, "tasks", "submit_burst")
	e.storeLen(t, 10)
	// Other tenants have their own limiter.
	e.submit(t, "other", noop)

	// max_storage_bytes: payload bytes held, 429.
	e.submit(t, "storage", payload(12))
	r = e.quotaFail(t, submit("storage", payload(9)), 429, greyerr.ResourceExhausted, "", "max_storage_bytes")
	retryAfter(t, r)
	e.quotaFail(t, batch("storage", payload(4), payload(5)), 429, greyerr.ResourceExhausted, "", "max_storage_bytes")
	e.submit(t, "storage", payload(8))
	e.storeLen(t, 13)

	// A quota update applies to the next submit.
	e.ok(t, call{method: "PUT", path: "/api/v1/tenants/kinds", body: map[string]any{"quota": map[string]any{"allowed_kinds": []string{"echo"}}}}, http.StatusOK, nil)
	e.quotaFail(t, submit("kinds", noop), 403, greyerr.PermissionDenied, "kind", "allowed_kinds")
	e.submit(t, "kinds", map[string]any{"kind": "echo"})
	e.ok(t, call{method: "PUT", path: "/api/v1/tenants/queued", body: map[string]any{"quota": map[string]any{"max_queued": 0}}}, http.StatusOK, nil)
	e.submit(t, "queued", noop)
}

// TestUnknownTenantStrict: without auto-creation a tenant must exist
// before it submits.
func TestUnknownTenantStrict(t *testing.T) {
	t.Parallel()
	e := newStrictEnv(t, engine.Config{}, api.Options{AdminToken: adminToken})
	e.quotaFail(t, call{method: "POST", path: "/api/v1/tasks", tenant: "ghost", body: map[string]any{"kind": "noop"}}, 400, greyerr.InvalidArgument, "tenant", "unknown_tenant")
	e.quotaFail(t, call{method: "POST", path: "/api/v1/tasks/batch", tenant: "ghost", body: map[string]any{"tasks": []map[string]any{{"kind": "noop"}}}}, 400, greyerr.InvalidArgument, "tenant", "unknown_tenant")
	e.storeLen(t, 0)
	e.createTenant(t, adminToken, "ghost", tenant.Quota{})
	e.submit(t, "ghost", map[string]any{"kind": "noop"})
}

func TestUsageAndCost(t *testing.T) {
	t.Parallel()
	// $2 per CPU-second, $1 per byte moved, $1 per byte-second stored,
	// $0.5 per task: every part of the cost is visible.
	prices := tenant.Prices{CPUSecond: 2, GBMoved: 1e9, GBMonth: 1e9 * 30 * 24 * 3600, Task: 0.5}
	e := newEnv(t, engine.Config{Kinds: []string{"manual"}, Tenants: engine.TenantsConfig{
		Prices: prices, Environment: "test", CostTags: map[string]string{"team": "platform"},
	}}, api.Options{})
	e.node.StartWorkers(t, worker.Options{Concurrency: 4, LeaseWait: time.Second}, nil)
	start := time.Now()

	echo := e.submit(t, "acme", map[string]any{"kind": "echo", "payload": "abcd"})
	sleep := e.submit(t, "acme", map[string]any{"kind": "sleep", "payload": map[string]int{"ms": 50}, "constraints": map[string]any{"cpu": 2}})
	fail := e.submit(t, "acme", map[string]any{"kind": "fail", "payload": map[string]any{}})
	held := e.submit(t, "acme", map[string]any{"kind": "manual", "payload": 12345})
	other := e.submit(t, "globex", map[string]any{"kind": "noop"})
	e.ok(t, call{method: "DELETE", path: "/api/v1/tasks/" + held.ID, tenant: "acme"}, http.StatusOK, nil)

	wait := func(tenant, id string) *task.Task {
		t.Helper()
		var tk task.Task
		e.ok(t, call{method: "GET", path: "/api/v1/tasks/" + id + "/wait?timeout=20s", tenant: tenant}, http.StatusOK, &tk)
		if !tk.Status.Terminal() {
			t.Fatalf("task %s still %s", id, tk.Status)
		}
		return &tk
	}
	ge := wait("acme", echo.ID)
	gs := wait("acme", sleep.ID)
	gf := wait("acme", fail.ID)
	wait("globex", other.ID)
	gh := e.get(t, "acme", held.ID)

	// Per task: usage, tags and cost.
	if ge.Status != task.Completed || gs.Status != task.Completed || gf.Status != task.Failed || gh.Status != task.Cancelled {
		t.Fatalf("statuses %s %s %s %s", ge.Status, gs.Status, gf.Status, gh.Status)
	}
	wantTags := map[string]string{"grey-tenant-id": "acme", "grey-task-id": echo.ID, "grey-environment": "test", "team": "platform"}
	if fmt.Sprint(ge.CostTags) != fmt.Sprint(wantTags) {
		t.Errorf("cost tags = %v, want %v", ge.CostTags, wantTags)
	}
	if ge.Usage == nil || ge.Usage.BytesIn != 6 || ge.Usage.BytesOut != 6 || ge.CostUSD == nil {
		t.Fatalf("echo usage = %+v, cost %v", ge.Usage, ge.CostUSD)
	}
	// 12 bytes moved, one task, its CPU, and its payload stored while it
	// was live.
	wantCost := 12 + 0.5 + 2*ge.Usage.CPUSeconds + 6*ge.FinishedAt.Sub(ge.CreatedAt).Seconds()
	if !near(*ge.CostUSD, wantCost) {
		t.Errorf("echo cost = %v, want %v", *ge.CostUSD, wantCost)
	}
	if gs.Usage.ExecSeconds < 0.05 || math.Abs(gs.Usage.CPUSeconds-2*gs.Usage.ExecSeconds) > 1e-9 {
		t.Errorf("sleep usage = %+v, want cpu = 2 × exec ≥ 0.1", gs.Usage)
	}
	if gh.CostUSD == nil || gh.Usage == nil || gh.Usage.BytesIn != 5 || gh.Usage.ExecSeconds != 0 {
		t.Errorf("cancelled task usage = %+v cost %v", gh.Usage, gh.CostUSD)
	}
	// A pending task has no cost yet; lists carry tags and costs too.
	pend := e.submit(t, "globex", map[string]any{"kind": "manual"})
	if pend.CostUSD != nil {
		t.Errorf("pending task has a cost: %v", *pend.CostUSD)
	}
	if g := e.get(t, "globex", pend.ID); g.CostUSD != nil || g.CostTags["grey-task-id"] != pend.ID {
		t.Errorf("pending task = cost %v tags %v", g.CostUSD, g.CostTags)
	}
	for _, tk := range e.list(t, "acme", "").Tasks {
		if tk.CostTags["grey-tenant-id"] != "acme" || tk.CostUSD == nil {
			t.Errorf("listed task %s: tags %v cost %v", tk.ID, tk.CostTags, tk.CostUSD)
		}
	}

	// Per tenant.
	u := e.usage(t, "", "?tenant=acme")
	if len(u.Tenants) != 1 || u.Tenants[0].TenantID != "acme" || u.From != nil || u.To != nil || u.Prices != prices {
		t.Fatalf("usage = %+v", u)
	}
	au := u.Tenants[0]
	want := tenant.Usage{TasksSubmitted: 4, TasksCompleted: 2, TasksFailed: 1, TasksCancelled: 1, BytesIn: 6 + 9 + 2 + 5}
	got := au.Usage
	if got.TasksSubmitted != want.TasksSubmitted || got.TasksCompleted != want.TasksCompleted || got.TasksFailed != want.TasksFailed ||
		got.TasksCancelled != want.TasksCancelled || got.BytesIn != want.BytesIn {
		t.Errorf("acme usage = %+v, want counts %+v", got, want)
	}
	if got.BytesOut != ge.Usage.BytesOut+gs.Usage.BytesOut || got.BytesOut < 6 {
		t.Errorf("acme bytes out = %d, want %d", got.BytesOut, ge.Usage.BytesOut+gs.Usage.BytesOut)
	}
	if got.ExecSeconds < gs.Usage.ExecSeconds || got.CPUSeconds < gs.Usage.CPUSeconds+ge.Usage.CPUSeconds-1e-9 {
		t.Errorf("acme exec %v cpu %v, want at least the tasks' (%+v, %+v)", got.ExecSeconds, got.CPUSeconds, gs.Usage, ge.Usage)
	}
	if got.ByteSeconds <= 0 || got.ByteSeconds > float64(got.BytesIn+got.BytesOut)*time.Since(start).Seconds()*1.01 {
		t.Errorf("acme byte-seconds = %v", got.ByteSeconds)
	}
	checkCost(t, "acme", prices, got, au.Cost)
	if au.Load.Queued != 0 || au.Load.StoredBytes != got.BytesIn+got.BytesOut {
		t.Errorf("acme load = %+v, want nothing queued and %d bytes stored", au.Load, got.BytesIn+got.BytesOut)
	}

	// All tenants, and the total.
	all := e.usage(t, "", "")
	if len(all.Tenants) != 2 || all.Tenants[0].TenantID != "acme" || all.Tenants[1].TenantID != "globex" {
		t.Fatalf("usage of all = %+v", all.Tenants)
	}
	g := all.Tenants[1]
	if g.Usage.TasksSubmitted != 2 || g.Usage.TasksCompleted != 1 || g.Load.Queued != 1 {
		t.Errorf("globex = %+v", g)
	}
	checkCost(t, "globex", prices, g.Usage, g.Cost)
	var sum float64
	for _, tu := range all.Tenants {
		sum += tu.Cost.Total
	}
	if !near(all.Total.Total, sum) || !near(all.Total.Tasks, 3) {
		t.Errorf("total = %+v, want the tenants' sum %v", all.Total, sum)
	}

	// Periods: the current hour holds everything; a window in the past
	// holds nothing; bounds come back in UTC.
	now := time.Now()
	cur := e.usage(t, "", "?tenant=acme&from="+url.QueryEscape(now.Add(-time.Hour).Format(time.RFC3339))+"&to="+url.QueryEscape(now.Add(time.Hour).Format(time.RFC3339)))
	if cur.Tenants[0].Usage.TasksSubmitted != 4 || cur.From == nil || cur.To == nil || cur.From.Location() != time.UTC {
		t.Errorf("current window = %+v", cur)
	}
	past := e.usage(t, "", "?tenant=acme&from="+now.Add(-5*time.Hour).UTC().Format(time.RFC3339)+"&to="+now.Add(-3*time.Hour).UTC().Format(time.RFC3339))
	if pu := past.Tenants[0].Usage; pu.TasksSubmitted != 0 || pu.ByteSeconds != 0 || past.Tenants[0].Cost.Total != 0 {
		t.Errorf("past window = %+v", past.Tenants[0])
	}
	future := e.usage(t, "", "?from="+now.Add(2*time.Hour).UTC().Format(time.RFC3339))
	for _, tu := range future.Tenants {
		if tu.Usage.TasksSubmitted != 0 || tu.Cost.Total != 0 {
			t.Errorf("future window: %s = %+v", tu.TenantID, tu)
		}
	}
	// A tenant without usage reports zeros.
	if z := e.usage(t, "", "?tenant=nobody"); len(z.Tenants) != 1 || z.Tenants[0].Usage != (tenant.Usage{}) || z.Total.Total != 0 {
		t.Errorf("usage of an unknown tenant = %+v", z)
	}
}

// checkCost checks that cost is usage priced with prices.
func checkCost(t *testing.T, who string, p tenant.Prices, u tenant.Usage, c tenant.Cost) {
	t.Helper()
	want := tenant.Cost{
		CPU:      u.CPUSeconds * p.CPUSecond,
		Storage:  u.ByteSeconds / 1e9 / (30 * 24 * 3600) * p.GBMonth,
		Transfer: float64(u.BytesIn+u.BytesOut) / 1e9 * p.GBMoved,
		Tasks:    float64(u.TasksSubmitted) * p.Task,
	}
	want.Total = want.CPU + want.Storage + want.Transfer + want.Tasks
	if !near(c.CPU, want.CPU) || !near(c.Storage, want.Storage) || !near(c.Transfer, want.Transfer) || !near(c.Tasks, want.Tasks) || !near(c.Total, want.Total) {
		t.Errorf("%s cost = %+v, want %+v for usage %+v", who, c, want, u)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// TestTenantIsolationWithQuotas extends TestTenantIsolation to quotas and
// cost: one tenant's limits, tasks and usage are invisible to another on
// every task route.
func TestTenantIsolationWithQuotas(t *testing.T) {
	t.Parallel()
	e := newEnv(t, engine.Config{Kinds: []string{"manual"}}, api.Options{})
	const a, b = "tenant-a", "tenant-b"
	e.createTenant(t, "", a, tenant.Quota{MaxQueued: 2, AllowedKinds: []string{"manual"}})
	e.createTenant(t, "", b, tenant.Quota{MaxQueued: 2})

	at := e.submit(t, a, map[string]any{"kind": "manual", "payload": "secret", "idempotency_key": "k"})
	// depends_on cannot name A's task, and nothing is created.
	e.fail(t, call{method: "POST", path: "/api/v1/tasks/batch", tenant: b, body: map[string]any{"tasks": []map[string]any{{"kind": "echo"}, {"kind": "echo", "depends_on": []string{at.ID}}}}}, 400, greyerr.InvalidArgument, "tasks[1].depends_on")
	e.storeLen(t, 1)
	e.submit(t, a, map[string]any{"kind": "manual"})
	// A is at max_queued; B is not held back, nor bound by A's kinds.
	e.quotaFail(t, call{method: "POST", path: "/api/v1/tasks", tenant: a, body: map[string]any{"kind": "manual"}}, 429, greyerr.ResourceExhausted, "", "max_queued")
	bt := e.submit(t, b, map[string]any{"kind": "echo", "idempotency_key": "k"})
	if bt.ID == at.ID || bt.TenantID != b {
		t.Errorf("B's submit with A's key = %s of %s", bt.ID, bt.TenantID)
	}
	// B's own quota counts B's tasks only.
	e.submit(t, b, map[string]any{"kind": "manual"})
	e.quotaFail(t, call{method: "POST", path: "/api/v1/tasks", tenant: b, body: map[string]any{"kind": "manual"}}, 429, greyerr.ResourceExhausted, "", "max_queued")

	before := e.get(t, a, at.ID)
	by := "/api/v1/tasks/" + at.ID
	for _, c := range []call{
		{method: "GET", path: by, tenant: b},
		{method: "GET", path: by + "/wait?timeout=1s", tenant: b},
		{method: "DELETE", path: by, tenant: b},
		{method: "GET", path: by},
	} {
		e.fail(t, c, http.StatusNotFound, greyerr.NotFound, "")
	}
	// A's task id is no cursor for B.
	e.fail(t, call{method: "GET", path: "/api/v1/tasks?cursor=" + at.ID, tenant: b}, http.StatusBadRequest, greyerr.InvalidArgument, "cursor")
	for _, q := range []string{"", "?status=pending", "?kind=manual"} {
		for _, tk := range e.list(t, b, q).Tasks {
			if tk.TenantID != b || tk.CostTags["grey-tenant-id"] != b {
				t.Errorf("B lists %s of %s (tags %v)", tk.ID, tk.TenantID, tk.CostTags)
			}
		}
	}
	if g := e.get(t, a, at.ID); g.Index != before.Index || g.Status != task.Pending || string(g.Payload) != `"secret"` {
		t.Errorf("A's task after B's attempts = %+v", g)
	}
	// Usage: each tenant's row counts its own tasks.
	u := e.usage(t, "", "")
	counts := map[string]int64{}
	for _, tu := range u.Tenants {
		counts[tu.TenantID] = tu.Usage.TasksSubmitted
		if tu.Usage.TasksCancelled != 0 {
			t.Errorf("%s has cancelled tasks: %+v", tu.TenantID, tu.Usage)
		}
	}
	if counts[a] != 2 || counts[b] != 2 || len(counts) != 2 {
		t.Errorf("submitted per tenant = %v, want 2 each", counts)
	}
	// A's idempotent replay at its limit still answers A's task.
	var again task.Task
	e.ok(t, call{method: "POST", path: "/api/v1/tasks", tenant: a, body: map[string]any{"kind": "manual", "payload": "secret", "idempotency_key": "k"}}, http.StatusOK, &again)
	if again.ID != at.ID {
		t.Errorf("A's replay = %s, want %s", again.ID, at.ID)
	}
}

package client

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grey-distributed/grey/api"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/tenant"
)

// adminServer answers the admin routes with canned bodies, holds every
// request the client sends to openapi.yaml, and records it.
type adminServer struct {
	t   *testing.T
	srv *httptest.Server
	v   *api.Validator

	mu   sync.Mutex
	reqs []recorded
	// reply is the status and body of the next answer.
	status int
	body   string
	header map[string]string
}

type recorded struct {
	method, path, rawPath, query, auth, tenant string
	body                                       []byte
}

func newAdminServer(t *testing.T) *adminServer {
	t.Helper()
	v, err := api.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	s := &adminServer{t: t, v: v}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		// A malformed id is sent on purpose; everything else must conform.
		if err := s.v.ValidateRequest(r, b); err != nil && !strings.Contains(r.URL.EscapedPath(), "%2F") {
			t.Errorf("%s %s: request does not match the API spec: %v", r.Method, r.URL, err)
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, recorded{r.Method, r.URL.Path, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get(TenantHeader), b})
		status, body, header := s.status, s.body, s.header
		s.mu.Unlock()
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		if status == 0 {
			status = http.StatusOK
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *adminServer) answer(status int, body string, header map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body, s.header = status, body, header
}

func (s *adminServer) last() recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		s.t.Fatal("no request was sent")
	}
	return s.reqs[len(s.reqs)-1]
}

func (s *adminServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

const tenantJSON = `{"id":"acme","quota":{"weight":2,"max_running":0,"max_queued":10,"submit_rate":5,"submit_burst":5,
	"max_payload_bytes":0,"max_storage_bytes":0,"allowed_kinds":["noop"],"max_task_timeout":"1m0s"},
	"created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:06Z"}`

func TestTenantMethods(t *testing.T) {
	t.Parallel()
	s := newAdminServer(t)
	c := newClient(t, s.srv.URL, WithToken("0123456789abcdef"), WithTenant("acme"))
	ctx := t.Context()
	q := tenant.Quota{Weight: 2, MaxQueued: 10, SubmitRate: 5, SubmitBurst: 5, AllowedKinds: []string{"noop"}, MaxTaskTimeout: task.Duration(time.Minute)}

	s.answer(http.StatusCreated, tenantJSON, nil)
	tn, err := c.CreateTenant(ctx, "acme", q)
	if err != nil || tn.ID != "acme" || tn.Quota.MaxQueued != 10 || tn.Quota.MaxTaskTimeout.D() != time.Minute || tn.CreatedAt.IsZero() {
		t.Fatalf("CreateTenant = %+v, %v", tn, err)
	}
	r := s.last()
	var sent map[string]any
	if err := json.Unmarshal(r.body, &sent); err != nil || r.method != "POST" || r.path != "/api/v1/tenants" || sent["id"] != "acme" || len(sent) != 2 {
		t.Errorf("create sent %s %s %s", r.method, r.path, r.body)
	}
	if r.auth != "Bearer 0123456789abcdef" {
		t.Errorf("Authorization = %q", r.auth)
	}

	if tn, err := c.GetTenant(ctx, "acme"); err != nil || tn.Quota.Weight != 2 {
		t.Errorf("GetTenant = %+v, %v", tn, err)
	}
	if r := s.last(); r.method != "GET" || r.path != "/api/v1/tenants/acme" {
		t.Errorf("get sent %s %s", r.method, r.path)
	}

	// The id is one path segment, escaped.
	s.answer(http.StatusNotFound, `{"code":"not_found","message":"tenant a/b not found"}`, nil)
	if _, err := c.GetTenant(ctx, "a/b"); !greyerr.Is(err, greyerr.NotFound) {
		t.Errorf("GetTenant(a/b) = %v, want not_found", err)
	}
	if r := s.last(); r.rawPath != "/api/v1/tenants/a%2Fb" {
		t.Errorf("get a/b sent path %q", r.rawPath)
	}

	s.answer(http.StatusOK, tenantJSON, nil)
	if tn, err := c.UpdateTenant(ctx, "acme", q); err != nil || tn.ID != "acme" {
		t.Errorf("UpdateTenant = %+v, %v", tn, err)
	}
	r = s.last()
	var upd struct {
		Quota tenant.Quota `json:"quota"`
	}
	sent = nil
	_ = json.Unmarshal(r.body, &sent)
	if err := json.Unmarshal(r.body, &upd); err != nil || r.method != "PUT" || r.path != "/api/v1/tenants/acme" || len(sent) != 1 || upd.Quota.SubmitBurst != 5 {
		t.Errorf("update sent %s %s %s", r.method, r.path, r.body)
	}

	if tn, err := c.DeleteTenant(ctx, "acme"); err != nil || tn.ID != "acme" {
		t.Errorf("DeleteTenant = %+v, %v", tn, err)
	}
	if r := s.last(); r.method != "DELETE" || r.path != "/api/v1/tenants/acme" {
		t.Errorf("delete sent %s %s", r.method, r.path)
	}

	s.answer(http.StatusOK, `{"tenants":[`+tenantJSON+`]}`, nil)
	if ts, err := c.ListTenants(ctx); err != nil || len(ts) != 1 || ts[0].ID != "acme" {
		t.Errorf("ListTenants = %v, %v", ts, err)
	}

	// An empty id is refused before any request.
	n := s.count()
	for name, f := range map[string]func() error{
		"get":    func() error { _, err := c.GetTenant(ctx, ""); return err },
		"update": func() error { _, err := c.UpdateTenant(ctx, "", q); return err },
		"delete": func() error { _, err := c.DeleteTenant(ctx, ""); return err },
	} {
		var ge *greyerr.Error
		if err := f(); !errors.As(err, &ge) || ge.Code != greyerr.InvalidArgument || ge.Field != "id" {
			t.Errorf("%s with an empty id = %v", name, err)
		}
	}
	if s.count() != n {
		t.Error("a request was sent for an empty id")
	}

	// A missing or wrong admin token comes back as Unauthenticated.
	s.answer(http.StatusUnauthorized, `{"code":"unauthenticated","message":"this route needs the admin token"}`, map[string]string{"WWW-Authenticate": `Bearer realm="grey-admin"`})
	if _, err := c.ListTenants(ctx); !greyerr.Is(err, greyerr.Unauthenticated) {
		t.Errorf("ListTenants with a wrong token = %v", err)
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	s := newAdminServer(t)
	c := newClient(t, s.srv.URL)
	ctx := t.Context()
	s.answer(http.StatusOK, `{"from":"2026-01-01T00:00:00Z","to":null,
		"prices":{"cpu_second_usd":2,"gb_month_usd":0.1,"gb_moved_usd":0.05,"task_usd":0.001},
		"tenants":[{"tenant_id":"acme",
			"usage":{"tasks_submitted":3,"tasks_completed":2,"tasks_failed":1,"tasks_cancelled":0,"exec_seconds":1.5,"cpu_seconds":3,"bytes_in":10,"bytes_out":20,"byte_seconds":100},
			"cost":{"cpu_usd":6,"storage_usd":0.0000001,"transfer_usd":0.0000015,"tasks_usd":0.003,"total_usd":6.0030016},
			"load":{"queued":1,"stored_bytes":30}}],
		"total":{"cpu_usd":6,"storage_usd":0.0000001,"transfer_usd":0.0000015,"tasks_usd":0.003,"total_usd":6.0030016}}`, nil)

	from := time.Date(2026, 1, 1, 1, 30, 0, 5e8, time.FixedZone("CET", 3600))
	rep, err := c.Usage(ctx, UsageOptions{Tenant: "acme", From: from})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Tenants) != 1 || rep.Tenants[0].TenantID != "acme" || rep.Tenants[0].Usage.CPUSeconds != 3 || rep.Tenants[0].Cost.CPU != 6 ||
		rep.Tenants[0].Load != (TenantLoad{Queued: 1, StoredBytes: 30}) || rep.Prices.Task != 0.001 || rep.From == nil || rep.To != nil || rep.Total.Total != 6.0030016 {
		t.Errorf("Usage = %+v", rep)
	}
	r := s.last()
	if r.method != "GET" || r.path != "/api/v1/cluster/usage" || r.query != "from=2026-01-01T00%3A30%3A00.5Z&tenant=acme" {
		t.Errorf("usage sent %s %s?%s", r.method, r.path, r.query)
	}
	if _, err := c.Usage(ctx, UsageOptions{}); err != nil || s.last().query != "" {
		t.Errorf("Usage() sent query %q (%v)", s.last().query, err)
	}
	if _, err := c.Usage(ctx, UsageOptions{To: from}); err != nil || !strings.HasPrefix(s.last().query, "to=") {
		t.Errorf("Usage(to) sent query %q (%v)", s.last().query, err)
	}
}

// TestQuotaErrors: a quota refusal keeps its reason and Retry-After.
func TestQuotaErrors(t *testing.T) {
	t.Parallel()
	s := newAdminServer(t)
	c := newClient(t, s.srv.URL, WithTenant("acme"))
	s.answer(http.StatusTooManyRequests, `{"code":"resource_exhausted","message":"tenant has 3 unfinished tasks","reason":"max_queued"}`, map[string]string{"Retry-After": "2"})
	_, err := c.Submit(t.Context(), task.Spec{Kind: "noop"})
	var ge *greyerr.Error
	if !errors.As(err, &ge) || ge.Code != greyerr.ResourceExhausted || ge.Reason != "max_queued" || ge.RetryAfter != 2*time.Second {
		t.Errorf("Submit over max_queued = %#v", err)
	}
	s.answer(http.StatusForbidden, `{"code":"permission_denied","message":"no","field":"tasks[1].kind","reason":"allowed_kinds"}`, nil)
	_, err = c.SubmitBatch(t.Context(), []task.Spec{{Kind: "noop"}, {Kind: "echo"}})
	if !errors.As(err, &ge) || ge.Code != greyerr.PermissionDenied || ge.Reason != "allowed_kinds" || ge.Field != "tasks[1].kind" {
		t.Errorf("SubmitBatch with a kind not allowed = %#v", err)
	}
	if r := s.last(); r.tenant != "acme" {
		t.Errorf("tenant header %q", r.tenant)
	}
}

// TestPathEscaping: an id travels as one escaped path segment, after the
// base URL's own (escaped) path prefix.
func TestPathEscaping(t *testing.T) {
	t.Parallel()
	paths := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths <- r.URL.EscapedPath()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, tenantJSON)
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL+"/pre%20fix/")
	for id, want := range map[string]string{
		"acme":  "/pre%20fix/api/v1/tenants/acme",
		"a/b":   "/pre%20fix/api/v1/tenants/a%2Fb",
		"../x":  "/pre%20fix/api/v1/tenants/..%2Fx",
		"a b%c": "/pre%20fix/api/v1/tenants/a%20b%25c",
	} {
		if _, err := c.GetTenant(t.Context(), id); err != nil {
			t.Errorf("GetTenant(%q): %v", id, err)
		}
		if got := <-paths; got != want {
			t.Errorf("GetTenant(%q) sent %q, want %q", id, got, want)
		}
	}
}

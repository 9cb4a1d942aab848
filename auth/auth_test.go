package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

func principal(grants ...auth.Grant) *auth.Principal {
	return &auth.Principal{Subject: "t", Method: auth.MethodAPIKey, Grants: grants}
}

// TestRoleTable pins the role → permission table: a change to it must
// change this test (and docs/AUTH.md).
func TestRoleTable(t *testing.T) {
	t.Parallel()
	want := map[auth.Role][]auth.Permission{
		auth.RoleAdmin:    auth.Permissions,
		auth.RoleOperator: {auth.PermTaskRead, auth.PermTaskSubmit, auth.PermTaskCancel, auth.PermTaskReplay, auth.PermModuleRead, auth.PermModuleWrite, auth.PermModelRead, auth.PermModelWrite, auth.PermClusterRead, auth.PermAPIKeyManage},
		auth.RoleViewer:   {auth.PermTaskRead, auth.PermModuleRead, auth.PermModelRead, auth.PermClusterRead},
		auth.RoleWorker:   {auth.PermWorkerLease, auth.PermNodeRegister, auth.PermModuleRead, auth.PermModelRead, auth.PermClusterRead},
	}
	for _, r := range auth.Roles {
		for _, p := range auth.Permissions {
			if got, w := r.Has(p), slices.Contains(want[r], p); got != w {
				t.Errorf("%s has %s = %v, want %v", r, p, got, w)
			}
		}
	}
	if auth.Role("root").Has(auth.PermTaskRead) {
		t.Fatal("an unknown role holds a permission")
	}
}

func TestCan(t *testing.T) {
	t.Parallel()
	admin := principal(auth.Grant{Tenant: auth.AllTenants, Role: auth.RoleAdmin})
	tenantAdmin := principal(auth.Grant{Tenant: "a", Role: auth.RoleAdmin})
	op := principal(auth.Grant{Tenant: "a", Role: auth.RoleOperator}, auth.Grant{Tenant: "b", Role: auth.RoleViewer})
	for _, tc := range []struct {
		p      *auth.Principal
		perm   auth.Permission
		tenant string
		want   bool
	}{
		{admin, auth.PermSnapshot, "", true},
		{admin, auth.PermTaskSubmit, "zzz", true},
		{tenantAdmin, auth.PermTaskSubmit, "a", true},
		{tenantAdmin, auth.PermTaskSubmit, "b", false},
		{tenantAdmin, auth.PermTenantAdmin, "a", false}, // cluster permissions need AllTenants
		{tenantAdmin, auth.PermClusterRead, "", true},
		{op, auth.PermTaskSubmit, "a", true},
		{op, auth.PermTaskSubmit, "b", false},
		{op, auth.PermTaskRead, "b", true},
		{op, auth.PermSnapshot, "", false},
		{op, auth.PermWorkerLease, "a", false},
		{nil, auth.PermClusterRead, "", false},
	} {
		if got := tc.p.Can(tc.perm, tc.tenant); got != tc.want {
			t.Errorf("%v Can(%s, %q) = %v", tc.p, tc.perm, tc.tenant, got)
		}
	}
	if got := op.Tenants(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("Tenants %v", got)
	}
}

func TestWorkerKindsAndLeaseScope(t *testing.T) {
	t.Parallel()
	w := principal(auth.Grant{Tenant: "a", Role: auth.RoleWorker, Kinds: []string{"noop"}},
		auth.Grant{Tenant: "b", Role: auth.RoleWorker},
		auth.Grant{Tenant: "c", Role: auth.RoleViewer})
	if k, ok := w.WorkerKinds("a"); !ok || !slices.Equal(k, []string{"noop"}) {
		t.Fatalf("a: %v %v", k, ok)
	}
	if k, ok := w.WorkerKinds("b"); !ok || k != nil {
		t.Fatalf("b: %v %v", k, ok)
	}
	if _, ok := w.WorkerKinds("c"); ok {
		t.Fatal("a viewer grant leases")
	}
	s := w.LeaseScope()
	for _, tc := range []struct {
		tenant, kind string
		want         bool
	}{{"a", "noop", true}, {"a", "echo", false}, {"b", "echo", true}, {"c", "noop", false}, {"d", "noop", false}} {
		if s.Allows(tc.tenant, tc.kind) != tc.want {
			t.Errorf("Allows(%s, %s) != %v", tc.tenant, tc.kind, tc.want)
		}
	}
	if principal(auth.Grant{Tenant: auth.AllTenants, Role: auth.RoleAdmin}).LeaseScope() != nil {
		t.Fatal("admin scope is not everything")
	}
	if !principal(auth.Grant{Tenant: "a", Role: auth.RoleViewer}).LeaseScope().Empty() {
		t.Fatal("viewer scope is not empty")
	}
	star := principal(auth.Grant{Tenant: auth.AllTenants, Role: auth.RoleWorker, Kinds: []string{"gpu"}}).LeaseScope()
	if !star.Allows("x", "gpu") || star.Allows("x", "noop") {
		t.Fatal("AllTenants worker with kinds")
	}
}

func TestResolveTenant(t *testing.T) {
	t.Parallel()
	one := principal(auth.Grant{Tenant: "a", Role: auth.RoleOperator})
	two := principal(auth.Grant{Tenant: "a", Role: auth.RoleOperator}, auth.Grant{Tenant: "b", Role: auth.RoleViewer})
	admin := principal(auth.Grant{Tenant: auth.AllTenants, Role: auth.RoleAdmin})
	dev := auth.Development(false)
	for _, tc := range []struct {
		p            *auth.Principal
		header, want string
		code         greyerr.Code
		reason       string
	}{
		{one, "", "a", "", ""},
		{one, "a", "a", "", ""},
		{one, "b", "", greyerr.PermissionDenied, auth.ReasonTenantNotAllowed},
		{two, "", "", greyerr.InvalidArgument, ""},
		{two, "b", "b", "", ""},
		{admin, "", auth.DefaultTenant, "", ""},
		{admin, "zz", "zz", "", ""},
		{dev, "", auth.DefaultTenant, "", ""},
		{dev, "any-tenant", "any-tenant", "", ""},
		{dev, "Bad Tenant", "", greyerr.InvalidArgument, ""},
		{one, strings.Repeat("a", 64<<10), "", greyerr.InvalidArgument, ""},
		{principal(), "", "", greyerr.PermissionDenied, auth.ReasonTenantNotAllowed},
	} {
		got, err := auth.ResolveTenant(tc.p, tc.header)
		if greyerr.CodeOf(err) != tc.code && !(tc.code == "" && err == nil) {
			t.Fatalf("ResolveTenant(%v, %.20q): %v, want code %q", tc.p.Grants, tc.header, err, tc.code)
		}
		var ge *greyerr.Error
		if tc.reason != "" && (!errors.As(err, &ge) || ge.Reason != tc.reason) {
			t.Fatalf("ResolveTenant(%v, %q): %v, want reason %s", tc.p.Grants, tc.header, err, tc.reason)
		}
		if got != tc.want {
			t.Fatalf("ResolveTenant(%v, %q) = %q, want %q", tc.p.Grants, tc.header, got, tc.want)
		}
		if err != nil && len(err.Error()) > 200 {
			t.Fatalf("error echoes the header: %d bytes", len(err.Error()))
		}
	}
}

// FuzzResolveTenant: the header never selects a tenant the principal may
// not act for, a selected tenant is a valid id, and errors stay short.
func FuzzResolveTenant(f *testing.F) {
	for _, s := range []string{"", "a", "b", "default", "A", "a b", "../x", strings.Repeat("x", 200), "a\x00"} {
		f.Add(s)
	}
	ps := []*auth.Principal{
		principal(auth.Grant{Tenant: "a", Role: auth.RoleOperator}),
		principal(auth.Grant{Tenant: "a", Role: auth.RoleWorker}, auth.Grant{Tenant: "b", Role: auth.RoleViewer}),
		principal(auth.Grant{Tenant: auth.AllTenants, Role: auth.RoleAdmin}),
	}
	f.Fuzz(func(t *testing.T, h string) {
		for _, p := range ps {
			got, err := auth.ResolveTenant(p, h)
			if err != nil {
				if got != "" || len(err.Error()) > 200 {
					t.Fatalf("%q: %q, %v", h, got, err)
				}
				continue
			}
			if !task.ValidTenant(got) || !p.ActsFor(got) || (h != "" && got != h) {
				t.Fatalf("header %q selected %q for %v", h, got, p.Grants)
			}
		}
	})
}

type fixed struct {
	name string
	p    *auth.Principal
	err  error
}

func (f fixed) Name() string { return f.name }
func (f fixed) Authenticate(context.Context, *http.Request) (*auth.Principal, error) {
	return f.p, f.err
}

func TestChain(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "/", nil)
	p1 := principal(auth.Grant{Tenant: "a", Role: auth.RoleViewer})
	refused := greyerr.New(greyerr.Unauthenticated, "expired")
	skip := fixed{"skip", nil, auth.ErrNoCredentials}
	c := &auth.Chain{Authenticators: []auth.Authenticator{skip, fixed{"one", p1, nil}, fixed{"two", nil, refused}}}
	if got, err := c.Authenticate(t.Context(), r); err != nil || got != p1 {
		t.Fatalf("first non-skip wins: %v %v", got, err)
	}
	c = &auth.Chain{Authenticators: []auth.Authenticator{skip, fixed{"two", nil, refused}, fixed{"one", p1, nil}}}
	if _, err := c.Authenticate(t.Context(), r); !errors.Is(err, refused) {
		t.Fatalf("a refusal stops the chain: %v", err)
	}
	c = &auth.Chain{Authenticators: []auth.Authenticator{fixed{"odd", nil, errors.New("db down: secret=xyz")}}}
	if _, err := c.Authenticate(t.Context(), r); greyerr.CodeOf(err) != greyerr.Unauthenticated {
		t.Fatalf("an uncoded error is unauthenticated: %v", err)
	}
	c = &auth.Chain{Authenticators: []auth.Authenticator{skip}}
	if _, err := c.Authenticate(t.Context(), r); greyerr.CodeOf(err) != greyerr.Unauthenticated {
		t.Fatalf("nothing recognised: %v", err)
	}
	expired := principal(auth.Grant{Tenant: "a", Role: auth.RoleViewer})
	expired.Expires = time.Now().Add(-time.Second)
	c = &auth.Chain{Authenticators: []auth.Authenticator{fixed{"old", expired, nil}}}
	if _, err := c.Authenticate(t.Context(), r); greyerr.CodeOf(err) != greyerr.Unauthenticated {
		t.Fatalf("expired principal: %v", err)
	}
	c = &auth.Chain{Authenticators: []auth.Authenticator{skip}}
	c.Anonymous = auth.Development(false)
	if got, err := c.Authenticate(t.Context(), r); err != nil || got.Subject != auth.SubjectAnonymous {
		t.Fatalf("mode none: %v %v", got, err)
	}
}

func TestAdminToken(t *testing.T) {
	t.Parallel()
	a := auth.NewAdminToken("0123456789abcdef-admin")
	for _, tc := range []struct {
		header string
		ok     bool
	}{
		{"Bearer 0123456789abcdef-admin", true},
		{"bearer 0123456789abcdef-admin", true},
		{"Bearer 0123456789abcdef-admiN", false},
		{"Bearer ", false},
		{"Basic 0123456789abcdef-admin", false},
		{"", false},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		p, err := a.Authenticate(t.Context(), r)
		if tc.ok != (err == nil) || (!tc.ok && !errors.Is(err, auth.ErrNoCredentials)) {
			t.Fatalf("%q: %v %v", tc.header, p, err)
		}
		if tc.ok && (!p.Can(auth.PermSnapshot, "") || p.Method != auth.MethodToken) {
			t.Fatalf("admin token principal %+v", p)
		}
	}
}

// FuzzBearerToken: any Authorization value parses without panicking; a
// token is returned only for the Bearer scheme, trimmed and non-empty.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer  x ", "Basic abc", "Bearer", "Bearer ", "", "BEARER a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header["Authorization"] = []string{h}
		tok, ok := auth.BearerToken(r)
		if !ok {
			if tok != "" {
				t.Fatalf("%q: token %q without ok", h, tok)
			}
			return
		}
		scheme, _, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || tok == "" || strings.TrimSpace(tok) != tok {
			t.Fatalf("%q: token %q", h, tok)
		}
	})
}

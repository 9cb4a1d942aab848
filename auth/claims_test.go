package auth

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func claimsOf(t testing.TB, js string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestGrantsFromPermissions(t *testing.T) {
	r := DefaultClaimRules()
	cases := []struct {
		name    string
		claims  string
		want    []Grant
		ignored int
	}{
		{"list", `{"permissions":["acme:operator","globex:viewer"]}`, []Grant{{Tenant: "acme", Role: RoleOperator}, {Tenant: "globex", Role: RoleViewer}}, 0},
		{"string", `{"permissions":"acme:operator globex:viewer"}`, []Grant{{Tenant: "acme", Role: RoleOperator}, {Tenant: "globex", Role: RoleViewer}}, 0},
		{"admin", `{"permissions":["*:admin"]}`, []Grant{{Tenant: AllTenants, Role: RoleAdmin}}, 0},
		{"star needs admin", `{"permissions":["*:operator"]}`, nil, 1},
		{"tenant admin", `{"permissions":["acme:admin"]}`, []Grant{{Tenant: "acme", Role: RoleAdmin}}, 0},
		{"role case", `{"permissions":["acme:Operator"]}`, []Grant{{Tenant: "acme", Role: RoleOperator}}, 0},
		{"unknown role ignored", `{"permissions":["acme:read","acme:viewer"]}`, []Grant{{Tenant: "acme", Role: RoleViewer}}, 1},
		{"bad tenant ignored", `{"permissions":["Acme!:viewer","../x:viewer",":viewer"]}`, nil, 3},
		{"no colon", `{"permissions":["operator"]}`, nil, 1},
		{"dedup", `{"permissions":["acme:viewer","acme:viewer"]}`, []Grant{{Tenant: "acme", Role: RoleViewer}}, 0},
		{"wrong type", `{"permissions":42}`, nil, 0},
		{"mixed list", `{"permissions":["acme:viewer", 3, null, {"a":1}]}`, []Grant{{Tenant: "acme", Role: RoleViewer}}, 0},
		{"grey claims", `{"grey_tenant_id":"acme","grey_roles":["operator","worker"]}`, []Grant{{Tenant: "acme", Role: RoleOperator}, {Tenant: "acme", Role: RoleWorker}}, 0},
		{"grey claims string roles", `{"grey_tenant_id":"acme","grey_roles":"viewer"}`, []Grant{{Tenant: "acme", Role: RoleViewer}}, 0},
		{"grey claims star is not admin", `{"grey_tenant_id":"*","grey_roles":["viewer"]}`, nil, 1},
		{"grey claims tenant list refused", `{"grey_tenant_id":["acme","globex"],"grey_roles":["viewer"]}`, nil, 1},
		{"nothing", `{"sub":"x"}`, nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ignored := r.Grants(claimsOf(t, tc.claims))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("grants = %+v, want %+v", got, tc.want)
			}
			if len(ignored) != tc.ignored {
				t.Errorf("ignored = %q, want %d entries", ignored, tc.ignored)
			}
		})
	}
}

func TestGrantsSourcesOff(t *testing.T) {
	r := ClaimRules{Permissions: "-", Tenant: "", Roles: "grey_roles"}
	got, _ := r.Grants(claimsOf(t, `{"permissions":["*:admin"],"grey_tenant_id":"acme","grey_roles":["operator"]}`))
	if len(got) != 0 {
		t.Fatalf("sources turned off still granted %+v", got)
	}
}

func TestGrantsFromBindings(t *testing.T) {
	r := ClaimRules{Bindings: []Binding{
		{Value: "acme-operators", Tenant: "acme", Role: RoleOperator},
		{Value: "acme-work*", Tenant: "acme", Role: RoleWorker, Kinds: []string{"wasm"}},
		{Value: "acme-workers-http", Tenant: "acme", Role: RoleWorker, Kinds: []string{"http"}},
		{Claim: "department", Value: "ops", Tenant: AllTenants, Role: RoleAdmin},
		{Value: "Globex Viewers", Tenant: "globex", Role: RoleViewer},
	}}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		claims string
		want   []Grant
	}{
		{`{"groups":["acme-operators"]}`, []Grant{{Tenant: "acme", Role: RoleOperator}}},
		{`{"groups":["acme-workers-http"]}`, []Grant{{Tenant: "acme", Role: RoleWorker, Kinds: []string{"wasm", "http"}}}},
		{`{"groups":"acme-operators"}`, []Grant{{Tenant: "acme", Role: RoleOperator}}},
		{`{"groups":["Globex Viewers"]}`, []Grant{{Tenant: "globex", Role: RoleViewer}}},
		{`{"groups":["acme-operators-not"]}`, nil},
		{`{"groups":["ACME-OPERATORS"]}`, nil},
		{`{"department":"ops"}`, []Grant{{Tenant: AllTenants, Role: RoleAdmin}}},
		{`{"department":["dev","ops"]}`, []Grant{{Tenant: AllTenants, Role: RoleAdmin}}},
		{`{"groups":["ops"]}`, nil},
	}
	for _, tc := range cases {
		got, _ := r.Grants(claimsOf(t, tc.claims))
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: grants = %+v, want %+v", tc.claims, got, tc.want)
		}
	}
}

func TestBindingsWorkerKindsMerge(t *testing.T) {
	// a worker grant for all kinds absorbs one limited to some kinds
	r := ClaimRules{Permissions: "permissions", Bindings: []Binding{{Value: "w", Tenant: "acme", Role: RoleWorker, Kinds: []string{"wasm"}}}}
	got, _ := r.Grants(claimsOf(t, `{"permissions":["acme:worker"],"groups":["w"]}`))
	if want := []Grant{{Tenant: "acme", Role: RoleWorker}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("grants = %+v, want %+v", got, want)
	}
}

func TestClaimRulesValidate(t *testing.T) {
	for _, b := range []Binding{
		{Value: "x", Tenant: "acme", Role: "root"},
		{Value: "x", Tenant: AllTenants, Role: RoleViewer},
		{Value: "x", Tenant: "Acme", Role: RoleViewer},
		{Value: "x", Tenant: "acme", Role: RoleViewer, Kinds: []string{"wasm"}},
		{Value: "", Tenant: "acme", Role: RoleViewer},
		{Value: "[", Tenant: "acme", Role: RoleViewer},
	} {
		if err := (ClaimRules{Bindings: []Binding{b}}).Validate(); err == nil {
			t.Errorf("binding %+v accepted", b)
		}
	}
}

func TestPrincipalFromClaims(t *testing.T) {
	exp := time.Unix(1800000000, 0)
	p := DefaultClaimRules().Principal("oidc:iss#sub", MethodOIDC, claimsOf(t, `{"preferred_username":"Alice Acme","permissions":["acme:operator"]}`), exp)
	if p.Name != "Alice Acme" || p.Subject != "oidc:iss#sub" || p.Method != MethodOIDC || !p.Expires.Equal(exp) {
		t.Fatalf("principal = %+v", p)
	}
	if want := []Grant{{Tenant: "acme", Role: RoleOperator}}; !reflect.DeepEqual(p.Grants, want) {
		t.Fatalf("grants = %+v", p.Grants)
	}
	p = DefaultClaimRules().Principal("s", MethodOIDC, claimsOf(t, `{}`), time.Time{})
	if p.Grants == nil || len(p.Grants) != 0 {
		t.Fatalf("no grants should be an empty list, got %#v", p.Grants)
	}
	long := strings.Repeat("é", 300)
	p = DefaultClaimRules().Principal("s", MethodOIDC, map[string]any{"preferred_username": long}, time.Time{})
	if len(p.Name) > 256 || !strings.HasPrefix(long, p.Name) {
		t.Fatalf("name not cut on a rune boundary: %d bytes", len(p.Name))
	}
}

func TestHugeClaimBounded(t *testing.T) {
	list := make([]any, 100000)
	for i := range list {
		list[i] = "acme:viewer"
	}
	got, _ := DefaultClaimRules().Grants(map[string]any{"permissions": list})
	if len(got) != 1 {
		t.Fatalf("grants = %+v", got)
	}
}

// FuzzClaimMapper feeds arbitrary JSON claims to the mapper: it must never
// panic, and every grant it makes must be well formed (a valid role, a
// valid tenant or * for admin only, kinds only on worker grants).
func FuzzClaimMapper(f *testing.F) {
	for _, s := range []string{
		`{"permissions":["acme:operator","*:admin"]}`,
		`{"permissions":"acme:viewer, globex:worker"}`,
		`{"grey_tenant_id":"acme","grey_roles":["operator"]}`,
		`{"groups":["acme-operators","acme-workers"],"preferred_username":"a"}`,
		`{"permissions":[1,null,{"x":"y"},"*:viewer"]}`,
		`{"groups":"acme-operators"}`,
	} {
		f.Add(s)
	}
	r := DefaultClaimRules()
	r.Bindings = []Binding{
		{Value: "acme-operators", Tenant: "acme", Role: RoleOperator},
		{Value: "acme-work*", Tenant: "acme", Role: RoleWorker, Kinds: []string{"wasm"}},
		{Value: "admins", Tenant: AllTenants, Role: RoleAdmin},
	}
	f.Fuzz(func(t *testing.T, js string) {
		var claims map[string]any
		if json.Unmarshal([]byte(js), &claims) != nil {
			return
		}
		grants, _ := r.Grants(claims)
		for _, g := range grants {
			if !g.Role.Valid() {
				t.Fatalf("invalid role in %+v", g)
			}
			if g.Tenant == AllTenants && g.Role != RoleAdmin {
				t.Fatalf("* granted to a non-admin role: %+v", g)
			}
			if g.Tenant != AllTenants && !validTenantForTest(g.Tenant) {
				t.Fatalf("bad tenant in %+v", g)
			}
			if len(g.Kinds) > 0 && g.Role != RoleWorker {
				t.Fatalf("kinds on a non-worker grant: %+v", g)
			}
		}
		_ = r.Name(claims)
	})
}

func validTenantForTest(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || (i > 0 && (c == '-' || c == '_'))
		if !ok {
			return false
		}
	}
	return true
}

package samlauth

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/greyerr"
)

// idpMetadata is a minimal IdP descriptor with a generated certificate.
func idpMetadata(t *testing.T) []byte {
	t.Helper()
	_, cert, err := ephemeralPair("idp", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return []byte(fmt.Sprintf(`<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example.com/realms/grey">
  <IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>%s</X509Certificate></X509Data></KeyInfo></KeyDescriptor>
    <SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.com/sso"/>
  </IDPSSODescriptor>
</EntityDescriptor>`, base64.StdEncoding.EncodeToString(cert.Raw)))
}

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func newSP(t *testing.T, mod func(*Options)) (*SP, *clock) {
	t.Helper()
	clk := &clock{t: time.Now()}
	o := Options{RootURL: "https://grey.example.com", IDPMetadata: idpMetadata(t), Claims: auth.DefaultClaimRules(), Now: clk.Now, SessionTTL: time.Hour}
	if mod != nil {
		mod(&o)
	}
	sp, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return sp, clk
}

func assertion(nameID string, attrs map[string][]string) *saml.Assertion {
	a := &saml.Assertion{Subject: &saml.Subject{NameID: &saml.NameID{Value: nameID}}}
	st := saml.AttributeStatement{}
	for k, vs := range attrs {
		at := saml.Attribute{Name: k}
		for _, v := range vs {
			at.Values = append(at.Values, saml.AttributeValue{Value: v})
		}
		st.Attributes = append(st.Attributes, at)
	}
	a.AttributeStatements = []saml.AttributeStatement{st}
	return a
}

func cookieFor(t *testing.T, sp *SP, a *saml.Assertion) string {
	t.Helper()
	s, err := sp.codec.New(a)
	if err != nil {
		t.Fatal(err)
	}
	v, err := sp.codec.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func withCookie(name, v string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v1/tasks", nil)
	r.AddCookie(&http.Cookie{Name: name, Value: v})
	return r
}

func TestSessionCookieToPrincipal(t *testing.T) {
	sp, clk := newSP(t, func(o *Options) {
		o.Claims.Bindings = []auth.Binding{{Value: "acme-workers", Tenant: "acme", Role: auth.RoleWorker, Kinds: []string{"wasm"}}}
	})
	v := cookieFor(t, sp, assertion("alice", map[string][]string{
		"permissions": {"acme:operator"}, "groups": {"acme-workers"}, "preferred_username": {"Alice"},
		"unrelated": {strings.Repeat("x", 5000)},
	}))
	if strings.Contains(v, "alice") || strings.Contains(v, "acme") {
		t.Fatal("the cookie value is readable")
	}
	if len(v) > 4000 {
		t.Fatalf("cookie is %d bytes: unrelated attributes were kept", len(v))
	}
	p, err := sp.Authenticate(context.Background(), withCookie(DefaultCookieName, v))
	if err != nil {
		t.Fatal(err)
	}
	want := &auth.Principal{
		Subject: "saml:alice", Name: "Alice", Method: auth.MethodSAML,
		Grants:  []auth.Grant{{Tenant: "acme", Role: auth.RoleOperator}, {Tenant: "acme", Role: auth.RoleWorker, Kinds: []string{"wasm"}}},
		Expires: time.Unix(clk.t.Add(time.Hour).Unix(), 0),
	}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("principal %+v\nwant %+v", p, want)
	}
	// the IdP's SessionNotOnOrAfter shortens the session
	end := clk.t.Add(10 * time.Minute)
	a := assertion("bob", nil)
	a.AuthnStatements = []saml.AuthnStatement{{SessionNotOnOrAfter: &end}}
	p, err = sp.Authenticate(context.Background(), withCookie(DefaultCookieName, cookieFor(t, sp, a)))
	if err != nil || p.Expires.Unix() != end.Unix() || p.Name != "bob" || len(p.Grants) != 0 {
		t.Fatalf("principal %+v, %v", p, err)
	}
}

func TestSessionCookieRefused(t *testing.T) {
	sp, clk := newSP(t, nil)
	other, _ := newSP(t, nil) // another session key
	good := cookieFor(t, sp, assertion("alice", map[string][]string{"permissions": {"acme:viewer"}}))
	parts := strings.Split(good, ".")
	ct := []byte(parts[3])
	ct[len(ct)/2] ^= 1
	tampered := strings.Join([]string{parts[0], parts[1], parts[2], string(ct), parts[4]}, ".")
	cases := map[string]string{
		"tampered":     tampered,
		"another key":  cookieFor(t, other, assertion("alice", map[string][]string{"permissions": {"*:admin"}})),
		"garbage":      "not-a-session",
		"alg none JWT": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.",
		"too long":     strings.Repeat("a", 9000),
		"no name id":   "",
	}
	for name, v := range cases {
		if v == "" {
			if _, err := sp.codec.New(assertion("", nil)); err == nil {
				t.Errorf("%s: an assertion without NameID made a session", name)
			}
			continue
		}
		p, err := sp.Authenticate(context.Background(), withCookie(DefaultCookieName, v))
		if err == nil || greyerr.CodeOf(err) != greyerr.Unauthenticated || errors.Is(err, auth.ErrNoCredentials) {
			t.Errorf("%s: principal %+v, err %v; want unauthenticated", name, p, err)
		}
	}
	clk.t = clk.t.Add(time.Hour + time.Second)
	_, err := sp.Authenticate(context.Background(), withCookie(DefaultCookieName, good))
	if greyerr.CodeOf(err) != greyerr.Unauthenticated || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired session: %v", err)
	}
}

func TestNoSessionCookie(t *testing.T) {
	sp, _ := newSP(t, nil)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer x")
	r.AddCookie(&http.Cookie{Name: "other", Value: "x"})
	if _, err := sp.Authenticate(context.Background(), r); !errors.Is(err, auth.ErrNoCredentials) {
		t.Fatalf("err = %v, want ErrNoCredentials", err)
	}
	if sp.Name() != "saml" || sp.EntityID() != "https://grey.example.com"+MetadataPath {
		t.Fatalf("name %q entity %q", sp.Name(), sp.EntityID())
	}
}

func TestRoutes(t *testing.T) {
	sp, _ := newSP(t, nil)
	h := sp.Handler()
	// metadata names the ACS
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, MetadataPath, nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "https://grey.example.com"+ACSPath) {
		t.Fatalf("metadata: %d %.300s", rec.Code, rec.Body.String())
	}
	// login without a session redirects to the IdP and sets a tracking cookie
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, LoginPath+"?return_to=/ui", nil))
	if rec.Code != http.StatusFound || !strings.HasPrefix(rec.Header().Get("Location"), "https://idp.example.com/sso?SAMLRequest=") {
		t.Fatalf("login: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	// login with a session goes to return_to, never off-site
	v := cookieFor(t, sp, assertion("alice", nil))
	for to, want := range map[string]string{"/ui": "/ui", "//evil.example.com": "/", "https://evil.example.com": "/", "/\\evil": "/"} {
		rec = httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, LoginPath+"?return_to="+to, nil)
		r.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: v})
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusFound || rec.Header().Get("Location") != want {
			t.Errorf("return_to %q: %d %q, want %q", to, rec.Code, rec.Header().Get("Location"), want)
		}
	}
	// an ACS post of garbage is refused
	rec = httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, ACSPath, strings.NewReader("SAMLResponse=PHg%2B"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("garbage ACS post: %d", rec.Code)
	}
}

func TestOptionsRefused(t *testing.T) {
	md := idpMetadata(t)
	for name, o := range map[string]Options{
		"no root":          {IDPMetadata: md},
		"relative root":    {RootURL: "/grey", IDPMetadata: md},
		"no metadata":      {RootURL: "https://grey.example.com"},
		"bad metadata":     {RootURL: "https://grey.example.com", IDPMetadata: []byte("<x/>")},
		"short key":        {RootURL: "https://grey.example.com", IDPMetadata: md, SessionKey: []byte("short")},
		"key without cert": {RootURL: "https://grey.example.com", IDPMetadata: md, Key: mustKey(t)},
		"bad binding":      {RootURL: "https://grey.example.com", IDPMetadata: md, Claims: auth.ClaimRules{Bindings: []auth.Binding{{Value: "x", Tenant: "*", Role: auth.RoleWorker}}}},
	} {
		if _, err := New(context.Background(), o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestLoadSessionKey(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw")
	hexf := filepath.Join(dir, "hex")
	bad := filepath.Join(dir, "bad")
	_ = os.WriteFile(raw, []byte("0123456789abcdef0123456789abcdef"), 0o600)
	_ = os.WriteFile(hexf, []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	_ = os.WriteFile(bad, []byte("too short"), 0o600)
	if k, err := LoadSessionKey(raw); err != nil || len(k) != 32 {
		t.Fatalf("raw: %v", err)
	}
	if k, err := LoadSessionKey(hexf); err != nil || len(k) != 32 || k[0] != 0xab {
		t.Fatalf("hex: %x %v", k, err)
	}
	if _, err := LoadSessionKey(bad); err == nil {
		t.Fatal("bad key accepted")
	}
}

func mustKey(t *testing.T) *rsa.PrivateKey {
	k, _, err := ephemeralPair("x", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return k.(*rsa.PrivateKey)
}

// FuzzSessionCookie feeds arbitrary cookie values to the authenticator:
// never a panic, never a principal from anything but a cookie it made.
func FuzzSessionCookie(f *testing.F) {
	f.Add("eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("a.b.c.d.e")
	f.Add("")
	sp, err := New(context.Background(), Options{RootURL: "https://grey.example.com", IDPMetadata: fuzzMetadata(f), Claims: auth.DefaultClaimRules()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if strings.ContainsAny(v, "\x00;\r\n \"\\,") {
			return
		}
		p, err := sp.Authenticate(context.Background(), withCookie(DefaultCookieName, v))
		if err == nil {
			t.Fatalf("principal %+v from a forged cookie %q", p, v)
		}
	})
}

func fuzzMetadata(f *testing.F) []byte {
	_, cert, err := ephemeralPair("idp", time.Now())
	if err != nil {
		f.Fatal(err)
	}
	return []byte(fmt.Sprintf(`<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example.com/realms/grey"><IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>%s</X509Certificate></X509Data></KeyInfo></KeyDescriptor><SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.com/sso"/></IDPSSODescriptor></EntityDescriptor>`, base64.StdEncoding.EncodeToString(cert.Raw)))
}

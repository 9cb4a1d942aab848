package samlauth

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/internal/testenv"
)

// The SAML acceptance test signs in through the Keycloak of
// scripts/services.sh (client grey-saml of scripts/keycloak/grey-realm.json)
// as a browser would: a cookie jar, the login form, the auto-posted
// response.

var (
	loginFormRe = regexp.MustCompile(`(?s)<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"`)
	postFormRe  = regexp.MustCompile(`(?s)<form[^>]*action="([^"]+)"`)
	hiddenRe    = regexp.MustCompile(`name="(SAMLResponse|RelayState)"\s+value="([^"]*)"`)
)

// spServer is an https test server whose handler can be swapped between
// service providers sharing its URL.
type spServer struct {
	srv *httptest.Server
	sp  atomic.Pointer[SP]
}

func newSPServer(t *testing.T) *spServer {
	s := &spServer{}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sp := s.sp.Load()
		if strings.HasPrefix(r.URL.Path, PathPrefix) {
			sp.Handler().ServeHTTP(w, r)
			return
		}
		if r.URL.Path == "/whoami" {
			p, err := sp.Authenticate(r.Context(), r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusUnauthorized)
				return
			}
			_ = json.NewEncoder(w).Encode(p)
			return
		}
		http.NotFound(w, r)
	}))
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	return s
}

// newBrowser is a client of the test server (trusting its certificate)
// with its own cookie jar; httptest's Client is shared, so it is copied.
func newBrowser(s *spServer, jar http.CookieJar) *http.Client {
	c := *s.srv.Client()
	c.Jar = jar
	return &c
}

// lastLog is the last line an SP of these tests logged.
var lastLog atomic.Value

// refusedFor asserts a 403 from the ACS whose logged reason contains why.
func refusedFor(t *testing.T, resp *http.Response, body, why string) {
	t.Helper()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("ACS accepted (%s %s); want a refusal for %q", resp.Status, body, why)
	}
	if l, _ := lastLog.Load().(string); !strings.Contains(l, why) {
		t.Fatalf("refused, but the reason logged is %q, want %q", l, why)
	}
}

func keycloakSP(t *testing.T, root, entityID string, key crypto.Signer, cert *x509.Certificate) *SP {
	t.Helper()
	kc := testenv.ServiceURL(t, "keycloak")
	sp, err := New(context.Background(), Options{
		RootURL: root, EntityID: entityID, Key: key, Certificate: cert,
		IDPMetadataURL: strings.TrimRight(kc, "/") + "/realms/" + testenv.KeycloakRealm + "/protocol/saml/descriptor",
		Claims:         auth.DefaultClaimRules(),
		Log:            slog.New(slog.NewTextHandler(testLog{t, &lastLog}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// testLog writes log lines to the test log and keeps the last one.
type testLog struct {
	t    *testing.T
	last *atomic.Value
}

func (l testLog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(b)))
	l.last.Store(string(b))
	return len(b), nil
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestKeycloakSAMLLogin(t *testing.T) {
	s := newSPServer(t)
	sp := keycloakSP(t, s.srv.URL, "grey-saml", nil, nil)
	s.sp.Store(sp)

	jar, _ := cookiejar.New(nil)
	browser := newBrowser(s, jar)

	// 1. Grey's login route sends the browser to Keycloak's login form
	resp, err := browser.Get(s.srv.URL + LoginPath + "?return_to=/whoami")
	if err != nil {
		t.Fatal(err)
	}
	page := readBody(t, resp)
	m := loginFormRe.FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("no Keycloak login form (%s): %.500s", resp.Status, page)
	}
	// 2. the user signs in; Keycloak answers with a form posting the
	// SAMLResponse to Grey's ACS
	resp, err = browser.PostForm(html.UnescapeString(m[1]), url.Values{"username": {"alice"}, "password": {"alice-password"}, "credentialId": {""}})
	if err != nil {
		t.Fatal(err)
	}
	page = readBody(t, resp)
	fm := postFormRe.FindStringSubmatch(page)
	fields := map[string]string{}
	for _, h := range hiddenRe.FindAllStringSubmatch(page, -1) {
		fields[h[1]] = html.UnescapeString(h[2])
	}
	if fm == nil || fields["SAMLResponse"] == "" {
		t.Fatalf("no SAML POST form from Keycloak (%s): %.800s", resp.Status, page)
	}
	acs := html.UnescapeString(fm[1])
	if acs != s.srv.URL+ACSPath {
		t.Fatalf("Keycloak posts to %s, want %s", acs, s.srv.URL+ACSPath)
	}
	srvURL, _ := url.Parse(s.srv.URL)
	acsURL, _ := url.Parse(acs)
	tracking := jar.Cookies(acsURL) // the tracked-request cookie of this login
	post := func(c *http.Client, form url.Values) (*http.Response, string) {
		t.Helper()
		resp, err := c.PostForm(acs, form)
		if err != nil {
			t.Fatal(err)
		}
		return resp, readBody(t, resp)
	}
	freshBrowser := func() *http.Client {
		j, _ := cookiejar.New(nil)
		j.SetCookies(acsURL, tracking)
		return newBrowser(s, j)
	}
	form := url.Values{"SAMLResponse": {fields["SAMLResponse"]}, "RelayState": {fields["RelayState"]}}

	// 3a. another audience: an SP with another entity id (same URL, same
	// key, so only the audience differs) refuses the response
	other := keycloakSP(t, s.srv.URL, "grey-saml-other", sp.opts.Key, sp.opts.Certificate)
	s.sp.Store(other)
	resp, body := post(freshBrowser(), form)
	refusedFor(t, resp, body, "AudienceRestriction does not contain")
	s.sp.Store(sp)

	// 3b. a bad signature: the assertion changed to grant admin
	xml, err := base64.StdEncoding.DecodeString(fields["SAMLResponse"])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(xml), "acme:operator") {
		t.Fatalf("the assertion lacks the permissions attribute: %.2000s", xml)
	}
	forged := strings.Replace(string(xml), "acme:operator", "*:admin", 1)
	bad := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString([]byte(forged))}, "RelayState": {fields["RelayState"]}}
	resp, body = post(freshBrowser(), bad)
	refusedFor(t, resp, body, "Signature could not be verified")

	// 4. the genuine response opens a session (a Secure, HttpOnly, Lax
	// cookie) and sends the browser on to /whoami
	noFollow := newBrowser(s, jar)
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, body = post(noFollow, form)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("ACS: %s %s", resp.Status, body)
	}
	var set *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == DefaultCookieName {
			set = c
		}
	}
	if set == nil || !set.Secure || !set.HttpOnly || set.SameSite != http.SameSiteLaxMode || set.Path != "/" {
		t.Fatalf("session cookie %+v: want Secure, HttpOnly, SameSite=Lax, Path=/", set)
	}
	if strings.Contains(set.Value, "alice") || strings.Contains(set.Value, "acme") {
		t.Fatal("the session cookie is readable")
	}
	resp, err = browser.Get(s.srv.URL + resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	body = readBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after the ACS: %s %s", resp.Status, body)
	}
	var p auth.Principal
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("whoami: %v: %s", err, body)
	}
	want := []auth.Grant{{Tenant: "acme", Role: auth.RoleOperator}}
	if p.Subject != "saml:alice" || p.Name != "alice" || p.Method != auth.MethodSAML || !reflect.DeepEqual(p.Grants, want) {
		t.Fatalf("principal %+v", p)
	}
	var session *http.Cookie
	for _, c := range jar.Cookies(srvURL) {
		if c.Name == DefaultCookieName {
			session = c
		}
	}
	if session == nil {
		t.Fatal("no session cookie in the jar")
	}

	// 5. replayed: the same response again, even with the tracking cookie
	resp, body = post(freshBrowser(), form)
	refusedFor(t, resp, body, "assertion has already been used")
	// and from the browser that used it (its tracking cookie is gone)
	resp, body = post(browser, form)
	refusedFor(t, resp, body, "InResponseTo")

	// 6. logout ends the session
	resp, err = browser.Post(s.srv.URL+LogoutPath, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	resp, err = browser.Get(s.srv.URL + "/whoami")
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, resp); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after logout: %s %s", resp.Status, body)
	}
}

// Package console serves Grey's web console at /ui/: server-rendered
// html/template pages, one small script and one style sheet, all embedded
// in the binary. The console is a client of the API: every page reads its
// data through the API's handler, in process, with the browser's
// credential, and every button posts to a console route that calls the
// API route it stands for, so the API's route table and authorization
// middleware decide what each role sees and may do (API.Allowed hides what
// a role may not use; the API route refuses it again on a forged POST).
package console

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/greyerr"
)

// Prefix is the path the console is served under.
const Prefix = "/ui/"

// Cookie names. The credential cookie holds the API key or bearer token
// given at sign-in; the session cookie is a random value the CSRF tokens
// of forms are bound to. Both are HttpOnly, SameSite=Strict, path /ui/,
// and Secure when the request came over TLS (or Options.Secure).
const (
	CredentialCookie = "grey_ui_credential"
	SessionCookie    = "grey_ui_session"
)

// API is what the console needs of the API server (*api.Server): its
// handler, and its authorization check for a route of its table.
type API interface {
	http.Handler
	// Allowed authenticates r and reports whether its principal may call
	// the route method+pattern, as the route's middleware would.
	Allowed(r *http.Request, method, pattern string) (*auth.Principal, error)
}

// SSOLink is a browser sign-in flow of an identity driver (SAML), shown
// on the sign-in page; the console appends return_to.
type SSOLink struct {
	// Name is the button's text.
	Name string
	// URL is the driver's login path.
	URL string
}

// Options configure the console.
type Options struct {
	// API is the API server the console calls (required).
	API API
	// SSO lists the browser sign-in flows of the configured identity
	// drivers (none: sign-in by API key or bearer token only).
	SSO []SSOLink
	// Secure marks cookies Secure even on plain-HTTP requests (behind a
	// TLS-terminating proxy).
	Secure bool
	// Logger receives errors the pages could not show.
	Logger *slog.Logger
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
	// CallTimeout bounds one page's API calls (default 10s).
	CallTimeout time.Duration
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Console is the web console's http.Handler.
type Console struct {
	opts    Options
	mux     *http.ServeMux
	pages   map[string]*template.Template
	csrfKey []byte
	static  http.Handler
}

// New returns the console over opts.API.
func New(opts Options) (*Console, error) {
	if opts.API == nil {
		return nil, greyerr.New(greyerr.Internal, "console: no API")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = 10 * time.Second
	}
	c := &Console{opts: opts, mux: http.NewServeMux(), csrfKey: make([]byte, 32)}
	if _, err := rand.Read(c.csrfKey); err != nil {
		return nil, greyerr.Wrap(greyerr.Internal, err, "console: CSRF key")
	}
	if err := c.parseTemplates(); err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, greyerr.Wrap(greyerr.Internal, err, "console: static files")
	}
	c.static = http.StripPrefix(Prefix+"static/", http.FileServerFS(sub))
	c.routes()
	return c, nil
}

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	c.mux.ServeHTTP(w, r)
}

func (c *Console) routes() {
	m := c.mux
	m.HandleFunc("GET /ui", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
	})
	m.Handle("GET /ui/static/", c.staticFiles())
	m.HandleFunc("GET /ui/signin", c.signinPage)
	m.HandleFunc("POST /ui/signin", c.signin)
	m.HandleFunc("POST /ui/signout", c.signout)
	m.HandleFunc("GET /ui/{$}", c.page(c.overview))
	m.HandleFunc("GET /ui/live/overview", c.live(c.overviewLive))
	m.HandleFunc("GET /ui/tasks", c.page(c.tasks))
	m.HandleFunc("POST /ui/tasks", c.post(c.submit))
	m.HandleFunc("GET /ui/tasks/{id}", c.page(c.taskPage))
	m.HandleFunc("GET /ui/live/tasks/{id}", c.live(c.taskLive))
	m.HandleFunc("GET /ui/tasks/{id}/pipeline", c.page(c.pipeline))
	m.HandleFunc("POST /ui/tasks/{id}/cancel", c.post(c.cancel))
	m.HandleFunc("POST /ui/tasks/{id}/retry", c.post(c.retry))
	m.HandleFunc("POST /ui/tasks/{id}/replay", c.post(c.replay))
	m.HandleFunc("GET /ui/tenants", c.page(c.tenants))
	m.HandleFunc("GET /ui/tenants/{id}", c.page(c.tenantPage))
	m.HandleFunc("GET /ui/cluster", c.page(c.clusterPage))
	m.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "404 page not found", http.StatusNotFound)
	})
}

func (c *Console) staticFiles() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Assets are named without a version: revalidate (ETag from
		// the embedded file's modification time is absent, so short
		// caching keeps a new binary's assets from being hidden long).
		w.Header().Set("Cache-Control", "public, max-age=300")
		c.static.ServeHTTP(w, r)
	})
}

// session is what one browser request acts as: the headers the in-process
// API calls carry, and the tenant chosen.
type session struct {
	// header holds Authorization (from the credential cookie or the
	// request), Cookie (for cookie-based drivers: SAML) and X-Grey-Tenant.
	header     http.Header
	remoteAddr string
	tls        bool
	// tenant is the tenant asked for ("" = the principal's default).
	tenant string
	// sid is the CSRF session value.
	sid string
	// principal is set by whoami.
	principal *auth.Principal
}

func (c *Console) newSession(w http.ResponseWriter, r *http.Request) *session {
	s := &session{header: http.Header{}, remoteAddr: r.RemoteAddr, tls: r.TLS != nil}
	if a := r.Header.Get("Authorization"); a != "" {
		s.header.Set("Authorization", a)
	} else if ck, err := r.Cookie(CredentialCookie); err == nil && ck.Value != "" {
		s.header.Set("Authorization", "Bearer "+ck.Value)
	}
	var others []string
	for _, ck := range r.Cookies() {
		if ck.Name != CredentialCookie && ck.Name != SessionCookie {
			others = append(others, ck.String())
		}
	}
	if len(others) > 0 {
		s.header.Set("Cookie", strings.Join(others, "; "))
	}
	if t := r.FormValue("tenant"); t != "" {
		s.tenant = t
		s.header.Set(auth.TenantHeader, t)
	}
	if ck, err := r.Cookie(SessionCookie); err == nil && len(ck.Value) == 32 {
		s.sid = ck.Value
	} else if w != nil {
		var b [16]byte
		_, _ = rand.Read(b[:])
		s.sid = hex.EncodeToString(b[:])
		http.SetCookie(w, c.cookie(r, SessionCookie, s.sid, 0))
	}
	return s
}

func (c *Console) cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: Prefix, MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil || c.opts.Secure}
}

// csrf is the form token of the session: an HMAC of its random value.
func (c *Console) csrf(s *session) string {
	m := hmac.New(sha256.New, c.csrfKey)
	m.Write([]byte("grey-console-csrf\x00" + s.sid))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (c *Console) csrfOK(r *http.Request, s *session) bool {
	if s.sid == "" {
		return false
	}
	got := r.PostFormValue("csrf")
	return got != "" && hmac.Equal([]byte(got), []byte(c.csrf(s)))
}

// apiRequest is a request to the API as the session (for Allowed).
func (s *session) apiRequest(ctx context.Context, method, path string) *http.Request {
	r, _ := http.NewRequestWithContext(ctx, method, "http://console.invalid"+path, nil)
	r.Header = s.header.Clone()
	r.RemoteAddr = s.remoteAddr
	return r
}

// can reports whether the session's principal may call the API route.
func (c *Console) can(ctx context.Context, s *session, method, pattern string) bool {
	_, err := c.opts.API.Allowed(s.apiRequest(ctx, method, pattern), method, pattern)
	return err == nil
}

// whoami authenticates the session as the API would (cluster.read comes
// with any grant).
func (c *Console) whoami(ctx context.Context, s *session) error {
	p, err := c.opts.API.Allowed(s.apiRequest(ctx, http.MethodGet, "/api/v1/cluster"), http.MethodGet, "/api/v1/cluster")
	if p != nil {
		s.principal = p
	}
	return err
}

// client returns a Go API client whose calls run in process through the
// API's handler as the session.
func (c *Console) client(s *session) *client.Client {
	opts := []client.Option{client.WithHTTPClient(&http.Client{Transport: inproc{h: c.opts.API, s: s}})}
	if s.tenant != "" {
		opts = append(opts, client.WithTenant(s.tenant))
	}
	cl, err := client.New("http://console.invalid", opts...)
	if err != nil {
		// Only an invalid tenant gets here: fall back to no tenant, and
		// the API refuses the header the session still carries.
		cl, _ = client.New("http://console.invalid", client.WithHTTPClient(&http.Client{Transport: inproc{h: c.opts.API, s: s}}))
	}
	return cl
}

// inproc is an http.RoundTripper serving requests with the API handler in
// this process, adding the session's credential headers.
type inproc struct {
	h http.Handler
	s *session
}

func (t inproc) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	for k, v := range t.s.header {
		if k == auth.TenantHeader && r.Header.Get(k) != "" {
			continue
		}
		r.Header[k] = v
	}
	r.RemoteAddr = t.s.remoteAddr
	r.RequestURI = r.URL.RequestURI()
	if r.Body == nil {
		r.Body = http.NoBody
	}
	rec := &recorder{header: http.Header{}}
	t.h.ServeHTTP(rec, r)
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	return &http.Response{
		Status: http.StatusText(rec.code), StatusCode: rec.code, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: rec.header, Body: io.NopCloser(bytes.NewReader(rec.body.Bytes())), ContentLength: int64(rec.body.Len()),
		Request: req,
	}, nil
}

// recorder is an in-memory http.ResponseWriter.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}
func (r *recorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(p)
}
func (r *recorder) Flush() {}

// signinURL is the sign-in page returning to r's page.
func signinURL(r *http.Request) string {
	return Prefix + "signin?next=" + url.QueryEscape(r.URL.RequestURI())
}

// safeNext keeps a post-sign-in redirect inside the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix
	}
	return next
}

// errUnauthenticated reports whether err asks for a credential.
func errUnauthenticated(err error) bool {
	return greyerr.CodeOf(err) == greyerr.Unauthenticated
}

var errBadCSRF = errors.New("the form's CSRF token is missing or wrong: reload the page and try again")

package console

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/greyerr"
)

// pageFunc builds one page: the template to render and its data.
type pageFunc func(ctx context.Context, r *http.Request, s *session) (string, any, error)

// postFunc acts on a form: where to go next, or a page to render.
type postFunc func(ctx context.Context, r *http.Request, s *session) (redirect string, tmpl string, data any, err error)

// navItem is one link of the navigation bar.
type navItem struct {
	Href, Label string
	Current     bool
}

// view is what every page template receives.
type view struct {
	Title     string
	Nav       []navItem
	Principal *auth.Principal
	// Admin is a principal on every tenant (tenant filter, tenants pages).
	Admin bool
	// Tenant is the session's tenant ("" = the default), TenantChoices
	// the tenants a multi-tenant principal may choose among.
	Tenant        string
	TenantChoices []string
	CSRF          string
	// SignOut is shown when the credential came from the sign-in cookie.
	SignOut bool
	Error   string
	Data    any
}

func (c *Console) nav(ctx context.Context, r *http.Request, s *session) []navItem {
	items := []navItem{{Href: Prefix, Label: "Overview"}}
	if c.can(ctx, s, http.MethodGet, "/api/v1/tasks") {
		items = append(items, navItem{Href: Prefix + "tasks", Label: "Tasks"})
	}
	if c.can(ctx, s, http.MethodGet, "/api/v1/tenants") || c.can(ctx, s, http.MethodGet, "/api/v1/apikeys") {
		items = append(items, navItem{Href: Prefix + "tenants", Label: "Tenants"})
	}
	items = append(items, navItem{Href: Prefix + "cluster", Label: "Cluster"})
	for i := range items {
		p := r.URL.Path
		items[i].Current = p == items[i].Href || items[i].Href != Prefix && strings.HasPrefix(p, items[i].Href)
	}
	return items
}

func (c *Console) newView(ctx context.Context, r *http.Request, s *session, title string) *view {
	v := &view{Title: title, Principal: s.principal, Tenant: s.tenant, CSRF: c.csrf(s), Nav: c.nav(ctx, r, s)}
	if s.principal != nil {
		v.Admin = s.principal.AllTenantsGrant()
		if ts := s.principal.Tenants(); !v.Admin && len(ts) > 1 {
			v.TenantChoices = ts
		}
	}
	_, err := r.Cookie(CredentialCookie)
	v.SignOut = err == nil
	return v
}

// page wraps a page builder: session, authentication (to the sign-in page
// when the API asks for a credential), rendering.
func (c *Console) page(fn pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), c.opts.CallTimeout)
		defer cancel()
		s := c.newSession(w, r)
		if err := c.whoami(ctx, s); err != nil {
			if errUnauthenticated(err) {
				http.Redirect(w, r, signinURL(r), http.StatusSeeOther)
				return
			}
			c.renderError(w, r, s, err)
			return
		}
		tmpl, data, err := fn(ctx, r, s)
		if to, ok := isRedirect(err); ok {
			http.Redirect(w, r, to, http.StatusSeeOther)
			return
		}
		if err != nil {
			c.renderError(w, r, s, err)
			return
		}
		c.render(w, r, s, http.StatusOK, tmpl, data)
	}
}

// post wraps a form action: the CSRF token first, then as page.
func (c *Console) post(fn postFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), c.opts.CallTimeout)
		defer cancel()
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form: "+err.Error(), http.StatusBadRequest)
			return
		}
		s := c.newSession(nil, r)
		if !c.csrfOK(r, s) {
			http.Error(w, errBadCSRF.Error(), http.StatusForbidden)
			return
		}
		if err := c.whoami(ctx, s); err != nil {
			if errUnauthenticated(err) {
				http.Redirect(w, r, signinURL(r), http.StatusSeeOther)
				return
			}
			c.renderError(w, r, s, err)
			return
		}
		to, tmpl, data, err := fn(ctx, r, s)
		if err != nil {
			c.renderError(w, r, s, err)
			return
		}
		if to != "" {
			http.Redirect(w, r, to, http.StatusSeeOther)
			return
		}
		c.render(w, r, s, http.StatusOK, tmpl, data)
	}
}

// live serves a fragment polled by the script, with an ETag of its bytes:
// an unchanged fragment is 304 with no body.
func (c *Console) live(fn pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), c.opts.CallTimeout)
		defer cancel()
		s := c.newSession(nil, r)
		if err := c.whoami(ctx, s); err != nil {
			http.Error(w, err.Error(), greyerr.HTTPStatus(greyerr.CodeOf(err)))
			return
		}
		tmpl, data, err := fn(ctx, r, s)
		if err != nil {
			http.Error(w, err.Error(), greyerr.HTTPStatus(greyerr.CodeOf(err)))
			return
		}
		var buf bytes.Buffer
		v := c.newView(ctx, r, s, "")
		v.Data = data
		if err := c.pages[tmpl].ExecuteTemplate(&buf, "fragment", v); err != nil {
			c.opts.Logger.Error("console: render fragment", "template", tmpl, "err", err)
			http.Error(w, "render error", http.StatusInternalServerError)
			return
		}
		sum := sha256.Sum256(buf.Bytes())
		etag := `"` + hex.EncodeToString(sum[:12]) + `"`
		w.Header().Set("ETag", etag)
		w.Header().Set("Cache-Control", "no-cache")
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(buf.Bytes())
	}
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, s *session, status int, tmpl string, data any) {
	v, ok := data.(*view)
	if !ok {
		v = c.newView(r.Context(), r, s, "")
		v.Data = data
	}
	var buf bytes.Buffer
	t := c.pages[tmpl]
	if t == nil {
		c.opts.Logger.Error("console: no template", "template", tmpl)
		http.Error(w, "no template "+tmpl, http.StatusInternalServerError)
		return
	}
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		c.opts.Logger.Error("console: render", "template", tmpl, "err", err)
		http.Error(w, "render error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderError shows err on the error page with the API's status.
func (c *Console) renderError(w http.ResponseWriter, r *http.Request, s *session, err error) {
	v := c.newView(r.Context(), r, s, "Error")
	v.Error = err.Error()
	c.render(w, r, s, greyerr.HTTPStatus(greyerr.CodeOf(err)), "error", v)
}

// signinPage shows the token form and the SSO links.
func (c *Console) signinPage(w http.ResponseWriter, r *http.Request) {
	s := c.newSession(w, r)
	c.renderSignin(w, r, s, http.StatusOK, "")
}

type signinData struct {
	Next string
	SSO  []SSOLink
}

func (c *Console) renderSignin(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) {
	next := safeNext(r.FormValue("next"))
	v := &view{Title: "Sign in", CSRF: c.csrf(s), Error: msg}
	var links []SSOLink
	for _, l := range c.opts.SSO {
		links = append(links, SSOLink{Name: l.Name, URL: l.URL + "?return_to=" + urlQuery(next)})
	}
	v.Data = signinData{Next: next, SSO: links}
	c.render(w, r, s, status, "signin", v)
}

// signin checks the token through the API's authentication, then keeps it
// in the credential cookie.
func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	s := c.newSession(nil, r)
	if !c.csrfOK(r, s) {
		http.Error(w, errBadCSRF.Error(), http.StatusForbidden)
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	token = strings.TrimPrefix(token, "Bearer ")
	if token == "" || len(token) > 3500 || strings.ContainsAny(token, " \t\r\n;,\"\\") {
		c.renderSignin(w, r, s, http.StatusBadRequest, "Paste an API key (grey_…) or a bearer token.")
		return
	}
	s.header.Set("Authorization", "Bearer "+token)
	ctx, cancel := context.WithTimeout(r.Context(), c.opts.CallTimeout)
	defer cancel()
	if err := c.whoami(ctx, s); err != nil {
		c.renderSignin(w, r, s, http.StatusUnauthorized, "Sign-in refused: "+err.Error())
		return
	}
	maxAge := 0
	if p := s.principal; p != nil && !p.Expires.IsZero() {
		maxAge = int(time.Until(p.Expires).Seconds())
		if maxAge <= 0 {
			maxAge = -1
		}
	}
	http.SetCookie(w, c.cookie(r, CredentialCookie, token, maxAge))
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

// signout forgets the credential cookie.
func (c *Console) signout(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	s := c.newSession(nil, r)
	if !c.csrfOK(r, s) {
		http.Error(w, errBadCSRF.Error(), http.StatusForbidden)
		return
	}
	http.SetCookie(w, c.cookie(r, CredentialCookie, "", -1))
	http.Redirect(w, r, Prefix+"signin", http.StatusSeeOther)
}

func urlQuery(s string) string { return url.QueryEscape(s) }

// tenantQuery is "?tenant=T" for links keeping the session's tenant.
func tenantQuery(s *session, sep string) string {
	if s.tenant == "" {
		return ""
	}
	return fmt.Sprintf("%stenant=%s", sep, url.QueryEscape(s.tenant))
}

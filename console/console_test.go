package console_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/tenant"
)

// In mode none every page renders for the anonymous developer, with data
// from the API: the submitted task is listed, found by id and shown.
func TestPagesModeNone(t *testing.T) {
	t.Parallel()
	g := startGreyd(t)
	ctx := context.Background()
	c := g.client(t, "acme", "")
	done, err := c.Submit(ctx, task.Spec{Kind: "echo", Payload: json.RawMessage(`{"image":{"format":"png","width":640},"big":"` + strings.Repeat("x", 500) + `"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, done.ID); err != nil {
		t.Fatal(err)
	}
	b := g.browser(t)
	for path, wants := range map[string][]string{
		"/ui/":                                  {"Overview", "Queues by tenant and kind", "acme", "echo"},
		"/ui/tasks?tenant=acme":                 {done.ID, "Submit a task"},
		"/ui/tasks/" + done.ID + "?tenant=acme": {"completed", "Attempts", "attempt 1", "Payload", "<details", "500 chars", "grey-task-id"},
		"/ui/tasks/" + done.ID + "/pipeline?tenant=acme": {"depends_on graph", "<svg"},
		"/ui/tenants":      {"acme", "Weight", "cost per tenant"},
		"/ui/tenants/acme": {"Quota", "API keys", "Last 24 hours"},
		"/ui/cluster":      {"Raft", "Commit index", "leader"},
	} {
		code, body, resp := b.get(path)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d\n%s", path, code, body)
		}
		mustContain(t, path, body, wants...)
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Fatalf("GET %s: CSP %q", path, csp)
		}
	}
	// Search by id redirects to the task.
	code, _, resp := b.get("/ui/tasks?tenant=acme&id=" + done.ID)
	if code != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/tasks/"+done.ID+"?tenant=acme" {
		t.Fatalf("search by id: %d %q", code, resp.Header.Get("Location"))
	}
	// Another tenant's task is not found, as in the API.
	if code, body, _ := b.get("/ui/tasks/" + done.ID + "?tenant=other"); code != http.StatusNotFound {
		t.Fatalf("task of acme as other: %d\n%s", code, body)
	}
	// Static assets are embedded.
	for _, p := range []string{"/ui/static/console.js", "/ui/static/console.css"} {
		if code, body, _ := b.get(p); code != http.StatusOK || len(body) < 100 {
			t.Fatalf("GET %s: %d, %d bytes", p, code, len(body))
		}
	}
	// The API is still served beside the console.
	if code, _, _ := b.get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d", code)
	}
}

// Every bad filter is refused on the page, naming the field; the payload
// filter keeps only matching tasks.
func TestTaskFilters(t *testing.T) {
	t.Parallel()
	g := startGreyd(t, func(cfg *config.Config) { cfg.Worker.Enabled = false })
	ctx := context.Background()
	c := g.client(t, "acme", "")
	var png, jpg *task.Task
	var err error
	if png, err = c.Submit(ctx, task.Spec{Kind: "echo", Payload: json.RawMessage(`{"image":{"format":"png"},"n":1}`), Constraints: &task.Constraints{Labels: map[string]string{"gpu": "a100"}}}); err != nil {
		t.Fatal(err)
	}
	if jpg, err = c.Submit(ctx, task.Spec{Kind: "noop", Payload: json.RawMessage(`{"image":{"format":"jpg"},"n":2}`)}); err != nil {
		t.Fatal(err)
	}
	b := g.browser(t)
	for _, tc := range []struct {
		query      string
		want, miss []string
	}{
		{"payload=image.format%3Dpng", []string{png.ID, "1 matches among 2"}, []string{jpg.ID}},
		{"payload=n%3D2", []string{jpg.ID}, []string{png.ID}},
		{"payload=image.missing%3Dx", []string{"0 matches"}, []string{png.ID, jpg.ID}},
		{"kind=noop", []string{jpg.ID}, []string{png.ID}},
		{"label=gpu%3Da100", []string{png.ID}, []string{jpg.ID}},
		{"status=pending", []string{png.ID, jpg.ID}, nil},
		{"status=completed", []string{"No tasks match"}, []string{png.ID}},
		{"limit=1", []string{jpg.ID, "Next page"}, []string{png.ID}},
		// Bad inputs: each names its field and lists nothing.
		{"status=bogus", []string{"status", "is not a task status"}, []string{png.ID}},
		{"limit=0", []string{"limit", "must be a number from 1 to 500"}, []string{png.ID}},
		{"limit=501", []string{"must be a number from 1 to 500"}, []string{png.ID}},
		{"label=novalue", []string{"is not key=value"}, []string{png.ID}},
		{"from=yesterday", []string{"from", "is not a time"}, []string{png.ID}},
		{"to=2026-13-01", []string{"to", "is not a time"}, []string{png.ID}},
		{"payload=image.format", []string{"payload", "is not field=value"}, []string{png.ID}},
		{"id=not-a-uuid", []string{"is not a task id"}, []string{png.ID}},
		{"cursor=garbage", []string{"cursor"}, []string{png.ID}},
	} {
		code, body, _ := b.get("/ui/tasks?tenant=acme&" + tc.query)
		if code != http.StatusOK {
			t.Fatalf("%s: %d\n%s", tc.query, code, body)
		}
		mustContain(t, tc.query, body, tc.want...)
		mustNotContain(t, tc.query, body, tc.miss...)
	}
	// The next-page link carries the cursor and the filters.
	_, body, _ := b.get("/ui/tasks?tenant=acme&limit=1")
	i := strings.Index(body, `rel="next" href="`)
	if i < 0 {
		t.Fatal("no next link")
	}
	next := strings.ReplaceAll(body[i+len(`rel="next" href="`):][:strings.Index(body[i+len(`rel="next" href="`):], `"`)], "&amp;", "&")
	code, body, _ := b.get(next)
	if code != http.StatusOK {
		t.Fatalf("next page: %d", code)
	}
	mustContain(t, "page 2", body, png.ID)
	mustNotContain(t, "page 2", body, jpg.ID)
}

// With authentication: no credential goes to the sign-in page; a bad
// token is refused; a viewer sees no buttons and its forged POST is
// refused by the API route's own check; an operator cancels; forms
// without the CSRF token are refused; tenants stay apart.
func TestRolesAndCSRF(t *testing.T) {
	t.Parallel()
	g := startGreyd(t, withAPIKeys, func(cfg *config.Config) { cfg.Worker.Enabled = false })
	ctx := context.Background()
	admin := g.client(t, "acme", adminToken)
	key := func(tenant, role string) string {
		k, err := admin.CreateAPIKey(ctx, client.NewAPIKey{Tenant: tenant, Role: role, Name: role + "-" + tenant})
		if err != nil {
			t.Fatal(err)
		}
		return k.Token
	}
	if _, err := admin.CreateTenant(ctx, "globex", tenant.Quota{Weight: 3}); err != nil {
		t.Fatal(err)
	}
	viewer, operator, otherOp := key("acme", "viewer"), key("acme", "operator"), key("globex", "operator")
	tk, err := admin.Submit(ctx, task.Spec{Kind: "sleep", Payload: json.RawMessage(`{"ms":60000}`)})
	if err != nil {
		t.Fatal(err)
	}
	taskPath := "/ui/tasks/" + tk.ID

	anon := g.browser(t)
	code, _, resp := anon.get("/ui/tasks")
	if code != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/ui/signin?next=") {
		t.Fatalf("anonymous /ui/tasks: %d %q", code, resp.Header.Get("Location"))
	}
	code, body, _ := anon.post("/ui/signin", url.Values{"csrf": {anon.csrf("/ui/signin")}, "token": {"grey_bogus_token"}})
	if code != http.StatusUnauthorized {
		t.Fatalf("bad token: %d\n%s", code, body)
	}
	mustContain(t, "bad token", body, "Sign-in refused")
	if code, body, _ := anon.post("/ui/signin", url.Values{"csrf": {anon.csrf("/ui/signin")}, "token": {""}}); code != http.StatusBadRequest {
		t.Fatalf("empty token: %d\n%s", code, body)
	}
	if code, _, _ := anon.post("/ui/signin", url.Values{"token": {viewer}}); code != http.StatusForbidden {
		t.Fatalf("sign-in without CSRF: %d", code)
	}
	// An open redirect is not followed.
	code, _, resp = anon.post("/ui/signin", url.Values{"csrf": {anon.csrf("/ui/signin")}, "token": {viewer}, "next": {"//evil.example/"}})
	if code != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("next=//evil: %d %q", code, resp.Header.Get("Location"))
	}
	var cred *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "grey_ui_credential" {
			cred = ck
		}
	}
	if cred == nil || !cred.HttpOnly || cred.SameSite != http.SameSiteStrictMode || cred.Path != "/ui/" {
		t.Fatalf("credential cookie: %+v", cred)
	}

	// Viewer: reads, but no submit form and no cancel button; a forged
	// cancel (valid CSRF) is refused by the API's permission check.
	vb := anon
	code, body, _ = vb.get(taskPath)
	if code != http.StatusOK {
		t.Fatalf("viewer task page: %d\n%s", code, body)
	}
	mustNotContain(t, "viewer task page", body, `id="cancel"`)
	_, body, _ = vb.get("/ui/tasks")
	mustContain(t, "viewer tasks", body, tk.ID)
	mustNotContain(t, "viewer tasks", body, "Submit a task")
	_, body, _ = vb.get("/ui/")
	mustNotContain(t, "viewer nav", body, `href="/ui/tenants"`)
	code, body, _ = vb.post(taskPath+"/cancel", url.Values{"csrf": {vb.csrf(taskPath)}})
	if code != http.StatusForbidden {
		t.Fatalf("viewer cancel: %d\n%s", code, body)
	}
	mustContain(t, "viewer cancel", body, "task.cancel")
	code, _, _ = vb.post("/ui/tasks", url.Values{"csrf": {vb.csrf(taskPath)}, "kind": {"noop"}})
	if code != http.StatusForbidden {
		t.Fatalf("viewer submit: %d", code)
	}
	if got, _ := admin.Get(ctx, tk.ID); got.Status.Terminal() {
		t.Fatalf("the viewer's cancel changed the task: %s", got.Status)
	}

	// Another tenant's operator: the task is not found.
	ob := g.browser(t)
	ob.signIn(otherOp)
	if code, _, _ := ob.get(taskPath); code != http.StatusNotFound {
		t.Fatalf("globex operator on acme task: %d", code)
	}
	if code, _, _ := ob.post(taskPath+"/cancel", url.Values{"csrf": {ob.csrf("/ui/tasks")}}); code != http.StatusNotFound {
		t.Fatalf("globex operator cancel of acme task: %d", code)
	}

	// Operator: sees the button; without the CSRF token the POST is
	// refused; with it the task is cancelled.
	opb := g.browser(t)
	opb.signIn(operator)
	_, body, _ = opb.get(taskPath)
	mustContain(t, "operator task page", body, `id="cancel"`)
	if code, _, _ := opb.post(taskPath+"/cancel", url.Values{}); code != http.StatusForbidden {
		t.Fatalf("cancel without CSRF: %d", code)
	}
	if code, _, _ := opb.post(taskPath+"/cancel", url.Values{"csrf": {vb.csrf(taskPath)}}); code != http.StatusForbidden {
		t.Fatalf("cancel with another session's CSRF token: %d", code)
	}
	code, _, resp = opb.post(taskPath+"/cancel", url.Values{"csrf": {opb.csrf(taskPath)}})
	if code != http.StatusSeeOther || resp.Header.Get("Location") != taskPath {
		t.Fatalf("operator cancel: %d %q", code, resp.Header.Get("Location"))
	}
	greytest.Eventually(t, 5*time.Second, func() bool {
		got, err := admin.Get(ctx, tk.ID)
		return err == nil && got.Status == task.Cancelled
	})
	// Sign out forgets the credential.
	code, _, _ = opb.post("/ui/signout", url.Values{"csrf": {opb.csrf(taskPath)}})
	if code != http.StatusSeeOther {
		t.Fatalf("sign out: %d", code)
	}
	if code, _, _ := opb.get("/ui/tasks"); code != http.StatusSeeOther {
		t.Fatalf("after sign-out: %d", code)
	}
	// The admin token signs in as admin: tenants page with every tenant.
	ab := g.browser(t)
	ab.signIn(adminToken)
	_, body, _ = ab.get("/ui/tenants")
	mustContain(t, "admin tenants", body, "acme", "globex", "Weight")
	_, body, _ = ab.get("/ui/tenants/acme")
	mustContain(t, "admin tenant", body, "viewer-acme", "operator-acme")
	mustNotContain(t, "admin tenant", body, "operator-globex", viewer)
}

// The live fragments answer 304 to their own ETag while nothing changed.
func TestLiveETag(t *testing.T) {
	t.Parallel()
	g := startGreyd(t, func(cfg *config.Config) { cfg.Worker.Enabled = false })
	ctx := context.Background()
	c := g.client(t, "default", "")
	tk, err := c.Submit(ctx, task.Spec{Kind: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	b := g.browser(t)
	path := "/ui/live/tasks/" + tk.ID
	code, body, resp := b.get(path)
	etag := resp.Header.Get("ETag")
	if code != http.StatusOK || etag == "" || !strings.Contains(body, "pending") {
		t.Fatalf("live: %d %q\n%s", code, etag, body)
	}
	req, _ := http.NewRequest(http.MethodGet, g.base+path, nil)
	req.Header.Set("If-None-Match", etag)
	r2, err := b.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusNotModified {
		t.Fatalf("unchanged: %d, want 304", r2.StatusCode)
	}
	if _, err := c.Cancel(ctx, tk.ID); err != nil {
		t.Fatal(err)
	}
	r3, err := b.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r3.Body.Close()
	if r3.StatusCode != http.StatusOK || r3.Header.Get("ETag") == etag {
		t.Fatalf("changed: %d %q", r3.StatusCode, r3.Header.Get("ETag"))
	}
}

// In mode none with an admin token the anonymous visitor is an operator
// on every tenant: the pages render without the admin-only parts, and
// signing in with the token shows them.
func TestModeNoneWithAdminToken(t *testing.T) {
	t.Parallel()
	g := startGreyd(t, func(cfg *config.Config) { cfg.HTTP.AdminToken = adminToken; cfg.Worker.Enabled = false })
	b := g.browser(t)
	for _, path := range []string{"/ui/", "/ui/tasks", "/ui/tenants", "/ui/tenants/default", "/ui/cluster"} {
		code, body, _ := b.get(path)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d\n%s", path, code, body)
		}
		mustNotContain(t, path, body, "Cost since", "Last 24 hours")
	}
	_, body, _ := b.get("/ui/tasks")
	mustContain(t, "anonymous operator", body, "Submit a task")
	b.signIn(adminToken)
	_, body, _ = b.get("/ui/tenants")
	mustContain(t, "admin", body, "Cost since")
}

package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/internal/blobtest"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/server"
)

// greyd is a real greyd (server.New + Run: Raft, API, console, in-process
// workers) on loopback ports.
type greyd struct {
	srv  *server.Server
	base string
}

const adminToken = "console-test-admin-token-0123456789"

// startGreyd runs a greyd; mutate adjusts its configuration.
func startGreyd(t testing.TB, mutate ...func(*config.Config)) *greyd {
	t.Helper()
	cfg := config.Default()
	cfg.Node.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Raft.Addr = "127.0.0.1:0"
	cfg.Monitoring.Prometheus.Enabled = false
	cfg.Raft.HeartbeatTimeout = config.Duration(200 * time.Millisecond)
	cfg.Raft.ElectionTimeout = config.Duration(200 * time.Millisecond)
	cfg.Raft.LeaderLeaseTimeout = config.Duration(100 * time.Millisecond)
	cfg.Tenants.AutoCreate = true
	cfg.Tenants.Cost.Environment = "test"
	for _, m := range mutate {
		m(cfg)
	}
	s, err := server.New(cfg, greytest.Logger(t), server.WithBlobRegistry(blobtest.Registry(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	g := &greyd{srv: s, base: "http://" + s.HTTPAddr()}
	c := g.client(t, "default", adminToken)
	greytest.Eventually(t, 15*time.Second, func() bool { return c.Ready(ctx) == nil })
	return g
}

// withAPIKeys turns on authentication: API keys plus the admin token.
func withAPIKeys(cfg *config.Config) {
	cfg.Auth.Mode = config.AuthModes{config.AuthAPIKey}
	cfg.HTTP.AdminToken = adminToken
}

// client is a Go API client as tenant with token ("" none).
func (g *greyd) client(t testing.TB, tenant, token string) *client.Client {
	t.Helper()
	opts := []client.Option{client.WithTenant(tenant)}
	if token != "" {
		opts = append(opts, client.WithToken(token))
	}
	c, err := client.New(g.base, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// browser is a cookie-keeping HTTP client that does not follow redirects.
type browser struct {
	t    testing.TB
	hc   *http.Client
	base string
}

func (g *greyd) browser(t testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: g.base, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// get fetches path: status, body, response.
func (b *browser) get(path string) (int, string, *http.Response) {
	b.t.Helper()
	resp, err := b.hc.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp
}

// post submits a form to path.
func (b *browser) post(path string, form url.Values) (int, string, *http.Response) {
	b.t.Helper()
	resp, err := b.hc.PostForm(b.base+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the CSRF token of the page at path.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	_, body, _ := b.get(path)
	m := csrfRe.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("no CSRF token on %s:\n%s", path, body)
	}
	return m[1]
}

// signIn signs in with token through the sign-in form.
func (b *browser) signIn(token string) {
	b.t.Helper()
	code, body, resp := b.post("/ui/signin", url.Values{"csrf": {b.csrf("/ui/signin")}, "token": {token}, "next": {"/ui/"}})
	if code != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		b.t.Fatalf("sign-in: %d %s\n%s", code, resp.Header.Get("Location"), body)
	}
}

func mustContain(t testing.TB, what, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Fatalf("%s: %q missing from:\n%s", what, w, body)
		}
	}
}

func mustNotContain(t testing.TB, what, body string, nots ...string) {
	t.Helper()
	for _, n := range nots {
		if strings.Contains(body, n) {
			t.Fatalf("%s: %q present in:\n%s", what, n, body)
		}
	}
}

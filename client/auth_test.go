package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/grey-distributed/grey/auth/apikey"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/worker"
)

// authServer records the Authorization header of every request.
type authServer struct {
	srv   *httptest.Server
	mu    sync.Mutex
	auths []string
}

func newAuthServer(t *testing.T) *authServer {
	t.Helper()
	s := &authServer{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.auths = append(s.auths, r.Header.Get("Authorization"))
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/v1/workers/lease":
			fmt.Fprint(w, `{"tasks":[]}`)
		default:
			fmt.Fprint(w, `{"api_keys":[]}`)
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *authServer) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auths...)
}

func TestCredentials(t *testing.T) {
	t.Parallel()
	s := newAuthServer(t)
	ctx := context.Background()
	tok, _ := apikey.Generate()
	key := tok.String()

	for _, tc := range []struct {
		name string
		opts []Option
		want string
	}{
		{"none", nil, ""},
		{"static token", []Option{WithToken("tok-1")}, "Bearer tok-1"},
		{"api key", []Option{WithAPIKey(key)}, "Bearer " + key},
		{"last option wins", []Option{WithAPIKey(key), WithToken("tok-2")}, "Bearer tok-2"},
		{"token source", []Option{WithToken("x"), WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "ts-1"}))}, "Bearer ts-1"},
	} {
		c, err := New(s.srv.URL, tc.opts...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if _, err := c.ListAPIKeys(ctx, ""); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := s.seen(); got[len(got)-1] != tc.want {
			t.Errorf("%s: Authorization %q, want %q", tc.name, got[len(got)-1], tc.want)
		}
	}

	// A malformed API key is refused up front, without quoting it.
	bad := "grey_" + strings.Repeat("Z", 40)
	_, err := New(s.srv.URL, WithAPIKey(bad))
	if !greyerr.Is(err, greyerr.InvalidArgument) || strings.Contains(err.Error(), "ZZZZ") {
		t.Errorf("malformed api key: %v", err)
	}
	if _, err := New(s.srv.URL, WithToken("a\nb")); !greyerr.Is(err, greyerr.InvalidArgument) {
		t.Errorf("token with a line break: %v", err)
	}

	// A token source that fails stops the request before it is sent.
	n := len(s.seen())
	c, _ := New(s.srv.URL, WithTokenSource(failingSource{}))
	if _, err := c.ListAPIKeys(ctx, ""); !greyerr.Is(err, greyerr.Unauthenticated) {
		t.Errorf("failing token source: %v", err)
	}
	if len(s.seen()) != n {
		t.Error("a request was sent without its token")
	}
}

type failingSource struct{}

func (failingSource) Token() (*oauth2.Token, error) { return nil, fmt.Errorf("idp down") }

// tokenEndpoint is an OAuth2 token endpoint for the client-credentials grant
// that issues short-lived, numbered tokens.
type tokenEndpoint struct {
	srv    *httptest.Server
	issued atomic.Int32
	ttl    int // seconds
}

func newTokenEndpoint(t *testing.T, ttl int) *tokenEndpoint {
	t.Helper()
	e := &tokenEndpoint{ttl: ttl}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if err := r.ParseForm(); err != nil || !ok || id != "worker-7" || secret != "s3cret" || r.Form.Get("grant_type") != "client_credentials" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client"}`)
			return
		}
		if r.Form.Get("scope") != "grey" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_scope"}`)
			return
		}
		n := e.issued.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": fmt.Sprintf("cc-%d", n), "token_type": "Bearer", "expires_in": e.ttl})
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func TestClientCredentials(t *testing.T) {
	t.Parallel()
	s := newAuthServer(t)
	ctx := context.Background()
	// Long-lived tokens are reused.
	long := newTokenEndpoint(t, 3600)
	cfg := &clientcredentials.Config{ClientID: "worker-7", ClientSecret: "s3cret", TokenURL: long.srv.URL, Scopes: []string{"grey"}}
	c, err := New(s.srv.URL, WithClientCredentials(ctx, cfg))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.ListAPIKeys(ctx, ""); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.seen(); strings.Join(got, ",") != "Bearer cc-1,Bearer cc-1,Bearer cc-1" || long.issued.Load() != 1 {
		t.Errorf("long-lived: sent %v, issued %d", got, long.issued.Load())
	}
	// Tokens about to expire are fetched again (oauth2 refreshes 10s
	// before expiry, so a 5s token is renewed for each request).
	short := newTokenEndpoint(t, 5)
	cfg.TokenURL = short.srv.URL
	c, _ = New(s.srv.URL, WithClientCredentials(ctx, cfg))
	// Workers built on the client use the same credential.
	w := c.NewWorker(worker.Options{WorkerID: "w-1", Kinds: []string{"noop"}, LeaseWait: 10 * time.Millisecond})
	w.HandleFunc("noop", func(context.Context, *worker.Job) (any, error) { return nil, nil })
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	// Until a second token was issued and the worker sent it (a loaded
	// machine may take a while for either).
	renewed := func() bool {
		got := s.seen()
		return short.issued.Load() >= 2 && len(got) > 3 && got[len(got)-1] != "Bearer cc-1"
	}
	deadline := time.Now().Add(30 * time.Second)
	for !renewed() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if short.issued.Load() < 2 {
		t.Errorf("short-lived tokens were not renewed: issued %d", short.issued.Load())
	}
	got := s.seen()[3:]
	if len(got) == 0 || got[0] != "Bearer cc-1" || !strings.HasPrefix(got[len(got)-1], "Bearer cc-") || got[len(got)-1] == "Bearer cc-1" {
		t.Errorf("worker sent %v", got)
	}
	// A refused client is an Unauthenticated error naming the cause.
	cfg.ClientSecret = "wrong"
	c, _ = New(s.srv.URL, WithClientCredentials(ctx, cfg))
	if _, err := c.ListAPIKeys(ctx, ""); !greyerr.Is(err, greyerr.Unauthenticated) || !strings.Contains(err.Error(), "invalid_client") {
		t.Errorf("wrong client secret: %v", err)
	}
}

func TestFileTokenSource(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "token")
	ts := FileTokenSource(path)
	if _, err := ts.Token(); !greyerr.Is(err, greyerr.Unauthenticated) {
		t.Errorf("missing file: %v", err)
	}
	if err := os.WriteFile(path, []byte("  first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if tok, err := ts.Token(); err != nil || tok.AccessToken != "first" {
		t.Fatalf("Token = %+v, %v", tok, err)
	}
	// A rotated file is read again.
	if err := os.WriteFile(path, []byte("second-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Minute)
	if err := os.Chtimes(path, future, future); err != nil {
		t.Fatal(err)
	}
	if tok, err := ts.Token(); err != nil || tok.AccessToken != "second-token" {
		t.Errorf("after rotation: %+v, %v", tok, err)
	}
	for _, bad := range []string{"", "\n", "a\nb"} {
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		future = future.Add(time.Minute)
		_ = os.Chtimes(path, future, future)
		if _, err := ts.Token(); !greyerr.Is(err, greyerr.Unauthenticated) {
			t.Errorf("file %q: %v", bad, err)
		}
	}
}

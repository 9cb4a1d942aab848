package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeIssuer is an OAuth2/OIDC provider with discovery, the password,
// refresh-token and device grants. Password logins get a token that has
// already expired (so the first use refreshes it).
type fakeIssuer struct {
	srv *httptest.Server

	mu          sync.Mutex
	grants      []string
	devicePolls int
	refreshOK   bool
}

func newFakeIssuer(t *testing.T) *fakeIssuer {
	t.Helper()
	f := &fakeIssuer{refreshOK: true}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		u := f.srv.URL
		writeJSONBody(w, http.StatusOK, map[string]any{
			"issuer": u, "authorization_endpoint": u + "/auth", "token_endpoint": u + "/token",
			"device_authorization_endpoint": u + "/device", "jwks_uri": u + "/jwks",
		})
	})
	mux.HandleFunc("POST /device", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if r.Form.Get("client_id") != "greyctl" {
			writeJSONBody(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
			return
		}
		writeJSONBody(w, http.StatusOK, map[string]any{"device_code": "dc-1", "user_code": "WDJB-MJHT",
			"verification_uri": f.srv.URL + "/activate", "expires_in": 60, "interval": 1})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		g := r.Form.Get("grant_type")
		f.mu.Lock()
		defer f.mu.Unlock()
		f.grants = append(f.grants, g)
		bad := func(code string) {
			writeJSONBody(w, http.StatusBadRequest, map[string]string{"error": code, "error_description": "refused"})
		}
		switch g {
		case "password":
			if r.Form.Get("username") != "alice" || r.Form.Get("password") != "pw 1" || r.Form.Get("client_id") != "greyctl" {
				bad("invalid_grant")
				return
			}
			writeJSONBody(w, http.StatusOK, map[string]any{"access_token": "at-1", "refresh_token": "rt-1", "token_type": "Bearer", "expires_in": 1})
		case "refresh_token":
			if !f.refreshOK || r.Form.Get("refresh_token") != "rt-1" {
				bad("invalid_grant")
				return
			}
			writeJSONBody(w, http.StatusOK, map[string]any{"access_token": "at-2", "refresh_token": "rt-2", "token_type": "Bearer", "expires_in": 3600})
		case "urn:ietf:params:oauth:grant-type:device_code":
			f.devicePolls++
			if f.devicePolls == 1 {
				bad("authorization_pending")
				return
			}
			writeJSONBody(w, http.StatusOK, map[string]any{"access_token": "at-dev", "refresh_token": "rt-dev", "token_type": "Bearer", "expires_in": 3600})
		default:
			bad("unsupported_grant_type")
		}
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func writeJSONBody(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// authRecorder is a Grey API that records the bearer tokens it gets.
func authRecorder(t *testing.T) (*httptest.Server, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Authorization"))
		mu.Unlock()
		writeJSONBody(w, http.StatusOK, map[string]any{"api_keys": []any{}})
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), got...) }
}

func readStored(t *testing.T, path string) storedLogin {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stored login: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	var l storedLogin
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLoginPassword(t *testing.T) {
	t.Parallel()
	idp := newFakeIssuer(t)
	api, sent := authRecorder(t)
	dir := filepath.Join(t.TempDir(), "cfg", "grey")
	path := filepath.Join(dir, "token.json")
	env := map[string]string{"GREY_SERVER": api.URL, "GREY_CONFIG_DIR": dir, "GREY_OIDC_ISSUER": idp.srv.URL}

	// Bad input: no issuer, no user name without a terminal, a wrong
	// password (nothing is stored).
	if r := greyctl(t, map[string]string{"GREY_CONFIG_DIR": dir}, "login", "--username", "alice", "--password-stdin"); r.code != 2 || !strings.Contains(r.stderr, "--issuer") {
		t.Errorf("no issuer: %+v", r)
	}
	if r := greyctlIn(t, env, "pw 1\n", "login"); r.code != 2 || !strings.Contains(r.stderr, "--username") {
		t.Errorf("no user name: %+v", r)
	}
	if r := greyctlIn(t, env, "wrong\n", "login", "--username", "alice", "--password-stdin"); r.code != 1 || !strings.Contains(r.stderr, "invalid_grant") {
		t.Errorf("wrong password: %+v", r)
	}
	if r := greyctlIn(t, env, "pw 1\n", "login", "--issuer", "http://127.0.0.1:1", "--username", "alice", "--password-stdin"); r.code != 1 || !strings.Contains(r.stderr, "discover") {
		t.Errorf("unreachable issuer: %+v", r)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a failed login stored something: %v", err)
	}

	// The password grant stores the token, readable by the user only.
	r := greyctlIn(t, env, "pw 1\n", "login", "--username", "alice", "--password-stdin")
	if r.code != 0 || !strings.Contains(r.stdout, "logged in at "+idp.srv.URL) || !strings.Contains(r.stdout, "refreshed automatically") {
		t.Fatalf("login: %+v", r)
	}
	if strings.Contains(r.stdout+r.stderr, "pw 1") || strings.Contains(r.stdout+r.stderr, "at-1") {
		t.Errorf("login printed a secret: %+v", r)
	}
	l := readStored(t, path)
	if l.Token.AccessToken != "at-1" || l.Token.RefreshToken != "rt-1" || l.TokenURL != idp.srv.URL+"/token" || l.ClientID != "greyctl" || l.Issuer != idp.srv.URL {
		t.Fatalf("stored %+v", l)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("config dir mode %v, want 0700", fi.Mode().Perm())
	}

	// Later commands send it, refreshed first since it expired, and the
	// refreshed token is stored.
	if r := greyctl(t, env, "apikey", "list"); r.code != 0 {
		t.Fatalf("list with the stored login: %+v", r)
	}
	if r := greyctl(t, env, "apikey", "list"); r.code != 0 {
		t.Fatalf("list again: %+v", r)
	}
	if got := sent(); strings.Join(got, ",") != "Bearer at-2,Bearer at-2" {
		t.Errorf("sent %v, want the refreshed token twice", got)
	}
	if l := readStored(t, path); l.Token.AccessToken != "at-2" || l.Token.RefreshToken != "rt-2" {
		t.Errorf("after refresh, stored %+v", l.Token)
	}
	idp.mu.Lock()
	grants := strings.Join(idp.grants, ",")
	idp.mu.Unlock()
	if grants != "password,password,refresh_token" {
		t.Errorf("grants = %s, want one refresh only", grants)
	}
	// A flag beats the stored login.
	if r := greyctl(t, env, "--token", "explicit", "apikey", "list"); r.code != 0 || sent()[2] != "Bearer explicit" {
		t.Errorf("--token with a stored login: %+v %v", r, sent())
	}

	// logout removes it; then nothing is sent.
	if r := greyctl(t, env, "logout"); r.code != 0 || !strings.Contains(r.stdout, "logged out") {
		t.Errorf("logout: %+v", r)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("logout left %s: %v", path, err)
	}
	if r := greyctl(t, env, "logout"); r.code != 0 || !strings.Contains(r.stdout, "not logged in") {
		t.Errorf("second logout: %+v", r)
	}
	if r := greyctl(t, env, "apikey", "list"); r.code != 0 || sent()[3] != "" {
		t.Errorf("after logout: %+v %v", r, sent())
	}
}

func TestLoginRefreshFails(t *testing.T) {
	t.Parallel()
	idp := newFakeIssuer(t)
	api, sent := authRecorder(t)
	dir := t.TempDir()
	env := map[string]string{"GREY_SERVER": api.URL, "GREY_CONFIG_DIR": dir, "GREY_OIDC_ISSUER": idp.srv.URL}
	if r := greyctlIn(t, env, "pw 1\n", "login", "--username", "alice", "--password-stdin"); r.code != 0 {
		t.Fatalf("login: %+v", r)
	}
	idp.mu.Lock()
	idp.refreshOK = false
	idp.mu.Unlock()
	r := greyctl(t, env, "apikey", "list")
	if r.code != 1 || !strings.Contains(r.stderr, "greyctl login") || len(sent()) != 0 {
		t.Errorf("expired login: %+v, sent %v", r, sent())
	}
	// A damaged file is reported, not sent.
	if err := os.WriteFile(filepath.Join(dir, "token.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := greyctl(t, env, "apikey", "list"); r.code != 1 || !strings.Contains(r.stderr, "damaged") {
		t.Errorf("damaged login: %+v", r)
	}
}

func TestLoginDevice(t *testing.T) {
	t.Parallel()
	idp := newFakeIssuer(t)
	dir := t.TempDir()
	env := map[string]string{"GREY_CONFIG_DIR": dir}
	if r := greyctl(t, env, "login", "--issuer", idp.srv.URL, "--device", "--username", "x"); r.code != 2 {
		t.Errorf("--device with --username: %+v", r)
	}
	r := greyctl(t, env, "login", "--issuer", idp.srv.URL, "--device")
	if r.code != 0 || !strings.Contains(r.stderr, "WDJB-MJHT") || !strings.Contains(r.stderr, idp.srv.URL+"/activate") {
		t.Fatalf("device login: %+v", r)
	}
	if l := readStored(t, filepath.Join(dir, "token.json")); l.Token.AccessToken != "at-dev" {
		t.Errorf("stored %+v", l.Token)
	}
	if r := greyctl(t, env, "login", "--issuer", idp.srv.URL, "--device", "--client-id", "other"); r.code != 1 || !strings.Contains(r.stderr, "invalid_client") {
		t.Errorf("device login with an unknown client: %+v", r)
	}
}

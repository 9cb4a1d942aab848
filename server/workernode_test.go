package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grey-distributed/grey/auth/apikey"
	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/config"
)

// TestWorkerCredentials: each node.credentials form reaches the servers as
// the bearer token of the worker node's requests.
func TestWorkerCredentials(t *testing.T) {
	t.Parallel()
	var got string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"api_keys":[]}`)
	}))
	t.Cleanup(api.Close)
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, secret, _ := r.BasicAuth(); id != "w" || secret != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"from-idp","token_type":"Bearer","expires_in":3600}`)
	}))
	t.Cleanup(idp.Close)

	tok, _ := apikey.Generate()
	dir := t.TempDir()
	keyFile, tokenFile := filepath.Join(dir, "key"), filepath.Join(dir, "token")
	if err := os.WriteFile(keyFile, []byte(tok.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokenFile, []byte("file-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		set  func(*config.Config)
		want string
	}{
		{"none", func(*config.Config) {}, ""},
		{"admin token", func(c *config.Config) { c.HTTP.AdminToken = "adm" }, "Bearer adm"},
		{"api key", func(c *config.Config) { c.Node.Credentials.APIKey = config.Secret(tok.String()) }, "Bearer " + tok.String()},
		{"api key file", func(c *config.Config) { c.Node.Credentials.APIKeyFile = keyFile }, "Bearer " + tok.String()},
		{"token file", func(c *config.Config) { c.Node.Credentials.TokenFile = tokenFile }, "Bearer file-token"},
		{"oauth2", func(c *config.Config) {
			c.Node.Credentials.OAuth2 = config.OAuth2ClientConfig{ClientID: "w", ClientSecret: "s3cret", TokenURL: idp.URL}
		}, "Bearer from-idp"},
		{"credentials beat the admin token", func(c *config.Config) {
			c.HTTP.AdminToken = "adm"
			c.Node.Credentials.TokenFile = tokenFile
		}, "Bearer file-token"},
	}
	for _, tc := range cases {
		cfg := config.Default()
		tc.set(cfg)
		opts, err := credentialOptions(context.Background(), cfg)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		c, err := client.New(api.URL, opts...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got = "unset"
		if _, err := c.ListAPIKeys(context.Background(), ""); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("%s: sent %q, want %q", tc.name, got, tc.want)
		}
	}
	// A missing key file is an error naming the setting; a malformed key
	// is refused without being quoted.
	cfg := config.Default()
	cfg.Node.Credentials.APIKeyFile = filepath.Join(dir, "missing")
	if _, err := credentialOptions(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "api_key_file") {
		t.Errorf("missing key file: %v", err)
	}
	cfg = config.Default()
	cfg.Node.Credentials.APIKey = "grey_not_a_key_hunter2"
	if _, err := credentialOptions(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "node.credentials.api_key") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("malformed key: %v", err)
	}
	if err := os.WriteFile(keyFile, []byte("grey_hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg = config.Default()
	cfg.Node.Credentials.APIKeyFile = keyFile
	if _, err := credentialOptions(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "api_key_file") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("malformed key file: %v", err)
	}
}

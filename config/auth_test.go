package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestAuthModeForms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, yaml string
		env        []string
		want       AuthModes
	}{
		{"list", "auth:\n  mode: [oidc, apikey]\n", nil, AuthModes{"oidc", "apikey"}},
		{"block list", "auth:\n  mode:\n    - apikey\n", nil, AuthModes{"apikey"}},
		{"string", "auth:\n  mode: oidc,apikey\n", nil, AuthModes{"oidc", "apikey"}},
		{"string with spaces", "auth:\n  mode: \"oidc, saml\"\n", nil, AuthModes{"oidc", "saml"}},
		{"none string", "auth:\n  mode: none\n", nil, AuthModes{"none"}},
		{"default", "", nil, AuthModes{"none"}},
		{"env", "", []string{"GREY_AUTH_MODE", "apikey,oidc"}, AuthModes{"apikey", "oidc"}},
	} {
		// The modes' own blocks, so that only the mode's form is tested.
		blocks := "  oidc: {issuer: https://sso.example.com/realms/grey, audience: [grey]}\n" +
			"  saml: {root_url: https://grey.example.com, idp_metadata: https://sso.example.com/realms/grey/protocol/saml/descriptor}\n"
		text := tc.yaml
		if text == "" {
			text = "auth:\n"
		}
		c, err := LoadBytes([]byte(text+blocks), "grey.yaml", env(tc.env...))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !slices.Equal(c.Auth.Mode, tc.want) {
			t.Fatalf("%s: mode %v, want %v", tc.name, c.Auth.Mode, tc.want)
		}
	}
}

func TestAuthModeErrorsNameTheKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, yaml string
		env        []string
		parts      []string
	}{
		{"none combined", "auth:\n  mode: [none, oidc]\n", nil, []string{"auth.mode", "line 2", "none cannot be combined"}},
		{"none combined string", "auth:\n  mode: oidc,none\n", nil, []string{"auth.mode", "cannot be combined"}},
		{"unknown", "auth:\n  mode: [ldap]\n", nil, []string{"auth.mode", `unknown mode "ldap"`}},
		{"empty", "auth:\n  mode: []\n", nil, []string{"auth.mode", "at least one mode"}},
		{"empty string", "auth:\n  mode: \"\"\n", nil, []string{"auth.mode", "at least one mode"}},
		{"twice", "auth:\n  mode: apikey,apikey\n", nil, []string{"auth.mode", "twice"}},
		{"mapping", "auth:\n  mode: {a: b}\n", nil, []string{"auth.mode", "list of modes"}},
		{"number in list", "auth:\n  mode: [3]\n", nil, []string{"auth.mode", "mode name"}},
		{"env", "", []string{"GREY_AUTH_MODE", "none,apikey"}, []string{"auth.mode", "GREY_AUTH_MODE", "cannot be combined"}},
		{"audit sink", "auth:\n  audit:\n    sink: \"a\\nb\"\n", nil, []string{"auth.audit.sink"}},
	} {
		_, err := LoadBytes([]byte(tc.yaml), "grey.yaml", env(tc.env...))
		if err == nil {
			t.Fatalf("%s: no error", tc.name)
		}
		for _, p := range tc.parts {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("%s: error %q lacks %q", tc.name, err, p)
			}
		}
	}
}

func TestCheckExposure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		edit   func(c *Config)
		refuse string // "" = allowed; else a part of the error
	}{
		{"defaults", func(c *Config) {}, ""},
		{"api on all interfaces", func(c *Config) { c.HTTP.Addr = "0.0.0.0:8080" }, "http.addr 0.0.0.0:8080"},
		{"api on empty host", func(c *Config) { c.HTTP.Addr = ":8080" }, "http.addr :8080"},
		{"api on a LAN address", func(c *Config) { c.HTTP.Addr = "10.0.0.5:8080" }, "http.addr"},
		{"api on ::", func(c *Config) { c.HTTP.Addr = "[::]:8080" }, "http.addr"},
		{"localhost", func(c *Config) { c.HTTP.Addr = "localhost:8080"; c.Raft.Addr = "[::1]:7000" }, ""},
		{"127/8", func(c *Config) { c.HTTP.Addr = "127.0.0.12:8080" }, ""},
		{"raft", func(c *Config) { c.Raft.Addr = "0.0.0.0:7000" }, "raft.addr"},
		{"metrics with pprof", func(c *Config) { c.Monitoring.Prometheus.Host = "0.0.0.0" }, "pprof"},
		{"metrics without pprof", func(c *Config) { c.Monitoring.Prometheus.Host = "0.0.0.0"; c.Monitoring.Prometheus.Pprof = false }, ""},
		{"metrics off", func(c *Config) { c.Monitoring.Prometheus.Host = "0.0.0.0"; c.Monitoring.Prometheus.Enabled = false }, ""},
		{"auth on", func(c *Config) { c.HTTP.Addr = "0.0.0.0:8080"; c.Auth.Mode = AuthModes{"apikey"} }, ""},
		{"insecure opt-in", func(c *Config) { c.HTTP.Addr = "0.0.0.0:8080"; c.Auth.InsecureNoneBeyondLoopback = true }, ""},
		{"worker-only node ignores the API address", func(c *Config) { c.Node.Role = RoleWorker; c.HTTP.Addr = "0.0.0.0:8080" }, ""},
	} {
		c := Default()
		tc.edit(c)
		err := c.CheckExposure()
		switch {
		case tc.refuse == "" && err != nil:
			t.Fatalf("%s: refused: %v", tc.name, err)
		case tc.refuse != "" && err == nil:
			t.Fatalf("%s: allowed", tc.name)
		case err != nil:
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != "auth.mode" || !strings.Contains(err.Error(), tc.refuse) || !strings.HasPrefix(err.Error(), "auth.mode") {
				t.Fatalf("%s: error %q, want one naming auth.mode and %q", tc.name, err, tc.refuse)
			}
		}
	}
}

func TestAuditSinkDefault(t *testing.T) {
	t.Parallel()
	c := Default()
	if c.AuditSink() != "off" {
		t.Fatalf("mode none: sink %q, want off", c.AuditSink())
	}
	c.Auth.Mode = AuthModes{AuthAPIKey}
	if c.AuditSink() != "stdout" {
		t.Fatalf("auth on: sink %q, want stdout", c.AuditSink())
	}
	c.Auth.Audit.Sink = "off"
	if c.AuditSink() != "off" {
		t.Fatal("an explicit off is kept")
	}
}

// FuzzAuthModes: any mode value, as a string or inside a list, loads or
// fails with an error naming auth.mode; a loaded value has valid, unique
// names and none alone.
func FuzzAuthModes(f *testing.F) {
	for _, s := range []string{"none", "oidc,apikey", " oidc , saml ", "none,oidc", "", ",", "apikey,apikey", "NONE"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		modes := ParseAuthModes(s)
		c := Default()
		c.Auth.Mode = modes
		err := c.Validate()
		if err != nil {
			if !strings.Contains(err.Error(), "auth.mode") {
				t.Fatalf("error %q does not name auth.mode", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, m := range c.Auth.Mode {
			if !slices.Contains(AuthModeNames, m) || seen[m] {
				t.Fatalf("accepted %q", s)
			}
			seen[m] = true
		}
		if c.Auth.Mode.Has(AuthNone) && len(c.Auth.Mode) != 1 {
			t.Fatalf("accepted none combined: %q", s)
		}
	})
}

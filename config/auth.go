package config

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// AuthConfig configures authentication and access (docs/AUTH.md).
type AuthConfig struct {
	// Mode lists the accepted credentials: "none" (development only, loopback
	// only), or any of "oidc", "apikey", "saml" (comma separated or a list).
	Mode AuthModes `yaml:"mode"`
	// OIDC configures OIDC/JWT bearer tokens.
	OIDC OIDCConfig `yaml:"oidc"`
	// APIKey configures service-account API keys.
	APIKey APIKeyConfig `yaml:"apikey"`
	// SAML configures the SAML 2.0 service provider for browser sign-in.
	SAML SAMLConfig `yaml:"saml"`
	// Claims maps token claims and SAML attributes to tenants and roles.
	Claims ClaimsConfig `yaml:"claims"`
	// Audit configures the audit log.
	Audit AuditConfig `yaml:"audit"`
	// InsecureNoneBeyondLoopback lets mode none listen beyond loopback.
	// Only for networks nothing else can reach (test network namespaces):
	// every caller is then an anonymous admin.
	InsecureNoneBeyondLoopback bool `yaml:"insecure_none_beyond_loopback"`
}

// AuthModes is the set of accepted credential kinds. In YAML it is a list
// (mode: [oidc, apikey]) or a comma-separated string (mode: oidc,apikey).
type AuthModes []string

// The auth modes.
const (
	// AuthNone is development mode: no credential, anonymous callers act
	// for any tenant. Loopback listeners only.
	AuthNone = "none"
	// AuthOIDC accepts OIDC/JWT bearer tokens.
	AuthOIDC = "oidc"
	// AuthAPIKey accepts service-account API keys.
	AuthAPIKey = "apikey"
	// AuthSAML accepts browser sessions opened by SAML sign-in.
	AuthSAML = "saml"
)

// AuthModeNames lists the valid values of auth.mode.
var AuthModeNames = []string{AuthNone, AuthOIDC, AuthAPIKey, AuthSAML}

// ParseAuthModes parses a comma-separated list of modes (spaces allowed
// around names). It only splits: Validate checks the names.
func ParseAuthModes(s string) AuthModes {
	var out AuthModes
	for _, p := range strings.Split(s, ",") {
		out = append(out, strings.TrimSpace(p))
	}
	if len(out) == 1 && out[0] == "" {
		return AuthModes{}
	}
	return out
}

// UnmarshalYAML implements go-yaml's NodeUnmarshaler: a list of strings or
// one comma-separated string.
func (a *AuthModes) UnmarshalYAML(node ast.Node) error {
	if t, ok := node.(*ast.TagNode); ok {
		node = t.Value
	}
	switch n := node.(type) {
	case *ast.StringNode:
		*a = ParseAuthModes(n.Value)
		return nil
	case *ast.NullNode:
		*a = AuthModes{}
		return nil
	case *ast.SequenceNode:
		out := AuthModes{}
		for _, v := range n.Values {
			if t, ok := v.(*ast.TagNode); ok {
				v = t.Value
			}
			sn, ok := v.(*ast.StringNode)
			if !ok {
				return nodeError(v, "must be a mode name ("+strings.Join(AuthModeNames, ", ")+"), not a "+v.Type().String(), nil)
			}
			out = append(out, strings.TrimSpace(sn.Value))
		}
		*a = out
		return nil
	}
	return nodeError(node, "must be a list of modes or a comma-separated string, not a "+node.Type().String(), nil)
}

// String is the comma-separated form.
func (a AuthModes) String() string { return strings.Join(a, ",") }

// Enabled reports whether any credential is checked (the mode is not none).
func (a AuthModes) Enabled() bool { return !a.Has(AuthNone) && len(a) > 0 }

// Has reports whether mode m is enabled.
func (a AuthModes) Has(m string) bool {
	for _, x := range a {
		if x == m {
			return true
		}
	}
	return false
}

// OIDCConfig configures verification of OIDC/JWT bearer tokens.
type OIDCConfig struct {
	// Provider is GREY_IAM_PROVIDER: an issuer URL, or a preset name such as
	// "keycloak" (then Issuer must be set).
	Provider string `yaml:"provider"`
	// Issuer is the token issuer (the `iss` claim and discovery base URL).
	Issuer string `yaml:"issuer"`
	// Audience lists accepted `aud` values.
	Audience []string `yaml:"audience"`
}

// APIKeyConfig configures service-account API keys.
type APIKeyConfig struct{}

// SAMLConfig configures the SAML 2.0 service provider.
type SAMLConfig struct{}

// ClaimsConfig maps verified claims (or SAML attributes) to grants.
type ClaimsConfig struct{}

// AuditConfig configures the audit log.
type AuditConfig struct {
	// Sink is where the JSON lines go: "stdout", "stderr", a file path
	// (appended to, created 0600), or "off". "" (the default) is off in
	// mode none and stdout with authentication on.
	Sink string `yaml:"sink"`
}

// AuditSink is the effective audit sink: "off", "stdout", "stderr" or a
// path.
func (c *Config) AuditSink() string {
	if c.Auth.Audit.Sink != "" {
		return c.Auth.Audit.Sink
	}
	if c.Auth.Mode.Enabled() {
		return "stdout"
	}
	return "off"
}

// auth validates the auth block.
func (v *validator) auth(a *AuthConfig) {
	switch {
	case len(a.Mode) == 0:
		v.fail("auth.mode", "must name at least one mode (%s)", strings.Join(AuthModeNames, ", "))
	case a.Mode.Has(AuthNone) && len(a.Mode) > 1:
		v.fail("auth.mode", "none cannot be combined with other modes, got %q", a.Mode.String())
	}
	for i, m := range a.Mode {
		if !slices.Contains(AuthModeNames, m) {
			v.fail("auth.mode", "unknown mode %q (want none, or any of oidc, apikey, saml)", m)
		} else if slices.Contains(a.Mode[:i], m) {
			v.fail("auth.mode", "names %q twice", m)
		}
	}
	if strings.ContainsAny(a.Audit.Sink, "\x00\n") {
		v.fail("auth.audit.sink", "must be stdout, stderr, off or a file path")
	}
}

// IsLoopback reports whether a listen address host:port binds only to
// loopback (127.0.0.0/8, ::1, localhost). An empty host (all interfaces)
// is not loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckExposure refuses a configuration that serves unauthenticated
// routes beyond loopback: in mode none the API and Raft listeners must be
// loopback, and so must the metrics listener while it serves pprof. The
// error names auth.mode. Servers call it at start-up; validation does not,
// so that a configuration can be checked and printed on any machine.
func (c *Config) CheckExposure() error {
	if c.Auth.Mode.Enabled() || c.Auth.InsecureNoneBeyondLoopback {
		return nil
	}
	var bad []string
	if c.Node.Role != RoleWorker {
		if !IsLoopback(c.HTTP.Addr) {
			bad = append(bad, fmt.Sprintf("http.addr %s", c.HTTP.Addr))
		}
		if !IsLoopback(c.Raft.Addr) {
			bad = append(bad, fmt.Sprintf("raft.addr %s", c.Raft.Addr))
		}
	}
	p := &c.Monitoring.Prometheus
	if p.Enabled && p.Pprof && !IsLoopback(c.MetricsAddr()) {
		bad = append(bad, fmt.Sprintf("the metrics listener %s, which serves pprof (monitoring.prometheus.pprof)", c.MetricsAddr()))
	}
	if len(bad) == 0 {
		return nil
	}
	return &Error{Key: "auth.mode", Msg: fmt.Sprintf("is none (no authentication, development only), which listens on loopback only, but %s %s beyond loopback: enable authentication (auth.mode: oidc, apikey) or bind to 127.0.0.1 (auth.insecure_none_beyond_loopback: true is for isolated test networks only)",
		strings.Join(bad, " and "), map[bool]string{true: "is", false: "are"}[len(bad) == 1])}
}

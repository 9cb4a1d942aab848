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
	// Audience lists accepted `aud` values; a token must name one of them.
	Audience []string `yaml:"audience"`
	// Algorithms lists the accepted signature algorithms (default RS256,
	// ES256, EdDSA). "none" and the HMAC algorithms (HS256...) are refused:
	// a verifier holding only public keys must never accept a MAC.
	Algorithms []string `yaml:"algorithms"`
	// Leeway is the clock skew allowed on exp, nbf and iat (default 30s, at
	// most 5m).
	Leeway Duration `yaml:"leeway"`
	// JWKSRefreshInterval is the least time between two fetches of the
	// provider's JWKS: a token with an unknown key id triggers one fetch,
	// and further unknown ids within this interval are refused without a
	// fetch (default 15s, at least 1s).
	JWKSRefreshInterval Duration `yaml:"jwks_refresh_interval"`
	// JWKSMaxAge is how long fetched keys are trusted before they are
	// fetched again, so that a key removed by rotation stops verifying
	// (default 5m).
	JWKSMaxAge Duration `yaml:"jwks_max_age"`
	// TokenCacheSize bounds the cache of verified tokens, kept by SHA-256
	// until their exp (default 10000; 0 turns the cache off).
	TokenCacheSize int `yaml:"token_cache_size"`
	// CAFile is a PEM bundle of CAs trusted for the issuer's HTTPS endpoints
	// (default: the system pool).
	CAFile string `yaml:"ca_file"`
}

// OIDCPresets returns the provider names GREY_IAM_PROVIDER may carry
// instead of an issuer URL; with a preset, auth.oidc.issuer names the
// issuer.
func OIDCPresets() []string { return []string{"keycloak", "generic"} }

// APIKeyConfig configures service-account API keys.
type APIKeyConfig struct{}

// SAMLConfig configures the SAML 2.0 service provider (browser sign-in;
// routes under /auth/saml/).
type SAMLConfig struct {
	// RootURL is Grey's external base URL, https (loopback may use http):
	// the assertion consumer service is RootURL/auth/saml/acs.
	RootURL string `yaml:"root_url"`
	// EntityID is the SP's entity id, the client id at the IdP (default
	// RootURL/auth/saml/metadata).
	EntityID string `yaml:"entity_id"`
	// IDPMetadata is the IdP's metadata: an http(s) URL fetched at start
	// (for Keycloak: <issuer>/protocol/saml/descriptor), or a file path.
	IDPMetadata string `yaml:"idp_metadata"`
	// CertFile and KeyFile are the SP's PEM key pair (empty: an ephemeral
	// pair per start, fine while the IdP needs no signed requests).
	CertFile string `yaml:"cert_file"`
	// KeyFile: see CertFile.
	KeyFile string `yaml:"key_file"`
	// SessionKeyFile holds the key that encrypts session cookies: 32 bytes
	// or 64 hex digits, the same on every node (empty: a random key per
	// process; sessions then end with it).
	SessionKeyFile string `yaml:"session_key_file"`
	// SessionTTL bounds a browser session (default 8h); the IdP's
	// SessionNotOnOrAfter may shorten it.
	SessionTTL Duration `yaml:"session_ttl"`
	// CookieName names the session cookie (default grey_session).
	CookieName string `yaml:"cookie_name"`
}

// ClaimsConfig maps verified claims (or SAML attributes) to grants. Every
// source below adds grants; a principal holds their union.
type ClaimsConfig struct {
	// Permissions names the claim of "tenant:role" strings (default
	// "permissions"; "-" turns it off). "*:admin" grants admin on all
	// tenants.
	Permissions string `yaml:"permissions"`
	// Tenant names the claim with one tenant id (default "grey_tenant_id";
	// "-" turns it off); Roles names the claim with the roles held there
	// (default "grey_roles").
	Tenant string `yaml:"tenant"`
	// Roles: see Tenant.
	Roles string `yaml:"roles"`
	// Username names the claim shown as the principal's name (default
	// "preferred_username").
	Username string `yaml:"username"`
	// Bindings grant a role on a tenant to principals whose claim has a
	// given value, as Nomad's and Vault's binding rules do.
	Bindings []ClaimBinding `yaml:"bindings"`
}

// ClaimBinding is one binding rule: when Claim holds Value (or, for a list
// claim, contains it), grant Role on Tenant.
type ClaimBinding struct {
	// Claim is the claim (or SAML attribute) tested (default "groups").
	Claim string `yaml:"claim"`
	// Value is the value that selects the principal; it may be a glob in
	// the syntax of Go's path.Match ("acme-*").
	Value string `yaml:"value"`
	// Tenant is the tenant granted, or "*" for admin on all tenants.
	Tenant string `yaml:"tenant"`
	// Role is admin, operator, viewer or worker.
	Role string `yaml:"role"`
	// Kinds limits a worker grant to these task kinds (empty: all kinds).
	Kinds []string `yaml:"kinds"`
}

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
	v.authIdentity(a)
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

package config

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
)

// The defaults of the identity blocks (auth.oidc, auth.claims), used by
// Default.
const (
	defaultOIDCLeeway          = 30 * time.Second
	defaultJWKSRefreshInterval = 15 * time.Second
	defaultJWKSMaxAge          = 5 * time.Minute
	defaultTokenCacheSize      = 10000
	maxOIDCLeeway              = 5 * time.Minute
	maxTokenCacheSize          = 1 << 20
)

// defaultOIDC is auth.oidc's default: no issuer, the asymmetric algorithms
// Keycloak and most providers sign with.
func defaultOIDC() OIDCConfig {
	return OIDCConfig{
		Algorithms:          []string{"RS256", "ES256", "EdDSA"},
		Leeway:              Duration(defaultOIDCLeeway),
		JWKSRefreshInterval: Duration(defaultJWKSRefreshInterval),
		JWKSMaxAge:          Duration(defaultJWKSMaxAge),
		TokenCacheSize:      defaultTokenCacheSize,
	}
}

// defaultClaims is auth.claims's default: Temporal's permissions claim,
// Grey's own tenant and roles claims, no bindings.
func defaultClaims() ClaimsConfig {
	return ClaimsConfig{
		Permissions: "permissions",
		Tenant:      "grey_tenant_id",
		Roles:       "grey_roles",
		Username:    "preferred_username",
	}
}

// OIDCAlgorithms returns the signature algorithms auth.oidc.algorithms may
// name: the asymmetric JWS algorithms. HMAC (HS256...) is absent on purpose:
// the verifier holds public keys, and a MAC keyed with a public key is the
// classic algorithm-confusion forgery.
func OIDCAlgorithms() []string {
	return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
}

// IssuerURL returns the issuer the OIDC block names: Provider when it is a
// URL, else Issuer (Provider then being a preset).
func (o *OIDCConfig) IssuerURL() string {
	if strings.Contains(o.Provider, "://") {
		return strings.TrimSpace(o.Provider)
	}
	return strings.TrimSpace(o.Issuer)
}

// claimNameRe is what a claim or attribute name may look like: printable,
// no spaces (SAML attribute names are often URIs).
var claimNameRe = regexp.MustCompile(`^[A-Za-z0-9_.:/#\-]{1,256}$`)

// defaultSAML is auth.saml's default.
func defaultSAML() SAMLConfig {
	return SAMLConfig{SessionTTL: Duration(8 * time.Hour), CookieName: "grey_session"}
}

// authIdentity validates auth.oidc, auth.saml and auth.claims. It is
// separate from the mode checks in auth so that the blocks can grow
// independently.
func (v *validator) authIdentity(a *AuthConfig) {
	v.oidc(&a.OIDC, a.Mode.Has("oidc"))
	v.saml(&a.SAML, a.Mode.Has("saml"))
	v.claims(&a.Claims)
}

// cookieNameRe is an RFC 6265 cookie name (a token).
var cookieNameRe = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")

// saml validates auth.saml; root URL and IdP metadata are required only
// when the mode is on.
func (v *validator) saml(s *SAMLConfig, on bool) {
	if s.RootURL != "" {
		v.issuer("auth.saml.root_url", s.RootURL)
	} else if on {
		v.fail("auth.saml.root_url", "must be set when auth.mode includes saml (Grey's external https URL)")
	}
	switch {
	case strings.Contains(s.IDPMetadata, "://"):
		v.issuer("auth.saml.idp_metadata", s.IDPMetadata)
	case s.IDPMetadata == "" && on:
		v.fail("auth.saml.idp_metadata", "must be set (a metadata URL or file) when auth.mode includes saml")
	}
	if (s.CertFile == "") != (s.KeyFile == "") {
		v.fail("auth.saml.key_file", "cert_file and key_file go together")
	}
	if s.SessionTTL.Std() < time.Minute || s.SessionTTL.Std() > 7*24*time.Hour {
		v.fail("auth.saml.session_ttl", "must be between 1m and 168h, got %s", s.SessionTTL)
	}
	if !cookieNameRe.MatchString(s.CookieName) {
		v.fail("auth.saml.cookie_name", "must be a cookie name (letters, digits, -_.), got %q", s.CookieName)
	}
}

// oidc validates auth.oidc; the issuer and audience are required only when
// the mode is on.
func (v *validator) oidc(o *OIDCConfig, on bool) {
	p := strings.TrimSpace(o.Provider)
	switch {
	case p == "" || strings.Contains(p, "://"):
	case slices.Contains(OIDCPresets(), strings.ToLower(p)):
		if on && strings.TrimSpace(o.Issuer) == "" {
			v.fail("auth.oidc.issuer", "must be set when auth.oidc.provider (GREY_IAM_PROVIDER) is the preset %q", p)
		}
	default:
		v.fail("auth.oidc.provider", "must be an issuer URL or one of the presets %s, got %q", strings.Join(OIDCPresets(), ", "), p)
	}
	if strings.Contains(p, "://") && strings.TrimSpace(o.Issuer) != "" && strings.TrimRight(p, "/") != strings.TrimRight(strings.TrimSpace(o.Issuer), "/") {
		v.fail("auth.oidc.issuer", "is %q but auth.oidc.provider (GREY_IAM_PROVIDER) names another issuer, %q", o.Issuer, p)
	}
	if iss := o.IssuerURL(); iss != "" {
		v.issuer("auth.oidc.issuer", iss)
	} else if on {
		v.fail("auth.oidc.issuer", "must be set when auth.mode includes oidc (or set GREY_IAM_PROVIDER to the issuer URL)")
	}
	if on && len(o.Audience) == 0 {
		v.fail("auth.oidc.audience", "must name at least one accepted aud value when auth.mode includes oidc")
	}
	for i, a := range o.Audience {
		if strings.TrimSpace(a) == "" {
			v.fail(fmt.Sprintf("auth.oidc.audience[%d]", i), "must not be empty")
		}
	}
	if len(o.Algorithms) == 0 {
		v.fail("auth.oidc.algorithms", "must name at least one of %s", strings.Join(OIDCAlgorithms(), ", "))
	}
	for i, alg := range o.Algorithms {
		key := fmt.Sprintf("auth.oidc.algorithms[%d]", i)
		switch {
		case strings.EqualFold(alg, "none"):
			v.fail(key, "alg none accepts unsigned tokens and is never allowed")
		case strings.HasPrefix(strings.ToUpper(alg), "HS"):
			v.fail(key, "%s is an HMAC algorithm: a verifier of public-key signatures must not accept it (algorithm confusion)", alg)
		case !slices.Contains(OIDCAlgorithms(), alg):
			v.fail(key, "must be one of %s, got %q", strings.Join(OIDCAlgorithms(), ", "), alg)
		}
	}
	if o.Leeway < 0 || o.Leeway.Std() > maxOIDCLeeway {
		v.fail("auth.oidc.leeway", "must be between 0 and %s, got %s", Duration(maxOIDCLeeway), o.Leeway)
	}
	v.atLeast("auth.oidc.jwks_refresh_interval", o.JWKSRefreshInterval, time.Second)
	if o.JWKSMaxAge < o.JWKSRefreshInterval {
		v.fail("auth.oidc.jwks_max_age", "must be at least auth.oidc.jwks_refresh_interval (%s), got %s", o.JWKSRefreshInterval, o.JWKSMaxAge)
	}
	if o.TokenCacheSize < 0 || o.TokenCacheSize > maxTokenCacheSize {
		v.fail("auth.oidc.token_cache_size", "must be between 0 (off) and %d, got %d", maxTokenCacheSize, o.TokenCacheSize)
	}
}

// issuer checks an issuer URL: absolute, http(s), and plain http only on a
// loopback host (tokens and keys must not travel unprotected).
func (v *validator) issuer(key, s string) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		v.fail(key, "must be an absolute http(s) URL, got %q", s)
		return
	}
	if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		v.fail(key, "must use https unless the host is loopback, got %q", s)
	}
}

// loopbackHost reports whether h is localhost or a loopback address.
func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// claims validates auth.claims.
func (v *validator) claims(c *ClaimsConfig) {
	for key, name := range map[string]string{
		"auth.claims.permissions": c.Permissions, "auth.claims.tenant": c.Tenant,
		"auth.claims.roles": c.Roles, "auth.claims.username": c.Username,
	} {
		if name != "-" && !claimNameRe.MatchString(name) {
			v.fail(key, "must be a claim name (or - to turn it off), got %q", name)
		}
	}
	for i, b := range c.Bindings {
		key := fmt.Sprintf("auth.claims.bindings[%d]", i)
		if b.Claim != "" && !claimNameRe.MatchString(b.Claim) {
			v.fail(key+".claim", "must be a claim name, got %q", b.Claim)
		}
		if b.Value == "" {
			v.fail(key+".value", "must not be empty")
		} else if _, err := path.Match(b.Value, ""); err != nil {
			v.fail(key+".value", "is not a valid glob: %v", err)
		}
		switch b.Role {
		case "admin", "operator", "viewer", "worker":
		default:
			v.fail(key+".role", "must be one of admin, operator, viewer, worker, got %q", b.Role)
		}
		switch {
		case b.Tenant == "*":
			if b.Role != "admin" {
				v.fail(key+".tenant", "may be * (all tenants) only for role admin")
			}
		case !tenantIDRe.MatchString(b.Tenant):
			v.fail(key+".tenant", "must be a tenant id (1–63 of a-z, 0-9, '-', '_') or *, got %q", b.Tenant)
		}
		if len(b.Kinds) > 0 && b.Role != "worker" {
			v.fail(key+".kinds", "only a worker binding may name kinds")
		}
	}
}

// tenantIDRe is task.ValidTenant's rule (config does not import task).
var tenantIDRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_\-]{0,62}$`)

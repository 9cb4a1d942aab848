package config

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
}

// AuthModes is the set of accepted credential kinds.
type AuthModes []string

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
type AuditConfig struct{}

// auth validates the auth block.
func (v *validator) auth(a *AuthConfig) {}

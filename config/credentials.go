package config

import (
	"net/url"
	"strings"
)

// NodeCredentials is how a worker-role node authenticates to the servers
// (docs/AUTH.md, "Clients"). Give at most one of a token file, an API key
// (inline or in a file) or OAuth2 client credentials.
type NodeCredentials struct {
	// TokenFile holds a bearer token, read again whenever the file changes
	// (a rotated OIDC token, a projected service-account token).
	TokenFile string `yaml:"token_file"`
	// APIKey is a Grey API key, grey_<id>_<secret> (write ${GREY_API_KEY}
	// to take it from the environment).
	APIKey Secret `yaml:"api_key"`
	// APIKeyFile holds a Grey API key.
	APIKeyFile string `yaml:"api_key_file"`
	// OAuth2 uses the client-credentials grant of the identity provider.
	OAuth2 OAuth2ClientConfig `yaml:"oauth2"`
}

// OAuth2ClientConfig is an OAuth2 confidential client.
type OAuth2ClientConfig struct {
	// ClientID identifies the client.
	ClientID string `yaml:"client_id"`
	// ClientSecret authenticates it.
	ClientSecret Secret `yaml:"client_secret"`
	// TokenURL is the provider's token endpoint.
	TokenURL string `yaml:"token_url"`
	// Scopes are requested with each token (only with the fields above).
	Scopes []string `yaml:"scopes"`
}

// Set reports whether the client is configured (scopes alone are not).
func (o *OAuth2ClientConfig) Set() bool {
	return o.ClientID != "" || o.ClientSecret != "" || o.TokenURL != ""
}

// credentials validates node.credentials.
func (v *validator) credentials(n *NodeConfig) {
	c := &n.Credentials
	var set []string
	if c.TokenFile != "" {
		set = append(set, "token_file")
	}
	if c.APIKey != "" {
		set = append(set, "api_key")
	}
	if c.APIKeyFile != "" {
		set = append(set, "api_key_file")
	}
	if c.OAuth2.Set() {
		set = append(set, "oauth2")
	}
	if len(set) == 0 {
		return
	}
	if n.Role != RoleWorker {
		v.fail("node.credentials", "is only used when node.role is %q (it is %q)", RoleWorker, n.Role)
	}
	if len(set) > 1 {
		v.fail("node.credentials", "give one credential, not %s", strings.Join(set, " and "))
	}
	if c.APIKey != "" && !strings.HasPrefix(string(c.APIKey), "grey_") {
		// The value is a secret: never quote it.
		v.fail("node.credentials.api_key", "must be a Grey API key (grey_<id>_<secret>)")
	}
	if c.OAuth2.Set() {
		v.nonEmpty("node.credentials.oauth2.client_id", c.OAuth2.ClientID)
		if c.OAuth2.ClientSecret == "" {
			v.fail("node.credentials.oauth2.client_secret", "is required")
		}
		if u, err := url.Parse(c.OAuth2.TokenURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.fail("node.credentials.oauth2.token_url", "must be the provider's http(s) token endpoint, got %q", c.OAuth2.TokenURL)
		}
	}
}

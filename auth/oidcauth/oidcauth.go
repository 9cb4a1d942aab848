// Package oidcauth authenticates requests carrying OIDC/JWT bearer tokens
// (`Authorization: Bearer <jwt>`), for example access tokens from Keycloak.
//
// Discovery and the verifier come from github.com/coreos/go-oidc/v3; the
// keys come from a JWKS key set of this package that rate-limits refetches
// for unknown key ids. Algorithms are pinned (never "none", never HMAC);
// iss, aud, exp, nbf and iat are checked with a configurable leeway; and a
// verified token is cached by its SHA-256 until its exp, as long as its key
// is still published. Claims become grants through auth.ClaimRules.
package oidcauth

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/greyerr"
)

// APIKeyPrefix starts every Grey API key; a bearer credential with it is
// left to the API-key authenticator.
const APIKeyPrefix = "grey_"

// MaxTokenBytes bounds a bearer token; longer ones are refused unparsed.
const MaxTokenBytes = 16 << 10

// Defaults for the zero values of Options.
const (
	DefaultJWKSRefreshInterval = 15 * time.Second
	DefaultJWKSMaxAge          = 5 * time.Minute
	// discoveryRetry is the least time between two discovery attempts
	// after a failure.
	discoveryRetry = 5 * time.Second
)

// DefaultAlgorithms are the accepted signature algorithms when Options
// names none.
func DefaultAlgorithms() []string { return []string{"RS256", "ES256", "EdDSA"} }

// allowedAlgorithms are those Options.Algorithms may name: asymmetric only.
func allowedAlgorithms() []string {
	return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
}

// Options configures an Authenticator (the auth.oidc block, converted by
// the caller so that this package does not depend on config).
type Options struct {
	// Issuer is the issuer URL: discovery base and required `iss`.
	Issuer string
	// Audience lists accepted `aud` values; a token must name one.
	Audience []string
	// Algorithms are the accepted JWS algorithms (default
	// DefaultAlgorithms). "none" and HS* are refused.
	Algorithms []string
	// Leeway is the clock skew allowed on exp, nbf and iat.
	Leeway time.Duration
	// JWKSRefreshInterval is the least time between two JWKS fetches
	// (default DefaultJWKSRefreshInterval).
	JWKSRefreshInterval time.Duration
	// JWKSMaxAge is how long fetched keys are used before they are fetched
	// again (default DefaultJWKSMaxAge).
	JWKSMaxAge time.Duration
	// TokenCacheSize bounds the verified-token cache; 0 turns it off.
	TokenCacheSize int
	// CAFile is a PEM bundle trusted for the issuer's HTTPS endpoints.
	CAFile string
	// HTTPClient, when set, is used for discovery and JWKS (CAFile is then
	// ignored).
	HTTPClient *http.Client
	// Claims maps verified claims to grants.
	Claims auth.ClaimRules
	// Now is the clock (default time.Now), for tests.
	Now func() time.Time
}

// Authenticator verifies OIDC bearer tokens. It implements
// auth.Authenticator and is safe for concurrent use.
type Authenticator struct {
	opts   Options
	algs   []jose.SignatureAlgorithm
	client *http.Client
	cache  *lru.Cache[[sha256.Size]byte, cached]

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
	keys     *keySet
	tried    time.Time
	lastErr  error
}

// cached is a verified token's principal and what keeps it valid.
type cached struct {
	p   *auth.Principal
	exp time.Time
	kid string
}

// New checks opts and returns an Authenticator. It does not contact the
// issuer: discovery happens on first use (or on Discover) and is retried
// after a failure, so greyd may start before its identity provider.
func New(opts Options) (*Authenticator, error) {
	opts.Issuer = strings.TrimSpace(opts.Issuer)
	if opts.Issuer == "" {
		return nil, errors.New("oidcauth: an issuer URL is required")
	}
	if len(opts.Audience) == 0 {
		return nil, errors.New("oidcauth: at least one audience is required")
	}
	if len(opts.Algorithms) == 0 {
		opts.Algorithms = DefaultAlgorithms()
	}
	a := &Authenticator{}
	for _, alg := range opts.Algorithms {
		if err := checkAlgorithm(alg); err != nil {
			return nil, err
		}
		a.algs = append(a.algs, jose.SignatureAlgorithm(alg))
	}
	if opts.Leeway < 0 || opts.Leeway > 5*time.Minute {
		return nil, fmt.Errorf("oidcauth: leeway %s is outside 0..5m", opts.Leeway)
	}
	if opts.JWKSRefreshInterval <= 0 {
		opts.JWKSRefreshInterval = DefaultJWKSRefreshInterval
	}
	if opts.JWKSMaxAge <= 0 {
		opts.JWKSMaxAge = DefaultJWKSMaxAge
	}
	opts.JWKSMaxAge = max(opts.JWKSMaxAge, opts.JWKSRefreshInterval)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := opts.Claims.Validate(); err != nil {
		return nil, fmt.Errorf("oidcauth: claims: %w", err)
	}
	a.client = opts.HTTPClient
	if a.client == nil {
		c, err := httpClient(opts.CAFile)
		if err != nil {
			return nil, err
		}
		a.client = c
	}
	if opts.TokenCacheSize > 0 {
		c, err := lru.New[[sha256.Size]byte, cached](opts.TokenCacheSize)
		if err != nil {
			return nil, fmt.Errorf("oidcauth: token cache: %w", err)
		}
		a.cache = c
	}
	a.opts = opts
	return a, nil
}

// checkAlgorithm refuses "none" (in any case), the HMAC algorithms and
// anything else that is not an asymmetric JWS algorithm.
func checkAlgorithm(alg string) error {
	switch {
	case strings.EqualFold(alg, "none"):
		return errors.New("oidcauth: algorithm none is never allowed")
	case strings.HasPrefix(strings.ToUpper(alg), "HS"):
		return fmt.Errorf("oidcauth: HMAC algorithm %s is not allowed: the verifier holds public keys", alg)
	case !slices.Contains(allowedAlgorithms(), alg):
		return fmt.Errorf("oidcauth: unsupported algorithm %q (allowed: %s)", alg, strings.Join(allowedAlgorithms(), ", "))
	}
	return nil
}

// httpClient returns a client trusting the system pool plus caFile.
func httpClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("oidcauth: ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("oidcauth: ca_file %s holds no PEM certificate", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

// Name implements auth.Authenticator.
func (a *Authenticator) Name() string { return string(auth.MethodOIDC) }

// Discover runs OIDC discovery now (it otherwise runs on first use), so
// that a caller can report an unreachable or misconfigured issuer at start.
func (a *Authenticator) Discover(ctx context.Context) error {
	_, err := a.setup(ctx)
	return err
}

// JWKSFetches returns how many JWKS requests the authenticator has made.
func (a *Authenticator) JWKSFetches() int64 {
	a.mu.Lock()
	k := a.keys
	a.mu.Unlock()
	if k == nil {
		return 0
	}
	return k.fetches.Load()
}

// setup returns the verifier, running discovery when it has not succeeded
// yet (at most once per discoveryRetry after a failure).
func (a *Authenticator) setup(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.verifier != nil {
		return a.verifier, nil
	}
	now := a.opts.Now()
	if !a.tried.IsZero() && now.Sub(a.tried) < discoveryRetry {
		return nil, a.lastErr
	}
	a.tried = now
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jwksFetchTimeout)
	defer cancel()
	p, err := oidc.NewProvider(oidc.ClientContext(dctx, a.client), a.opts.Issuer)
	if err != nil {
		a.lastErr = greyerr.Wrap(greyerr.Unavailable, err, "OIDC discovery at %s failed", a.opts.Issuer)
		return nil, a.lastErr
	}
	var meta struct {
		JWKSURL string `json:"jwks_uri"`
	}
	if err := p.Claims(&meta); err != nil || meta.JWKSURL == "" {
		a.lastErr = greyerr.New(greyerr.Unavailable, "OIDC discovery at %s names no jwks_uri", a.opts.Issuer)
		return nil, a.lastErr
	}
	a.keys = &keySet{
		url: meta.JWKSURL, client: a.client, algs: a.algs,
		minInterval: a.opts.JWKSRefreshInterval, maxAge: a.opts.JWKSMaxAge, now: a.opts.Now,
	}
	algs := make([]string, len(a.algs))
	for i, alg := range a.algs {
		algs[i] = string(alg)
	}
	a.verifier = oidc.NewVerifier(a.opts.Issuer, a.keys, &oidc.Config{
		SupportedSigningAlgs: algs,
		// audience, exp, nbf and iat are checked below with the configured
		// leeway; go-oidc allows none on exp and a fixed 5m on nbf.
		SkipClientIDCheck: true,
		SkipExpiryCheck:   true,
		Now:               a.opts.Now,
	})
	a.lastErr = nil
	return a.verifier, nil
}

// Authenticate implements auth.Authenticator: no Authorization header, a
// scheme other than Bearer, or a Grey API key yield auth.ErrNoCredentials;
// any other bearer token must verify.
func (a *Authenticator) Authenticate(ctx context.Context, r *http.Request) (*auth.Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, auth.ErrNoCredentials
	}
	scheme, tok, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return nil, auth.ErrNoCredentials
	}
	tok = strings.TrimSpace(tok)
	if strings.HasPrefix(tok, APIKeyPrefix) {
		return nil, auth.ErrNoCredentials
	}
	return a.Verify(ctx, tok)
}

// unauthenticated is the error of a refused token; the reason is what a
// WWW-Authenticate error would carry.
func unauthenticated(format string, args ...any) error {
	e := greyerr.New(greyerr.Unauthenticated, "bearer token refused: "+format, args...)
	e.Reason = "invalid_token"
	return e
}

// Verify verifies a raw token and returns its principal.
func (a *Authenticator) Verify(ctx context.Context, raw string) (*auth.Principal, error) {
	if raw == "" {
		return nil, unauthenticated("empty token")
	}
	if len(raw) > MaxTokenBytes {
		return nil, unauthenticated("token longer than %d bytes", MaxTokenBytes)
	}
	now := a.opts.Now()
	var key [sha256.Size]byte
	if a.cache != nil {
		key = sha256.Sum256([]byte(raw))
		if c, ok := a.cache.Get(key); ok {
			if now.Before(c.exp) && a.keyStillPublished(ctx, c.kid) {
				return clonePrincipal(c.p), nil
			}
			a.cache.Remove(key)
		}
	}
	v, err := a.setup(ctx)
	if err != nil {
		return nil, err
	}
	// parse the header once here for a clear message on a refused alg
	kid, err := a.header(raw)
	if err != nil {
		return nil, err
	}
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		return nil, a.explain(err)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return nil, unauthenticated("claims do not parse")
	}
	if err := a.checkTimes(claims, now); err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(tok.Audience, func(aud string) bool { return slices.Contains(a.opts.Audience, aud) }) {
		return nil, unauthenticated("audience %q does not include any of %q", truncList(tok.Audience), a.opts.Audience)
	}
	if tok.Subject == "" {
		return nil, unauthenticated("no sub claim")
	}
	p := a.opts.Claims.Principal("oidc:"+tok.Issuer+"#"+tok.Subject, auth.MethodOIDC, claims, tok.Expiry)
	if a.cache != nil {
		a.cache.Add(key, cached{p: clonePrincipal(p), exp: tok.Expiry, kid: kid})
	}
	return p, nil
}

// keyStillPublished reports whether kid is still in the key set, so that a
// cached token stops working once its key is rotated out.
func (a *Authenticator) keyStillPublished(ctx context.Context, kid string) bool {
	a.mu.Lock()
	k := a.keys
	a.mu.Unlock()
	return k != nil && kid != "" && k.has(ctx, kid)
}

// header parses the JWS header with the allowed algorithms only and
// returns its kid.
func (a *Authenticator) header(raw string) (string, error) {
	jws, err := jose.ParseSigned(raw, a.algs)
	if err != nil {
		if strings.Count(raw, ".") == 2 {
			if alg := rawAlg(raw); alg != "" && !slices.Contains(a.algs, jose.SignatureAlgorithm(alg)) {
				return "", unauthenticated("signing algorithm %q is not allowed (allowed: %s)", truncate(alg, 32), a.algList())
			}
		}
		return "", unauthenticated("malformed token")
	}
	if len(jws.Signatures) != 1 {
		return "", unauthenticated("malformed token: %d signatures", len(jws.Signatures))
	}
	return jws.Signatures[0].Header.KeyID, nil
}

// algList formats the allowed algorithms.
func (a *Authenticator) algList() string {
	s := make([]string, len(a.algs))
	for i, alg := range a.algs {
		s[i] = string(alg)
	}
	return strings.Join(s, ", ")
}

// rawAlg reads the alg of a compact JWS header without trusting it, only
// to name it in a message.
func rawAlg(raw string) string {
	h, _, _ := strings.Cut(raw, ".")
	b, err := decodeSegment(h)
	if err != nil {
		return ""
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(b, &hdr) != nil {
		return ""
	}
	return hdr.Alg
}

// explain turns a go-oidc or key-set error into a clear Unauthenticated
// error (or passes a discovery Unavailable through).
func (a *Authenticator) explain(err error) error {
	if greyerr.CodeOf(err) == greyerr.Unavailable {
		return err
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, errUnknownKey.Error()):
		return unauthenticated("signed with a key the issuer does not publish (unknown kid)")
	case strings.Contains(msg, errBadSignature.Error()):
		return unauthenticated("signature does not verify")
	case strings.Contains(msg, "issued by a different provider"):
		return unauthenticated("issuer is not %s", a.opts.Issuer)
	case strings.Contains(msg, "jwks:"):
		return greyerr.Wrap(greyerr.Unavailable, err, "the issuer's keys cannot be fetched")
	}
	return unauthenticated("malformed token")
}

// checkTimes checks exp (required), nbf and iat with the leeway.
func (a *Authenticator) checkTimes(claims map[string]any, now time.Time) error {
	l := a.opts.Leeway
	exp, ok := numericDate(claims["exp"])
	if !ok {
		return unauthenticated("no exp claim")
	}
	if !now.Before(exp.Add(l)) {
		return unauthenticated("token expired at %s", exp.UTC().Format(time.RFC3339))
	}
	if v, present := claims["nbf"]; present {
		nbf, ok := numericDate(v)
		if !ok {
			return unauthenticated("nbf is not a date")
		}
		if now.Add(l).Before(nbf) {
			return unauthenticated("token not valid before %s", nbf.UTC().Format(time.RFC3339))
		}
	}
	if v, present := claims["iat"]; present {
		iat, ok := numericDate(v)
		if !ok {
			return unauthenticated("iat is not a date")
		}
		if now.Add(l).Before(iat) {
			return unauthenticated("token issued in the future (%s)", iat.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// numericDate reads a JWT NumericDate (seconds since the epoch).
func numericDate(v any) (time.Time, bool) {
	f, ok := v.(float64)
	if !ok || f != f || f < 0 || f > 1e11 {
		return time.Time{}, false
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true
}

// clonePrincipal copies p so that a caller cannot change a cached one.
func clonePrincipal(p *auth.Principal) *auth.Principal {
	c := *p
	c.Grants = make([]auth.Grant, len(p.Grants))
	for i, g := range p.Grants {
		g.Kinds = slices.Clone(g.Kinds)
		c.Grants[i] = g
	}
	return &c
}

// truncList shortens a token-supplied list for messages.
func truncList(s []string) []string {
	if len(s) > 4 {
		s = s[:4]
	}
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = truncate(x, 64)
	}
	return out
}

// decodeSegment decodes one base64url segment of a compact JWS.
func decodeSegment(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

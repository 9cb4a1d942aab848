// Package samlauth is Grey's SAML 2.0 service provider for browser
// sign-in (github.com/crewjam/saml): SP metadata, the assertion consumer
// service, a login and a logout route, and an auth.Authenticator that turns
// the session cookie back into a principal.
//
// The session cookie (Secure, HttpOnly, SameSite=Lax) holds the assertion's
// NameID and the attributes the claim rules read, encrypted and
// authenticated with a session key (JWE, dir + A256GCM; go-jose): the
// browser can neither read nor change it. Each request maps the attributes
// through auth.ClaimRules, as OIDC claims are mapped. Responses are checked
// by crewjam/saml (signature against the IdP metadata, audience, recipient,
// time window, InResponseTo against the request this browser started) and
// each assertion is accepted once (a replay cache).
package samlauth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"
	"github.com/go-jose/go-jose/v4"

	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/greyerr"
)

// The SP's routes, under PathPrefix; Handler serves them all.
const (
	PathPrefix   = "/auth/saml/"
	MetadataPath = PathPrefix + "metadata"
	ACSPath      = PathPrefix + "acs"
	LoginPath    = PathPrefix + "login"
	LogoutPath   = PathPrefix + "logout"
)

// Defaults for the zero values of Options.
const (
	DefaultSessionTTL      = 8 * time.Hour
	DefaultCookieName      = "grey_session"
	DefaultReplayCacheSize = 100000
)

// Options configures the service provider (the auth.saml block, converted
// by the caller).
type Options struct {
	// RootURL is Grey's external base URL, https (the cookie is Secure):
	// the ACS is RootURL + ACSPath.
	RootURL string
	// EntityID is the SP's entity id, the client id at the IdP (default
	// RootURL + MetadataPath).
	EntityID string
	// IDPMetadataURL is where the IdP's metadata is fetched at New; or
	// IDPMetadata holds it.
	IDPMetadataURL string
	// IDPMetadata is the IdP's metadata XML.
	IDPMetadata []byte
	// Key and Certificate are the SP's key pair (metadata, tracked-request
	// cookies, decryption of encrypted assertions). Nil: an ephemeral pair
	// made at New.
	Key         crypto.Signer
	Certificate *x509.Certificate
	// SessionKey encrypts and authenticates the session cookie: 32 bytes,
	// the same on every node. Nil: a random key (sessions then last only as
	// long as the process, on this node).
	SessionKey []byte
	// SessionTTL bounds a session (default DefaultSessionTTL); the IdP's
	// SessionNotOnOrAfter shortens it.
	SessionTTL time.Duration
	// CookieName names the session cookie (default DefaultCookieName).
	CookieName string
	// ReplayCacheSize bounds the accepted-assertion ids remembered
	// (default DefaultReplayCacheSize).
	ReplayCacheSize int
	// Claims maps assertion attributes to grants.
	Claims auth.ClaimRules
	// HTTPClient fetches the IdP metadata (default: a client with a 30 s
	// timeout).
	HTTPClient *http.Client
	// Log receives refused responses (default: discarded).
	Log *slog.Logger
	// Now is the clock of session expiry (default time.Now), for tests;
	// responses are checked against the real clock.
	Now func() time.Time
}

// SP is the SAML service provider and its authenticator.
type SP struct {
	opts    Options
	mw      *samlsp.Middleware
	cookies samlsp.CookieSessionProvider
	codec   *sessionCodec
}

// New fetches (or parses) the IdP metadata and returns the SP.
func New(ctx context.Context, opts Options) (*SP, error) {
	root, err := url.Parse(strings.TrimRight(opts.RootURL, "/"))
	if err != nil || root.Host == "" || (root.Scheme != "https" && root.Scheme != "http") {
		return nil, fmt.Errorf("samlauth: root URL %q is not an absolute http(s) URL", opts.RootURL)
	}
	if opts.EntityID == "" {
		opts.EntityID = root.String() + MetadataPath
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = DefaultSessionTTL
	}
	if opts.CookieName == "" {
		opts.CookieName = DefaultCookieName
	}
	if opts.ReplayCacheSize <= 0 {
		opts.ReplayCacheSize = DefaultReplayCacheSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if err := opts.Claims.Validate(); err != nil {
		return nil, fmt.Errorf("samlauth: claims: %w", err)
	}
	switch {
	case opts.SessionKey == nil:
		opts.SessionKey = make([]byte, 32)
		if _, err := rand.Read(opts.SessionKey); err != nil {
			return nil, fmt.Errorf("samlauth: session key: %w", err)
		}
	case len(opts.SessionKey) != 32:
		return nil, fmt.Errorf("samlauth: the session key must be 32 bytes, got %d", len(opts.SessionKey))
	}
	if (opts.Key == nil) != (opts.Certificate == nil) {
		return nil, errors.New("samlauth: give both the SP key and its certificate, or neither")
	}
	if opts.Key == nil {
		if opts.Key, opts.Certificate, err = ephemeralPair(opts.EntityID, opts.Now()); err != nil {
			return nil, err
		}
	}
	var idp *saml.EntityDescriptor
	switch {
	case len(opts.IDPMetadata) > 0:
		idp, err = samlsp.ParseMetadata(opts.IDPMetadata)
	case opts.IDPMetadataURL != "":
		var u *url.URL
		if u, err = url.Parse(opts.IDPMetadataURL); err == nil {
			idp, err = samlsp.FetchMetadata(ctx, opts.HTTPClient, *u)
		}
	default:
		err = errors.New("no IdP metadata URL or document")
	}
	if err != nil {
		return nil, fmt.Errorf("samlauth: IdP metadata: %w", err)
	}
	mw, err := samlsp.New(samlsp.Options{
		EntityID:           opts.EntityID,
		URL:                *root,
		Key:                opts.Key,
		Certificate:        opts.Certificate,
		HTTPClient:         opts.HTTPClient,
		IDPMetadata:        idp,
		MetadataPath:       MetadataPath,
		AcsPath:            ACSPath,
		SloPath:            PathPrefix + "slo",
		DefaultRedirectURI: "/",
		// the ACS is reached by a cross-site POST from the IdP: the
		// tracking cookie must travel with it (it is signed and short-lived)
		CookieSameSite:       http.SameSiteNoneMode,
		TrackedRequestMaxAge: 10 * time.Minute,
		ReplayCache:          samlsp.NewMemoryReplayCache(opts.ReplayCacheSize),
	})
	if err != nil {
		return nil, fmt.Errorf("samlauth: %w", err)
	}
	s := &SP{opts: opts, mw: mw}
	s.codec = &sessionCodec{key: opts.SessionKey, ttl: opts.SessionTTL, now: opts.Now, keep: attributeNames(opts.Claims)}
	s.cookies = samlsp.CookieSessionProvider{
		Name: opts.CookieName, HTTPOnly: true, Secure: true, SameSite: http.SameSiteLaxMode,
		MaxAge: opts.SessionTTL, Path: "/", Codec: s.codec,
	}
	mw.Session = s.cookies
	mw.OnError = s.onError
	return s, nil
}

// ephemeralPair makes a self-signed RSA key pair for the SP, valid a year.
func ephemeralPair(cn string, now time.Time) (crypto.Signer, *x509.Certificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, fmt.Errorf("samlauth: SP key: %w", err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: truncate(cn, 64)},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("samlauth: SP certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("samlauth: SP certificate: %w", err)
	}
	return key, cert, nil
}

// LoadKeyPair reads the SP's PEM certificate and key files.
func LoadKeyPair(certFile, keyFile string) (crypto.Signer, *x509.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("samlauth: SP key pair: %w", err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("samlauth: SP key cannot sign")
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("samlauth: SP certificate: %w", err)
	}
	return signer, cert, nil
}

// LoadSessionKey reads a session key file: 32 raw bytes, or 64 hex digits
// (with surrounding white space allowed).
func LoadSessionKey(file string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("samlauth: session key: %w", err)
	}
	if len(b) == 32 {
		return b, nil
	}
	if k, err := hex.DecodeString(string(bytes.TrimSpace(b))); err == nil && len(k) == 32 {
		return k, nil
	}
	return nil, fmt.Errorf("samlauth: session key file %s must hold 32 bytes or 64 hex digits", file)
}

// Name implements auth.Authenticator.
func (s *SP) Name() string { return string(auth.MethodSAML) }

// EntityID returns the SP's entity id (the client id at the IdP).
func (s *SP) EntityID() string { return s.opts.EntityID }

// Handler serves the SP routes under PathPrefix: GET metadata, POST acs,
// GET login?return_to=/path, POST logout. Mount it at PathPrefix; the
// routes need no principal.
func (s *SP) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+MetadataPath, s.mw.ServeMetadata)
	mux.HandleFunc("POST "+ACSPath, s.mw.ServeACS)
	mux.HandleFunc("GET "+LoginPath, s.login)
	mux.HandleFunc("POST "+LogoutPath, s.logout)
	return mux
}

// login redirects to return_to when the browser has a session, else
// starts the SAML flow (which comes back here after the ACS).
func (s *SP) login(w http.ResponseWriter, r *http.Request) {
	to := r.URL.Query().Get("return_to")
	if !localPath(to) {
		to = "/"
	}
	if _, err := s.cookies.GetSession(r); err == nil {
		http.Redirect(w, r, to, http.StatusFound)
		return
	}
	s.mw.HandleStartAuthFlow(w, r)
}

// logout deletes the session cookie.
func (s *SP) logout(w http.ResponseWriter, r *http.Request) {
	_ = s.cookies.DeleteSession(w, r)
	w.WriteHeader(http.StatusNoContent)
}

// onError answers a refused SAML response with 403 and logs why (the
// reason stays out of the page).
func (s *SP) onError(w http.ResponseWriter, r *http.Request, err error) {
	var ire *saml.InvalidResponseError
	if errors.As(err, &ire) {
		s.opts.Log.Warn("saml: response refused", "err", ire.PrivateErr, "remote", r.RemoteAddr)
	} else {
		s.opts.Log.Warn("saml: response refused", "err", err, "remote", r.RemoteAddr)
	}
	http.Error(w, "SAML sign-in refused", http.StatusForbidden)
}

// localPath reports whether p is a path on this site (no scheme, host or
// protocol-relative //), so that return_to is not an open redirect.
func localPath(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "//") && !strings.ContainsAny(p, "\\\r\n")
}

// Authenticate implements auth.Authenticator: no session cookie yields
// auth.ErrNoCredentials; a cookie that does not decrypt, or has expired,
// is refused.
func (s *SP) Authenticate(ctx context.Context, r *http.Request) (*auth.Principal, error) {
	c, err := r.Cookie(s.opts.CookieName)
	if err != nil || c.Value == "" {
		return nil, auth.ErrNoCredentials
	}
	sess, err := s.codec.decode(c.Value)
	if err != nil {
		e := greyerr.New(greyerr.Unauthenticated, "SAML session refused: %v; sign in again at %s", err, LoginPath)
		e.Reason = "invalid_session"
		return nil, e
	}
	claims := make(map[string]any, len(sess.Attrs))
	for k, vs := range sess.Attrs {
		l := make([]any, len(vs))
		for i, v := range vs {
			l[i] = v
		}
		claims[k] = l
	}
	p := s.opts.Claims.Principal("saml:"+sess.NameID, auth.MethodSAML, claims, time.Unix(sess.Expires, 0))
	if p.Name == "" {
		p.Name = sess.NameID
	}
	return p, nil
}

// attributeNames are the attributes the rules read: only these go into the
// cookie, which must stay under 4 KiB.
func attributeNames(r auth.ClaimRules) map[string]bool {
	keep := map[string]bool{}
	for _, n := range []string{r.Permissions, r.Tenant, r.Roles, r.Username} {
		if n != "" && n != "-" {
			keep[n] = true
		}
	}
	for _, b := range r.Bindings {
		if b.Claim == "" {
			keep["groups"] = true
		} else {
			keep[b.Claim] = true
		}
	}
	return keep
}

// session is what the cookie carries.
type session struct {
	NameID   string              `json:"sub"`
	Attrs    map[string][]string `json:"attrs,omitempty"`
	IssuedAt int64               `json:"iat"`
	Expires  int64               `json:"exp"`
}

// sessionCodec encrypts sessions into cookie values (JWE compact, dir +
// A256GCM) and back; it implements samlsp.SessionCodec.
type sessionCodec struct {
	key  []byte
	ttl  time.Duration
	now  func() time.Time
	keep map[string]bool
}

// maxAttrValues bounds the values kept per attribute.
const maxAttrValues = 64

// New implements samlsp.SessionCodec.
func (c *sessionCodec) New(a *saml.Assertion) (samlsp.Session, error) {
	if a.Subject == nil || a.Subject.NameID == nil || a.Subject.NameID.Value == "" {
		return nil, errors.New("samlauth: assertion has no NameID")
	}
	now := c.now()
	exp := now.Add(c.ttl)
	for _, st := range a.AuthnStatements {
		if st.SessionNotOnOrAfter != nil && st.SessionNotOnOrAfter.Before(exp) {
			exp = *st.SessionNotOnOrAfter
		}
	}
	s := &session{NameID: a.Subject.NameID.Value, IssuedAt: now.Unix(), Expires: exp.Unix(), Attrs: map[string][]string{}}
	for _, st := range a.AttributeStatements {
		for _, attr := range st.Attributes {
			name := attr.Name
			if !c.keep[name] && c.keep[attr.FriendlyName] {
				name = attr.FriendlyName
			}
			if !c.keep[name] {
				continue
			}
			for _, v := range attr.Values {
				if len(s.Attrs[name]) < maxAttrValues {
					s.Attrs[name] = append(s.Attrs[name], v.Value)
				}
			}
		}
	}
	return s, nil
}

// Encode implements samlsp.SessionCodec.
func (c *sessionCodec) Encode(v samlsp.Session) (string, error) {
	s, ok := v.(*session)
	if !ok {
		return "", fmt.Errorf("samlauth: cannot encode a %T session", v)
	}
	payload, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.DIRECT, Key: c.key}, nil)
	if err != nil {
		return "", fmt.Errorf("samlauth: session cipher: %w", err)
	}
	obj, err := enc.Encrypt(payload)
	if err != nil {
		return "", fmt.Errorf("samlauth: encrypting the session: %w", err)
	}
	return obj.CompactSerialize()
}

// Decode implements samlsp.SessionCodec.
func (c *sessionCodec) Decode(v string) (samlsp.Session, error) { return c.decode(v) }

// maxCookieBytes bounds a session cookie value.
const maxCookieBytes = 8 << 10

// decode decrypts and checks a cookie value.
func (c *sessionCodec) decode(v string) (*session, error) {
	if len(v) > maxCookieBytes {
		return nil, errors.New("session cookie too long")
	}
	obj, err := jose.ParseEncrypted(v, []jose.KeyAlgorithm{jose.DIRECT}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		return nil, errors.New("session cookie malformed")
	}
	payload, err := obj.Decrypt(c.key)
	if err != nil {
		return nil, errors.New("session cookie does not decrypt (tampered, or another key)")
	}
	var s session
	if err := json.Unmarshal(payload, &s); err != nil || s.NameID == "" {
		return nil, errors.New("session cookie malformed")
	}
	if !c.now().Before(time.Unix(s.Expires, 0)) {
		return nil, fmt.Errorf("session expired at %s", time.Unix(s.Expires, 0).UTC().Format(time.RFC3339))
	}
	return &s, nil
}

// truncate cuts s to at most n bytes.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

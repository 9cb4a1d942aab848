// Command oidcprovider is a small OpenID Connect provider for Grey's tests.
//
// It is built on github.com/zitadel/oidc/v3/pkg/op (a certified OpenID
// Provider library) with an in-memory storage, and serves on loopback:
//
//   - discovery:   /.well-known/openid-configuration
//   - JWKS:        /keys
//   - token:       /oauth/token (grant types client_credentials and password)
//   - userinfo, introspection, health (/healthz) and readiness (/ready)
//
// The resource owner password grant is not part of the op package; this
// program handles grant_type=password itself in front of the op router and
// mints the tokens with op.CreateTokenResponse, so that both grants produce
// JWTs signed by the same key that /keys publishes.
//
// Every token carries Grey's custom claims grey_tenant_id (string) and
// grey_roles (array of strings). The built-in fixtures (see defaultFixtures)
// can be replaced with -config FILE (JSON, same shape as fixtures).
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// GrantTypePassword is the OAuth 2.0 resource owner password credentials grant.
const GrantTypePassword oidc.GrantType = "password"

// Principal is a user or a service client with Grey's custom claims.
type Principal struct {
	TenantID string   `json:"tenant_id"`
	Roles    []string `json:"roles"`
	Email    string   `json:"email,omitempty"`
	Name     string   `json:"name,omitempty"`
}

// ClientFixture is a registered OAuth client.
type ClientFixture struct {
	Secret string   `json:"secret"`
	Grants []string `json:"grants"` // client_credentials, password
	Principal
}

// UserFixture is a user for the password grant.
type UserFixture struct {
	Password string `json:"password"`
	Principal
}

type fixtures struct {
	Clients map[string]ClientFixture `json:"clients"`
	Users   map[string]UserFixture   `json:"users"`
}

func defaultFixtures() fixtures {
	return fixtures{
		Clients: map[string]ClientFixture{
			"grey-service": {Secret: "grey-service-secret", Grants: []string{"client_credentials"},
				Principal: Principal{TenantID: "tenant-system", Roles: []string{"service", "scheduler"}}},
			"grey-cli": {Secret: "grey-cli-secret", Grants: []string{"password", "client_credentials"},
				Principal: Principal{TenantID: "tenant-cli", Roles: []string{"cli"}}},
		},
		Users: map[string]UserFixture{
			"alice": {Password: "alice-password", Principal: Principal{TenantID: "tenant-a", Roles: []string{"admin", "operator"}, Email: "alice@example.test", Name: "Alice"}},
			"bob":   {Password: "bob-password", Principal: Principal{TenantID: "tenant-b", Roles: []string{"viewer"}, Email: "bob@example.test", Name: "Bob"}},
		},
	}
}

// ---- client ----

type client struct {
	id string
	f  ClientFixture
}

func (c *client) GetID() string                       { return c.id }
func (c *client) RedirectURIs() []string              { return nil }
func (c *client) PostLogoutRedirectURIs() []string    { return nil }
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *client) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodBasic }
func (c *client) ResponseTypes() []oidc.ResponseType  { return nil }
func (c *client) GrantTypes() []oidc.GrantType {
	out := make([]oidc.GrantType, 0, len(c.f.Grants))
	for _, g := range c.f.Grants {
		out = append(out, oidc.GrantType(g))
	}
	return out
}
func (c *client) LoginURL(string) string               { return "" }
func (c *client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeJWT }
func (c *client) IDTokenLifetime() time.Duration       { return time.Hour }
func (c *client) DevMode() bool                        { return true }
func (c *client) IsScopeAllowed(string) bool           { return true }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// ---- requests ----

type tokenRequest struct {
	subject  string
	clientID string
	scopes   []string
	authTime time.Time
	amr      []string
}

func (r *tokenRequest) GetSubject() string     { return r.subject }
func (r *tokenRequest) GetAudience() []string  { return []string{r.clientID} }
func (r *tokenRequest) GetScopes() []string    { return r.scopes }
func (r *tokenRequest) GetAMR() []string       { return r.amr }
func (r *tokenRequest) GetAuthTime() time.Time { return r.authTime }
func (r *tokenRequest) GetClientID() string    { return r.clientID }

// ---- keys ----

type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct{ *signingKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.key.PublicKey }

// ---- storage ----

type issuedToken struct {
	subject  string
	clientID string
	scopes   []string
	expires  time.Time
}

type storage struct {
	fx  fixtures
	key *signingKey

	mu     sync.Mutex
	tokens map[string]issuedToken
}

var errUnsupported = errors.New("not supported by the grey test provider")

func newStorage(fx fixtures) (*storage, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(k.PublicKey.N.Bytes())
	return &storage{fx: fx, key: &signingKey{id: hex.EncodeToString(sum[:8]), key: k}, tokens: map[string]issuedToken{}}, nil
}

func (s *storage) principal(subject string) (Principal, bool) {
	if u, ok := s.fx.Users[subject]; ok {
		return u.Principal, true
	}
	if c, ok := s.fx.Clients[subject]; ok {
		return c.Principal, true
	}
	return Principal{}, false
}

func (s *storage) greyClaims(subject string) map[string]any {
	p, ok := s.principal(subject)
	if !ok {
		return nil
	}
	roles := p.Roles
	if roles == nil {
		roles = []string{}
	}
	return map[string]any{"grey_tenant_id": p.TenantID, "grey_roles": roles}
}

func (s *storage) setUserinfo(ui *oidc.UserInfo, subject string) {
	ui.Subject = subject
	p, ok := s.principal(subject)
	if !ok {
		return
	}
	if p.Email != "" {
		ui.Email = p.Email
		ui.EmailVerified = true
	}
	if p.Name != "" {
		ui.Name = p.Name
		ui.PreferredUsername = subject
	}
	for k, v := range s.greyClaims(subject) {
		ui.AppendClaims(k, v)
	}
}

func (s *storage) checkClient(id, secret string) (*client, error) {
	c, ok := s.fx.Clients[id]
	if !ok || subtle.ConstantTimeCompare([]byte(c.Secret), []byte(secret)) != 1 {
		return nil, errors.New("invalid client credentials")
	}
	return &client{id: id, f: c}, nil
}

// AuthStorage

func (s *storage) CreateAuthRequest(context.Context, *oidc.AuthRequest, string) (op.AuthRequest, error) {
	return nil, errUnsupported
}
func (s *storage) AuthRequestByID(context.Context, string) (op.AuthRequest, error) {
	return nil, errUnsupported
}
func (s *storage) AuthRequestByCode(context.Context, string) (op.AuthRequest, error) {
	return nil, errUnsupported
}
func (s *storage) SaveAuthCode(context.Context, string, string) error { return errUnsupported }
func (s *storage) DeleteAuthRequest(context.Context, string) error    { return nil }

func (s *storage) CreateAccessToken(_ context.Context, r op.TokenRequest) (string, time.Time, error) {
	id := randomID()
	exp := time.Now().UTC().Add(time.Hour)
	clientID := ""
	if cr, ok := r.(interface{ GetClientID() string }); ok {
		clientID = cr.GetClientID()
	}
	s.mu.Lock()
	s.tokens[id] = issuedToken{subject: r.GetSubject(), clientID: clientID, scopes: r.GetScopes(), expires: exp}
	s.mu.Unlock()
	return id, exp, nil
}

func (s *storage) CreateAccessAndRefreshTokens(ctx context.Context, r op.TokenRequest, _ string) (string, string, time.Time, error) {
	id, exp, err := s.CreateAccessToken(ctx, r)
	return id, "", exp, err
}
func (s *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}
func (s *storage) TerminateSession(context.Context, string, string) error { return nil }
func (s *storage) RevokeToken(_ context.Context, tok, _, _ string) *oidc.Error {
	s.mu.Lock()
	delete(s.tokens, tok)
	s.mu.Unlock()
	return nil
}
func (s *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}
func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return s.key, nil }
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}
func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{s.key}}, nil
}

// OPStorage

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c, ok := s.fx.Clients[id]
	if !ok {
		return nil, fmt.Errorf("unknown client %q", id)
	}
	return &client{id: id, f: c}, nil
}
func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	_, err := s.checkClient(id, secret)
	return err
}
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}
func (s *storage) SetUserinfoFromRequest(_ context.Context, ui *oidc.UserInfo, r op.IDTokenRequest, _ []string) error {
	s.setUserinfo(ui, r.GetSubject())
	return nil
}
func (s *storage) SetUserinfoFromToken(_ context.Context, ui *oidc.UserInfo, tokenID, subject, _ string) error {
	s.mu.Lock()
	t, ok := s.tokens[tokenID]
	s.mu.Unlock()
	if !ok || time.Now().After(t.expires) {
		return errors.New("token is not active")
	}
	s.setUserinfo(ui, t.subject)
	return nil
}
func (s *storage) SetIntrospectionFromToken(_ context.Context, ir *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	s.mu.Lock()
	t, ok := s.tokens[tokenID]
	s.mu.Unlock()
	if !ok || time.Now().After(t.expires) {
		return errors.New("token is not active")
	}
	ir.Active = true
	ir.Subject = t.subject
	ir.ClientID = t.clientID
	ir.Scope = t.scopes
	ir.Expiration = oidc.FromTime(t.expires)
	if ir.Claims == nil {
		ir.Claims = map[string]any{}
	}
	for k, v := range s.greyClaims(t.subject) {
		ir.Claims[k] = v
	}
	return nil
}
func (s *storage) GetPrivateClaimsFromScopes(_ context.Context, userID, _ string, _ []string) (map[string]any, error) {
	return s.greyClaims(userID), nil
}
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errUnsupported
}
func (s *storage) ValidateJWTProfileScopes(_ context.Context, _ string, scopes []string) ([]string, error) {
	return scopes, nil
}
func (s *storage) Health(context.Context) error { return nil }

// ClientCredentialsStorage

func (s *storage) ClientCredentials(_ context.Context, id, secret string) (op.Client, error) {
	c, err := s.checkClient(id, secret)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(c.f.Grants, string(oidc.GrantTypeClientCredentials)) {
		return nil, errors.New("client_credentials not allowed for this client")
	}
	return c, nil
}
func (s *storage) ClientCredentialsTokenRequest(_ context.Context, id string, scopes []string) (op.TokenRequest, error) {
	return &tokenRequest{subject: id, clientID: id, scopes: scopes, authTime: time.Now().UTC()}, nil
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ---- HTTP ----

type server struct {
	issuer   string
	st       *storage
	provider *op.Provider
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// passwordGrant implements RFC 6749 §4.3 with tokens minted by the op package.
func (s *server) passwordGrant(w http.ResponseWriter, r *http.Request, form url.Values) {
	id, secret, ok := r.BasicAuth()
	if ok {
		// RFC 6749 §2.3.1: form-urlencoded in the basic header.
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	c, err := s.st.checkClient(id, secret)
	if err != nil {
		oauthError(w, http.StatusUnauthorized, "invalid_client", err.Error())
		return
	}
	if !slices.Contains(c.f.Grants, string(GrantTypePassword)) {
		oauthError(w, http.StatusBadRequest, "unauthorized_client", "password grant not allowed for this client")
		return
	}
	username, password := form.Get("username"), form.Get("password")
	u, ok := s.st.fx.Users[username]
	if !ok || subtle.ConstantTimeCompare([]byte(u.Password), []byte(password)) != 1 {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "invalid username or password")
		return
	}
	scopes := strings.Fields(form.Get("scope"))
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID}
	}
	req := &tokenRequest{subject: username, clientID: id, scopes: scopes, authTime: time.Now().UTC(), amr: []string{"pwd"}}
	ctx := op.ContextWithIssuer(r.Context(), s.issuer)
	resp, err := op.CreateTokenResponse(ctx, req, c, s.provider, true, "", "")
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	if !slices.Contains(scopes, oidc.ScopeOpenID) {
		resp.IDToken = ""
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(resp)
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/oauth/token" && r.Method == http.MethodPost:
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			oauthError(w, http.StatusBadRequest, "invalid_request", err.Error())
			return
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			oauthError(w, http.StatusBadRequest, "invalid_request", err.Error())
			return
		}
		if form.Get("grant_type") == string(GrantTypePassword) {
			s.passwordGrant(w, r, form)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		s.provider.ServeHTTP(w, r)
	case r.URL.Path == "/.well-known/openid-configuration":
		// Advertise the password grant handled above.
		rec := httptest.NewRecorder()
		s.provider.ServeHTTP(rec, r)
		var doc map[string]any
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &doc) != nil {
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
			return
		}
		gts, _ := doc["grant_types_supported"].([]any)
		doc["grant_types_supported"] = append(gts, string(GrantTypePassword))
		claims := asSlice(doc["claims_supported"])
		for _, c := range []string{"grey_tenant_id", "grey_roles"} {
			if !slices.Contains(claims, any(c)) {
				claims = append(claims, c)
			}
		}
		doc["claims_supported"] = claims
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	default:
		s.provider.ServeHTTP(w, r)
	}
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// newHandler builds the provider for issuer with the given fixtures.
func newHandler(issuer string, fx fixtures) (http.Handler, error) {
	st, err := newStorage(fx)
	if err != nil {
		return nil, err
	}
	var cryptoKey [32]byte
	if _, err := rand.Read(cryptoKey[:]); err != nil {
		return nil, err
	}
	cfg := &op.Config{
		CryptoKey:       cryptoKey,
		AuthMethodPost:  true,
		SupportedClaims: append(slices.Clone(op.DefaultSupportedClaims), "grey_tenant_id", "grey_roles"),
	}
	provider, err := op.NewProvider(cfg, st, op.StaticIssuer(issuer), op.WithAllowInsecure())
	if err != nil {
		return nil, err
	}
	return &server{issuer: issuer, st: st, provider: provider}, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9096", "listen address (host:port)")
	issuer := flag.String("issuer", "", "issuer URL (default http://ADDR)")
	configFile := flag.String("config", "", "optional JSON file with {clients:{...}, users:{...}}")
	flag.Parse()

	fx := defaultFixtures()
	if *configFile != "" {
		b, err := os.ReadFile(*configFile)
		if err != nil {
			log.Fatalf("read config: %v", err)
		}
		fx = fixtures{}
		if err := json.Unmarshal(b, &fx); err != nil {
			log.Fatalf("parse config %s: %v", *configFile, err)
		}
	}
	if *issuer == "" {
		*issuer = "http://" + *addr
	}
	handler, err := newHandler(*issuer, fx)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("listen %s: %v", *addr, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		<-ch
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	log.Printf("grey oidc provider: issuer %s listening on %s", *issuer, ln.Addr())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

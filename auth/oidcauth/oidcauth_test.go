package oidcauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/greyerr"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// signingKey is a locally generated key with its kid.
type signingKey struct {
	kid string
	alg jose.SignatureAlgorithm
	key crypto.Signer
}

func newRSA(t testing.TB, kid string) signingKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid, jose.RS256, k}
}

func newEC(t testing.TB, kid string) signingKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid, jose.ES256, k}
}

func newEd(t testing.TB, kid string) signingKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid, jose.EdDSA, k}
}

func (k signingKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.key.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

// issuer is a local OIDC provider: discovery and a JWKS whose keys a test
// may change, counting JWKS requests.
type issuer struct {
	srv       *httptest.Server
	mu        sync.Mutex
	keys      []signingKey
	jwksHits  atomic.Int64
	discovery atomic.Int64
}

func newIssuer(t testing.TB, keys ...signingKey) *issuer {
	is := &issuer{keys: keys}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		is.discovery.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/jwks",
			"authorization_endpoint": is.srv.URL + "/auth", "token_endpoint": is.srv.URL + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256", "EdDSA"},
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		is.jwksHits.Add(1)
		is.mu.Lock()
		set := jose.JSONWebKeySet{}
		for _, k := range is.keys {
			set.Keys = append(set.Keys, k.jwk())
		}
		is.mu.Unlock()
		_ = json.NewEncoder(w).Encode(set)
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

func (is *issuer) setKeys(keys ...signingKey) {
	is.mu.Lock()
	is.keys = keys
	is.mu.Unlock()
}

// sign makes a compact JWS of claims with k.
func sign(t testing.TB, k signingKey, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.kid))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fixture is an authenticator against a local issuer with a fake clock.
type fixture struct {
	is  *issuer
	clk *clock
	a   *Authenticator
	key signingKey
}

func newFixture(t testing.TB, mod func(*Options), keys ...signingKey) *fixture {
	t.Helper()
	if len(keys) == 0 {
		keys = []signingKey{newRSA(t, "rsa-1")}
	}
	f := &fixture{is: newIssuer(t, keys...), clk: &clock{t: time.Unix(1_800_000_000, 0)}, key: keys[0]}
	o := Options{
		Issuer: f.is.srv.URL, Audience: []string{"grey"}, Leeway: 30 * time.Second,
		JWKSRefreshInterval: 10 * time.Second, JWKSMaxAge: time.Minute, TokenCacheSize: 100,
		Claims: auth.DefaultClaimRules(), Now: f.clk.Now,
	}
	if mod != nil {
		mod(&o)
	}
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	f.a = a
	return f
}

// claims returns valid claims for alice at the fixture's time.
func (f *fixture) claims(mod func(map[string]any)) map[string]any {
	now := f.clk.Now().Unix()
	c := map[string]any{
		"iss": f.is.srv.URL, "sub": "u-alice", "aud": "grey", "exp": now + 300, "iat": now, "nbf": now,
		"preferred_username": "alice", "permissions": []string{"acme:operator"},
	}
	if mod != nil {
		mod(c)
	}
	return c
}

func bearer(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v1/tasks", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

// refused asserts a 401-coded refusal whose message contains want.
func refused(t *testing.T, p *auth.Principal, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted (principal %+v); want refusal %q", p, want)
	}
	if greyerr.CodeOf(err) != greyerr.Unauthenticated {
		t.Fatalf("error %v has code %s, want unauthenticated", err, greyerr.CodeOf(err))
	}
	if errors.Is(err, auth.ErrNoCredentials) {
		t.Fatalf("refusal is ErrNoCredentials")
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
}

func TestValidTokens(t *testing.T) {
	for _, k := range []signingKey{newRSA(t, "r"), newEC(t, "e"), newEd(t, "d")} {
		t.Run(string(k.alg), func(t *testing.T) {
			f := newFixture(t, nil, k)
			p, err := f.a.Authenticate(context.Background(), bearer(sign(t, k, f.claims(nil))))
			if err != nil {
				t.Fatal(err)
			}
			want := &auth.Principal{
				Subject: "oidc:" + f.is.srv.URL + "#u-alice", Name: "alice", Method: auth.MethodOIDC,
				Grants:  []auth.Grant{{Tenant: "acme", Role: auth.RoleOperator}},
				Expires: time.Unix(f.clk.Now().Unix()+300, 0),
			}
			if !reflect.DeepEqual(p, want) {
				t.Fatalf("principal = %+v\nwant %+v", p, want)
			}
		})
	}
}

func TestNoCredentials(t *testing.T) {
	f := newFixture(t, nil)
	for name, h := range map[string]string{
		"missing": "", "basic": "Basic YWxpY2U6cHc=", "api key": "Bearer grey_k1.secret", "other scheme": "Token abc",
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		if _, err := f.a.Authenticate(context.Background(), r); !errors.Is(err, auth.ErrNoCredentials) {
			t.Errorf("%s: err = %v, want ErrNoCredentials", name, err)
		}
	}
	if f.is.discovery.Load() != 0 {
		t.Errorf("requests without a token contacted the issuer")
	}
	p, err := f.a.Authenticate(context.Background(), bearer(""))
	refused(t, p, err, "empty token")
}

func TestBadTokens(t *testing.T) {
	f := newFixture(t, nil)
	k := f.key
	other := newRSA(t, "rsa-1") // same kid, another key
	now := f.clk.Now().Unix()
	pubDER, _ := x509.MarshalPKIXPublicKey(k.key.Public())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hs := func(secret []byte) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret},
			(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.kid))
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := json.Marshal(f.claims(func(c map[string]any) { c["permissions"] = []string{"*:admin"} }))
		jws, _ := s.Sign(payload)
		out, _ := jws.CompactSerialize()
		return out
	}
	unsigned := func(alg string) string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"` + alg + `","typ":"JWT","kid":"rsa-1"}`))
		payload, _ := json.Marshal(f.claims(nil))
		return h + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
	}
	good := sign(t, k, f.claims(nil))
	parts := strings.Split(good, ".")
	tamperedPayload, _ := json.Marshal(f.claims(func(c map[string]any) { c["permissions"] = []string{"*:admin"} }))
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(tamperedPayload) + "." + parts[2]

	cases := []struct {
		name, token, want string
	}{
		{"expired", sign(t, k, f.claims(func(c map[string]any) { c["exp"] = now - 31; c["iat"] = now - 400; c["nbf"] = now - 400 })), "expired"},
		{"not yet valid", sign(t, k, f.claims(func(c map[string]any) { c["nbf"] = now + 31 })), "not valid before"},
		{"issued in the future", sign(t, k, f.claims(func(c map[string]any) { c["iat"] = now + 31 })), "issued in the future"},
		{"no exp", sign(t, k, f.claims(func(c map[string]any) { delete(c, "exp") })), "no exp"},
		{"exp not a number", sign(t, k, f.claims(func(c map[string]any) { c["exp"] = "tomorrow" })), "malformed"},
		{"wrong issuer", sign(t, k, f.claims(func(c map[string]any) { c["iss"] = "https://evil.example.com" })), "issuer"},
		{"wrong audience", sign(t, k, f.claims(func(c map[string]any) { c["aud"] = "other-app" })), "audience"},
		{"wrong audience list", sign(t, k, f.claims(func(c map[string]any) { c["aud"] = []string{"a", "b"} })), "audience"},
		{"no audience", sign(t, k, f.claims(func(c map[string]any) { delete(c, "aud") })), "audience"},
		{"no sub", sign(t, k, f.claims(func(c map[string]any) { delete(c, "sub") })), "no sub"},
		{"alg none", unsigned("none"), `"none" is not allowed`},
		{"alg None", unsigned("None"), `"None" is not allowed`},
		{"alg NONE", unsigned("NONE"), `"NONE" is not allowed`},
		{"alg nOnE", unsigned("nOnE"), `"nOnE" is not allowed`},
		{"HS256 with the RSA public key (PEM) as secret", hs(pubPEM), `"HS256" is not allowed`},
		{"HS256 with the RSA public key (DER) as secret", hs(pubDER), `"HS256" is not allowed`},
		{"RS384 not in the list", sign(t, signingKey{k.kid, jose.RS384, k.key}, f.claims(nil)), `"RS384" is not allowed`},
		{"tampered payload", tampered, "signature does not verify"},
		{"another key with the same kid", sign(t, other, f.claims(nil)), "signature does not verify"},
		{"garbage", "not-a-jwt", "malformed"},
		{"three dots of garbage", "a.b.c", "malformed"},
		{"64 KiB", strings.Repeat("a", 64<<10), "longer than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := f.a.Authenticate(context.Background(), bearer(tc.token))
			refused(t, p, err, tc.want)
		})
	}
	// the good token still verifies: the refusals above did not poison state
	if _, err := f.a.Verify(context.Background(), good); err != nil {
		t.Fatal(err)
	}
}

func TestLeeway(t *testing.T) {
	f := newFixture(t, nil)
	now := f.clk.Now().Unix()
	for name, mod := range map[string]func(map[string]any){
		"expired within leeway":  func(c map[string]any) { c["exp"] = now - 20 },
		"nbf within leeway":      func(c map[string]any) { c["nbf"] = now + 20 },
		"iat within leeway":      func(c map[string]any) { c["iat"] = now + 20 },
		"aud list with ours":     func(c map[string]any) { c["aud"] = []string{"account", "grey"} },
		"no nbf and no iat":      func(c map[string]any) { delete(c, "nbf"); delete(c, "iat") },
		"fractional exp (float)": func(c map[string]any) { c["exp"] = float64(now) + 100.5 },
	} {
		if _, err := f.a.Verify(context.Background(), sign(t, f.key, f.claims(mod))); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	z := newFixture(t, func(o *Options) { o.Leeway = 0; o.TokenCacheSize = 0 })
	zn := z.clk.Now().Unix()
	p, err := z.a.Verify(context.Background(), sign(t, z.key, z.claims(func(c map[string]any) { c["exp"] = zn })))
	refused(t, p, err, "expired")
}

func TestConfigRefusesUnsafeAlgorithms(t *testing.T) {
	for _, alg := range []string{"none", "None", "NONE", "HS256", "HS384", "HS512", "hs256", "RSA-OAEP", ""} {
		_, err := New(Options{Issuer: "https://sso.example.com", Audience: []string{"grey"}, Algorithms: []string{"RS256", alg}})
		if err == nil {
			t.Errorf("algorithm %q accepted", alg)
		}
	}
	for _, o := range []Options{
		{Audience: []string{"grey"}},
		{Issuer: "https://sso.example.com"},
		{Issuer: "https://sso.example.com", Audience: []string{"grey"}, Leeway: time.Hour},
		{Issuer: "https://sso.example.com", Audience: []string{"grey"}, CAFile: "/nonexistent/ca.pem"},
		{Issuer: "https://sso.example.com", Audience: []string{"grey"}, Claims: auth.ClaimRules{Bindings: []auth.Binding{{Value: "x", Tenant: "*", Role: auth.RoleViewer}}}},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
}

func TestUnknownKidOneRefetchThenRefused(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	if _, err := f.a.Verify(ctx, sign(t, f.key, f.claims(nil))); err != nil {
		t.Fatal(err)
	}
	base := f.is.jwksHits.Load()
	if base != 1 {
		t.Fatalf("first verification made %d JWKS fetches, want 1", base)
	}
	stranger := newRSA(t, "unknown-kid")
	p, err := f.a.Verify(ctx, sign(t, stranger, f.claims(nil)))
	refused(t, p, err, "unknown kid")
	if got := f.is.jwksHits.Load() - base; got != 1 {
		t.Fatalf("an unknown kid caused %d JWKS fetches, want exactly 1", got)
	}
	// 1,000 junk kids (concurrently, too) within the interval: no fetch
	var wg sync.WaitGroup
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := signingKey{fmt.Sprintf("junk-%d", i), jose.RS256, stranger.key}
			if _, err := f.a.Verify(ctx, sign(t, k, f.claims(nil))); err == nil {
				t.Error("junk kid accepted")
			}
		}()
	}
	wg.Wait()
	if got := f.is.jwksHits.Load() - base; got != 1 {
		t.Fatalf("1,000 junk kids caused %d JWKS fetches, want 1 in all", got)
	}
	// after the interval one more fetch is allowed, then refused again
	f.clk.Advance(11 * time.Second)
	for i := range 1000 {
		k := signingKey{fmt.Sprintf("junk2-%d", i), jose.RS256, stranger.key}
		_, _ = f.a.Verify(ctx, sign(t, k, f.claims(nil)))
	}
	if got := f.is.jwksHits.Load() - base; got != 2 {
		t.Fatalf("after the interval: %d JWKS fetches, want 2 in all", got)
	}
	if f.a.JWKSFetches() != f.is.jwksHits.Load() {
		t.Errorf("JWKSFetches = %d, server saw %d", f.a.JWKSFetches(), f.is.jwksHits.Load())
	}
}

func TestConcurrentJunkKidsShareOneFetch(t *testing.T) {
	f := newFixture(t, nil)
	stranger := newRSA(t, "x")
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := signingKey{fmt.Sprintf("junk-%d", i), jose.RS256, stranger.key}
			_, _ = f.a.Verify(context.Background(), sign(t, k, f.claims(nil)))
		}()
	}
	wg.Wait()
	if got := f.is.jwksHits.Load(); got > 2 {
		t.Fatalf("200 concurrent junk kids on a cold key set caused %d JWKS fetches", got)
	}
}

func TestKeyRotation(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	old := f.key
	oldTok := sign(t, old, f.claims(nil))
	if _, err := f.a.Verify(ctx, oldTok); err != nil {
		t.Fatal(err)
	}
	// the provider adds a new key and removes the old one
	next := newEC(t, "ec-2")
	f.is.setKeys(next)
	f.clk.Advance(11 * time.Second)
	newTok := sign(t, next, f.claims(nil))
	if _, err := f.a.Verify(ctx, newTok); err != nil {
		t.Fatalf("token of the new key: %v", err)
	}
	// the old token was cached, but its key is no longer published
	p, err := f.a.Verify(ctx, oldTok)
	refused(t, p, err, "unknown kid")

	// without a new kid to trigger a fetch, the old key drops out after
	// JWKSMaxAge
	g := newFixture(t, nil)
	tok := sign(t, g.key, g.claims(func(c map[string]any) { c["exp"] = g.clk.Now().Unix() + 3600 }))
	if _, err := g.a.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	g.is.setKeys(newRSA(t, "rsa-2"))
	g.clk.Advance(61 * time.Second)
	p, err = g.a.Verify(ctx, tok)
	refused(t, p, err, "unknown kid")
}

func TestTokenCache(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	tok := sign(t, f.key, f.claims(nil))
	p1, err := f.a.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	p1.Grants[0].Role = auth.RoleAdmin // a caller changing its copy
	p2, err := f.a.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if p2.Grants[0].Role != auth.RoleOperator {
		t.Fatalf("cached principal was changed through a returned copy: %+v", p2.Grants)
	}
	if _, ok := f.a.cache.Get(sha256Of(tok)); !ok {
		t.Fatal("verified token not cached")
	}
	// a cached token is refused once expired (plus leeway)
	f.clk.Advance(300*time.Second + 31*time.Second)
	p, err := f.a.Verify(ctx, tok)
	refused(t, p, err, "expired")
	if f.a.cache.Contains(sha256Of(tok)) {
		t.Fatal("expired token still cached")
	}
	// bounded
	g := newFixture(t, func(o *Options) { o.TokenCacheSize = 3 })
	for i := range 10 {
		if _, err := g.a.Verify(ctx, sign(t, g.key, g.claims(func(c map[string]any) { c["jti"] = i }))); err != nil {
			t.Fatal(err)
		}
	}
	if n := g.a.cache.Len(); n != 3 {
		t.Fatalf("cache holds %d tokens, bound is 3", n)
	}
}

func TestDiscoveryFailure(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	a, err := New(Options{Issuer: srv.URL, Audience: []string{"grey"}, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Discover(context.Background()); greyerr.CodeOf(err) != greyerr.Unavailable {
		t.Fatalf("Discover = %v, want unavailable", err)
	}
	_, err = a.Authenticate(context.Background(), bearer("a.b.c"))
	if greyerr.CodeOf(err) != greyerr.Unavailable {
		t.Fatalf("Authenticate with the issuer down = %v, want unavailable", err)
	}
	// the issuer names itself differently: refused
	f := newFixture(t, func(o *Options) { o.Issuer += "/" })
	if err := f.a.Discover(context.Background()); err == nil {
		t.Fatal("discovery accepted an issuer mismatch")
	}
}

func sha256Of(s string) [32]byte {
	var k [32]byte
	copy(k[:], sha256Sum(s))
	return k
}

// FuzzVerify feeds arbitrary strings as bearer tokens: never a panic, never
// a principal other than the one the seed's valid token names.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f, nil)
	good := sign(f, fx.key, fx.claims(nil))
	f.Add(good)
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add(strings.Replace(good, ".", "..", 1))
	f.Add(good[:len(good)-3])
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := fx.a.Verify(context.Background(), tok)
		if err != nil {
			if c := greyerr.CodeOf(err); c != greyerr.Unauthenticated && c != greyerr.Unavailable {
				t.Fatalf("error %v has code %s", err, c)
			}
			return
		}
		if p.Subject != "oidc:"+fx.is.srv.URL+"#u-alice" || len(p.Grants) != 1 || p.Grants[0].Tenant != "acme" {
			t.Fatalf("forged principal %+v from %q", p, tok)
		}
	})
}

func sha256Sum(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

func TestJWKSOutage(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	tok := sign(t, f.key, f.claims(func(c map[string]any) { c["exp"] = f.clk.Now().Unix() + 3600 }))
	if _, err := f.a.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	// the issuer goes away: keys already held keep verifying after
	// jwks_max_age (one failed fetch, then the rate limit), a new token
	// too; nothing becomes a 401 for an outage
	f.is.srv.Close()
	f.clk.Advance(61 * time.Second)
	tok2 := sign(t, f.key, f.claims(func(c map[string]any) { c["jti"] = "2"; c["iat"] = f.clk.Now().Unix() }))
	for _, tk := range []string{tok, tok2} {
		if _, err := f.a.Verify(ctx, tk); err != nil {
			t.Fatalf("with the issuer down, a token of a held key: %v", err)
		}
	}
	// a cold authenticator with the issuer down answers unavailable (503)
	g := newFixture(t, nil)
	_ = g.a.Discover(ctx)
	g.is.srv.Close()
	_, err := g.a.Verify(ctx, sign(t, g.key, g.claims(nil)))
	if greyerr.CodeOf(err) != greyerr.Unavailable {
		t.Fatalf("cold key set, issuer down: %v, want unavailable", err)
	}
}

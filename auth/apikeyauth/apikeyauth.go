// Package apikeyauth authenticates requests that carry a Grey API key
// ("Authorization: Bearer grey_<id>_<secret>"): it finds the key by its
// public id, compares the secret's SHA-256 in constant time, refuses
// expired and revoked keys, and returns a principal with the key's single
// grant. Other bearer tokens are left to other authenticators (OIDC).
package apikeyauth

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/auth/apikey"
	"github.com/grey-distributed/grey/greyerr"
)

// Keys is where keys are looked up and their use recorded; the engine
// satisfies it.
type Keys interface {
	// LookupAPIKey returns the stored key (with its secret hash), or an
	// error (NotFound for an unknown id).
	LookupAPIKey(ctx context.Context, id string) (*apikey.Key, error)
	// APIKeyUsed notes a successful authentication; it must be cheap (the
	// engine batches the writes).
	APIKeyUsed(id string, at time.Time)
}

// Authenticator is the "apikey" auth mode.
type Authenticator struct {
	keys Keys
	now  func() time.Time
}

// Option configures an Authenticator.
type Option func(*Authenticator)

// WithClock sets the clock expiry is checked against (tests).
func WithClock(now func() time.Time) Option { return func(a *Authenticator) { a.now = now } }

// New returns an authenticator over keys.
func New(keys Keys, opts ...Option) *Authenticator {
	a := &Authenticator{keys: keys, now: time.Now}
	for _, o := range opts {
		o(a)
	}
	return a
}

var _ auth.Authenticator = (*Authenticator)(nil)

// Name implements auth.Authenticator.
func (a *Authenticator) Name() string { return "apikey" }

// BearerToken returns the token of an "Authorization: Bearer" header, or "".
func BearerToken(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// Authenticate implements auth.Authenticator.
func (a *Authenticator) Authenticate(ctx context.Context, r *http.Request) (*auth.Principal, error) {
	raw := BearerToken(r)
	if !apikey.LooksLike(raw) {
		return nil, auth.ErrNoCredentials
	}
	return a.Verify(ctx, raw)
}

// Verify checks a presented token. Every refusal is Unauthenticated and
// names at most the key id, never the secret.
func (a *Authenticator) Verify(ctx context.Context, raw string) (*auth.Principal, error) {
	tok, err := apikey.Parse(raw)
	if err != nil {
		// Parse's messages never quote the token.
		return nil, &greyerr.Error{Code: greyerr.Unauthenticated, Message: "invalid api key: " + err.Error()}
	}
	// An unknown id and a wrong secret give the same answer, so the answer
	// does not tell which key ids exist.
	k, err := a.keys.LookupAPIKey(ctx, tok.ID)
	if err != nil {
		if greyerr.Is(err, greyerr.NotFound) {
			return nil, greyerr.New(greyerr.Unauthenticated, "api key %s is not valid", tok.ID)
		}
		return nil, err
	}
	if !tok.Matches(k) {
		return nil, greyerr.New(greyerr.Unauthenticated, "api key %s is not valid", tok.ID)
	}
	now := a.now()
	if k.Revoked() {
		return nil, greyerr.New(greyerr.Unauthenticated, "api key %s was revoked at %s", k.ID, k.RevokedAt.UTC().Format(time.RFC3339))
	}
	if k.Expired(now) {
		return nil, greyerr.New(greyerr.Unauthenticated, "api key %s expired at %s", k.ID, k.ExpiresAt.UTC().Format(time.RFC3339))
	}
	a.keys.APIKeyUsed(k.ID, now)
	name := k.Name
	if name == "" {
		name = "apikey " + k.ID
	}
	return &auth.Principal{
		Subject: "apikey:" + k.ID,
		Name:    name,
		Method:  auth.MethodAPIKey,
		Grants:  []auth.Grant{k.Grant()},
		Expires: k.ExpiresAt,
	}, nil
}

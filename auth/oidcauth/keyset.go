package oidcauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Errors of the key set, told apart by the authenticator for its messages.
var (
	errUnknownKey   = errors.New("token signed with an unknown key")
	errBadSignature = errors.New("token signature does not verify")
	errMalformed    = errors.New("malformed token")
)

// maxJWKSBytes bounds a JWKS document.
const maxJWKSBytes = 1 << 20

// jwksFetchTimeout bounds one JWKS request, independently of the request
// that triggered it (others may be waiting on the same fetch).
const jwksFetchTimeout = 10 * time.Second

// keySet is an oidc.KeySet over the provider's JWKS that, unlike go-oidc's
// RemoteKeySet, rate-limits refetches: a token with an unknown kid triggers
// at most one fetch per minInterval (concurrent callers share it), so a
// stream of junk kids cannot become a stream of JWKS requests. Keys older
// than maxAge are fetched again on next use, so a key removed by rotation
// stops verifying. When a fetch fails the keys already held stay in use.
type keySet struct {
	url         string
	client      *http.Client
	algs        []jose.SignatureAlgorithm
	minInterval time.Duration
	maxAge      time.Duration
	now         func() time.Time

	mu         sync.Mutex
	keys       []jose.JSONWebKey
	fetchedAt  time.Time     // last successful fetch
	triedAt    time.Time     // last fetch started
	kidFetchAt time.Time     // last fetch started for an unknown kid (or the first)
	inflight   chan struct{} // closed when the running fetch ends; nil when none
	lastErr    error

	fetches atomic.Int64 // JWKS requests made, for tests and metrics
}

// VerifySignature implements oidc.KeySet: it parses the compact JWS with
// only the allowed algorithms, finds the key by kid (fetching the JWKS when
// the kid is unknown or the keys are old, within the rate limit) and
// returns the verified payload.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSigned(raw, k.algs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformed, err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: %d signatures", errMalformed, len(jws.Signatures))
	}
	kid := jws.Signatures[0].Header.KeyID
	keys, err := k.keysFor(ctx, kid)
	if err != nil {
		return nil, err
	}
	found := false
	for i := range keys {
		if kid != "" && keys[i].KeyID != kid {
			continue
		}
		found = true
		if payload, err := jws.Verify(&keys[i]); err == nil {
			return payload, nil
		}
	}
	if !found {
		return nil, fmt.Errorf("%w (kid %q)", errUnknownKey, truncate(kid, 64))
	}
	return nil, errBadSignature
}

// has reports whether the key set holds a key with kid, fetching as
// keysFor does; a cached token whose key was rotated out is then verified
// afresh.
func (k *keySet) has(ctx context.Context, kid string) bool {
	keys, err := k.keysFor(ctx, kid)
	if err != nil {
		return false
	}
	for i := range keys {
		if keys[i].KeyID == kid {
			return true
		}
	}
	return false
}

// keysFor returns the current keys, after a fetch when kid is unknown or
// the keys are older than maxAge, unless a fetch started less than
// minInterval ago.
func (k *keySet) keysFor(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	k.mu.Lock()
	now := k.now()
	known := false
	for i := range k.keys {
		if kid == "" || k.keys[i].KeyID == kid {
			known = true
			break
		}
	}
	fresh := !k.fetchedAt.IsZero() && now.Sub(k.fetchedAt) < k.maxAge
	if known && fresh {
		keys := k.keys
		k.mu.Unlock()
		return keys, nil
	}
	if wait := k.inflight; wait != nil {
		k.mu.Unlock()
		select {
		case <-wait:
			// look again with what the fetch brought; a second fetch is
			// rate-limited below
			k.mu.Lock()
			keys, err := k.keys, k.lastErr
			k.mu.Unlock()
			if len(keys) == 0 && err != nil {
				return nil, err
			}
			return keys, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	limited := false
	if fresh || k.fetchedAt.IsZero() && k.lastErr == nil {
		// an unknown kid (or the first use): one fetch per interval
		limited = !k.kidFetchAt.IsZero() && now.Sub(k.kidFetchAt) < k.minInterval
	} else {
		// keys old or never fetched: again at once unless the last attempt
		// failed within the interval
		limited = k.lastErr != nil && now.Sub(k.triedAt) < k.minInterval
	}
	if limited {
		keys, err := k.keys, k.lastErr
		k.mu.Unlock()
		if len(keys) == 0 && err != nil {
			return nil, err
		}
		return keys, nil // unknown kid within the interval: refused by the caller
	}
	done := make(chan struct{})
	k.inflight, k.triedAt = done, now
	if fresh {
		k.kidFetchAt = now
	}
	k.mu.Unlock()

	keys, err := k.fetch(ctx)

	k.mu.Lock()
	if err == nil {
		k.keys, k.fetchedAt = keys, k.now()
	}
	k.lastErr = err
	k.inflight = nil
	close(done)
	held := k.keys
	k.mu.Unlock()
	if len(held) == 0 && err != nil {
		return nil, err
	}
	return held, nil
}

// fetch downloads and parses the JWKS, keeping the public signing keys.
func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	k.fetches.Add(1)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jwksFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks: fetching %s: %w", k.url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("jwks: reading %s: %w", k.url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks: %s answered %s", k.url, resp.Status)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("jwks: %s is larger than %d bytes", k.url, maxJWKSBytes)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("jwks: parsing %s: %w", k.url, err)
	}
	keys := make([]jose.JSONWebKey, 0, len(set.Keys))
	for _, key := range set.Keys {
		if (key.Use == "" || key.Use == "sig") && key.IsPublic() && key.Valid() {
			keys = append(keys, key)
		}
	}
	return keys, nil
}

// truncate cuts s to n bytes for messages (kids come from the token).
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

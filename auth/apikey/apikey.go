// Package apikey holds what Grey knows about service-account API keys: the
// stored record (Key), the token format a key is presented in, its
// generation and verification, and the rule of who may create which key.
//
// A token reads grey_<id>_<secret>: the id is public and names the key, so a
// server finds the record without searching by secret; the secret is 256
// random bits of which only the SHA-256 is stored (in Raft). Both parts are
// lower-case base32 without padding, an alphabet that has no '_', so the
// token splits without ambiguity and survives shells, URLs and YAML.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"slices"
	"strings"
	"time"

	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/greyerr"
)

// Prefix starts every token; a bearer token without it is not an API key.
const Prefix = "grey_"

const (
	idBytes     = 10 // 80 bits: unique among keys, not a secret
	secretBytes = 32 // 256 bits
	// IDLen is the length of a key id in characters.
	IDLen = (idBytes*8 + 4) / 5
	// secretLen is the length of the encoded secret.
	secretLen = (secretBytes*8 + 4) / 5
	// TokenLen is the length of a whole token.
	TokenLen = len(Prefix) + IDLen + 1 + secretLen
)

// enc is lower-case RFC 4648 base32 without padding.
var enc = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Key is a stored API key. SecretHash is the only trace of the secret; views
// handed to callers (Public) leave it out.
type Key struct {
	// ID is the key's public id, the middle part of its token.
	ID string `json:"id"`
	// Tenant is the tenant the key acts for; auth.AllTenants for admin keys.
	Tenant string `json:"tenant"`
	// Role is what the key may do on Tenant.
	Role auth.Role `json:"role"`
	// Kinds, for worker keys, limits the task kinds it may lease (empty: all).
	Kinds []string `json:"kinds,omitempty"`
	// Name is a short label (e.g. the service using the key).
	Name string `json:"name,omitempty"`
	// Description says what the key is for.
	Description string `json:"description,omitempty"`
	// CreatedBy is the subject of the principal that created the key.
	CreatedBy string `json:"created_by,omitempty"`
	// CreatedAt is when the key was created.
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is when the key stops working (zero: never).
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// RevokedAt is when the key was revoked (zero: not revoked).
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	// LastUsedAt is when the key last authenticated a request, to about a
	// minute: servers record use in batches.
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	// SecretHash is the SHA-256 of the secret's 32 bytes.
	SecretHash []byte `json:"secret_hash,omitempty"`
}

// Public returns a copy of k without its secret hash, for listing.
func (k *Key) Public() *Key {
	c := *k
	c.SecretHash = nil
	c.Kinds = slices.Clone(k.Kinds)
	return &c
}

// Grant is the single grant the key gives its holder.
func (k *Key) Grant() auth.Grant {
	return auth.Grant{Tenant: k.Tenant, Role: k.Role, Kinds: slices.Clone(k.Kinds)}
}

// Expired reports whether the key has expired at now.
func (k *Key) Expired(now time.Time) bool {
	return !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt)
}

// Revoked reports whether the key was revoked.
func (k *Key) Revoked() bool { return !k.RevokedAt.IsZero() }

// Token is a parsed API key token.
type Token struct {
	// ID is the key id.
	ID string
	// Secret is the decoded secret (32 bytes).
	Secret []byte
}

// String formats the token as presented by clients. It contains the secret.
func (t Token) String() string {
	return Prefix + t.ID + "_" + enc.EncodeToString(t.Secret)
}

// Hash returns the SHA-256 of the token's secret. A fast hash is right here,
// unlike for passwords: the secret is 256 uniformly random bits, so there is
// no dictionary to try and brute force is out of reach whatever the speed of
// the hash; a slow KDF would only cost every authenticated request.
func (t Token) Hash() []byte {
	h := sha256.Sum256(t.Secret)
	return h[:]
}

// Matches reports, in constant time, whether the token's secret is the one
// whose hash k stores.
func (t Token) Matches(k *Key) bool {
	return len(k.SecretHash) == sha256.Size && subtle.ConstantTimeCompare(t.Hash(), k.SecretHash) == 1
}

// Generate returns a new token with a random id and secret.
func Generate() (Token, error) {
	b := make([]byte, idBytes+secretBytes)
	if _, err := rand.Read(b); err != nil {
		return Token{}, greyerr.Wrap(greyerr.Internal, err, "generate api key")
	}
	return Token{ID: enc.EncodeToString(b[:idBytes]), Secret: b[idBytes:]}, nil
}

// LooksLike reports whether s claims to be an API key (it has the prefix),
// so an authenticator can leave other bearer tokens to other modes.
func LooksLike(s string) bool { return strings.HasPrefix(s, Prefix) }

// Parse reads a token. Errors are InvalidArgument and never quote s, which
// may be a secret.
func Parse(s string) (Token, error) {
	bad := func(why string) (Token, error) {
		return Token{}, greyerr.New(greyerr.InvalidArgument, "malformed api key: %s", why)
	}
	if !LooksLike(s) {
		return bad("it does not start with " + Prefix)
	}
	if len(s) != TokenLen {
		return bad("wrong length")
	}
	rest := s[len(Prefix):]
	id, sec, ok := strings.Cut(rest, "_")
	if !ok || len(id) != IDLen || len(sec) != secretLen {
		return bad("want grey_<id>_<secret>")
	}
	if !ValidID(id) {
		return bad("the id is not lower-case base32")
	}
	secret, err := enc.DecodeString(sec)
	if err != nil || len(secret) != secretBytes || enc.EncodeToString(secret) != sec {
		// The re-encoding check refuses non-canonical trailing bits, so one
		// secret has exactly one spelling.
		return bad("the secret is not lower-case base32")
	}
	return Token{ID: id, Secret: secret}, nil
}

// ValidID reports whether id is a well-formed key id.
func ValidID(id string) bool {
	if len(id) != IDLen {
		return false
	}
	b, err := enc.DecodeString(id)
	return err == nil && len(b) == idBytes && enc.EncodeToString(b) == id
}

// maxTTLDays bounds a key's lifetime (ten years): beyond it, use no expiry.
const maxTTLDays = 3660

// ParseTTL reads a key lifetime: a Go duration ("36h", "90m") or a whole
// number of days ("90d") or weeks ("12w").
func ParseTTL(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n := len(s); n > 1 && (s[n-1] == 'd' || s[n-1] == 'w') {
		days := 1
		if s[n-1] == 'w' {
			days = 7
		}
		v := 0
		for _, c := range s[:n-1] {
			if c < '0' || c > '9' || v > maxTTLDays {
				return 0, greyerr.Invalid("expires_in", "%q is not a lifetime such as 90d, 12w or 36h", s)
			}
			v = v*10 + int(c-'0')
		}
		if v == 0 {
			return 0, greyerr.Invalid("expires_in", "must be positive, got %q", s)
		}
		if v*days > maxTTLDays {
			return 0, greyerr.Invalid("expires_in", "%q is longer than %d days", s, maxTTLDays)
		}
		return time.Duration(v*days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, greyerr.Invalid("expires_in", "%q is not a lifetime such as 90d, 12w or 36h", s)
	}
	if d <= 0 {
		return 0, greyerr.Invalid("expires_in", "must be positive, got %q", s)
	}
	if d > maxTTLDays*24*time.Hour {
		return 0, greyerr.Invalid("expires_in", "%q is longer than %d days", s, maxTTLDays)
	}
	return d, nil
}

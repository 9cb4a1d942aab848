package taskdata

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/grey-distributed/grey/greyerr"
)

// SignedPathPrefix starts every URL Grey serves for a bucket that cannot
// sign: /api/v1/signed/<tenant>/<key>?expires=<unix>&sig=<hex>.
const SignedPathPrefix = "/api/v1/signed/"

// Signer signs and checks the URLs Grey serves itself: an HMAC-SHA256,
// under a node key, of the method, tenant, key and expiry.
type Signer struct {
	key []byte
}

// NewSigner returns a signer with key (at least 32 bytes).
func NewSigner(key []byte) (*Signer, error) {
	if len(key) < 32 {
		return nil, errors.New("taskdata: signing key must be at least 32 bytes")
	}
	return &Signer{key: append([]byte(nil), key...)}, nil
}

// LoadSigner reads the signing key at path, creating a random one (0600)
// when the file does not exist. Servers that should honour each other's
// URLs share the file.
func LoadSigner(path string) (*Signer, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		b = make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("taskdata: signing key: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("taskdata: signing key: %w", err)
		}
		if err := os.WriteFile(path, []byte(hex.EncodeToString(b)), 0o600); err != nil {
			return nil, fmt.Errorf("taskdata: signing key: %w", err)
		}
		return NewSigner(b)
	}
	if err != nil {
		return nil, fmt.Errorf("taskdata: signing key: %w", err)
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("taskdata: signing key %s is not hex: %w", path, err)
	}
	return NewSigner(k)
}

func (s *Signer) mac(method, tenant, key string, exp int64) []byte {
	m := hmac.New(sha256.New, s.key)
	fmt.Fprintf(m, "grey-signed-url-v1\n%s\n%s\n%s\n%d", method, tenant, key, exp)
	return m.Sum(nil)
}

// Path returns the signed path granting method on tenant's key until exp.
func (s *Signer) Path(method, tenant, key string, exp time.Time) string {
	e := exp.Unix()
	q := url.Values{"expires": {strconv.FormatInt(e, 10)}, "sig": {hex.EncodeToString(s.mac(method, tenant, key, e))}}
	return SignedPathPrefix + tenant + "/" + key + "?" + q.Encode()
}

// Check verifies a signed path's parts at now: a signature that does not
// match (any part changed) or an expiry in the past is PermissionDenied.
func (s *Signer) Check(method, tenant, key, expires, sig string, now time.Time) error {
	e, err := strconv.ParseInt(expires, 10, 64)
	if err != nil {
		return greyerr.New(greyerr.PermissionDenied, "signed URL: expires %q is not a Unix time", expires)
	}
	got, err := hex.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac(method, tenant, key, e)) {
		return greyerr.New(greyerr.PermissionDenied, "signed URL: the signature does not match (the URL was altered, or signed for another method or key)")
	}
	if now.Unix() > e {
		return greyerr.New(greyerr.PermissionDenied, "signed URL expired at %s", time.Unix(e, 0).UTC().Format(time.RFC3339))
	}
	return nil
}

package proof

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// KeyFileMode is the mode a node key file is created with. A key file with
// any group or world permission bit set is refused.
const KeyFileMode = 0o600

// Key is a node's ed25519 signing key.
type Key struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
	id   string
}

// NewKey wraps an ed25519 private key.
func NewKey(priv ed25519.PrivateKey) (*Key, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("ed25519 private key has %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	pub := priv.Public().(ed25519.PublicKey)
	return &Key{priv: priv, pub: pub, id: KeyIDOf(pub)}, nil
}

// GenerateKey returns a new random key that lives only in memory.
func GenerateKey() (*Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return NewKey(priv)
}

// LoadOrCreateKey returns the key stored at path, creating it (and its
// directory, mode 0700) on first use. The file is PEM-encoded PKCS#8 with
// mode 0600; an existing file that is group- or world-accessible is refused.
// Concurrent first uses agree on one key (the file is created by a
// no-clobber link of a fully written temporary file).
func LoadOrCreateKey(path string) (*Key, error) {
	k, err := loadKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	k, err = GenerateKey()
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create key directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".grey-key-*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("create key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(KeyFileMode); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return nil, fmt.Errorf("chmod key file: %w", err)
	}
	if err := pem.Encode(tmp, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) { // another process won the race
			return loadKey(path)
		}
		return nil, fmt.Errorf("create key file: %w", err)
	}
	return k, nil
}

func loadKey(path string) (*Key, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("key file %s has mode %04o: it is accessible by group or others; refusing to use it (chmod 600 %s)", path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("key file %s: no PEM \"PRIVATE KEY\" block", path)
	}
	raw, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	priv, ok := raw.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key file %s holds a %T, want an ed25519 key", path, raw)
	}
	return NewKey(priv)
}

// KeyID returns the key's id: see [KeyIDOf].
func (k *Key) KeyID() string { return k.id }

// Public returns the public half of the key.
func (k *Key) Public() ed25519.PublicKey { return k.pub }

// PublicPEM returns the public key as a PEM "PUBLIC KEY" (PKIX) block, the
// form [ParsePublicKey] and openssl read.
func (k *Key) PublicPEM() []byte {
	der, _ := x509.MarshalPKIXPublicKey(k.pub) // cannot fail for ed25519
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// dsseSigner adapts a Key to dsse.Signer.
type dsseSigner struct{ k *Key }

// Sign signs data (the PAE) with ed25519.
func (s dsseSigner) Sign(_ context.Context, data []byte) ([]byte, error) {
	return ed25519.Sign(s.k.priv, data), nil
}

// KeyID returns the key's id for the envelope's signature.
func (s dsseSigner) KeyID() (string, error) { return s.k.id, nil }

// KeyIDOf returns the key id of pub: the lower-case hex of the first 16
// bytes of SHA-256 over the key's PKIX (SubjectPublicKeyInfo) DER encoding,
// i.e. 32 hex characters. Anyone can recompute it with
// `openssl pkey -pubin -in key.pub -outform DER | sha256sum | cut -c1-32`.
func KeyIDOf(pub ed25519.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	s := sha256.Sum256(der)
	return hex.EncodeToString(s[:16])
}

// KeyRing holds the public keys a verifier trusts, by key id.
type KeyRing map[string]ed25519.PublicKey

// NewKeyRing returns a ring holding keys.
func NewKeyRing(keys ...ed25519.PublicKey) KeyRing {
	r := KeyRing{}
	for _, k := range keys {
		r.Add(k)
	}
	return r
}

// Add adds pub under its [KeyIDOf] id and returns the id.
func (r KeyRing) Add(pub ed25519.PublicKey) string {
	id := KeyIDOf(pub)
	r[id] = pub
	return id
}

// ParsePublicKey parses an ed25519 public key given as a PEM "PUBLIC KEY"
// block, as base64 (standard or URL, padded or not) of its PKIX DER, or as
// base64 of the raw 32 bytes.
func ParsePublicKey(pemOrBase64 string) (ed25519.PublicKey, error) {
	s := strings.TrimSpace(pemOrBase64)
	var der []byte
	if strings.HasPrefix(s, "-----BEGIN") {
		block, _ := pem.Decode([]byte(s))
		if block == nil || block.Type != "PUBLIC KEY" {
			return nil, errors.New("public key: no PEM \"PUBLIC KEY\" block")
		}
		der = block.Bytes
	} else {
		var err error
		if der, err = decodeBase64(s); err != nil {
			return nil, errors.New("public key is neither PEM nor base64")
		}
		if len(der) == ed25519.PublicKeySize {
			return ed25519.PublicKey(der), nil
		}
	}
	raw, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	pub, ok := raw.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key is a %T, want ed25519", raw)
	}
	return pub, nil
}

// decodeBase64 accepts standard and URL base64, padded or not (DSSE allows
// either alphabet).
func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not valid base64")
}

package certs

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"sync"
	"time"
)

// KeyPair is a certificate and its key read from two PEM files, read again
// when either file changes (another inode, size or modification time), so
// a renewed certificate is served from the next handshake on without a
// restart. While the new files do not form a valid pair (one written, the
// other not yet) the previous pair stays in use.
type KeyPair struct {
	certFile, keyFile string
	onError           func(error)

	mu       sync.Mutex
	cert     *tls.Certificate
	certStat os.FileInfo
	keyStat  os.FileInfo
	failed   string // the stat signature of the files whose last read failed
}

// LoadKeyPair reads the pair now; it fails when the files are missing or
// do not form a pair. onError, if not nil, is told of a later reload that
// failed (the old pair stays in use).
func LoadKeyPair(certFile, keyFile string, onError func(error)) (*KeyPair, error) {
	k := &KeyPair{certFile: certFile, keyFile: keyFile, onError: onError}
	cs, ks, err := k.stat()
	if err != nil {
		return nil, err
	}
	if err := k.read(cs, ks); err != nil {
		return nil, err
	}
	return k, nil
}

// Files returns the certificate and key file names.
func (k *KeyPair) Files() (certFile, keyFile string) { return k.certFile, k.keyFile }

func (k *KeyPair) stat() (os.FileInfo, os.FileInfo, error) {
	cs, err := os.Stat(k.certFile)
	if err != nil {
		return nil, nil, err
	}
	ks, err := os.Stat(k.keyFile)
	if err != nil {
		return nil, nil, err
	}
	return cs, ks, nil
}

func (k *KeyPair) read(cs, ks os.FileInfo) error {
	c, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		return err
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return err
		}
	}
	k.cert, k.certStat, k.keyStat = &c, cs, ks
	return nil
}

// changed reports whether a file is not the one last read.
func changed(old, cur os.FileInfo) bool {
	return !os.SameFile(old, cur) || old.Size() != cur.Size() || !old.ModTime().Equal(cur.ModTime())
}

func signature(cs, ks os.FileInfo) string {
	return fmt.Sprintf("%d/%d/%d/%d", cs.Size(), cs.ModTime().UnixNano(), ks.Size(), ks.ModTime().UnixNano())
}

// Certificate returns the current pair, reading the files again first if
// they changed.
func (k *KeyPair) Certificate() (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	cs, ks, err := k.stat()
	if err != nil {
		k.report(fmt.Errorf("reload %s: %w (still serving the previous certificate)", k.certFile, err))
		return k.cert, nil
	}
	if !changed(k.certStat, cs) && !changed(k.keyStat, ks) {
		return k.cert, nil
	}
	sig := signature(cs, ks)
	if sig == k.failed {
		return k.cert, nil
	}
	if err := k.read(cs, ks); err != nil {
		k.failed = sig
		k.report(fmt.Errorf("reload %s and %s: %w (still serving the previous certificate)", k.certFile, k.keyFile, err))
		return k.cert, nil
	}
	k.failed = ""
	return k.cert, nil
}

func (k *KeyPair) report(err error) {
	if k.onError != nil {
		k.onError(err)
	}
}

// GetCertificate is the tls.Config hook of a server.
func (k *KeyPair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return k.Certificate()
}

// GetClientCertificate is the tls.Config hook of a client.
func (k *KeyPair) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return k.Certificate()
}

// Leaf returns the parsed current certificate.
func (k *KeyPair) Leaf() *x509.Certificate {
	c, _ := k.Certificate()
	return c.Leaf
}

// readCerts reads every CERTIFICATE block of a PEM file.
func readCerts(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no PEM CERTIFICATE block", path)
	}
	return out, nil
}

// expired reports a certificate outside its validity at now.
func expired(c *x509.Certificate, now time.Time) error {
	switch {
	case now.Before(c.NotBefore):
		return fmt.Errorf("not valid before %s", c.NotBefore.UTC().Format(time.RFC3339))
	case now.After(c.NotAfter):
		return fmt.Errorf("expired at %s", c.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

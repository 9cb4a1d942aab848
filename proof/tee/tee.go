package tee

import (
	"bytes"
	"context"
	"crypto/sha512"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-configfs-tsm/configfs/configfsi"

	"github.com/grey-distributed/grey/proof"
)

// NameAuto is the configuration name that picks the first platform
// [proof.Detect] finds, or the software attester when it finds none.
const NameAuto = "auto"

// names is every name [NewAttester] accepts, in the order of its error
// message.
var names = []string{proof.PlatformSoftware, proof.PlatformSGX, proof.PlatformTDX,
	proof.PlatformSEVSNP, proof.PlatformNitro, NameAuto}

// ErrUnavailable marks an attester whose guest interface (device, pseudo
// file or configfs directory) is absent or unusable on this machine; the
// error's text names the path.
var ErrUnavailable = errors.New("TEE interface unavailable")

// ErrUnbound marks a quote or report that does not carry the report data
// it was asked to bind, or that is not of the expected platform or format.
var ErrUnbound = errors.New("quote does not bind the report data")

// NewAttester returns the attester configured by name: "software" (or "",
// the default) is [proof.Software]; "sgx", "tdx", "sev-snp" and "nitro"
// are [SGX], [TDX], [SEVSNP] and [Nitro] on their real interfaces; "auto"
// is the first platform [proof.Detect] reports, or software when it
// reports none. Names are matched without regard to case or surrounding
// space. A TEE attester whose interface is absent is refused here (an
// error wrapping [ErrUnavailable] that names the path), so a node
// configured for a TEE fails at start rather than at its first proof;
// "auto" that detects a platform whose interface then proves unusable is
// refused the same way rather than falling back to software. An unknown
// name is an error listing the known ones.
func NewAttester(name string) (proof.Attester, error) {
	return newAttester(name, env{detect: proof.Detect})
}

// env is where [newAttester] looks: the real machine in [NewAttester],
// fakes in tests. Empty paths and a nil client are the real interfaces.
type env struct {
	detect func() []string
	sgxDir string
	tsm    configfsi.Client
	nsmDev string
}

func newAttester(name string, e env) (proof.Attester, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if n == NameAuto {
		found := e.detect()
		if len(found) == 0 {
			return proof.Software{}, nil
		}
		a, err := newAttester(found[0], e)
		if err != nil {
			return nil, fmt.Errorf("attester auto: detected %s: %w", found[0], err)
		}
		return a, nil
	}
	var a interface {
		proof.Attester
		probe() error
	}
	switch n {
	case "", proof.PlatformSoftware:
		return proof.Software{}, nil
	case proof.PlatformSGX:
		a = &SGX{dir: e.sgxDir}
	case proof.PlatformTDX:
		a = &TDX{client: e.tsm}
	case proof.PlatformSEVSNP:
		a = &SEVSNP{client: e.tsm}
	case proof.PlatformNitro:
		a = &Nitro{dev: e.nsmDev}
	default:
		return nil, fmt.Errorf("unknown attester %q: want one of %s", name, strings.Join(names, ", "))
	}
	if err := a.probe(); err != nil {
		return nil, err
	}
	return a, nil
}

// FitReportData returns the [proof.ReportDataSize]-byte report data an
// attester writes for rd: rd itself when it has exactly that length (as
// [proof.QuoteReportData] does), rd followed by zero bytes when it is
// shorter, and SHA-512(rd) when it is longer. A verifier applies the same
// rule to the report data it expects.
func FitReportData(rd []byte) [proof.ReportDataSize]byte {
	var out [proof.ReportDataSize]byte
	if len(rd) > len(out) {
		return sha512.Sum512(rd)
	}
	copy(out[:], rd)
	return out
}

// checkBound returns an error wrapping [ErrUnbound] unless got (the report
// data read back from a quote) equals want.
func checkBound(platform string, got []byte, want [proof.ReportDataSize]byte) error {
	if !bytes.Equal(got, want[:]) {
		return fmt.Errorf("%s: %w: it carries %x, asked for %x", platform, ErrUnbound, got, want)
	}
	return nil
}

// withContext runs f, which does blocking device I/O that cannot be
// interrupted, and returns its result, or ctx's error as soon as ctx is
// done. In the latter case f still runs to completion in the background
// and its result is dropped.
func withContext(ctx context.Context, f func() ([]byte, error)) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type result struct {
		quote []byte
		err   error
	}
	ch := make(chan result, 1)
	go func() {
		q, err := f()
		ch <- result{q, err}
	}()
	select {
	case r := <-ch:
		return r.quote, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

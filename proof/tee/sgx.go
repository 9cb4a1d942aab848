package tee

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/grey-distributed/grey/proof"
)

// gramineDir is Gramine's attestation pseudo-filesystem inside an SGX
// enclave.
const gramineDir = "/dev/attestation"

// SGX quotes through Gramine's /dev/attestation interface, so greyd must
// run inside a Gramine SGX enclave whose manifest enables remote
// attestation (sgx.remote_attestation = "dcap", or "epid"). A quote is
// taken by writing the 64 bytes of report data to
// /dev/attestation/user_report_data and reading /dev/attestation/quote,
// which returns an SGX quote (ECDSA/DCAP or EPID) whose report body's
// report_data is those bytes; the attester checks that it is. When
// /dev/attestation/attestation_type exists and says "none", quoting is
// refused with an error that says so.
//
// The two pseudo-files are one state per process, so an SGX serializes
// its own quotes; a process should use one SGX (as [NewAttester] gives
// it). The zero value is ready to use.
type SGX struct {
	dir string // the attestation directory; "" is /dev/attestation
	mu  sync.Mutex
}

// Platform returns [proof.PlatformSGX].
func (*SGX) Platform() string { return proof.PlatformSGX }

func (a *SGX) path(name string) string {
	d := a.dir
	if d == "" {
		d = gramineDir
	}
	return filepath.Join(d, name)
}

// probe checks that the Gramine attestation interface is present and not
// disabled.
func (a *SGX) probe() error {
	for _, f := range []string{"user_report_data", "quote"} {
		if _, err := os.Stat(a.path(f)); err != nil {
			return fmt.Errorf("sgx: %w: Gramine attestation file %s (greyd must run in a Gramine SGX enclave with remote attestation enabled): %w",
				ErrUnavailable, a.path(f), err)
		}
	}
	return a.checkType()
}

// checkType refuses an enclave whose manifest disabled remote attestation.
// Gramine versions without attestation_type are let through.
func (a *SGX) checkType() error {
	p := a.path("attestation_type")
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sgx: reading %s: %w", p, err)
	}
	if t := strings.TrimSpace(string(b)); t == "none" {
		return fmt.Errorf("sgx: %w: %s is %q: the Gramine manifest does not enable remote attestation (set sgx.remote_attestation = \"dcap\")",
			ErrUnavailable, p, t)
	}
	return nil
}

// Quote writes [FitReportData](reportData) to user_report_data, reads the
// quote and returns it after checking that its report_data (at byte 368
// of a version 1 to 4 quote, 374 of a version 5 one) is those bytes.
func (a *SGX) Quote(ctx context.Context, reportData []byte) ([]byte, error) {
	want := FitReportData(reportData)
	return withContext(ctx, func() ([]byte, error) {
		a.mu.Lock()
		defer a.mu.Unlock()
		if err := a.checkType(); err != nil {
			return nil, err
		}
		if err := writeExisting(a.path("user_report_data"), want[:]); err != nil {
			return nil, fmt.Errorf("sgx: writing report data: %w", err)
		}
		q, err := os.ReadFile(a.path("quote"))
		if err != nil {
			return nil, fmt.Errorf("sgx: reading quote: %w", err)
		}
		got, err := intelReportData(proof.PlatformSGX, q)
		if err != nil {
			return nil, fmt.Errorf("%w (from %s)", err, a.path("quote"))
		}
		if err := checkBound(proof.PlatformSGX, got, want); err != nil {
			return nil, fmt.Errorf("%w (from %s)", err, a.path("quote"))
		}
		return q, nil
	})
}

// writeExisting writes b to the existing file p in one write, without
// creating or truncating it (Gramine's pseudo-files are neither).
func writeExisting(p string, b []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	n, err := f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if n != len(b) {
		return fmt.Errorf("short write to %s: %d of %d bytes", p, n, len(b))
	}
	return nil
}

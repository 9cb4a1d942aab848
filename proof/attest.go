package proof

import (
	"context"
	"os"
	"path/filepath"
)

// Platform names, the values of [Predicate.Platform].
const (
	// PlatformSoftware means no TEE: the proof rests on the node key only.
	PlatformSoftware = "software"
	// PlatformSGX is Intel SGX.
	PlatformSGX = "sgx"
	// PlatformTDX is Intel TDX.
	PlatformTDX = "tdx"
	// PlatformSEVSNP is AMD SEV-SNP.
	PlatformSEVSNP = "sev-snp"
	// PlatformNitro is AWS Nitro Enclaves.
	PlatformNitro = "nitro"
)

// Attester produces the platform's attestation for a proof.
type Attester interface {
	// Platform names the platform (one of the Platform constants).
	Platform() string
	// Quote returns a quote over reportData (e.g. a digest binding the
	// node key and the statement), or nil when the platform has none.
	Quote(ctx context.Context, reportData []byte) ([]byte, error)
}

// Software is the attester without a TEE: platform "software", no quote.
type Software struct{}

// Platform returns [PlatformSoftware].
func (Software) Platform() string { return PlatformSoftware }

// Quote returns no quote.
func (Software) Quote(context.Context, []byte) ([]byte, error) { return nil, nil }

// teeDevices maps each TEE platform to the guest device that reveals it.
var teeDevices = []struct{ platform, dev string }{
	{PlatformSGX, "/dev/sgx_enclave"},
	{PlatformTDX, "/dev/tdx_guest"},
	{PlatformSEVSNP, "/dev/sev-guest"},
	{PlatformNitro, "/dev/nsm"},
}

// Detect returns the TEE platforms whose guest device exists on this
// machine (/dev/sgx_enclave, /dev/tdx_guest, /dev/sev-guest, /dev/nsm), in
// that order; empty when there is none. It only detects: no attester for
// these platforms exists yet.
func Detect() []string { return detectIn("/") }

func detectIn(root string) []string {
	var found []string
	for _, d := range teeDevices {
		if _, err := os.Stat(filepath.Join(root, d.dev)); err == nil {
			found = append(found, d.platform)
		}
	}
	return found
}

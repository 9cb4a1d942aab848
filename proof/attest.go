package proof

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"fmt"
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

// ReportDataSize is the size in bytes of the report data a TEE quote
// binds: [QuoteReportData] returns this many bytes, and SGX, TDX and
// SEV-SNP reports carry exactly this many (Nitro's user_data takes them
// as they are).
const ReportDataSize = sha512.Size

// reportDataDomain separates Grey's report data from any other use of a
// quote. Changing it changes every binding: it is part of the format.
const reportDataDomain = "grey-proof-v1"

// Attester produces the platform's attestation for a proof. The TEE
// attesters (SGX, TDX, SEV-SNP, Nitro) are in package proof/tee, whose
// NewAttester picks one by configuration name.
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

// QuoteReportData returns the report data a TEE quote for a proof binds:
//
//	SHA-512("grey-proof-v1" || 0x00 || keyID || 0x00 || statementDigest)
//
// keyID is the signing key's id ([Key.KeyID], 32 hex characters) and
// statementDigest is [StatementDigestForQuote] of the statement. The
// result is [ReportDataSize] (64) bytes, the report-data size of SGX, TDX
// and SEV-SNP, so the attesters use it unchanged. A verifier recomputes it
// from the envelope's statement and signature key id and compares it with
// the report data inside the (separately verified) quote.
func QuoteReportData(keyID string, statementDigest []byte) []byte {
	h := sha512.New()
	h.Write([]byte(reportDataDomain + "\x00" + keyID + "\x00"))
	h.Write(statementDigest)
	return h.Sum(nil)
}

// StatementDigestForQuote returns the SHA-256 of st's JSON encoding (the
// encoding [Sign] puts in the payload) with the predicate's tee_quote left
// out: the quote cannot cover itself, everything else is covered. st is
// not modified. A verifier decodes the payload into a [Statement] and calls
// this on it; because tee_quote is omitted when empty, the result equals
// the SHA-256 of the payload the signer would have produced without a
// quote.
func StatementDigestForQuote(st *Statement) ([]byte, error) {
	if st == nil {
		return nil, fmt.Errorf("statement digest for quote: no statement")
	}
	c := *st
	c.Predicate.TEEQuote = nil
	body, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("statement digest for quote: %w", err)
	}
	d := sha256.Sum256(body)
	return d[:], nil
}

// teeDevices maps each TEE platform to the guest interface that reveals
// it. SGX is detected by Gramine's /dev/attestation/quote, not by the
// host's /dev/sgx_enclave: the quote can only be had from inside an
// enclave, and a process that sees /dev/sgx_enclave is outside one.
var teeDevices = []struct{ platform, dev string }{
	{PlatformSGX, "/dev/attestation/quote"},
	{PlatformTDX, "/dev/tdx_guest"},
	{PlatformSEVSNP, "/dev/sev-guest"},
	{PlatformNitro, "/dev/nsm"},
}

// Detect returns the TEE platforms whose guest interface exists on this
// machine, in this order: sgx (/dev/attestation/quote, Gramine's
// attestation interface inside an SGX enclave), tdx (/dev/tdx_guest),
// sev-snp (/dev/sev-guest) and nitro (/dev/nsm); empty when there is none.
// It only looks for the files: whether a quote can be had shows at
// attestation time.
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

package tee

import (
	"errors"
	"fmt"

	"github.com/grey-distributed/grey/proof"
)

// CheckBinding checks that the TEE quote in st's predicate binds st and the
// signing key keyID: that the report data it carries is
// [FitReportData]([proof.QuoteReportData](keyID,
// [proof.StatementDigestForQuote](st))). It reads the report data out of
// the quote's format for the statement's platform (Intel SGX/TDX quotes,
// SEV-SNP reports, Nitro attestation documents); it does NOT verify the
// quote's signature chain against the vendor's roots, so a passing check
// shows the quote is about this statement, not that the hardware is
// genuine. A statement without a quote is an error.
func CheckBinding(st *proof.Statement, keyID string) error {
	q := st.Predicate.TEEQuote
	platform := st.Predicate.Platform
	if len(q) == 0 {
		return errors.New("the statement carries no TEE quote")
	}
	var got []byte
	var err error
	switch platform {
	case proof.PlatformSGX, proof.PlatformTDX:
		got, err = intelReportData(platform, q)
	case proof.PlatformSEVSNP:
		got, err = snpReportData(q)
	case proof.PlatformNitro:
		got, err = nitroUserData(q)
	default:
		return fmt.Errorf("platform %q has no quote format", platform)
	}
	if err != nil {
		return err
	}
	d, err := proof.StatementDigestForQuote(st)
	if err != nil {
		return err
	}
	return checkBound(platform, got, FitReportData(proof.QuoteReportData(keyID, d)))
}

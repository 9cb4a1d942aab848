// Package tee holds the TEE attesters behind [proof.Attester]: Intel SGX
// (through Gramine's /dev/attestation), Intel TDX and AMD SEV-SNP (through
// the Linux configfs-tsm report interface, /sys/kernel/config/tsm/report)
// and AWS Nitro Enclaves (through the Nitro Security Module, /dev/nsm).
// [NewAttester] picks one by its configuration name ("software", "sgx",
// "tdx", "sev-snp", "nitro" or "auto"); the software attester,
// [proof.Software], is the default.
//
// Every attester binds the same [proof.ReportDataSize] (64) bytes of report
// data, which a proof takes from [proof.QuoteReportData]: report data of
// another length is first fitted by [FitReportData]. After quoting, each
// attester checks that the returned quote or report carries exactly those
// bytes and fails otherwise (a wrong provider, a swapped report, a stale
// read).
//
// Nothing here verifies a quote against the vendors' roots of trust (Intel
// PCS/DCAP collateral, AMD KDS, the AWS Nitro root certificate); that is
// the verifier's work and is not implemented. No hardware quote has been
// produced with this package: its tests run the file and request protocols
// against fakes (see docs/PROOFS.md, "TEE attesters").
package tee

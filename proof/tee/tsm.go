package tee

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/linuxtsm"
	"github.com/google/go-configfs-tsm/report"

	"github.com/grey-distributed/grey/proof"
)

// Providers that the Linux configfs-tsm report interface names in an
// entry's "provider" attribute (the guest drivers' module names).
const (
	providerTDX    = "tdx_guest"
	providerSEVSNP = "sev_guest"
)

// SEV-SNP attestation report layout (AMD SEV Secure Nested Paging Firmware
// ABI Specification, "ATTESTATION_REPORT Structure"): version (uint32 LE)
// at 0, REPORT_DATA at 0x50, 0x4A0 bytes in all.
const (
	snpReportDataOffset = 0x50
	snpReportSize       = 0x4A0
	snpMinVersion       = 2
)

// TDX quotes through the Linux configfs-tsm report interface
// (/sys/kernel/config/tsm/report, Linux 6.7 or later with the tdx_guest
// driver and configfs mounted): it creates a report entry, writes the 64
// bytes of report data to its inblob, reads outblob, which the kernel
// fills with a TDX quote from the host's quoting service, checks that the
// provider is tdx_guest and that the quote's TD report carries the report
// data, and removes the entry. The quote is returned as it came (version 4
// or 5). The legacy /dev/tdx_guest ioctl of older kernels is not used.
//
// The zero value uses the kernel's configfs; it is safe for concurrent
// use (each quote has its own entry, and the library checks the entry's
// generation counter so that a concurrent writer is detected).
type TDX struct {
	client configfsi.Client // nil: the kernel's configfs (linuxtsm)
}

// Platform returns [proof.PlatformTDX].
func (*TDX) Platform() string { return proof.PlatformTDX }

// Quote returns a TDX quote whose report_data is [FitReportData](reportData).
func (a *TDX) Quote(ctx context.Context, reportData []byte) ([]byte, error) {
	return tsmQuote(ctx, a.client, proof.PlatformTDX, providerTDX, reportData, func(q []byte) ([]byte, error) {
		return intelReportData(proof.PlatformTDX, q)
	})
}

func (a *TDX) probe() error { return tsmProbe(a.client, proof.PlatformTDX, providerTDX) }

// SEVSNP quotes through the Linux configfs-tsm report interface
// (/sys/kernel/config/tsm/report, Linux 6.7 or later with the sev_guest
// driver and configfs mounted), exactly as [TDX] does; outblob is then an
// SEV-SNP attestation report (0x4A0 bytes, signed by the chip's VCEK or
// VLEK) whose REPORT_DATA (at 0x50) must be the report data, and the
// provider must be sev_guest. The report is requested at the kernel's
// default privilege level (VMPL); the certificate table (auxblob) is not
// requested, so a verifier fetches the VCEK chain from AMD's KDS itself.
// The legacy /dev/sev-guest ioctl is not used.
//
// The zero value uses the kernel's configfs; it is safe for concurrent use.
type SEVSNP struct {
	client configfsi.Client // nil: the kernel's configfs (linuxtsm)
}

// Platform returns [proof.PlatformSEVSNP].
func (*SEVSNP) Platform() string { return proof.PlatformSEVSNP }

// Quote returns an SEV-SNP attestation report whose REPORT_DATA is
// [FitReportData](reportData).
func (a *SEVSNP) Quote(ctx context.Context, reportData []byte) ([]byte, error) {
	return tsmQuote(ctx, a.client, proof.PlatformSEVSNP, providerSEVSNP, reportData, snpReportData)
}

func (a *SEVSNP) probe() error { return tsmProbe(a.client, proof.PlatformSEVSNP, providerSEVSNP) }

// snpReportData returns the REPORT_DATA field of an SEV-SNP attestation
// report.
func snpReportData(r []byte) ([]byte, error) {
	if len(r) < snpReportSize {
		return nil, fmt.Errorf("%s: %w: %d bytes is shorter than an attestation report (%d)",
			proof.PlatformSEVSNP, ErrUnbound, len(r), snpReportSize)
	}
	if v := binary.LittleEndian.Uint32(r[0:4]); v < snpMinVersion {
		return nil, fmt.Errorf("%s: %w: attestation report version %d, want %d or later",
			proof.PlatformSEVSNP, ErrUnbound, v, snpMinVersion)
	}
	return r[snpReportDataOffset : snpReportDataOffset+proof.ReportDataSize], nil
}

// tsmReportDir is the configfs-tsm report directory.
const tsmReportDir = configfsi.TsmPrefix + "/report"

// tsmClient returns c, or the kernel's configfs client when c is nil.
func tsmClient(c configfsi.Client, platform, provider string) (configfsi.Client, error) {
	if c != nil {
		return c, nil
	}
	c, err := linuxtsm.MakeClient()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: configfs-tsm report interface %s (needs Linux 6.7 or later in a guest with the %s driver, and configfs mounted at /sys/kernel/config): %w",
			platform, ErrUnavailable, tsmReportDir, provider, err)
	}
	return c, nil
}

func tsmProbe(c configfsi.Client, platform, provider string) error {
	_, err := tsmClient(c, platform, provider)
	return err
}

// tsmQuote takes one configfs-tsm report over reportData and checks it.
func tsmQuote(ctx context.Context, c configfsi.Client, platform, provider string, reportData []byte,
	reportDataOf func([]byte) ([]byte, error)) ([]byte, error) {
	want := FitReportData(reportData)
	return withContext(ctx, func() ([]byte, error) {
		c, err := tsmClient(c, platform, provider)
		if err != nil {
			return nil, err
		}
		resp, err := report.Get(c, &report.Request{InBlob: want[:]})
		if err != nil {
			return nil, fmt.Errorf("%s: configfs-tsm report in %s: %w", platform, tsmReportDir, err)
		}
		if got := strings.TrimSpace(resp.Provider); got != provider {
			return nil, fmt.Errorf("%s: %w: configfs-tsm provider is %q, want %q (is this a %s guest?)",
				platform, ErrUnbound, got, provider, platform)
		}
		got, err := reportDataOf(resp.OutBlob)
		if err != nil {
			return nil, err
		}
		if err := checkBound(platform, got, want); err != nil {
			return nil, err
		}
		return resp.OutBlob, nil
	})
}

package tee

import (
	"encoding/binary"
	"fmt"

	"github.com/grey-distributed/grey/proof"
)

// Layout of Intel SGX and TDX quotes (Intel SGX ECDSA Quote Library
// Reference, "Quote Format"; TDX DCAP Quoting Library API, appendix A).
// Every version starts with a 48-byte header: version (uint16 LE),
// attestation key type (uint16), then in versions 4 and 5 the TEE type
// (uint32: 0 SGX, 0x81 TDX). Version 5 puts a body type (uint16: 1 SGX
// report, 2 TDX 1.0 report, 3 TDX 1.5 report) and a body size (uint32)
// between the header and the body. report_data is the last field of the
// SGX report body (at 320 of its 384 bytes) and of the TDX 1.0 report body
// (at 520 of 584; TDX 1.5 appends fields after it).
const (
	intelHeaderSize     = 48
	intelV5BodyPrefix   = 6
	teeTypeSGX          = 0x00
	teeTypeTDX          = 0x81
	sgxReportDataOffset = 320
	tdxReportDataOffset = 520
	v5BodySGX           = 1
	v5BodyTDX10         = 2
	v5BodyTDX15         = 3
)

// intelReportData returns the report_data field of an Intel quote of the
// given platform (proof.PlatformSGX or proof.PlatformTDX): SGX quotes of
// versions 1 to 5 (1 and 2 are EPID, 3 and later ECDSA/DCAP), TDX quotes
// of versions 4 and 5. Anything else is an error wrapping [ErrUnbound].
func intelReportData(platform string, q []byte) ([]byte, error) {
	if len(q) < intelHeaderSize+intelV5BodyPrefix {
		return nil, fmt.Errorf("%s: %w: %d bytes is too short for a quote", platform, ErrUnbound, len(q))
	}
	version := binary.LittleEndian.Uint16(q[0:2])
	teeType := uint32(teeTypeSGX) // versions 1 to 3 are SGX only
	if version >= 4 {
		teeType = binary.LittleEndian.Uint32(q[4:8])
	}
	wantTEE, field := uint32(teeTypeSGX), sgxReportDataOffset
	if platform == proof.PlatformTDX {
		wantTEE, field = teeTypeTDX, tdxReportDataOffset
	}
	if teeType != wantTEE {
		return nil, fmt.Errorf("%s: %w: quote has TEE type %#x, want %#x", platform, ErrUnbound, teeType, wantTEE)
	}
	var off int
	switch {
	case version >= 1 && version <= 3 && platform == proof.PlatformSGX, version == 4:
		off = intelHeaderSize + field
	case version == 5:
		body := binary.LittleEndian.Uint16(q[intelHeaderSize : intelHeaderSize+2])
		ok := body == v5BodySGX
		if platform == proof.PlatformTDX {
			ok = body == v5BodyTDX10 || body == v5BodyTDX15
		}
		if !ok {
			return nil, fmt.Errorf("%s: %w: version 5 quote has body type %d", platform, ErrUnbound, body)
		}
		off = intelHeaderSize + intelV5BodyPrefix + field
	default:
		return nil, fmt.Errorf("%s: %w: unsupported quote version %d", platform, ErrUnbound, version)
	}
	if len(q) < off+proof.ReportDataSize {
		return nil, fmt.Errorf("%s: %w: %d-byte version %d quote ends before its report data (bytes %d to %d)",
			platform, ErrUnbound, len(q), version, off, off+proof.ReportDataSize)
	}
	return q[off : off+proof.ReportDataSize], nil
}

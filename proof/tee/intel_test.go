package tee

import (
	"bytes"
	"testing"

	"github.com/grey-distributed/grey/proof"
)

func TestIntelReportDataRealQuote(t *testing.T) {
	q := realTDXQuote(t)
	got, err := intelReportData(proof.PlatformTDX, q)
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, realTDReportData); !bytes.Equal(got, want) {
		t.Errorf("TD report_data %x, want %x (go-tdx-guest's reading)", got, want)
	}
	// A real TDX quote is not an SGX quote.
	_, err = intelReportData(proof.PlatformSGX, q)
	wantErr(t, err, ErrUnbound, "sgx: ", "TEE type 0x81, want 0x0")

	// The quoting enclave's report inside it is a real SGX report body:
	// behind a version 3 header it reads as an SGX quote.
	sgx := intelQuote(3, 0, 0, 0, nil, 48)
	sgx = append(sgx, q[realQEReportAt:realQEReportAt+384]...)
	got, err = intelReportData(proof.PlatformSGX, sgx)
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, realQEReportData); !bytes.Equal(got, want) {
		t.Errorf("SGX report_data %x, want %x (go-tdx-guest's reading of the QE report)", got, want)
	}
}

func TestIntelReportDataLayouts(t *testing.T) {
	rd := bytes.Repeat([]byte{0x5a}, proof.ReportDataSize)
	for _, c := range []struct {
		name, platform string
		quote          []byte
		err            string
	}{
		{"sgx epid v2", proof.PlatformSGX, intelQuote(2, 0, 0, 368, rd, 432), ""},
		{"sgx dcap v3", proof.PlatformSGX, intelQuote(3, 0, 0, 368, rd, 1000), ""},
		{"sgx v4", proof.PlatformSGX, intelQuote(4, teeTypeSGX, 0, 368, rd, 1000), ""},
		{"sgx v5", proof.PlatformSGX, intelQuote(5, teeTypeSGX, v5BodySGX, 374, rd, 1000), ""},
		{"tdx v4", proof.PlatformTDX, intelQuote(4, teeTypeTDX, 0, 568, rd, 1000), ""},
		{"tdx v5 td1.0", proof.PlatformTDX, intelQuote(5, teeTypeTDX, v5BodyTDX10, 574, rd, 1000), ""},
		{"tdx v5 td1.5", proof.PlatformTDX, intelQuote(5, teeTypeTDX, v5BodyTDX15, 574, rd, 1000), ""},
		{"tdx v3", proof.PlatformTDX, intelQuote(3, 0, 0, 568, rd, 1000), "TEE type 0x0, want 0x81"},
		{"tdx v5 sgx body", proof.PlatformTDX, intelQuote(5, teeTypeTDX, v5BodySGX, 574, rd, 1000), "body type 1"},
		{"sgx v5 td body", proof.PlatformSGX, intelQuote(5, teeTypeSGX, v5BodyTDX10, 374, rd, 1000), "body type 2"},
		{"tdx v6", proof.PlatformTDX, intelQuote(6, teeTypeTDX, 0, 568, rd, 1000), "unsupported quote version 6"},
		{"sgx v0", proof.PlatformSGX, intelQuote(0, 0, 0, 368, rd, 1000), "unsupported quote version 0"},
		{"truncated tdx", proof.PlatformTDX, intelQuote(4, teeTypeTDX, 0, 568, rd, 600), "600-byte version 4 quote ends before its report data (bytes 568 to 632)"},
		{"truncated sgx", proof.PlatformSGX, intelQuote(3, 0, 0, 368, rd, 431), "ends before its report data"},
		{"empty", proof.PlatformSGX, nil, "0 bytes is too short"},
	} {
		got, err := intelReportData(c.platform, c.quote)
		if c.err != "" {
			wantErr(t, err, ErrUnbound, c.platform+": ", c.err)
			continue
		}
		if err != nil || !bytes.Equal(got, rd) {
			t.Errorf("%s: got %x, %v", c.name, got, err)
		}
	}
}

package tee

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/grey-distributed/grey/proof"
)

// fakeGramine lays out Gramine's /dev/attestation in a temporary
// directory: attestation_type (unless typ is ""), an empty
// user_report_data and quote holding the given bytes.
func fakeGramine(t *testing.T, typ string, quote []byte) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]byte{"user_report_data": nil, "quote": quote}
	if typ != "" {
		files["attestation_type"] = []byte(typ)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSGXQuote(t *testing.T) {
	rd := testReportData(t, "statement")
	quote := intelQuote(3, 0, 0, 368, rd, 4600)
	dir := fakeGramine(t, "dcap", quote)
	a, err := newAttester("sgx", env{sgxDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if a.Platform() != proof.PlatformSGX {
		t.Errorf("platform %q", a.Platform())
	}
	got, err := a.Quote(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, quote) {
		t.Error("Quote did not return the quote Gramine gave")
	}
	if w := readFile(t, filepath.Join(dir, "user_report_data")); !bytes.Equal(w, rd) {
		t.Errorf("wrote report data %x, want %x", w, rd)
	}
}

func TestSGXPadsShortReportData(t *testing.T) {
	want := append([]byte("short"), make([]byte, 59)...)
	dir := fakeGramine(t, "", intelQuote(3, 0, 0, 368, want, 432)) // Gramine without attestation_type
	a := &SGX{dir: dir}
	if _, err := a.Quote(context.Background(), []byte("short")); err != nil {
		t.Fatal(err)
	}
	if w := readFile(t, filepath.Join(dir, "user_report_data")); !bytes.Equal(w, want) {
		t.Errorf("wrote %x, want %x", w, want)
	}
}

func TestSGXRealReportBody(t *testing.T) {
	// A quote whose report body came from hardware (the TDX quoting
	// enclave's): asking for its report data succeeds, anything else is
	// refused.
	real := realTDXQuote(t)
	quote := append(intelQuote(3, 0, 0, 0, nil, 48), real[realQEReportAt:realQEReportAt+384]...)
	a := &SGX{dir: fakeGramine(t, "dcap", quote)}
	if _, err := a.Quote(context.Background(), unhex(t, realQEReportData)); err != nil {
		t.Fatal(err)
	}
	_, err := a.Quote(context.Background(), testReportData(t, "other"))
	wantErr(t, err, ErrUnbound, "sgx: ", "it carries cf1ae2cb")
}

func TestSGXFailures(t *testing.T) {
	ctx := context.Background()
	rd := testReportData(t, "statement")

	// No Gramine: the file that is missing is named.
	empty := t.TempDir()
	_, err := newAttester("sgx", env{sgxDir: empty})
	wantErr(t, err, ErrUnavailable, "sgx: ", filepath.Join(empty, "user_report_data"), "Gramine")
	_, err = (&SGX{dir: empty}).Quote(ctx, rd)
	wantErr(t, err, fs.ErrNotExist, "sgx: writing report data", filepath.Join(empty, "user_report_data"))

	// Remote attestation disabled in the manifest.
	dir := fakeGramine(t, "none\n", intelQuote(3, 0, 0, 368, rd, 432))
	_, err = newAttester("sgx", env{sgxDir: dir})
	wantErr(t, err, ErrUnavailable, filepath.Join(dir, "attestation_type"), `"none"`, "sgx.remote_attestation")
	_, err = (&SGX{dir: dir}).Quote(ctx, rd)
	wantErr(t, err, ErrUnavailable, `"none"`)

	// A quote over other report data (a stale or tampered quote).
	dir = fakeGramine(t, "dcap", intelQuote(3, 0, 0, 368, testReportData(t, "other"), 432))
	_, err = (&SGX{dir: dir}).Quote(ctx, rd)
	wantErr(t, err, ErrUnbound, "sgx: ", filepath.Join(dir, "quote"))

	// An empty quote, and a TDX quote where an SGX one belongs.
	dir = fakeGramine(t, "dcap", nil)
	_, err = (&SGX{dir: dir}).Quote(ctx, rd)
	wantErr(t, err, ErrUnbound, "too short", filepath.Join(dir, "quote"))
	dir = fakeGramine(t, "dcap", intelQuote(4, teeTypeTDX, 0, 568, rd, 1000))
	_, err = (&SGX{dir: dir}).Quote(ctx, rd)
	wantErr(t, err, ErrUnbound, "TEE type 0x81")

	// The quote cannot be read.
	dir = fakeGramine(t, "dcap", nil)
	if err := os.Remove(filepath.Join(dir, "quote")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "quote"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err = (&SGX{dir: dir}).Quote(ctx, rd)
	wantErr(t, err, nil, "sgx: reading quote", filepath.Join(dir, "quote"))

	// A cancelled caller does not touch the device.
	dir = fakeGramine(t, "dcap", intelQuote(3, 0, 0, 368, rd, 432))
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := (&SGX{dir: dir}).Quote(cctx, rd); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if w := readFile(t, filepath.Join(dir, "user_report_data")); len(w) != 0 {
		t.Errorf("cancelled quote wrote %x", w)
	}
}

package tee

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/grey-distributed/grey/proof"
)

// testReportData is report data as a proof makes it.
func testReportData(t *testing.T, seed string) []byte {
	t.Helper()
	d := sha512.Sum512_256([]byte(seed))
	rd := proof.QuoteReportData("a5e907015ec81e7196724c93331368a4", d[:])
	if len(rd) != proof.ReportDataSize {
		t.Fatalf("report data has %d bytes", len(rd))
	}
	return rd
}

// wantErr fails unless err is non-nil, wraps target (when not nil) and
// mentions every part.
func wantErr(t *testing.T, err, target error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", parts)
	}
	if target != nil && !errors.Is(err, target) {
		t.Errorf("error %q does not wrap %q", err, target)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

// intelQuote returns a synthetic Intel quote: the header (version, TEE
// type for versions 4 and 5, the body type for 5), zeros, and rd at
// reportDataAt; n bytes in all.
func intelQuote(version uint16, teeType uint32, body uint16, reportDataAt int, rd []byte, n int) []byte {
	q := make([]byte, n)
	binary.LittleEndian.PutUint16(q[0:], version)
	binary.LittleEndian.PutUint16(q[2:], 2) // ECDSA-256 with P-256
	if version >= 4 {
		binary.LittleEndian.PutUint32(q[4:], teeType)
	}
	if version == 5 {
		binary.LittleEndian.PutUint16(q[48:], body)
		binary.LittleEndian.PutUint32(q[50:], 584)
	}
	copy(q[reportDataAt:], rd)
	return q
}

// realTDXQuote is a quote produced by TDX hardware (see testdata/README.md).
func realTDXQuote(t *testing.T) []byte {
	t.Helper()
	q, err := os.ReadFile("testdata/tdx_quote_v4.dat")
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The report data values go-tdx-guest's parser reads from the real quote.
const (
	realTDReportData = "6c62dec1b8191749a31dab490be532a35944dea47caef1f980863993d9899545" +
		"eb7406a38d1eed313b987a467dacead6f0c87a6d766c66f6f29f8acb281f1113"
	realQEReportData = "cf1ae2cb769ff1f27ac520344e60905448a48bca6de8f1014c92e5a493d94101" +
		"0000000000000000000000000000000000000000000000000000000000000000"
	realQEReportAt = 770 // the QE's SGX report body inside the quote
)

func TestFitReportData(t *testing.T) {
	rd := bytes.Repeat([]byte{7}, proof.ReportDataSize)
	if got := FitReportData(rd); !bytes.Equal(got[:], rd) {
		t.Error("64 bytes are not kept as they are")
	}
	got := FitReportData([]byte("abc"))
	if want := append([]byte("abc"), make([]byte, 61)...); !bytes.Equal(got[:], want) {
		t.Errorf("short report data fitted to %x, want zero padding", got)
	}
	long := bytes.Repeat([]byte{1}, 65)
	if got, want := FitReportData(long), sha512.Sum512(long); got != want {
		t.Errorf("long report data fitted to %x, want its SHA-512", got)
	}
	if got := FitReportData(nil); got != [proof.ReportDataSize]byte{} {
		t.Errorf("empty report data fitted to %x", got)
	}
}

func TestNewAttesterNames(t *testing.T) {
	for _, name := range []string{"", "software", " Software "} {
		a, err := NewAttester(name)
		if err != nil || a.Platform() != proof.PlatformSoftware {
			t.Errorf("NewAttester(%q) = %v, %v; want software", name, a, err)
		}
	}
	_, err := NewAttester("sgx2")
	wantErr(t, err, nil, `unknown attester "sgx2"`, "software, sgx, tdx, sev-snp, nitro, auto")

	// This machine has no TEE: each platform is refused at construction,
	// naming what is missing.
	for name, path := range map[string]string{
		"sgx":     "/dev/attestation/user_report_data",
		"tdx":     "/sys/kernel/config/tsm/report",
		"sev-snp": "/sys/kernel/config/tsm/report",
		"nitro":   "/dev/nsm",
	} {
		if _, err := os.Stat(path); err == nil {
			t.Logf("%s exists here; not checking that %s is refused", path, name)
			continue
		}
		a, err := NewAttester(name)
		if a != nil {
			t.Errorf("NewAttester(%q) returned %v without its interface", name, a)
		}
		wantErr(t, err, ErrUnavailable, name+": ", path)
	}
}

func TestNewAttesterAuto(t *testing.T) {
	none := func() []string { return nil }
	a, err := newAttester("auto", env{detect: none})
	if err != nil || a.Platform() != proof.PlatformSoftware {
		t.Fatalf("auto with nothing detected = %v, %v; want software", a, err)
	}

	// The first detected platform wins.
	dir := fakeGramine(t, "dcap", nil)
	a, err = newAttester("AUTO", env{
		detect: func() []string { return []string{proof.PlatformSGX, proof.PlatformNitro} },
		sgxDir: dir,
	})
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := a.(*SGX); !ok || s.dir != dir {
		t.Fatalf("auto gave %#v, want the SGX attester on %s", a, dir)
	}
	a, err = newAttester("auto", env{
		detect: func() []string { return []string{proof.PlatformTDX} },
		tsm:    fakeKernel(providerTDX, nil).client,
	})
	if err != nil || a.Platform() != proof.PlatformTDX {
		t.Fatalf("auto with tdx detected = %v, %v", a, err)
	}

	// A detected platform that cannot be used is an error, not software.
	missing := t.TempDir() + "/nsm"
	_, err = newAttester("auto", env{
		detect: func() []string { return []string{proof.PlatformNitro} },
		nsmDev: missing,
	})
	wantErr(t, err, ErrUnavailable, "auto: detected nitro", missing)
}

func TestWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	_, err := withContext(ctx, func() ([]byte, error) { called = true; return nil, nil })
	if !errors.Is(err, context.Canceled) || called {
		t.Errorf("cancelled context: err %v, called %v", err, called)
	}

	// A device that does not answer: the caller gets its context's error
	// and the device call finishes later on its own.
	ctx, cancel = context.WithCancel(context.Background())
	release, done := make(chan struct{}), make(chan struct{})
	go func() {
		_, err = withContext(ctx, func() ([]byte, error) { <-release; return []byte("late"), nil })
		close(done)
	}()
	cancel()
	<-done
	close(release)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

package tee

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/faketsm"
	"github.com/google/go-configfs-tsm/report"

	"github.com/grey-distributed/grey/proof"
)

// kernel plays the Linux configfs-tsm report subsystem (on go-configfs-tsm's
// faketsm, which keeps the entries and their generation counter): it names
// provider and answers outblob with out(inblob), recording each inblob.
type kernel struct {
	client *faketsm.Client
	sub    *faketsm.ReportSubsystem

	mu      sync.Mutex
	inblobs [][]byte
}

func fakeKernel(provider string, out func(e *faketsm.ReportEntry, inblob []byte) ([]byte, error)) *kernel {
	if out == nil {
		out = func(_ *faketsm.ReportEntry, in []byte) ([]byte, error) {
			if provider == providerSEVSNP {
				return snpReport(2, in), nil
			}
			return intelQuote(4, teeTypeTDX, 0, 568, in, 5000), nil
		}
	}
	k := &kernel{}
	k.sub = faketsm.ReportV7(0)
	k.sub.MakeEntry = func() *faketsm.ReportEntry {
		return &faketsm.ReportEntry{InAttrs: map[string]*faketsm.ReportAttributeState{
			"inblob": {}, "privlevel": {Value: []byte("0\n")},
		}}
	}
	k.sub.CheckInAttr = func(_ *faketsm.ReportEntry, attr string, b []byte) error {
		if attr != "inblob" {
			return fmt.Errorf("unexpected write to %s", attr)
		}
		if len(b) > 64 {
			return syscall.EINVAL
		}
		k.mu.Lock()
		k.inblobs = append(k.inblobs, bytes.Clone(b))
		k.mu.Unlock()
		return nil
	}
	k.sub.ReadAttr = func(e *faketsm.ReportEntry, attr string) ([]byte, error) {
		switch attr {
		case "provider":
			return []byte(provider + "\n"), nil
		case "outblob":
			return out(e, e.InAttrs["inblob"].Value)
		}
		return nil, os.ErrNotExist
	}
	k.client = &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": k.sub}}
	return k
}

// entries is how many report entries are left in configfs.
func (k *kernel) entries() int {
	n := 0
	for range k.sub.Entries {
		n++
	}
	return n
}

// snpReport returns a synthetic SEV-SNP attestation report of the given
// version with rd as REPORT_DATA: 0x4A0 bytes, REPORT_DATA at 0x50 (the
// layout go-sev-guest's abi.ReportToAbiBytes writes, checked by hand).
func snpReport(version uint32, rd []byte) []byte {
	r := make([]byte, 0x4A0)
	binary.LittleEndian.PutUint32(r, version)
	copy(r[0x50:], rd)
	return r
}

func TestTDXQuote(t *testing.T) {
	k := fakeKernel(providerTDX, nil)
	a, err := newAttester("tdx", env{tsm: k.client})
	if err != nil {
		t.Fatal(err)
	}
	if a.Platform() != proof.PlatformTDX {
		t.Errorf("platform %q", a.Platform())
	}
	rd := testReportData(t, "statement")
	q, err := a.Quote(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(q, intelQuote(4, teeTypeTDX, 0, 568, rd, 5000)) {
		t.Error("Quote did not return the kernel's outblob")
	}
	if len(k.inblobs) != 1 || !bytes.Equal(k.inblobs[0], rd) {
		t.Errorf("inblob writes %x, want one of %x", k.inblobs, rd)
	}
	if n := k.entries(); n != 0 {
		t.Errorf("%d report entries left behind", n)
	}
}

func TestTDXRealQuote(t *testing.T) {
	// The kernel hands back a quote made by TDX hardware, whatever it was
	// asked: the attester accepts it only for the report data it carries.
	real := realTDXQuote(t)
	k := fakeKernel(providerTDX, func(*faketsm.ReportEntry, []byte) ([]byte, error) { return real, nil })
	a := &TDX{client: k.client}
	q, err := a.Quote(context.Background(), unhex(t, realTDReportData))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(q, real) {
		t.Error("quote changed on the way")
	}
	_, err = a.Quote(context.Background(), testReportData(t, "statement"))
	wantErr(t, err, ErrUnbound, "tdx: ", "it carries 6c62dec1")
}

func TestSEVSNPQuote(t *testing.T) {
	k := fakeKernel(providerSEVSNP, nil)
	a, err := newAttester("sev-snp", env{tsm: k.client})
	if err != nil {
		t.Fatal(err)
	}
	if a.Platform() != proof.PlatformSEVSNP {
		t.Errorf("platform %q", a.Platform())
	}
	rd := testReportData(t, "statement")
	q, err := a.Quote(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(q, snpReport(2, rd)) {
		t.Error("Quote did not return the kernel's report")
	}
	if len(k.inblobs) != 1 || !bytes.Equal(k.inblobs[0], rd) {
		t.Errorf("inblob writes %x, want one of %x", k.inblobs, rd)
	}
	// Short report data is padded before it is written.
	if _, err := a.Quote(context.Background(), []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if want := append([]byte{1, 2, 3}, make([]byte, 61)...); !bytes.Equal(k.inblobs[1], want) {
		t.Errorf("inblob %x, want %x", k.inblobs[1], want)
	}
}

func TestTSMFailures(t *testing.T) {
	ctx := context.Background()
	rd := testReportData(t, "statement")

	// The other platform's guest answers.
	_, err := (&TDX{client: fakeKernel(providerSEVSNP, nil).client}).Quote(ctx, rd)
	wantErr(t, err, ErrUnbound, "tdx: ", `provider is "sev_guest", want "tdx_guest"`)
	_, err = (&SEVSNP{client: fakeKernel(providerTDX, nil).client}).Quote(ctx, rd)
	wantErr(t, err, ErrUnbound, "sev-snp: ", `provider is "tdx_guest", want "sev_guest"`)

	// Reports that do not carry the report data, or are not reports.
	other := testReportData(t, "other")
	for name, c := range map[string]struct {
		a   proof.Attester
		err string
	}{
		"tdx stale": {&TDX{client: fakeKernel(providerTDX, func(*faketsm.ReportEntry, []byte) ([]byte, error) {
			return intelQuote(4, teeTypeTDX, 0, 568, other, 5000), nil
		}).client}, "tdx: "},
		"tdx sgx quote": {&TDX{client: fakeKernel(providerTDX, func(_ *faketsm.ReportEntry, in []byte) ([]byte, error) {
			return intelQuote(3, 0, 0, 368, in, 5000), nil
		}).client}, "TEE type 0x0"},
		"snp stale": {&SEVSNP{client: fakeKernel(providerSEVSNP, func(*faketsm.ReportEntry, []byte) ([]byte, error) {
			return snpReport(2, other), nil
		}).client}, "sev-snp: "},
		"snp short": {&SEVSNP{client: fakeKernel(providerSEVSNP, func(_ *faketsm.ReportEntry, in []byte) ([]byte, error) {
			return snpReport(2, in)[:0x90], nil
		}).client}, "144 bytes is shorter than an attestation report (1184)"},
		"snp version 1": {&SEVSNP{client: fakeKernel(providerSEVSNP, func(_ *faketsm.ReportEntry, in []byte) ([]byte, error) {
			return snpReport(1, in), nil
		}).client}, "version 1"},
	} {
		_, err := c.a.Quote(ctx, rd)
		if !errors.Is(err, ErrUnbound) {
			t.Errorf("%s: err %v, want ErrUnbound", name, err)
		}
		wantErr(t, err, ErrUnbound, c.err)
	}

	// The kernel (the host's quoting service) fails.
	k := fakeKernel(providerTDX, func(*faketsm.ReportEntry, []byte) ([]byte, error) { return nil, syscall.EIO })
	_, err = (&TDX{client: k.client}).Quote(ctx, rd)
	wantErr(t, err, nil, "tdx: configfs-tsm report in /sys/kernel/config/tsm/report", "outblob")
	if n := k.entries(); n != 0 {
		t.Errorf("%d report entries left behind after a failure", n)
	}

	// Another writer changes the entry between our write and read: the
	// generation counter gives it away.
	k = fakeKernel(providerTDX, func(e *faketsm.ReportEntry, in []byte) ([]byte, error) {
		e.WriteGeneration++
		return intelQuote(4, teeTypeTDX, 0, 568, in, 5000), nil
	})
	_, err = (&TDX{client: k.client}).Quote(ctx, rd)
	var gen *report.GenerationErr
	if !errors.As(err, &gen) {
		t.Errorf("interleaved writer: err %v, want a generation error", err)
	}
}

func TestTSMWithoutConfigfs(t *testing.T) {
	if _, err := os.Stat(tsmReportDir); err == nil {
		t.Skipf("%s exists on this machine", tsmReportDir)
	}
	for _, a := range []proof.Attester{&TDX{}, &SEVSNP{}} {
		_, err := a.Quote(context.Background(), testReportData(t, "statement"))
		wantErr(t, err, ErrUnavailable, a.Platform()+": ", "/sys/kernel/config/tsm/report", "Linux 6.7")
	}
}

func TestTDXConcurrentQuotes(t *testing.T) {
	k := fakeKernel(providerTDX, nil)
	a := &TDX{client: k.client}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rd := testReportData(t, fmt.Sprint(i))
			q, err := a.Quote(context.Background(), rd)
			if err == nil && !bytes.Equal(q[568:632], rd) {
				err = fmt.Errorf("quote %d carries %x", i, q[568:632])
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := k.entries(); n != 0 {
		t.Errorf("%d report entries left behind", n)
	}
}

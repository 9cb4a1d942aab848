package tee

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/hf/nsm"
)

// TestNitroNotAnNSM runs the real ioctl against a file that is not an
// NSM: the kernel refuses it (ENOTTY) and the error names the device.
func TestNitroNotAnNSM(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "nsm")
	if err := os.WriteFile(dev, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := newAttester("nitro", env{nsmDev: dev}) // it opens, so the probe passes
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Quote(context.Background(), testReportData(t, "statement"))
	wantErr(t, err, nil, "nitro: attestation request to "+dev)
	var ioctl *nsm.ErrorIoctlFailed
	if !errors.As(err, &ioctl) || ioctl.Errno != syscall.ENOTTY {
		t.Errorf("error %v, want the ioctl's ENOTTY", err)
	}
}

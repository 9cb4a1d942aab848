package tee

import (
	"context"
	"fmt"
	"os"

	"github.com/fxamacker/cbor/v2"
	"github.com/hf/nsm/request"
	"github.com/hf/nsm/response"

	"github.com/grey-distributed/grey/proof"
)

// nsmDevice is the Nitro Security Module's device inside an enclave.
const nsmDevice = "/dev/nsm"

// Nitro quotes through the Nitro Security Module of an AWS Nitro Enclave
// (/dev/nsm), with the github.com/hf/nsm client: it sends an Attestation
// request (CBOR, over the NSM ioctl) whose user_data is the 64 bytes of
// report data and whose nonce and public_key are absent, and returns the
// attestation document from the response: a COSE_Sign1 structure whose
// CBOR payload holds the enclave's PCRs, its certificate chain and that
// user_data. The attester checks that the document's user_data is the
// report data, and turns an NSM error code into an error naming it.
//
// The zero value uses /dev/nsm; it is safe for concurrent use (each quote
// opens its own session).
type Nitro struct {
	dev string // the NSM device; "" is /dev/nsm
	// send performs one NSM request; nil opens a session on the device.
	// Tests replace it to stand in for the ioctl.
	send func(dev string, req request.Request) (response.Response, error)
}

// Platform returns [proof.PlatformNitro].
func (*Nitro) Platform() string { return proof.PlatformNitro }

func (a *Nitro) device() string {
	if a.dev == "" {
		return nsmDevice
	}
	return a.dev
}

// probe checks that the NSM device can be opened.
func (a *Nitro) probe() error {
	f, err := os.Open(a.device())
	if err != nil {
		return fmt.Errorf("nitro: %w: NSM device %s (greyd must run inside a Nitro Enclave): %w",
			ErrUnavailable, a.device(), err)
	}
	return f.Close()
}

// Quote returns the NSM attestation document whose user_data is
// [FitReportData](reportData).
func (a *Nitro) Quote(ctx context.Context, reportData []byte) ([]byte, error) {
	want := FitReportData(reportData)
	send := a.send
	if send == nil {
		send = nsmSend
	}
	dev := a.device()
	return withContext(ctx, func() ([]byte, error) {
		res, err := send(dev, &request.Attestation{UserData: want[:]})
		if err != nil {
			return nil, fmt.Errorf("nitro: attestation request to %s: %w", dev, err)
		}
		if res.Error != "" {
			return nil, fmt.Errorf("nitro: %s refused the attestation request: NSM error %s", dev, res.Error)
		}
		if res.Attestation == nil || len(res.Attestation.Document) == 0 {
			return nil, fmt.Errorf("nitro: %s answered the attestation request without a document", dev)
		}
		doc := res.Attestation.Document
		got, err := nitroUserData(doc)
		if err != nil {
			return nil, err
		}
		if err := checkBound(proof.PlatformNitro, got, want); err != nil {
			return nil, fmt.Errorf("%w (document from %s)", err, dev)
		}
		return doc, nil
	})
}

// coseSign1 is a COSE_Sign1 structure (RFC 9052 §4.2), tagged (18) or not.
type coseSign1 struct {
	_           struct{} `cbor:",toarray"`
	Protected   []byte
	Unprotected cbor.RawMessage
	Payload     []byte
	Signature   []byte
}

// nitroUserData returns the user_data of an NSM attestation document.
func nitroUserData(doc []byte) ([]byte, error) {
	var s coseSign1
	if err := cbor.Unmarshal(doc, &s); err != nil {
		return nil, fmt.Errorf("nitro: %w: attestation document is not COSE_Sign1: %w", ErrUnbound, err)
	}
	var p struct {
		ModuleID string `cbor:"module_id"`
		UserData []byte `cbor:"user_data"`
	}
	if err := cbor.Unmarshal(s.Payload, &p); err != nil {
		return nil, fmt.Errorf("nitro: %w: attestation document payload: %w", ErrUnbound, err)
	}
	if p.ModuleID == "" {
		return nil, fmt.Errorf("nitro: %w: attestation document payload has no module_id", ErrUnbound)
	}
	return p.UserData, nil
}

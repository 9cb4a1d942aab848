package tee

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/hf/nsm/request"
	"github.com/hf/nsm/response"

	"github.com/grey-distributed/grey/proof"
)

// nitroDoc returns an NSM-style attestation document: a COSE_Sign1 whose
// payload is the attestation map with userData (tag 18 when tagged). The
// signature is not a real one.
func nitroDoc(t *testing.T, userData []byte, tagged bool) []byte {
	t.Helper()
	payload, err := cbor.Marshal(map[string]any{
		"module_id":   "i-0123456789abcdef0-enc0123456789abcdef",
		"digest":      "SHA384",
		"timestamp":   uint64(1767225600000),
		"pcrs":        map[int][]byte{0: make([]byte, 48)},
		"certificate": []byte("cert"),
		"cabundle":    [][]byte{[]byte("root")},
		"public_key":  nil,
		"user_data":   userData,
		"nonce":       nil,
	})
	if err != nil {
		t.Fatal(err)
	}
	protected, _ := cbor.Marshal(map[int]int{1: -35}) // alg: ES384
	sign1 := []any{protected, map[int]any{}, payload, make([]byte, 96)}
	var doc []byte
	if tagged {
		doc, err = cbor.Marshal(cbor.Tag{Number: 18, Content: sign1})
	} else {
		doc, err = cbor.Marshal(sign1)
	}
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// fakeNSM stands in for the NSM ioctl: it records the requests and
// answers with res.
type fakeNSM struct {
	devs []string
	reqs []request.Request
	res  response.Response
	err  error
}

func (f *fakeNSM) send(dev string, req request.Request) (response.Response, error) {
	f.devs = append(f.devs, dev)
	f.reqs = append(f.reqs, req)
	return f.res, f.err
}

func TestNitroQuote(t *testing.T) {
	rd := testReportData(t, "statement")
	for _, tagged := range []bool{false, true} {
		doc := nitroDoc(t, rd, tagged)
		f := &fakeNSM{res: response.Response{Attestation: &response.Attestation{Document: doc}}}
		a := &Nitro{send: f.send}
		if a.Platform() != proof.PlatformNitro {
			t.Errorf("platform %q", a.Platform())
		}
		q, err := a.Quote(context.Background(), rd)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(q, doc) {
			t.Error("Quote did not return the attestation document")
		}
		if len(f.reqs) != 1 || f.devs[0] != "/dev/nsm" {
			t.Fatalf("requests %v to %v, want one to /dev/nsm", f.reqs, f.devs)
		}
		req, ok := f.reqs[0].(*request.Attestation)
		if !ok {
			t.Fatalf("request is %T, want *request.Attestation", f.reqs[0])
		}
		if !bytes.Equal(req.UserData, rd) || req.Nonce != nil || req.PublicKey != nil {
			t.Errorf("request user_data %x nonce %x public_key %x; want user_data %x only",
				req.UserData, req.Nonce, req.PublicKey, rd)
		}
	}
}

func TestNitroFailures(t *testing.T) {
	ctx := context.Background()
	rd := testReportData(t, "statement")
	dev := "/enclave/dev/nsm"
	for name, c := range map[string]struct {
		res    response.Response
		err    error
		target error
		parts  []string
	}{
		"ioctl fails": {err: errors.New("ioctl failed on device with errno EIO"),
			parts: []string{"nitro: attestation request to " + dev, "errno EIO"}},
		"nsm error code": {res: response.Response{Error: response.ECInvalidArgument},
			parts: []string{dev + " refused the attestation request", "InvalidArgument"}},
		"no document": {res: response.Response{Attestation: &response.Attestation{}},
			parts: []string{dev, "without a document"}},
		"other user_data": {res: response.Response{Attestation: &response.Attestation{Document: nitroDoc(t, testReportData(t, "other"), false)}},
			target: ErrUnbound, parts: []string{"nitro: ", "document from " + dev}},
		"no user_data": {res: response.Response{Attestation: &response.Attestation{Document: nitroDoc(t, nil, false)}},
			target: ErrUnbound, parts: []string{"it carries , asked for"}},
		"not COSE": {res: response.Response{Attestation: &response.Attestation{Document: []byte("garbage")}},
			target: ErrUnbound, parts: []string{"not COSE_Sign1"}},
	} {
		f := &fakeNSM{res: c.res, err: c.err}
		_, err := (&Nitro{dev: dev, send: f.send}).Quote(ctx, rd)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		wantErr(t, err, c.target, c.parts...)
	}
}

func TestNitroMissingDevice(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nsm")
	_, err := (&Nitro{dev: missing}).Quote(context.Background(), testReportData(t, "statement"))
	wantErr(t, err, ErrUnavailable, "nitro: ", missing)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v does not wrap fs.ErrNotExist", err)
	}
	_, err = newAttester("nitro", env{nsmDev: missing})
	wantErr(t, err, ErrUnavailable, "nitro: ", "NSM device "+missing, "Nitro Enclave")
}

// TestNSMWire pins the bytes on each side of the ioctl, as hf/nsm encodes
// the request and decodes the response (the ioctl itself cannot be faked
// safely; see docs/PROOFS.md).
func TestNSMWire(t *testing.T) {
	rd := testReportData(t, "statement")
	b, err := cbor.Marshal((&request.Attestation{UserData: rd}).Encoded())
	if err != nil {
		t.Fatal(err)
	}
	var sent map[string]map[string]any
	if err := cbor.Unmarshal(b, &sent); err != nil {
		t.Fatal(err)
	}
	att, ok := sent["Attestation"]
	if !ok || len(sent) != 1 {
		t.Fatalf("request %v, want one Attestation entry", sent)
	}
	if ud, _ := att["user_data"].([]byte); !bytes.Equal(ud, rd) || att["nonce"] != nil || att["public_key"] != nil {
		t.Errorf("request body %v", att)
	}

	doc := nitroDoc(t, rd, false)
	wire, err := cbor.Marshal(map[string]any{"Attestation": map[string]any{"document": doc}})
	if err != nil {
		t.Fatal(err)
	}
	var res response.Response
	if err := cbor.Unmarshal(wire, &res); err != nil {
		t.Fatal(err)
	}
	if res.Error != "" || res.Attestation == nil || !bytes.Equal(res.Attestation.Document, doc) {
		t.Errorf("decoded %+v", res)
	}
	wire, _ = cbor.Marshal(map[string]any{"Error": "InputTooLarge"})
	res = response.Response{}
	if err := cbor.Unmarshal(wire, &res); err != nil || res.Error != response.ECInputTooLarge {
		t.Errorf("error response decoded to %+v, %v", res, err)
	}
}

package proof

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// attestStatement is a statement of this file's own, so that these tests
// do not depend on the rest of the package's fixtures.
func attestStatement() *Statement {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return NewStatement([]byte(`{"ok":true}`), Predicate{
		TaskID:      "0195a3b4-0000-7000-8000-000000000001",
		TenantID:    "acme",
		Kind:        "wasm",
		InputDigest: Digest([]byte("payload")),
		Executor:    Executor{Name: "wasm", Version: "v0.3.0", Digest: "sha256:" + Digest([]byte("module"))},
		NodeID:      "node-1",
		Platform:    PlatformTDX,
		Attempt:     2,
		StartedAt:   t0,
		FinishedAt:  t0.Add(1500 * time.Millisecond),
	})
}

func TestQuoteReportDataVector(t *testing.T) {
	// Computed independently: python3 -c 'import hashlib;
	// print(hashlib.sha512(b"grey-proof-v1\x00" +
	// b"a5e907015ec81e7196724c93331368a4" + b"\x00" + bytes(range(32))).hexdigest())'
	const want = "cefaebef79b51f0ce8d3c3cf33ba745d2b5361f7cc35dee74effbf14bc798027" +
		"ed77a76342b2b3be4991c41abe473f29c8c90d8b3d08edacf582e3883d940559"
	digest := make([]byte, 32)
	for i := range digest {
		digest[i] = byte(i)
	}
	got := QuoteReportData("a5e907015ec81e7196724c93331368a4", digest)
	if hex.EncodeToString(got) != want {
		t.Fatalf("QuoteReportData = %x\nwant            %s", got, want)
	}
	if len(got) != ReportDataSize || ReportDataSize != 64 {
		t.Fatalf("len = %d, ReportDataSize = %d, want 64", len(got), ReportDataSize)
	}
	// Every input moves the output; the separators keep key id and
	// digest from sliding into each other.
	if bytes.Equal(got, QuoteReportData("a5e907015ec81e7196724c93331368a5", digest)) {
		t.Error("report data ignores the key id")
	}
	if bytes.Equal(got, QuoteReportData("a5e907015ec81e7196724c93331368a4", digest[:31])) {
		t.Error("report data ignores the statement digest")
	}
	if bytes.Equal(QuoteReportData("ab", []byte{'c'}), QuoteReportData("a", []byte("bc"))) {
		t.Error("key id and digest are ambiguous")
	}
}

func TestStatementDigestForQuote(t *testing.T) {
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	st := attestStatement()
	d, err := StatementDigestForQuote(st)
	if err != nil {
		t.Fatal(err)
	}

	// Without a quote it is the SHA-256 of the signed payload itself.
	env, err := Sign(k, st)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(payload); !bytes.Equal(d, sum[:]) {
		t.Errorf("digest %x is not SHA-256 of the quote-less payload %x", d, sum)
	}

	// The quote is left out, and st is not modified.
	st.Predicate.TEEQuote = []byte("a quote")
	d2, err := StatementDigestForQuote(st)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d, d2) {
		t.Error("the digest covers tee_quote")
	}
	if string(st.Predicate.TEEQuote) != "a quote" {
		t.Error("StatementDigestForQuote modified the statement")
	}

	// A verifier's path: decode the signed payload (with its quote) and
	// recompute the report data the quote must carry.
	env, err = Sign(k, st)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Verify(env, NewKeyRing(k.Public()), Expect{})
	if err != nil {
		t.Fatal(err)
	}
	d3, err := StatementDigestForQuote(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d, d3) {
		t.Error("verifier's digest differs from the signer's")
	}
	// By hand: tee_quote is the predicate's last member, so cutting it out
	// of the payload text gives the quote-less payload.
	payload, err = base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	member := `,"tee_quote":"` + base64.StdEncoding.EncodeToString([]byte("a quote")) + `"}}`
	if !bytes.HasSuffix(payload, []byte(member)) {
		t.Fatalf("payload does not end with %s: %s", member, payload)
	}
	cut := append(bytes.TrimSuffix(payload, []byte(member)), "}}"...)
	if sum := sha256.Sum256(cut); !bytes.Equal(d, sum[:]) {
		t.Error("cutting tee_quote out of the payload does not give the digest")
	}
	h := sha512.Sum512(append([]byte("grey-proof-v1\x00"+k.KeyID()+"\x00"), d...))
	if rd := QuoteReportData(env.Signatures[0].KeyID, d3); !bytes.Equal(rd, h[:]) {
		t.Errorf("report data %x, want %x", rd, h)
	}

	// Every other field is covered.
	st.Predicate.Attempt++
	if d4, _ := StatementDigestForQuote(st); bytes.Equal(d, d4) {
		t.Error("the digest does not cover the attempt")
	}
	if _, err := StatementDigestForQuote(nil); err == nil {
		t.Error("nil statement accepted")
	}
}

func TestDetectLooksForGuestInterfaces(t *testing.T) {
	root := t.TempDir()
	mk := func(p string) {
		t.Helper()
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// An SGX host's device does not mean this process is in an enclave.
	mk("dev/sgx_enclave")
	if got := detectIn(root); len(got) != 0 {
		t.Errorf("/dev/sgx_enclave alone detected %v", got)
	}
	mk("dev/attestation/quote")
	mk("dev/sev-guest")
	mk("dev/nsm")
	mk("dev/tdx_guest")
	want := []string{PlatformSGX, PlatformTDX, PlatformSEVSNP, PlatformNitro}
	if got := detectIn(root); !slices.Equal(got, want) {
		t.Errorf("detected %v, want %v (in that order)", got, want)
	}
}

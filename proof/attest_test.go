package proof

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// attestRuns are runs of this file's own, so that these tests do not
// depend on the rest of the package's fixtures.
func attestRuns() []Run {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return []Run{{
		TaskID:     "0195a3b4-0000-7000-8000-000000000001",
		Kind:       "wasm",
		Payload:    []byte("payload"),
		Output:     []byte(`{"ok":true}`),
		Attempt:    2,
		Executor:   Executor{Name: "wasm", Version: "v0.3.0", Digest: "sha256:" + Digest([]byte("module"))},
		StartedAt:  t0,
		FinishedAt: t0.Add(1500 * time.Millisecond),
	}, {
		TaskID:     "0195a3b4-0000-7000-8000-000000000002",
		Kind:       "echo",
		Payload:    []byte("payload 2"),
		Output:     []byte(`{"ok":false}`),
		Attempt:    1,
		Executor:   Executor{Name: "echo", Version: "v0.3.0", Digest: "sha256:" + Digest([]byte("greyd"))},
		StartedAt:  t0,
		FinishedAt: t0.Add(2 * time.Second),
	}}
}

// attestStatement is a two-task TDX statement.
func attestStatement() *Statement {
	return NewStatement("acme", "node-1", PlatformTDX, attestRuns()...)
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

	// Every other field is covered, of every task.
	st.Predicate.Executions[1].Attempt++
	if d4, _ := StatementDigestForQuote(st); bytes.Equal(d, d4) {
		t.Error("the digest does not cover the second task's attempt")
	}
	st.Predicate.Executions[1].Attempt--
	st.Subject[1].Digest = map[string]string{DigestAlgorithm: Digest(nil)}
	if d4, _ := StatementDigestForQuote(st); bytes.Equal(d, d4) {
		t.Error("the digest does not cover the second task's output")
	}
	if _, err := StatementDigestForQuote(nil); err == nil {
		t.Error("nil statement accepted")
	}
}

// recordingAttester stands in for a TEE: it records the report data it was
// asked to quote and returns a quote derived from it.
type recordingAttester struct {
	platform string
	err      error

	mu     sync.Mutex
	called [][]byte
}

func (a *recordingAttester) Platform() string { return a.platform }

func (a *recordingAttester) Quote(_ context.Context, reportData []byte) ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.called = append(a.called, bytes.Clone(reportData))
	if a.err != nil {
		return nil, a.err
	}
	return append([]byte("quote:"), reportData...), nil
}

// A Signer with a TEE attester embeds a quote over the report data that
// binds its key and the batch statement.
func TestSignerEmbedsQuote(t *testing.T) {
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	att := &recordingAttester{platform: PlatformTDX}
	s := &Signer{Key: k, NodeID: "node-1", Attester: att}
	if s.Platform() != PlatformTDX {
		t.Fatalf("Platform = %q", s.Platform())
	}
	runs := attestRuns()
	raw, err := s.Sign(context.Background(), "acme", runs...)
	if err != nil {
		t.Fatal(err)
	}
	env, err := ParseEnvelope(raw)
	if err != nil {
		t.Fatal(err)
	}
	var st *Statement
	for _, r := range runs {
		st, err = Verify(env, NewKeyRing(k.Public()), Expect{TaskID: r.TaskID, TenantID: "acme", InputDigest: Digest(r.Payload), OutputDigest: Digest(r.Output)})
		if err != nil {
			t.Fatalf("task %s: %v", r.TaskID, err)
		}
	}
	if len(att.called) != 1 {
		t.Fatalf("attester called %d times for one batch, want 1", len(att.called))
	}
	rd := att.called[0]
	if st.Predicate.Platform != PlatformTDX || !bytes.Equal(st.Predicate.TEEQuote, append([]byte("quote:"), rd...)) {
		t.Errorf("platform %q, quote %q; want tdx and the attester's quote", st.Predicate.Platform, st.Predicate.TEEQuote)
	}
	// The verifier's recomputation from the envelope alone.
	d, err := StatementDigestForQuote(st)
	if err != nil {
		t.Fatal(err)
	}
	if want := QuoteReportData(k.KeyID(), d); !bytes.Equal(rd, want) || len(rd) != ReportDataSize {
		t.Errorf("quoted report data %x, want %x", rd, want)
	}
	if want := QuoteReportData(env.Signatures[0].KeyID, d); !bytes.Equal(rd, want) {
		t.Error("report data is not bound to the envelope's key id")
	}
	// The statement the signer quoted is the one it signed, quote aside.
	if dw, _ := StatementDigestForQuote(NewStatement("acme", "node-1", PlatformTDX, runs...)); !bytes.Equal(dw, d) {
		t.Error("the quoted digest is not that of the runs' statement")
	}

	// A failing quote fails the signing, naming the platform.
	att.err = errors.New("no quoting service")
	_, err = s.Sign(context.Background(), "acme", runs...)
	if err == nil || !strings.Contains(err.Error(), "tdx quote: no quoting service") {
		t.Errorf("err = %v, want the tdx quote error", err)
	}

	// Software signers never ask for a quote.
	for _, a := range []Attester{nil, Software{}, &recordingAttester{platform: PlatformSoftware}} {
		s := &Signer{Key: k, NodeID: "node-1", Attester: a}
		raw, err := s.Sign(context.Background(), "acme", runs...)
		if err != nil {
			t.Fatal(err)
		}
		env, _ := ParseEnvelope(raw)
		st, err := DecodeStatement(env)
		if err != nil {
			t.Fatal(err)
		}
		if st.Predicate.Platform != PlatformSoftware || st.Predicate.TEEQuote != nil {
			t.Errorf("%T: platform %q, quote %q", a, st.Predicate.Platform, st.Predicate.TEEQuote)
		}
		if r, ok := a.(*recordingAttester); ok && len(r.called) != 0 {
			t.Error("software attester was asked for a quote")
		}
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

package tee

import (
	"errors"
	"testing"
	"time"

	"github.com/grey-distributed/grey/proof"
)

// A verifier can check that a proof's quote is about that very statement
// and key: the report data read out of the quote must be the binding.
func TestCheckBinding(t *testing.T) {
	key, err := proof.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	stmt := func(platform string) *proof.Statement {
		return proof.NewStatement("acme", "node-1", platform, proof.Run{TaskID: "t-1", Kind: "wasm", Payload: []byte(`1`), Output: []byte(`2`), Attempt: 1, StartedAt: t0, FinishedAt: t0})
	}
	binding := func(st *proof.Statement) []byte {
		d, err := proof.StatementDigestForQuote(st)
		if err != nil {
			t.Fatal(err)
		}
		rd := FitReportData(proof.QuoteReportData(key.KeyID(), d))
		return rd[:]
	}
	for _, tc := range []struct {
		platform string
		quote    func(rd []byte) []byte
	}{
		{proof.PlatformNitro, func(rd []byte) []byte { return nitroDoc(t, rd, false) }},
		{proof.PlatformSGX, func(rd []byte) []byte {
			return intelQuote(3, teeTypeSGX, 0, intelHeaderSize+sgxReportDataOffset, rd, 1024)
		}},
		{proof.PlatformTDX, func(rd []byte) []byte {
			return intelQuote(4, teeTypeTDX, 0, intelHeaderSize+tdxReportDataOffset, rd, 1024)
		}},
	} {
		st := stmt(tc.platform)
		st.Predicate.TEEQuote = tc.quote(binding(st))
		if err := CheckBinding(st, key.KeyID()); err != nil {
			t.Errorf("%s: a bound quote: %v", tc.platform, err)
		}
		if err := CheckBinding(st, "another-key"); !errors.Is(err, ErrUnbound) {
			t.Errorf("%s: another key id: %v, want unbound", tc.platform, err)
		}
		other := stmt(tc.platform)
		other.Predicate.Executions[0].Attempt = 2 // a different statement, same quote
		other.Predicate.TEEQuote = st.Predicate.TEEQuote
		if err := CheckBinding(other, key.KeyID()); !errors.Is(err, ErrUnbound) {
			t.Errorf("%s: the quote of another statement: %v, want unbound", tc.platform, err)
		}
	}
	if err := CheckBinding(stmt(proof.PlatformSoftware), key.KeyID()); err == nil {
		t.Error("a statement without a quote passed")
	}
	sw := stmt(proof.PlatformSoftware)
	sw.Predicate.TEEQuote = []byte("quote")
	if err := CheckBinding(sw, key.KeyID()); err == nil {
		t.Error("a software statement with a quote passed")
	}
}

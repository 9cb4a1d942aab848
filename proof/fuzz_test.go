package proof

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary bytes to ParseEnvelope and Verify, as
// `greyctl proof verify --file` and the API do with outside envelopes.
// Nothing may panic, and anything that verifies must carry exactly the
// statement that was signed: the signature cannot be stretched over other
// bytes.
func FuzzVerify(f *testing.F) {
	key, err := GenerateKey()
	if err != nil {
		f.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	st := NewStatement("acme", "node-1", "", Run{TaskID: "t-1", Kind: "echo", Payload: []byte(`1`), Output: []byte(`2`), Attempt: 1, StartedAt: t0, FinishedAt: t0})
	env, err := Sign(key, st)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := json.Marshal(env)
	signed, _ := json.Marshal(st)
	f.Add(good)
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"","sig":"AA=="}]}`))
	f.Add([]byte(`{"envelope":{}}`))
	f.Add([]byte(`null`))
	ring := NewKeyRing(key.Public())
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEnvelope(b)
		if err != nil {
			return
		}
		_, _ = ShortForm(e, "")
		_, _ = ShortForm(e, "t-1")
		got, err := Verify(e, ring, Expect{TaskID: "t-1"})
		if err != nil {
			return
		}
		back, _ := json.Marshal(got)
		if !bytes.Equal(back, signed) {
			t.Fatalf("verified a statement that was never signed:\n%s", back)
		}
	})
}

package proof

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	attv1 "github.com/in-toto/attestation/go/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/secure-systems-lab/go-securesystemslib/signerverifier"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/grey-distributed/grey/task"
)

var (
	testInput  = []byte(`{"n":42}`)
	testOutput = []byte(`{"result":"ok"}`)
	testStart  = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

func testStatement() *Statement {
	return NewStatement(testOutput, Predicate{
		TaskID:      "0195a3b4-0000-7000-8000-000000000001",
		TenantID:    "acme",
		Kind:        "wasm",
		InputDigest: Digest(testInput),
		Executor:    Executor{Name: "wasm", Version: "v0.3.0", Digest: "sha256:" + Digest([]byte("module"))},
		NodeID:      "node-1",
		Attempt:     2,
		StartedAt:   testStart,
		FinishedAt:  testStart.Add(1500 * time.Millisecond),
	})
}

func testExpect(st *Statement) Expect {
	return Expect{
		OutputDigest: Digest(testOutput),
		InputDigest:  Digest(testInput),
		TaskID:       st.Predicate.TaskID,
		TenantID:     st.Predicate.TenantID,
	}
}

func mustKey(t testing.TB) *Key {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustSign(t testing.TB, k *Key) (*Statement, *Envelope) {
	t.Helper()
	st := testStatement()
	env, err := Sign(k, st)
	if err != nil {
		t.Fatal(err)
	}
	return st, env
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	k := mustKey(t)
	st, env := mustSign(t, k)
	if env.PayloadType != PayloadType || len(env.Signatures) != 1 || env.Signatures[0].KeyID != k.KeyID() {
		t.Fatalf("envelope = %+v", env)
	}
	// The envelope survives a JSON round trip (what a client stores).
	raw, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	var back Envelope
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	got, err := Verify(&back, NewKeyRing(k.Public()), testExpect(st))
	if err != nil {
		t.Fatal(err)
	}
	if got.Predicate.Platform != PlatformSoftware || got.Predicate.Attempt != 2 ||
		!got.Predicate.FinishedAt.Equal(st.Predicate.FinishedAt) || got.Predicate.Executor != st.Predicate.Executor {
		t.Errorf("statement = %+v, want %+v", got, st)
	}
	// Digests may be given upper-case and with a sha256: prefix.
	e := testExpect(st)
	e.OutputDigest = "sha256:" + strings.ToUpper(e.OutputDigest)
	if _, err := Verify(env, NewKeyRing(k.Public()), e); err != nil {
		t.Error(err)
	}
	// An empty Expect checks only the signature and the statement.
	if _, err := Verify(env, NewKeyRing(k.Public()), Expect{}); err != nil {
		t.Error(err)
	}
}

func TestPayloadJSON(t *testing.T) {
	k := mustKey(t)
	st := testStatement()
	st.Predicate.TEEQuote = []byte{1, 2, 3}
	env, err := Sign(k, st)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := base64.StdEncoding.DecodeString(env.Payload)
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if m["_type"] != "https://in-toto.io/Statement/v1" || m["predicateType"] != "https://grey.dev/task-execution/v1" {
		t.Errorf("payload = %s", body)
	}
	sub := m["subject"].([]any)[0].(map[string]any)
	if sub["name"] != "task-output" || sub["digest"].(map[string]any)["sha256"] != Digest(testOutput) {
		t.Errorf("subject = %v", sub)
	}
	p := m["predicate"].(map[string]any)
	for _, f := range []string{"task_id", "tenant_id", "kind", "input_digest", "executor", "node_id", "platform", "attempt", "started_at", "finished_at"} {
		if _, ok := p[f]; !ok {
			t.Errorf("predicate lacks %s: %s", f, body)
		}
	}
	if p["tee_quote"] != "AQID" {
		t.Errorf("tee_quote = %v, want base64 AQID", p["tee_quote"])
	}

	// The payload is a valid in-toto Statement v1 for the reference
	// (protobuf) implementation.
	var ref attv1.Statement
	if err := protojson.Unmarshal(body, &ref); err != nil {
		t.Fatalf("in-toto protobuf rejects payload: %v", err)
	}
	if err := ref.Validate(); err != nil {
		t.Fatalf("in-toto Validate: %v", err)
	}
	if ref.GetSubject()[0].GetDigest()["sha256"] != Digest(testOutput) ||
		ref.GetPredicate().GetFields()["task_id"].GetStringValue() != st.Predicate.TaskID {
		t.Errorf("in-toto view = %v", &ref)
	}
}

// The envelope verifies with the dsse library's own verifier and the
// securesystemslib ed25519 verifier, loaded from the public PEM alone.
func TestDSSELibraryVerifies(t *testing.T) {
	k := mustKey(t)
	_, env := mustSign(t, k)
	sslKey, err := signerverifier.LoadKey(k.PublicPEM())
	if err != nil {
		t.Fatal(err)
	}
	sslKey.KeyID = KeyIDOf(k.Public()) // DSSE matches signatures by keyid
	sv, err := signerverifier.NewED25519SignerVerifierFromSSLibKey(sslKey)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := dsse.NewEnvelopeVerifier(sv)
	if err != nil {
		t.Fatal(err)
	}
	accepted, body, err := ev.VerifyAndDecode(context.Background(), env)
	if err != nil {
		t.Fatalf("dsse verifier: %v", err)
	}
	if len(accepted) != 1 || accepted[0].KeyID != k.KeyID() {
		t.Errorf("accepted = %+v", accepted)
	}
	if !strings.Contains(string(body), `"task_id":"`+testStatement().Predicate.TaskID) {
		t.Errorf("body = %s", body)
	}
	// And it rejects a tampered one.
	tampered := *env
	tampered.Payload = base64.StdEncoding.EncodeToString([]byte(strings.Replace(string(body), "acme", "acmf", 1)))
	if _, err := ev.Verify(context.Background(), &tampered); err == nil {
		t.Error("dsse verifier accepted a tampered payload")
	}
	// Conversely, our verifier accepts an envelope signed by the dsse
	// library with the securesystemslib signer.
	priv, err := signerverifier.LoadKey(pemPrivate(t, k))
	if err != nil {
		t.Fatal(err)
	}
	priv.KeyID = k.KeyID()
	ssv, err := signerverifier.NewED25519SignerVerifierFromSSLibKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	es, _ := dsse.NewEnvelopeSigner(ssv)
	env2, err := es.SignPayload(context.Background(), PayloadType, body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(env2, NewKeyRing(k.Public()), testExpect(testStatement())); err != nil {
		t.Errorf("envelope signed by the dsse library: %v", err)
	}
}

// pemPrivate returns k's private key as PKCS#8 PEM (the key file format).
func pemPrivate(t *testing.T, k *Key) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// The signature is over DSSE's PAE, computed independently here.
func TestPAEByHand(t *testing.T) {
	k := mustKey(t)
	_, env := mustSign(t, k)
	body, _ := base64.StdEncoding.DecodeString(env.Payload)
	pae := "DSSEv1 28 application/vnd.in-toto+json " + strconv.Itoa(len(body)) + " " + string(body)
	sig, _ := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	if !ed25519.Verify(k.Public(), []byte(pae), sig) {
		t.Fatal("signature is not over PAE(payloadType, payload)")
	}
}

func TestVerifyFailures(t *testing.T) {
	k := mustKey(t)
	other := mustKey(t)
	ring := NewKeyRing(k.Public(), other.Public())
	st, env := mustSign(t, k)
	body, _ := base64.StdEncoding.DecodeString(env.Payload)
	want := testExpect(st)

	clone := func() *Envelope {
		c := *env
		c.Signatures = append([]dsse.Signature(nil), env.Signatures...)
		return &c
	}

	t.Run("tampered payload byte", func(t *testing.T) {
		e := clone()
		b := append([]byte(nil), body...)
		i := strings.Index(string(b), `"attempt":2`)
		b[i+len(`"attempt":`)] = '1'
		e.Payload = base64.StdEncoding.EncodeToString(b)
		_, err := Verify(e, ring, want)
		wantErr(t, err, "signature does not verify with key "+k.KeyID(), "payload was modified")
	})
	t.Run("tampered base64 payload", func(t *testing.T) {
		e := clone()
		e.Payload = "!" + e.Payload[1:]
		_, err := Verify(e, ring, want)
		wantErr(t, err, "payload was modified")
	})
	t.Run("tampered signature", func(t *testing.T) {
		e := clone()
		sig, _ := base64.StdEncoding.DecodeString(e.Signatures[0].Sig)
		sig[10] ^= 1
		e.Signatures[0].Sig = base64.StdEncoding.EncodeToString(sig)
		_, err := Verify(e, ring, want)
		wantErr(t, err, "signature does not verify with key "+k.KeyID())
	})
	t.Run("truncated signature", func(t *testing.T) {
		e := clone()
		e.Signatures[0].Sig = e.Signatures[0].Sig[:20]
		_, err := Verify(e, ring, want)
		wantErr(t, err, "malformed", k.KeyID())
	})
	t.Run("wrong key under the key id", func(t *testing.T) {
		bad := KeyRing{k.KeyID(): other.Public()}
		_, err := Verify(env, bad, want)
		wantErr(t, err, "signature does not verify with key "+k.KeyID())
	})
	t.Run("relabelled as another key", func(t *testing.T) {
		e := clone()
		e.Signatures[0].KeyID = other.KeyID()
		_, err := Verify(e, ring, want)
		wantErr(t, err, "signature does not verify with key "+other.KeyID())
	})
	t.Run("signed by another key", func(t *testing.T) {
		_, err := Verify(env, NewKeyRing(other.Public()), want)
		wantErr(t, err, "unknown key id", k.KeyID())
	})
	t.Run("payload type", func(t *testing.T) {
		e := clone()
		e.PayloadType = "application/json"
		_, err := Verify(e, ring, want)
		wantErr(t, err, "payload type", "application/json")
	})
	t.Run("no signatures", func(t *testing.T) {
		e := clone()
		e.Signatures = nil
		_, err := Verify(e, ring, want)
		wantErr(t, err, "no signatures")
	})
	for _, c := range []struct {
		name  string
		mod   func(*Expect)
		parts []string
	}{
		{"output digest", func(e *Expect) { e.OutputDigest = Digest([]byte("other output")) },
			[]string{"output digest differs: envelope says " + Digest(testOutput) + ", task has " + Digest([]byte("other output"))}},
		{"input digest", func(e *Expect) { e.InputDigest = Digest([]byte("other input")) },
			[]string{"input digest differs: envelope says " + Digest(testInput) + ", task has " + Digest([]byte("other input"))}},
		{"task id", func(e *Expect) { e.TaskID = "t-2" },
			[]string{`task id differs: envelope says "` + st.Predicate.TaskID + `", expected "t-2"`}},
		{"tenant id", func(e *Expect) { e.TenantID = "globex" },
			[]string{`tenant id differs: envelope says "acme", expected "globex"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := want
			c.mod(&w)
			_, err := Verify(env, ring, w)
			wantErr(t, err, c.parts...)
		})
	}
	t.Run("signed statement that is not ours", func(t *testing.T) {
		es, _ := dsse.NewEnvelopeSigner(dsseSigner{k})
		e, err := es.SignPayload(context.Background(), PayloadType, []byte(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		_, err = Verify(e, ring, want)
		wantErr(t, err, "invalid statement", "predicateType")
	})
	t.Run("empty key id tries the ring", func(t *testing.T) {
		e := clone()
		e.Signatures[0].KeyID = ""
		if _, err := Verify(e, ring, want); err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(e, NewKeyRing(other.Public()), want); err == nil {
			t.Fatal("verified with the wrong ring")
		}
	})
}

func TestSignRejectsInvalidStatement(t *testing.T) {
	k := mustKey(t)
	st := testStatement()
	st.Predicate.InputDigest = "abc"
	_, err := Sign(k, st)
	wantErr(t, err, "input digest")
	st = testStatement()
	st.Predicate.TaskID = ""
	_, err = Sign(k, st)
	wantErr(t, err, "task_id")
}

func TestShortForm(t *testing.T) {
	k := mustKey(t)
	st, env := mustSign(t, k)
	s, err := ShortForm(env)
	if err != nil {
		t.Fatal(err)
	}
	want := Short{
		TaskID:      st.Predicate.TaskID,
		Platform:    "software",
		Measurement: st.Predicate.Executor.Digest,
		Signature:   env.Signatures[0].Sig,
		Timestamp:   testStart.Add(1500 * time.Millisecond).Unix(),
	}
	if s != want {
		t.Errorf("short = %+v, want %+v", s, want)
	}
	raw, _ := json.Marshal(s)
	for _, f := range []string{`"task_id"`, `"platform"`, `"measurement"`, `"signature"`, `"timestamp":1772366401`} {
		if !strings.Contains(string(raw), f) {
			t.Errorf("short JSON %s lacks %s", raw, f)
		}
	}
}

func TestForTask(t *testing.T) {
	fin := testStart.Add(time.Second)
	tk := &task.Task{ID: "t-1", TenantID: "acme", Spec: task.Spec{Kind: "echo", Payload: testInput},
		Attempt: 3, Result: testOutput, StartedAt: &testStart, FinishedAt: &fin}
	st, err := ForTask(tk, Executor{Name: "echo", Version: "dev", Digest: "sha256:00"}, "node-9")
	if err != nil {
		t.Fatal(err)
	}
	if st.OutputDigest() != Digest(testOutput) || st.Predicate.InputDigest != Digest(testInput) ||
		st.Predicate.Attempt != 3 || st.Predicate.NodeID != "node-9" || st.Predicate.Platform != "software" {
		t.Errorf("statement = %+v", st)
	}
	tk.FinishedAt = nil
	if _, err := ForTask(tk, Executor{}, "n"); err == nil {
		t.Error("unfinished task accepted")
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "node.key")
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %04o, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), "-----BEGIN PRIVATE KEY-----") {
		t.Errorf("key file is not PKCS#8 PEM: %s", data)
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if k1.KeyID() != k2.KeyID() || !k1.Public().Equal(k2.Public()) {
		t.Error("reload returned a different key")
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("key directory holds %d entries, want 1 (temporary file left behind?)", len(ents))
	}

	if runtime.GOOS == "windows" {
		return
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadOrCreateKey(path)
	wantErr(t, err, path, "0644", "refusing")
	if after, _ := os.ReadFile(path); string(after) != string(data) {
		t.Error("refused key file was rewritten")
	}
}

func TestLoadOrCreateKeyConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.key")
	ids := make([]string, 8)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := LoadOrCreateKey(path)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = k.KeyID()
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent creators disagree: %v", ids)
		}
	}
}

func TestLoadKeyRejectsGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.key")
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadOrCreateKey(path)
	wantErr(t, err, "PRIVATE KEY")
}

func TestKeyIDAndParsePublicKey(t *testing.T) {
	k := mustKey(t)
	if len(k.KeyID()) != 32 {
		t.Errorf("key id %q is not 32 hex characters", k.KeyID())
	}
	if _, err := hex.DecodeString(k.KeyID()); err != nil {
		t.Error(err)
	}
	block := string(k.PublicPEM())
	der := mustDER(t, block)
	for name, in := range map[string]string{
		"pem":            block,
		"base64 der":     base64.StdEncoding.EncodeToString(der),
		"base64url der":  base64.RawURLEncoding.EncodeToString(der),
		"base64 raw key": base64.StdEncoding.EncodeToString(k.Public()),
	} {
		pub, err := ParsePublicKey("  " + in + "\n")
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !pub.Equal(k.Public()) {
			t.Errorf("%s: different key", name)
		}
	}
	if _, err := ParsePublicKey("%%%"); err == nil {
		t.Error("garbage parsed")
	}
	if _, err := ParsePublicKey(base64.StdEncoding.EncodeToString([]byte("short"))); err == nil {
		t.Error("short key parsed")
	}
	ring := KeyRing{}
	if id := ring.Add(k.Public()); id != k.KeyID() || !ring[id].Equal(k.Public()) {
		t.Error("KeyRing.Add")
	}
}

func mustDER(t *testing.T, p string) []byte {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(p), "\n")
	b, err := base64.StdEncoding.DecodeString(strings.Join(lines[1:len(lines)-1], ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAttesters(t *testing.T) {
	var a Attester = Software{}
	q, err := a.Quote(context.Background(), []byte("rd"))
	if a.Platform() != "software" || q != nil || err != nil {
		t.Errorf("Software = %q %v %v", a.Platform(), q, err)
	}
	root := t.TempDir()
	if got := detectIn(root); len(got) != 0 {
		t.Errorf("empty root detected %v", got)
	}
	if err := os.MkdirAll(filepath.Join(root, "dev"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"tdx_guest", "nsm"} {
		if err := os.WriteFile(filepath.Join(root, "dev", d), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(detectIn(root), ","); got != "tdx,nitro" {
		t.Errorf("detected %q, want tdx,nitro", got)
	}
	_ = Detect() // no TEE expected here; must not fail
}

func BenchmarkSignVerify(b *testing.B) {
	k := mustKey(b)
	st := testStatement()
	ring := NewKeyRing(k.Public())
	want := testExpect(st)
	b.ReportAllocs()
	for b.Loop() {
		env, err := Sign(k, st)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Verify(env, ring, want); err != nil {
			b.Fatal(err)
		}
	}
}

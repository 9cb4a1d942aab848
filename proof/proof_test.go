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
	"reflect"
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

const testTaskID = "0195a3b4-0000-7000-8000-000000000001"

// testRun is one finished attempt: the single-task fixture.
func testRun() Run {
	return Run{
		TaskID:     testTaskID,
		Kind:       "wasm",
		Payload:    testInput,
		Output:     testOutput,
		Attempt:    2,
		Executor:   Executor{Name: "wasm", Version: "v0.3.0", Digest: "sha256:" + Digest([]byte("module"))},
		StartedAt:  testStart,
		FinishedAt: testStart.Add(1500 * time.Millisecond),
	}
}

// testStatement is a one-task statement of tenant acme on node-1.
func testStatement() *Statement {
	return NewStatement("acme", "node-1", "", testRun())
}

// testExpect is everything a verifier of testStatement knows.
func testExpect(st *Statement) Expect {
	return Expect{
		OutputDigest: Digest(testOutput),
		InputDigest:  Digest(testInput),
		TaskID:       st.Predicate.Executions[0].TaskID,
		TenantID:     st.Predicate.TenantID,
	}
}

// batchRuns returns n runs of distinct tasks t-0, t-1, …: each with its
// own kind, payload, output, executor, attempt and times.
func batchRuns(n int) []Run {
	runs := make([]Run, n)
	for i := range runs {
		id := "t-" + strconv.Itoa(i)
		runs[i] = Run{
			TaskID:     id,
			Kind:       []string{"echo", "wasm", "sleep"}[i%3],
			Payload:    []byte(`{"i":` + strconv.Itoa(i) + `}`),
			Output:     []byte(`{"out":"` + id + `"}`),
			Attempt:    1 + i%2,
			Executor:   Executor{Name: "x", Version: "dev", Digest: "sha256:" + Digest([]byte("code "+id))},
			StartedAt:  testStart.Add(time.Duration(i) * time.Second),
			FinishedAt: testStart.Add(time.Duration(i)*time.Second + 500*time.Millisecond),
		}
	}
	return runs
}

// expectRun is everything a verifier of r's task knows.
func expectRun(r Run) Expect {
	return Expect{TaskID: r.TaskID, TenantID: "acme", InputDigest: Digest(r.Payload), OutputDigest: Digest(r.Output)}
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

// mustSignBatch signs runs as one statement of tenant acme with a Signer
// and parses the envelope back, the way a node and a verifier do.
func mustSignBatch(t testing.TB, k *Key, runs ...Run) *Envelope {
	t.Helper()
	raw, err := (&Signer{Key: k, NodeID: "node-1"}).Sign(context.Background(), "acme", runs...)
	if err != nil {
		t.Fatal(err)
	}
	env, err := ParseEnvelope(raw)
	if err != nil {
		t.Fatal(err)
	}
	return env
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
	back, err := ParseEnvelope(raw)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Verify(back, NewKeyRing(k.Public()), testExpect(st))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Errorf("statement = %+v, want %+v", got, st)
	}
	e, out, ok := got.Find(testTaskID)
	if !ok || out != Digest(testOutput) || e.Attempt != 2 || e.Kind != "wasm" ||
		!e.FinishedAt.Equal(testStart.Add(1500*time.Millisecond)) || e.Executor != testRun().Executor ||
		got.Predicate.Platform != PlatformSoftware || got.Predicate.NodeID != "node-1" {
		t.Errorf("Find(%s) = %+v, %s, %v", testTaskID, e, out, ok)
	}
	// DecodeStatement reads the same statement without checking anything.
	if dec, err := DecodeStatement(env); err != nil || !reflect.DeepEqual(dec, st) {
		t.Errorf("DecodeStatement = %+v, %v", dec, err)
	}
	// Digests may be given upper-case and with a sha256: prefix.
	w := testExpect(st)
	w.OutputDigest = "sha256:" + strings.ToUpper(w.OutputDigest)
	if _, err := Verify(env, NewKeyRing(k.Public()), w); err != nil {
		t.Error(err)
	}
	// Without TaskID, a one-task statement's digests are still checked.
	w = testExpect(st)
	w.TaskID = ""
	if _, err := Verify(env, NewKeyRing(k.Public()), w); err != nil {
		t.Error(err)
	}
	// An empty Expect checks only the signature and the statement.
	if _, err := Verify(env, NewKeyRing(k.Public()), Expect{}); err != nil {
		t.Error(err)
	}
}

func TestNewStatement(t *testing.T) {
	// Times are stored in UTC, and "" is the software platform.
	r := testRun()
	cet := time.FixedZone("CET", 3600)
	r.StartedAt, r.FinishedAt = r.StartedAt.In(cet), r.FinishedAt.In(cet)
	st := NewStatement("acme", "node-1", "", r)
	e := st.Predicate.Executions[0]
	if e.StartedAt.Location() != time.UTC || e.FinishedAt.Location() != time.UTC || !e.StartedAt.Equal(testStart) {
		t.Errorf("times = %v, %v; want UTC", e.StartedAt, e.FinishedAt)
	}
	if st.Predicate.Platform != PlatformSoftware {
		t.Errorf("platform = %q", st.Predicate.Platform)
	}
	if got := NewStatement("acme", "node-1", PlatformTDX, r).Predicate.Platform; got != PlatformTDX {
		t.Errorf("platform = %q, want tdx", got)
	}
	if _, _, ok := st.Find("t-9"); ok {
		t.Error("Find found a task that is not there")
	}
}

func TestPayloadJSON(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(strconv.Itoa(n)+" tasks", func(t *testing.T) {
			runs := batchRuns(n)
			st := NewStatement("acme", "node-1", "", runs...)
			st.Predicate.TEEQuote = []byte{1, 2, 3}
			env, err := Sign(mustKey(t), st)
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
			subs := m["subject"].([]any)
			p := m["predicate"].(map[string]any)
			for _, f := range []string{"tenant_id", "node_id", "platform", "executions"} {
				if _, ok := p[f]; !ok {
					t.Errorf("predicate lacks %s: %s", f, body)
				}
			}
			if p["tee_quote"] != "AQID" {
				t.Errorf("tee_quote = %v, want base64 AQID", p["tee_quote"])
			}
			execs := p["executions"].([]any)
			if len(subs) != n || len(execs) != n {
				t.Fatalf("%d subjects, %d executions, want %d: %s", len(subs), len(execs), n, body)
			}
			for i, r := range runs {
				sub := subs[i].(map[string]any)
				if sub["name"] != "task-output/"+r.TaskID || sub["digest"].(map[string]any)["sha256"] != Digest(r.Output) {
					t.Errorf("subject %d = %v", i, sub)
				}
				e := execs[i].(map[string]any)
				for _, f := range []string{"task_id", "kind", "input_digest", "executor", "attempt", "started_at", "finished_at"} {
					if _, ok := e[f]; !ok {
						t.Errorf("execution %d lacks %s: %v", i, f, e)
					}
				}
				if e["task_id"] != r.TaskID || e["input_digest"] != Digest(r.Payload) {
					t.Errorf("execution %d = %v", i, e)
				}
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
			refExecs := ref.GetPredicate().GetFields()["executions"].GetListValue().GetValues()
			if len(ref.GetSubject()) != n || len(refExecs) != n {
				t.Fatalf("in-toto view has %d subjects, %d executions", len(ref.GetSubject()), len(refExecs))
			}
			for i, r := range runs {
				if ref.GetSubject()[i].GetName() != SubjectPrefix+r.TaskID ||
					ref.GetSubject()[i].GetDigest()["sha256"] != Digest(r.Output) ||
					refExecs[i].GetStructValue().GetFields()["task_id"].GetStringValue() != r.TaskID {
					t.Errorf("in-toto view of task %d = %v", i, &ref)
				}
			}
		})
	}
}

// The envelope verifies with the dsse library's own verifier and the
// securesystemslib ed25519 verifier, loaded from the public PEM alone.
func TestDSSELibraryVerifies(t *testing.T) {
	k := mustKey(t)
	runs := batchRuns(3)
	for name, env := range map[string]*Envelope{
		"one task":    func() *Envelope { _, e := mustSign(t, k); return e }(),
		"three tasks": mustSignBatch(t, k, runs...),
	} {
		t.Run(name, func(t *testing.T) {
			testDSSELibrary(t, k, env)
		})
	}
	// Our verifier picks each task out of the batch the library verified.
	env := mustSignBatch(t, k, runs...)
	for _, r := range runs {
		if _, err := Verify(env, NewKeyRing(k.Public()), expectRun(r)); err != nil {
			t.Errorf("task %s: %v", r.TaskID, err)
		}
	}
}

func testDSSELibrary(t *testing.T, k *Key, env *Envelope) {
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
	st, err := DecodeStatement(env)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range st.Predicate.Executions {
		if !strings.Contains(string(body), `"task_id":"`+e.TaskID+`"`) {
			t.Errorf("body lacks task %s: %s", e.TaskID, body)
		}
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
	for _, e := range st.Predicate.Executions {
		if _, err := Verify(env2, NewKeyRing(k.Public()), Expect{TaskID: e.TaskID, TenantID: "acme", InputDigest: e.InputDigest}); err != nil {
			t.Errorf("envelope signed by the dsse library, task %s: %v", e.TaskID, err)
		}
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
	for _, env := range []*Envelope{env, mustSignBatch(t, k, batchRuns(3)...)} {
		body, _ := base64.StdEncoding.DecodeString(env.Payload)
		pae := "DSSEv1 28 application/vnd.in-toto+json " + strconv.Itoa(len(body)) + " " + string(body)
		sig, _ := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
		if !ed25519.Verify(k.Public(), []byte(pae), sig) {
			t.Fatal("signature is not over PAE(payloadType, payload)")
		}
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
	t.Run("no envelope", func(t *testing.T) {
		_, err := Verify(nil, ring, want)
		wantErr(t, err, "no envelope")
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
			[]string{`task id differs: the envelope covers task "` + testTaskID + `", not "t-2"`}},
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
	t.Run("signed payload that is not JSON", func(t *testing.T) {
		es, _ := dsse.NewEnvelopeSigner(dsseSigner{k})
		e, err := es.SignPayload(context.Background(), PayloadType, []byte(`not json`))
		if err != nil {
			t.Fatal(err)
		}
		_, err = Verify(e, ring, want)
		wantErr(t, err, "not an in-toto statement")
	})
	t.Run("empty key id tries the ring", func(t *testing.T) {
		e := clone()
		e.Signatures[0].KeyID = ""
		if _, err := Verify(e, ring, want); err != nil {
			t.Fatal(err)
		}
		_, err := Verify(e, NewKeyRing(other.Public()), want)
		wantErr(t, err, "without key id does not verify")
	})
}

func TestSignRejectsInvalidStatement(t *testing.T) {
	k := mustKey(t)
	st := testStatement()
	st.Predicate.Executions[0].InputDigest = "abc"
	_, err := Sign(k, st)
	wantErr(t, err, "sign:", "input digest")
	st = testStatement()
	st.Predicate.Executions[0].TaskID = ""
	_, err = Sign(k, st)
	wantErr(t, err, "sign:", "task_id")
	_, err = Sign(nil, testStatement())
	wantErr(t, err, "no key")
}

func TestShortForm(t *testing.T) {
	k := mustKey(t)
	st, env := mustSign(t, k)
	want := Short{
		TaskID:      testTaskID,
		Platform:    "software",
		Measurement: st.Predicate.Executions[0].Executor.Digest,
		Signature:   env.Signatures[0].Sig,
		Timestamp:   testStart.Add(1500 * time.Millisecond).Unix(),
	}
	for _, id := range []string{"", testTaskID} {
		s, err := ShortForm(env, id)
		if err != nil {
			t.Fatal(err)
		}
		if s != want {
			t.Errorf("ShortForm(%q) = %+v, want %+v", id, s, want)
		}
	}
	s, _ := ShortForm(env, "")
	raw, _ := json.Marshal(s)
	for _, f := range []string{`"task_id"`, `"platform"`, `"measurement"`, `"signature"`, `"timestamp":1772366401`} {
		if !strings.Contains(string(raw), f) {
			t.Errorf("short JSON %s lacks %s", raw, f)
		}
	}
	_, err := ShortForm(nil, "")
	wantErr(t, err, "no envelope")
	_, err = ShortForm(&Envelope{PayloadType: PayloadType, Payload: env.Payload}, "")
	wantErr(t, err, "no signatures")
}

func TestForTask(t *testing.T) {
	fin := testStart.Add(time.Second)
	tk := &task.Task{ID: "t-1", TenantID: "acme", Spec: task.Spec{Kind: "echo", Payload: testInput},
		Attempt: 3, Result: testOutput, StartedAt: &testStart, FinishedAt: &fin}
	exec := Executor{Name: "echo", Version: "dev", Digest: "sha256:00"}
	st, err := ForTask(tk, exec, "node-9")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Validate(); err != nil {
		t.Fatal(err)
	}
	e, out, ok := st.Find("t-1")
	if !ok || len(st.Predicate.Executions) != 1 || st.Subject[0].Name != "task-output/t-1" ||
		out != Digest(testOutput) || e.InputDigest != Digest(testInput) || e.Kind != "echo" ||
		e.Attempt != 3 || e.Executor != exec || !e.StartedAt.Equal(testStart) || !e.FinishedAt.Equal(fin) ||
		st.Predicate.TenantID != "acme" || st.Predicate.NodeID != "node-9" || st.Predicate.Platform != "software" {
		t.Errorf("statement = %+v", st)
	}
	// A task that never started has a zero start time.
	tk.StartedAt = nil
	if st, err := ForTask(tk, exec, "node-9"); err != nil || !st.Predicate.Executions[0].StartedAt.IsZero() {
		t.Errorf("unstarted task: %+v, %v", st, err)
	}
	tk.FinishedAt = nil
	if _, err := ForTask(tk, Executor{}, "n"); err == nil {
		t.Error("unfinished task accepted")
	}
}

// One statement signed once proves each of its tasks, with that task's
// own digests and nothing else's.
func TestBatchVerifiesEachTask(t *testing.T) {
	k := mustKey(t)
	ring := NewKeyRing(k.Public())
	runs := batchRuns(3)
	env := mustSignBatch(t, k, runs...)
	if len(env.Signatures) != 1 {
		t.Fatalf("%d signatures, want 1", len(env.Signatures))
	}
	st, err := DecodeStatement(env)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range runs {
		if st.Subject[i].Name != SubjectPrefix+r.TaskID || st.Predicate.Executions[i].TaskID != r.TaskID {
			t.Errorf("position %d holds %s / %s, want task %s in run order", i, st.Subject[i].Name, st.Predicate.Executions[i].TaskID, r.TaskID)
		}
	}
	for _, r := range runs {
		got, err := Verify(env, ring, expectRun(r))
		if err != nil {
			t.Errorf("task %s: %v", r.TaskID, err)
			continue
		}
		e, out, ok := got.Find(r.TaskID)
		if !ok || out != Digest(r.Output) || e.InputDigest != Digest(r.Payload) || e.Kind != r.Kind ||
			e.Attempt != r.Attempt || e.Executor != r.Executor || !e.StartedAt.Equal(r.StartedAt) || !e.FinishedAt.Equal(r.FinishedAt) {
			t.Errorf("task %s: Find = %+v, %s, %v", r.TaskID, e, out, ok)
		}
	}

	// Another task's digests name the digest that differs.
	w := expectRun(runs[0])
	w.OutputDigest = Digest(runs[1].Output)
	_, err = Verify(env, ring, w)
	wantErr(t, err, "output digest differs: envelope says "+Digest(runs[0].Output)+", task has "+Digest(runs[1].Output))
	w = expectRun(runs[0])
	w.InputDigest = Digest(runs[2].Payload)
	_, err = Verify(env, ring, w)
	wantErr(t, err, "input digest differs: envelope says "+Digest(runs[0].Payload)+", task has "+Digest(runs[2].Payload))

	// A task the statement does not cover is named, with the ones it does.
	w = expectRun(runs[0])
	w.TaskID = "t-9"
	_, err = Verify(env, ring, w)
	wantErr(t, err, `task id differs: the envelope covers task "t-0", "t-1", "t-2", not "t-9"`)
	big := mustSignBatch(t, k, batchRuns(5)...)
	_, err = Verify(big, ring, Expect{TaskID: "t-9"})
	wantErr(t, err, `task id differs: the envelope covers task "t-0", "t-1", "t-2", and 2 more, not "t-9"`)

	// Digests without a task are ambiguous in a batch.
	for _, w := range []Expect{
		{OutputDigest: Digest(runs[0].Output)},
		{InputDigest: Digest(runs[0].Payload), TenantID: "acme"},
	} {
		_, err = Verify(env, ring, w)
		wantErr(t, err, "covers 3 tasks", "name the task")
	}
	// Without digests or a task, the tenant alone is checked.
	if _, err := Verify(env, ring, Expect{TenantID: "acme"}); err != nil {
		t.Error(err)
	}
	_, err = Verify(env, ring, Expect{TenantID: "globex", TaskID: "t-1"})
	wantErr(t, err, `tenant id differs: envelope says "acme", expected "globex"`)
}

func TestValidate(t *testing.T) {
	if err := NewStatement("acme", "node-1", "", batchRuns(3)...).Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		mod   func(*Statement)
		parts []string
	}{
		{"type", func(s *Statement) { s.Type = "x" }, []string{`_type is "x"`}},
		{"predicate type", func(s *Statement) { s.PredicateType = "x" }, []string{`predicateType is "x"`}},
		{"no executions", func(s *Statement) { s.Subject, s.Predicate.Executions = nil, nil }, []string{"no executions"}},
		{"subject missing", func(s *Statement) { s.Subject = s.Subject[:2] }, []string{"2 subjects for 3 executions"}},
		{"execution missing", func(s *Statement) { s.Predicate.Executions = s.Predicate.Executions[:2] }, []string{"3 subjects for 2 executions"}},
		{"subjects swapped", func(s *Statement) { s.Subject[1], s.Subject[2] = s.Subject[2], s.Subject[1] },
			[]string{`subject 1 is named "task-output/t-2", want "task-output/t-1"`}},
		{"subject misnamed", func(s *Statement) { s.Subject[0].Name = "task-output" },
			[]string{`subject 0 is named "task-output", want "task-output/t-0"`}},
		{"duplicate task", func(s *Statement) {
			s.Predicate.Executions[2].TaskID = "t-0"
			s.Subject[2].Name = SubjectPrefix + "t-0"
		}, []string{"task t-0 appears twice"}},
		{"no task id", func(s *Statement) { s.Predicate.Executions[1].TaskID = "" }, []string{"execution 1 has no task_id"}},
		{"no tenant", func(s *Statement) { s.Predicate.TenantID = "" }, []string{"no tenant_id"}},
		{"no platform", func(s *Statement) { s.Predicate.Platform = "" }, []string{"no platform"}},
		{"output digest", func(s *Statement) { s.Subject[1].Digest = map[string]string{"sha512": Digest(nil)} },
			[]string{"task t-1 output digest", "not a hex SHA-256"}},
		{"upper-case digest", func(s *Statement) { s.Subject[2].Digest[DigestAlgorithm] = strings.ToUpper(Digest(nil)) },
			[]string{"task t-2 output digest", "lower-case"}},
		{"input digest", func(s *Statement) { s.Predicate.Executions[2].InputDigest = "zz" },
			[]string{"task t-2 input digest"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := NewStatement("acme", "node-1", "", batchRuns(3)...)
			c.mod(st)
			wantErr(t, st.Validate(), c.parts...)
			// Sign refuses it, and a verifier refuses it signed anyway.
			k := mustKey(t)
			_, err := Sign(k, st)
			wantErr(t, err, c.parts...)
			body, _ := json.Marshal(st)
			es, _ := dsse.NewEnvelopeSigner(dsseSigner{k})
			env, err := es.SignPayload(context.Background(), PayloadType, body)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Verify(env, NewKeyRing(k.Public()), Expect{})
			wantErr(t, err, append([]string{"invalid statement"}, c.parts...)...)
		})
	}
}

func TestShortFormBatch(t *testing.T) {
	runs := batchRuns(3)
	env := mustSignBatch(t, mustKey(t), runs...)
	for _, r := range runs {
		s, err := ShortForm(env, r.TaskID)
		if err != nil {
			t.Fatal(err)
		}
		want := Short{TaskID: r.TaskID, Platform: "software", Measurement: r.Executor.Digest,
			Signature: env.Signatures[0].Sig, Timestamp: r.FinishedAt.Unix()}
		if s != want {
			t.Errorf("ShortForm(%s) = %+v, want %+v", r.TaskID, s, want)
		}
	}
	if s, err := ShortForm(env, ""); err != nil || s.TaskID != "t-0" {
		t.Errorf(`ShortForm("") = %+v, %v; want the first task`, s, err)
	}
	_, err := ShortForm(env, "t-9")
	wantErr(t, err, `does not cover task "t-9"`)
}

func TestSignerBatchLimits(t *testing.T) {
	k := mustKey(t)
	s := &Signer{Key: k, NodeID: "node-1"}
	ctx := context.Background()
	_, err := s.Sign(ctx, "acme")
	wantErr(t, err, "0 runs", "1 to 64")
	_, err = s.Sign(ctx, "acme", batchRuns(MaxBatch+1)...)
	wantErr(t, err, "65 runs", "1 to 64")

	runs := batchRuns(MaxBatch)
	raw, err := s.Sign(ctx, "acme", runs...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d-task envelope: %d bytes, %d per task", MaxBatch, len(raw), len(raw)/MaxBatch)
	env, err := ParseEnvelope(raw)
	if err != nil {
		t.Fatal(err)
	}
	ring := NewKeyRing(k.Public())
	for _, r := range runs {
		if _, err := Verify(env, ring, expectRun(r)); err != nil {
			t.Fatalf("task %s of %d: %v", r.TaskID, MaxBatch, err)
		}
	}
	st, err := DecodeStatement(env)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Predicate.Executions) != MaxBatch || len(env.Signatures) != 1 ||
		st.Predicate.NodeID != "node-1" || st.Predicate.Platform != PlatformSoftware || st.Predicate.TEEQuote != nil {
		t.Errorf("statement: %d executions, node %q, platform %q, quote %q; %d signatures",
			len(st.Predicate.Executions), st.Predicate.NodeID, st.Predicate.Platform, st.Predicate.TEEQuote, len(env.Signatures))
	}

	// What the statement refuses, the signer refuses.
	_, err = s.Sign(ctx, "", runs[0])
	wantErr(t, err, "no tenant_id")
	_, err = s.Sign(ctx, "acme", runs[0], runs[1], runs[0])
	wantErr(t, err, "task t-0 appears twice")
	_, err = (&Signer{NodeID: "node-1"}).Sign(ctx, "acme", runs[0])
	wantErr(t, err, "no signing key")
	_, err = (*Signer)(nil).Sign(ctx, "acme", runs[0])
	wantErr(t, err, "no signing key")
}

// A batch envelope that was tampered with fails, naming why.
func TestBatchTampered(t *testing.T) {
	k := mustKey(t)
	other := mustKey(t)
	runs := batchRuns(3)
	env := mustSignBatch(t, k, runs...)
	ring := NewKeyRing(k.Public(), other.Public())
	body, _ := base64.StdEncoding.DecodeString(env.Payload)
	clone := func() *Envelope {
		c := *env
		c.Signatures = append([]dsse.Signature(nil), env.Signatures...)
		return &c
	}

	t.Run("payload edited", func(t *testing.T) {
		// Claim task t-1's output is task t-2's: still a valid statement.
		d1, d2 := Digest(runs[1].Output), Digest(runs[2].Output)
		edited := strings.Replace(string(body), `"sha256":"`+d1+`"`, `"sha256":"`+d2+`"`, 1)
		if edited == string(body) {
			t.Fatal("edit did not apply")
		}
		e := clone()
		e.Payload = base64.StdEncoding.EncodeToString([]byte(edited))
		_, err := Verify(e, ring, Expect{TaskID: "t-1", OutputDigest: d2})
		wantErr(t, err, "signature does not verify with key "+k.KeyID(), "payload was modified")
	})
	t.Run("signature swapped to another key", func(t *testing.T) {
		// Another key signs the same payload; its signature under k's id
		// does not verify, and under its own id it is not trusted.
		forged, err := Sign(other, mustDecode(t, env))
		if err != nil {
			t.Fatal(err)
		}
		if forged.Payload != env.Payload {
			t.Fatal("re-encoding the statement changed the payload")
		}
		e := clone()
		e.Signatures[0].Sig = forged.Signatures[0].Sig
		_, err = Verify(e, ring, expectRun(runs[0]))
		wantErr(t, err, "signature does not verify with key "+k.KeyID())
		e.Signatures[0].KeyID = other.KeyID()
		_, err = Verify(e, NewKeyRing(k.Public()), expectRun(runs[0]))
		wantErr(t, err, "unknown key id", other.KeyID())
	})
	t.Run("key id unknown", func(t *testing.T) {
		e := clone()
		e.Signatures[0].KeyID = strings.Repeat("0", 32)
		_, err := Verify(e, ring, expectRun(runs[0]))
		wantErr(t, err, `unknown key id "`+strings.Repeat("0", 32)+`"`, "(2 keys)")
	})
}

func mustDecode(t *testing.T, env *Envelope) *Statement {
	t.Helper()
	st, err := DecodeStatement(env)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestParseEnvelope(t *testing.T) {
	_, env := mustSign(t, mustKey(t))
	raw, _ := json.Marshal(env)
	if got, err := ParseEnvelope(raw); err != nil || !reflect.DeepEqual(got, env) {
		t.Errorf("ParseEnvelope = %+v, %v", got, err)
	}
	for _, c := range []struct{ in, part string }{
		{`nope`, "not DSSE JSON"},
		{string(raw) + `{}`, "not DSSE JSON"},
		{`{"payloadType":"x","signatures":[{"keyid":"k","sig":"AA=="}]}`, "no payloadType or payload"},
		{`{"payloadType":"x","payload":"AA=="}`, "no signatures"},
	} {
		_, err := ParseEnvelope([]byte(c.in))
		wantErr(t, err, c.part)
	}
}

func TestBinaryExecutor(t *testing.T) {
	e, err := BinaryExecutor("builtin")
	if err != nil {
		t.Fatal(err)
	}
	if e.Name != "builtin" || e.Version == "" || !strings.HasPrefix(e.Digest, "sha256:") || checkHex(strings.TrimPrefix(e.Digest, "sha256:")) != nil {
		t.Errorf("BinaryExecutor = %+v", e)
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

// BenchmarkSignBatch is a node signing a full batch: build the statement,
// sign it once, encode the envelope.
func BenchmarkSignBatch(b *testing.B) {
	s := &Signer{Key: mustKey(b), NodeID: "node-1"}
	runs := batchRuns(MaxBatch)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(ctx, "acme", runs...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*MaxBatch), "ns/task")
}

package proof_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/grey-distributed/grey/proof"
)

func Example() {
	dir, _ := os.MkdirTemp("", "grey-proof")
	defer os.RemoveAll(dir)
	key, err := proof.LoadOrCreateKey(filepath.Join(dir, "node.key"))
	if err != nil {
		panic(err)
	}

	input, output := []byte(`{"n":1}`), []byte(`{"ok":true}`)
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	st := proof.NewStatement(output, proof.Predicate{
		TaskID: "t-1", TenantID: "acme", Kind: "echo",
		InputDigest: proof.Digest(input),
		Executor:    proof.Executor{Name: "echo", Version: "dev", Digest: "sha256:00"},
		NodeID:      "node-1", Attempt: 1,
		StartedAt: start, FinishedAt: start.Add(time.Second),
	})
	env, err := proof.Sign(key, st)
	if err != nil {
		panic(err)
	}

	// A verifier holds the node's public key (e.g. from the Raft state).
	pub, _ := proof.ParsePublicKey(string(key.PublicPEM()))
	ring := proof.NewKeyRing(pub)
	got, err := proof.Verify(env, ring, proof.Expect{
		OutputDigest: proof.Digest(output), InputDigest: proof.Digest(input), TaskID: "t-1",
	})
	fmt.Println(got.Predicate.TaskID, got.Predicate.Platform, err)

	_, err = proof.Verify(env, ring, proof.Expect{OutputDigest: proof.Digest([]byte(`{"ok":false}`))})
	fmt.Println(err != nil)

	short, _ := proof.ShortForm(env)
	fmt.Println(short.TaskID, short.Platform, short.Measurement, short.Timestamp)
	// Output:
	// t-1 software <nil>
	// true
	// t-1 software sha256:00 1772366401
}

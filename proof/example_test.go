package proof_test

import (
	"context"
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

	// A node signs the tasks of one tenant it finished together: one
	// statement, one signature.
	input, output := []byte(`{"n":1}`), []byte(`{"ok":true}`)
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	exec := proof.Executor{Name: "echo", Version: "dev", Digest: "sha256:00"}
	signer := &proof.Signer{Key: key, NodeID: "node-1"}
	raw, err := signer.Sign(context.Background(), "acme",
		proof.Run{TaskID: "t-1", Kind: "echo", Payload: input, Output: output, Attempt: 1,
			Executor: exec, StartedAt: start, FinishedAt: start.Add(time.Second)},
		proof.Run{TaskID: "t-2", Kind: "echo", Payload: []byte(`{"n":2}`), Output: []byte(`{"ok":2}`), Attempt: 1,
			Executor: exec, StartedAt: start, FinishedAt: start.Add(2 * time.Second)},
	)
	if err != nil {
		panic(err)
	}
	env, err := proof.ParseEnvelope(raw)
	if err != nil {
		panic(err)
	}

	// A verifier holds the node's public key (from GET
	// /api/v1/cluster/keys) and checks the one task it cares about.
	pub, _ := proof.ParsePublicKey(string(key.PublicPEM()))
	ring := proof.NewKeyRing(pub)
	st, err := proof.Verify(env, ring, proof.Expect{
		OutputDigest: proof.Digest(output), InputDigest: proof.Digest(input), TaskID: "t-1", TenantID: "acme",
	})
	if err != nil {
		panic(err)
	}
	e, _, _ := st.Find("t-1")
	fmt.Println(e.TaskID, st.Predicate.Platform, err)

	_, err = proof.Verify(env, ring, proof.Expect{TaskID: "t-1", OutputDigest: proof.Digest([]byte(`{"ok":false}`))})
	fmt.Println(err != nil)

	short, _ := proof.ShortForm(env, "t-1")
	fmt.Println(short.TaskID, short.Platform, short.Measurement, short.Timestamp)
	// Output:
	// t-1 software <nil>
	// true
	// t-1 software sha256:00 1772366401
}

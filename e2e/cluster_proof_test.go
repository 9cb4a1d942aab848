package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/task"
)

// TestClusterProofs: in a 3-server cluster whose servers run in-process
// workers, plus a worker-only node, every completed task's proof verifies
// with the cluster's registered keys — whichever node ran it, leader or
// follower — and every node's key is registered.
func TestClusterProofs(t *testing.T) {
	requireE2E(t)
	cfg := strings.Replace(clusterServerConfig, "worker:\n  enabled: false\n", "worker:\n  enabled: true\n  concurrency: 4\n", 1)
	c := startClusterWith(t, nil, 1, cfg)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cl := c.Client("acme")

	var specs []task.Spec
	for i := range 120 {
		specs = append(specs, task.Spec{Kind: "sleep", Payload: json.RawMessage(fmt.Sprintf(`{"ms":%d}`, 5+i%10))})
	}
	var ids []string
	for i := 0; i < len(specs); i += 40 {
		ts, err := cl.SubmitBatch(ctx, specs[i:i+40])
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range ts {
			ids = append(ids, tk.ID)
		}
	}
	signers := map[string]int{}
	for _, id := range ids {
		tk, err := cl.Wait(ctx, id)
		if err != nil || tk.Status != task.Completed {
			t.Fatalf("task %s: %v %+v", id, err, tk)
		}
		rec, err := cl.Proof(ctx, id)
		if err != nil {
			t.Fatalf("proof of %s: %v", id, err)
		}
		if !rec.Verified {
			t.Fatalf("proof of %s (signed by key %s) does not verify: %s", id, rec.Envelope.Signatures[0].KeyID, rec.Problem)
		}
		signers[rec.NodeID]++
	}
	keys, err := cl.NodeKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, k := range keys {
		have[k.NodeID] = true
	}
	for _, n := range []string{"n1", "n2", "n3", "w1"} {
		if !have[n] {
			t.Errorf("no key registered for node %s (keys: %+v)", n, keys)
		}
	}
	t.Logf("120 tasks, proofs signed by %v", signers)
}

package engine

import (
	"sync"
	"time"

	"github.com/grey-distributed/grey/state"
)

// featureGate caches whether every server registered a feature: the
// Raft configuration and the registrations change rarely, and the
// question is asked on every worker report.
type featureGate struct {
	mu sync.Mutex
	at time.Time // when ok was worked out (zero: never, or forgotten)
	ok bool
}

// featureTTL is how long a featureGate answer is kept.
const featureTTL = time.Second

// forget makes the next question work the answer out afresh.
func (g *featureGate) forget() {
	g.mu.Lock()
	g.at = time.Time{}
	g.mu.Unlock()
}

// packedProofs reports whether the leader may write proof envelopes
// packed (state.PackProof, cluster.PackedProofMsg): only when every
// server in the Raft configuration registered
// state.FeaturePackedProofs, since a server of an older build cannot
// apply such an entry. A cluster being upgraded keeps to raw envelopes
// until its last server runs this build and has registered.
func (e *Engine) packedProofs() bool {
	g := &e.packed
	g.mu.Lock()
	defer g.mu.Unlock()
	if now := time.Now(); g.at.IsZero() || now.Sub(g.at) > featureTTL {
		g.ok, g.at = e.serversHave(state.FeaturePackedProofs), now
	}
	return g.ok
}

// serversHave reports whether every server in the Raft configuration is
// registered with feature f (false when the configuration is unknown).
func (e *Engine) serversHave(f string) bool {
	servers, err := e.node.Servers()
	if err != nil || len(servers) == 0 {
		return false
	}
	for _, s := range servers {
		if n := e.store.Node(string(s.ID)); n == nil || !n.Has(f) {
			return false
		}
	}
	return true
}

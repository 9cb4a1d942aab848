package state_test

import (
	"testing"
	"time"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/state"
)

func (f *fixture) register(now time.Time, n state.Node) (*state.Node, error) {
	return f.s.RegisterNode(f.next(), &state.NodeRegisterRequest{Now: now, Node: n})
}

// Registering again updates a node but keeps its first registration time;
// Raft addresses and signing keys belong to one node each; signing keys
// outlive their node (proofs it signed stay verifiable).
func TestNodes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pub := []byte("0123456789abcdef0123456789abcdef")
	s1, err := f.register(t0, state.Node{ID: "s1", Role: "server", RaftAddr: "10.0.0.1:7000", APIAddr: "10.0.0.1:8080"})
	if err != nil || !s1.RegisteredAt.Equal(t0) || !s1.UpdatedAt.Equal(t0) {
		t.Fatalf("register = %+v, %v", s1, err)
	}
	later := t0.Add(time.Hour)
	s1, err = f.register(later, state.Node{ID: "s1", Role: "server", RaftAddr: "10.0.0.1:7000", APIAddr: "10.0.0.1:9090"})
	if err != nil || !s1.RegisteredAt.Equal(t0) || !s1.UpdatedAt.Equal(later) || f.s.Node("s1").APIAddr != "10.0.0.1:9090" {
		t.Fatalf("re-register = %+v, %v; want the first registration time kept", s1, err)
	}
	if _, err := f.register(t0, state.Node{ID: "s2", Role: "server", RaftAddr: "10.0.0.1:7000"}); !greyerr.Is(err, greyerr.AlreadyExists) {
		t.Fatalf("a second node on s1's raft address: %v", err)
	}
	if _, err := f.register(t0, state.Node{ID: "w1", Role: "worker", KeyID: "k1", PublicKey: pub}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.register(t0, state.Node{ID: "w2", Role: "worker", KeyID: "k1", PublicKey: pub}); !greyerr.Is(err, greyerr.AlreadyExists) {
		t.Fatalf("a second node with w1's signing key: %v", err)
	}
	if k := f.s.SigningKey("k1"); k == nil || k.NodeID != "w1" || string(k.PublicKey) != string(pub) || !k.AddedAt.Equal(t0) {
		t.Fatalf("signing key = %+v", k)
	}
	nodes := f.s.Nodes()
	if len(nodes) != 2 || nodes[0].ID != "s1" || nodes[1].ID != "w1" {
		t.Fatalf("nodes = %+v", nodes)
	}
	// Readers get copies.
	n := f.s.Node("s1")
	n.APIAddr = "changed"
	if f.s.Node("s1").APIAddr == "changed" {
		t.Fatal("Node returned the stored record")
	}
	if err := f.s.RemoveNode(f.next(), &state.NodeRemoveRequest{Now: t0, ID: "w1"}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.RemoveNode(f.next(), &state.NodeRemoveRequest{Now: t0, ID: "w1"}); !greyerr.Is(err, greyerr.NotFound) {
		t.Fatalf("second remove: %v", err)
	}
	if f.s.Node("w1") != nil || f.s.SigningKey("k1") == nil || len(f.s.SigningKeys()) != 1 {
		t.Fatal("want the node gone and its signing key kept")
	}
	// The key stays w1's: another node cannot take it over.
	if _, err := f.register(t0, state.Node{ID: "w2", Role: "worker", KeyID: "k1", PublicKey: pub}); !greyerr.Is(err, greyerr.AlreadyExists) {
		t.Fatalf("a removed node's key taken over: %v", err)
	}
	// w1 may come back with its key.
	if _, err := f.register(later, state.Node{ID: "w1", Role: "worker", KeyID: "k1", PublicKey: pub}); err != nil {
		t.Fatalf("w1 back with its own key: %v", err)
	}
}

// The cluster id is set once: the first init wins and later ones return it.
func TestInitCluster(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if f.s.ClusterID() != "" {
		t.Fatal("a new store has a cluster id")
	}
	if id := f.s.InitCluster(f.next(), &state.ClusterInitRequest{Now: t0, ClusterID: "c1"}); id != "c1" {
		t.Fatalf("first init = %q", id)
	}
	if id := f.s.InitCluster(f.next(), &state.ClusterInitRequest{Now: t0, ClusterID: "c2"}); id != "c1" || f.s.ClusterID() != "c1" {
		t.Fatalf("second init = %q (store %q), want c1 kept", id, f.s.ClusterID())
	}
}

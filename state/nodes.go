package state

import (
	"slices"
	"sort"
	"time"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/proof"
)

// Node is a registered member: a server (Raft voter) or a worker-only node.
type Node struct {
	// ID is the node id (the Raft server id for servers).
	ID string `json:"id"`
	// RaftAddr is the Raft transport address (servers only).
	RaftAddr string `json:"raft_addr,omitempty"`
	// APIAddr is the base URL of the node's REST API.
	APIAddr string `json:"api_addr,omitempty"`
	// Role is server or worker.
	Role string `json:"role"`
	// Labels offered by the node.
	Labels map[string]string `json:"labels,omitempty"`
	// KeyID names the node's proof-signing key (see proof.KeyIDOf).
	KeyID string `json:"key_id,omitempty"`
	// PublicKey is the node's ed25519 public key (base64 in JSON).
	PublicKey []byte `json:"public_key,omitempty"`
	// RegisteredBy is the subject of the principal that last registered
	// the node ("" without one); only it, or an admin, may register the
	// same id again.
	RegisteredBy string `json:"registered_by,omitempty"`
	// RegisteredAt is the first registration.
	RegisteredAt time.Time `json:"registered_at"`
	// UpdatedAt is the last registration.
	UpdatedAt time.Time `json:"updated_at"`
	// Features are the log formats the server reads beyond the ones every
	// server reads (ServerFeatures); the leader writes one only when every
	// server in the Raft configuration names it.
	Features []string `json:"features,omitempty"`
}

// FeaturePackedProofs: the server reads proof envelopes packed by the
// leader (PackProof) in the Raft log.
const FeaturePackedProofs = "packed_proofs"

// ServerFeatures are the features a server of this build registers.
func ServerFeatures() []string { return []string{FeaturePackedProofs} }

// Has reports whether the node registered feature f.
func (n *Node) Has(f string) bool { return slices.Contains(n.Features, f) }

// SigningKey is a node's proof-signing public key; keys outlive their
// node's registration.
type SigningKey = proof.NodeKey

// NodeRegisterRequest registers or refreshes a node.
type NodeRegisterRequest struct {
	Now  time.Time `json:"now"`
	Node Node      `json:"node"`
}

// NodeRemoveRequest forgets a node.
type NodeRemoveRequest struct {
	Now time.Time `json:"now"`
	ID  string    `json:"id"`
}

// ClusterInitRequest sets the cluster id once.
type ClusterInitRequest struct {
	Now       time.Time `json:"now"`
	ClusterID string    `json:"cluster_id"`
}

// RegisterNode stores a node record. A different node already using the
// same Raft address is refused.
func (s *Store) RegisterNode(index uint64, req *NodeRegisterRequest) (*Node, error) {
	x := s.begin(index, req.Now)
	defer x.commit()
	n := req.Node
	if n.RaftAddr != "" {
		for id, o := range s.nodes {
			if id != n.ID && o.RaftAddr == n.RaftAddr {
				return nil, greyerr.New(greyerr.AlreadyExists, "raft address %s is already used by node %s", n.RaftAddr, id)
			}
		}
	}
	if old := s.nodes[n.ID]; old != nil {
		n.RegisteredAt = old.RegisteredAt
	} else {
		n.RegisteredAt = req.Now
	}
	if n.KeyID != "" {
		if k := s.signingKeys[n.KeyID]; k != nil && k.NodeID != n.ID {
			return nil, greyerr.New(greyerr.AlreadyExists, "signing key %s is already registered by node %s", n.KeyID, k.NodeID)
		}
	}
	n.UpdatedAt = req.Now
	s.nodes[n.ID] = &n
	if n.KeyID != "" && s.signingKeys[n.KeyID] == nil {
		s.signingKeys[n.KeyID] = &SigningKey{KeyID: n.KeyID, NodeID: n.ID, PublicKey: n.PublicKey, AddedAt: req.Now}
	}
	return &n, nil
}

// RemoveNode forgets a node record.
func (s *Store) RemoveNode(index uint64, req *NodeRemoveRequest) error {
	x := s.begin(index, req.Now)
	defer x.commit()
	if s.nodes[req.ID] == nil {
		return greyerr.New(greyerr.NotFound, "node %s not found", req.ID)
	}
	delete(s.nodes, req.ID)
	return nil
}

// InitCluster sets the cluster id if none is set; it returns the id in force.
func (s *Store) InitCluster(index uint64, req *ClusterInitRequest) string {
	x := s.begin(index, req.Now)
	defer x.commit()
	if s.clusterID == "" {
		s.clusterID = req.ClusterID
	}
	return s.clusterID
}

// ClusterID returns the cluster id ("" before initialisation).
func (s *Store) ClusterID() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.clusterID
}

// Node returns a registered node, or nil.
func (s *Store) Node(id string) *Node {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if n := s.nodes[id]; n != nil {
		c := *n
		return &c
	}
	return nil
}

// Nodes lists registered nodes by id.
func (s *Store) Nodes() []Node {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Node, 0, len(s.nodes))
	for _, n := range s.nodes {
		out = append(out, *n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// SigningKeys lists every proof-signing key ever registered, by key id.
func (s *Store) SigningKeys() []SigningKey {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]SigningKey, 0, len(s.signingKeys))
	for _, k := range s.signingKeys {
		out = append(out, *k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].KeyID < out[j].KeyID })
	return out
}

// SigningKey returns a registered key, or nil.
func (s *Store) SigningKey(id string) *SigningKey {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if k := s.signingKeys[id]; k != nil {
		c := *k
		return &c
	}
	return nil
}

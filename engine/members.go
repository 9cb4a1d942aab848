package engine

import (
	"context"
	"crypto/ed25519"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/cluster"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/membership"
	"github.com/grey-distributed/grey/proof"
	"github.com/grey-distributed/grey/state"
)

// JoinRequest asks the leader to add a node (POST /api/v1/cluster/join).
type JoinRequest = membership.JoinRequest

// JoinResponse answers a join.
type JoinResponse = membership.JoinResponse

// members tracks the leader's probes of the other servers.
type members struct {
	mu      sync.Mutex
	contact map[string]time.Time
	since   map[string]time.Time
	hc      *http.Client // the probes' client (probeClient)
}

// Join adds a server as a Raft voter (or registers a worker-only node).
// Joining again with the same id and address is a no-op; a different
// node's id or address, or another cluster's id, is refused.
func (e *Engine) Join(ctx context.Context, req *JoinRequest) (*JoinResponse, error) {
	if err := validNodeID(req.NodeID); err != nil {
		return nil, err
	}
	if req.Role == "" {
		req.Role = "server"
	}
	if req.Role != "server" && req.Role != "worker" {
		return nil, greyerr.Invalid("role", "must be server or worker")
	}
	if req.Role == "worker" && req.APIAddr == "" {
		// Worker-only nodes have no API.
	} else if _, err := url.ParseRequestURI(req.APIAddr); err != nil || !strings.HasPrefix(req.APIAddr, "http") {
		return nil, greyerr.Invalid("api_addr", "must be an http(s) base URL, got %q", req.APIAddr)
	}
	if !e.node.IsLeader() {
		return nil, &greyerr.Error{Code: greyerr.Unavailable, Message: "not the leader", RetryAfter: time.Second}
	}
	cid := e.store.ClusterID()
	if req.ClusterID != "" && cid != "" && req.ClusterID != cid {
		return nil, greyerr.New(greyerr.FailedPrecondition, "node %s belongs to cluster %s, this is cluster %s: wipe its data dir to join", req.NodeID, req.ClusterID, cid)
	}
	if reg := e.store.Node(req.NodeID); reg != nil && reg.Role != req.Role {
		return nil, greyerr.New(greyerr.AlreadyExists, "node id %s is already used by a %s", req.NodeID, reg.Role)
	}
	// A worker principal registers its own worker-only node (and proof
	// key); servers, and nodes another principal registered, need an
	// admin.
	var registeredBy string
	if p := auth.FromContext(ctx); p != nil {
		registeredBy = p.Subject
		if !p.Can(auth.PermClusterAdmin, "") {
			if req.Role != "worker" {
				err := greyerr.New(greyerr.PermissionDenied, "joining as a server needs the admin role")
				err.Reason = auth.ReasonRoleNotAllowed
				return nil, err
			}
			if reg := e.store.Node(req.NodeID); reg != nil && reg.RegisteredBy != p.Subject {
				err := greyerr.New(greyerr.PermissionDenied, "node id %s is registered by another principal", req.NodeID)
				err.Reason = auth.ReasonRoleNotAllowed
				return nil, err
			}
		}
	}
	if req.Role == "server" {
		if _, _, err := net.SplitHostPort(req.RaftAddr); err != nil {
			return nil, greyerr.Invalid("raft_addr", "must be host:port, got %q", req.RaftAddr)
		}
		servers, err := e.node.Servers()
		if err != nil {
			return nil, err
		}
		present := false
		for _, s := range servers {
			switch {
			case string(s.ID) == req.NodeID && string(s.Address) != req.RaftAddr:
				return nil, greyerr.New(greyerr.AlreadyExists, "duplicate node id %s: it is a member at %s (remove it first to move it)", req.NodeID, s.Address)
			case string(s.ID) != req.NodeID && string(s.Address) == req.RaftAddr:
				return nil, greyerr.New(greyerr.AlreadyExists, "raft address %s is already used by node %s", req.RaftAddr, s.ID)
			case string(s.ID) == req.NodeID:
				present = true
			}
		}
		if !present {
			e.packed.forget() // the new server must have registered first
			if err := e.node.AddVoter(ctx, req.NodeID, req.RaftAddr); err != nil {
				return nil, err
			}
			e.logger.Info("server joined", "node", req.NodeID, "raft", req.RaftAddr)
		}
	}
	node := state.Node{ID: req.NodeID, RaftAddr: req.RaftAddr, APIAddr: req.APIAddr, Role: req.Role, Labels: req.Labels, RegisteredBy: registeredBy}
	if req.Role == "server" {
		node.Features = req.Features
	}
	if len(req.PublicKey) > 0 {
		if len(req.PublicKey) != ed25519.PublicKeySize {
			return nil, greyerr.Invalid("public_key", "must be a raw ed25519 public key of %d bytes (base64), got %d bytes", ed25519.PublicKeySize, len(req.PublicKey))
		}
		node.PublicKey, node.KeyID = req.PublicKey, proof.KeyIDOf(req.PublicKey)
	}
	if _, err := cluster.Apply(ctx, e.node, cluster.NodeRegister(&state.NodeRegisterRequest{Now: time.Now().UTC(), Node: node})); err != nil {
		return nil, err
	}
	return &JoinResponse{ClusterID: e.store.ClusterID(), LeaderID: e.node.ID()}, nil
}

// RemoveMember removes a server from Raft (or a worker's registration).
func (e *Engine) RemoveMember(ctx context.Context, id string) error {
	if err := validNodeID(id); err != nil {
		return err
	}
	if !e.node.IsLeader() {
		return &greyerr.Error{Code: greyerr.Unavailable, Message: "not the leader", RetryAfter: time.Second}
	}
	servers, err := e.node.Servers()
	if err != nil {
		return err
	}
	found := false
	for _, s := range servers {
		if string(s.ID) == id {
			found = true
			if err := e.node.RemoveServer(ctx, id); err != nil {
				return err
			}
		}
	}
	if e.store.Node(id) != nil {
		found = true
		if _, err := cluster.Apply(ctx, e.node, cluster.NodeRemove(&state.NodeRemoveRequest{Now: time.Now().UTC(), ID: id})); err != nil {
			return err
		}
	}
	if !found {
		return greyerr.New(greyerr.NotFound, "node %s is not a member", id)
	}
	return nil
}

func validNodeID(id string) error {
	if id == "" || len(id) > 64 || strings.ContainsAny(id, " /\\?#%") {
		return greyerr.Invalid("node_id", "must be 1–64 characters without spaces, '/', '?', '#' or '%%', got %q", id)
	}
	return nil
}

// LeaderAPI returns the leader's API base URL ("" when unknown).
func (e *Engine) LeaderAPI() string {
	id := e.node.LeaderID()
	if id == "" {
		return ""
	}
	if id == e.node.ID() && e.cfg.Self.APIAddr != "" {
		return e.cfg.Self.APIAddr
	}
	if n := e.store.Node(id); n != nil {
		return n.APIAddr
	}
	return ""
}

// IsLeader reports whether this server leads.
func (e *Engine) IsLeader() bool { return e.node.IsLeader() }

// ensureMembership runs once per term on the leader: it sets the cluster id
// if none exists and registers this server with its API address.
func (e *Engine) ensureMembership(ctx context.Context) {
	now := time.Now().UTC()
	if e.store.ClusterID() == "" {
		if _, err := cluster.Apply(ctx, e.node, cluster.ClusterInit(&state.ClusterInitRequest{Now: now, ClusterID: uuid.NewString()})); err != nil {
			e.logger.Warn("init cluster id", "err", err)
		}
	}
	self := e.cfg.Self
	if self.ID == "" {
		return
	}
	self.RaftAddr = e.node.LocalAddr()
	if cur := e.store.Node(self.ID); cur != nil && cur.APIAddr == self.APIAddr && cur.RaftAddr == self.RaftAddr && cur.KeyID == self.KeyID &&
		slices.Equal(cur.Features, self.Features) {
		return
	}
	if self.Role == "" {
		self.Role = "server"
	}
	if _, err := cluster.Apply(ctx, e.node, cluster.NodeRegister(&state.NodeRegisterRequest{Now: now, Node: self})); err != nil {
		e.logger.Warn("register self", "err", err)
	}
}

// probeClient is the HTTP client of the health probes: the default one,
// or one with the peers' TLS config (made once, so connections are reused).
func (e *Engine) probeClient() *http.Client {
	e.members.mu.Lock()
	defer e.members.mu.Unlock()
	if e.members.hc == nil {
		e.members.hc = &http.Client{Timeout: time.Second}
		if e.cfg.PeerTLS != nil {
			e.members.hc.Transport = &http.Transport{TLSClientConfig: e.cfg.PeerTLS, MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second}
		}
	}
	return e.members.hc
}

// probe checks the other servers' APIs and, with DeadServerTimeout set,
// removes servers unreachable for that long while the rest keep quorum.
func (e *Engine) probe(ctx context.Context) {
	servers, err := e.node.Servers()
	if err != nil {
		return
	}
	now := time.Now()
	e.members.mu.Lock()
	if e.members.contact == nil {
		e.members.contact = make(map[string]time.Time)
		e.members.since = make(map[string]time.Time)
	}
	e.members.contact[e.node.ID()] = now
	e.members.mu.Unlock()
	client := e.probeClient()
	var wg sync.WaitGroup
	for _, s := range servers {
		id := string(s.ID)
		if id == e.node.ID() {
			continue
		}
		e.members.mu.Lock()
		if _, ok := e.members.since[id]; !ok {
			e.members.since[id] = now
		}
		e.members.mu.Unlock()
		n := e.store.Node(id)
		if n == nil || n.APIAddr == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(n.APIAddr, "/")+"/healthz", nil)
			resp, err := client.Do(req)
			if err != nil {
				return
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				e.members.mu.Lock()
				e.members.contact[id] = time.Now()
				e.members.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if e.cfg.DeadServerTimeout <= 0 {
		return
	}
	e.members.mu.Lock()
	var dead []string
	for _, s := range servers {
		id := string(s.ID)
		last := e.members.contact[id]
		if last.IsZero() {
			last = e.members.since[id]
		}
		if id != e.node.ID() && now.Sub(last) > e.cfg.DeadServerTimeout {
			dead = append(dead, id)
		}
	}
	e.members.mu.Unlock()
	// Remove only while the live servers keep a majority of what remains.
	live := len(servers) - len(dead)
	for _, id := range dead {
		if live < (len(servers)-1)/2+1 {
			break
		}
		e.logger.Warn("removing dead server", "node", id, "unreachable_for", e.cfg.DeadServerTimeout)
		if err := e.RemoveMember(ctx, id); err != nil {
			e.logger.Warn("remove dead server", "node", id, "err", err)
			continue
		}
		servers = servers[:len(servers)-1]
	}
}

// lastContact returns when the leader last reached a server.
func (e *Engine) lastContact(id string) time.Time {
	e.members.mu.Lock()
	defer e.members.mu.Unlock()
	return e.members.contact[id]
}

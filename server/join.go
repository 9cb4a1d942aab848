package server

import (
	"context"
	"fmt"
	"time"

	"github.com/grey-distributed/grey/certs"
	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/state"
	"github.com/grey-distributed/grey/task"
)

// joinCluster asks the servers in raft.join to admit this server, until one
// does (any server forwards to the leader). Refusals that retrying cannot
// fix (duplicate id, another cluster's data) end start-up.
func (s *Server) joinCluster(ctx context.Context) error {
	opts := s.peerOptions()
	if tok := s.peerToken(); tok != "" {
		opts = append(opts, client.WithToken(tok))
	}
	req := &client.JoinRequest{
		NodeID: s.cfg.Node.ID, RaftAddr: s.node.LocalAddr(), APIAddr: s.cfg.APIAdvertise(),
		Role: "server", ClusterID: s.store.ClusterID(), Labels: s.cfg.Node.Labels,
		PublicKey: s.signer.Key.Public(), Features: state.ServerFeatures(),
	}
	if s.cfg.Raft.Advertise != "" {
		req.RaftAddr = s.cfg.Raft.Advertise
	}
	policy := task.RetryPolicy{BaseDelay: task.Duration(200 * time.Millisecond), MaxDelay: task.Duration(5 * time.Second)}
	deadline := time.Now().Add(5 * time.Minute)
	for n := 1; ; n++ {
		var last error
		for _, addr := range s.cfg.Raft.Join {
			url := s.cfg.PeerURL(addr)
			c, err := client.New(url, opts...)
			if err != nil {
				return fmt.Errorf("raft.join %s: %w", url, err)
			}
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			resp, err := c.Join(cctx, req)
			cancel()
			if err == nil {
				s.logger.Info("joined the cluster", "cluster", resp.ClusterID, "leader", resp.LeaderID, "via", url)
				return nil
			}
			if certs.IsRefusal(err) {
				// Another CA on either side: no retry changes that.
				return fmt.Errorf("raft.join %s: TLS refused (are both nodes' certificates from the cluster CA in tls.ca_file?): %w", url, err)
			}
			switch greyerr.CodeOf(err) {
			case greyerr.AlreadyExists, greyerr.FailedPrecondition, greyerr.InvalidArgument,
				greyerr.Unauthenticated, greyerr.PermissionDenied:
				return err
			}
			last = err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no server in raft.join admitted this node: %w", last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(policy.Cap(n)):
		}
	}
}

package engine

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/grey-distributed/grey/apitypes"
	"github.com/grey-distributed/grey/cluster"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/state"
)

// SnapshotInfo describes a snapshot file (the answer of a restore).
type SnapshotInfo = apitypes.SnapshotInfo

// RestoreOptions modify RestoreSnapshot.
type RestoreOptions struct {
	// Force restores a snapshot taken from another cluster into a cluster
	// that holds tasks or tenants.
	Force bool
}

// restoring holds the engines with a restore in progress.
var restoring sync.Map

// OpenSnapshot takes a Raft snapshot of this server's state now and opens
// it for writing out in the snapshot file format (cluster.SnapshotFormat).
// The caller closes it.
func (e *Engine) OpenSnapshot() (*cluster.SnapshotFile, error) {
	return e.node.OpenSnapshot()
}

// RestoreSnapshot replaces the cluster's tasks, tenants and usage with
// those of a snapshot file read from r, on every server. The file is read
// in full and checked first (header, length, checksum, and that its payload
// decodes), so a bad file is refused with InvalidArgument and changes
// nothing. A snapshot of another cluster is refused too, unless opts.Force
// or this cluster holds no tasks and no tenants (a freshly bootstrapped
// cluster being rebuilt from a backup).
//
// Membership is not restored: the Raft configuration and the node
// registrations stay as they are. The cluster id becomes the snapshot's.
// Afterwards the scheduler is rebuilt from the restored tasks, and open
// watch streams end (clients reconnect and re-read). Leader only.
func (e *Engine) RestoreSnapshot(ctx context.Context, r io.Reader, opts RestoreOptions) (*SnapshotInfo, error) {
	if !e.node.IsLeader() {
		return nil, &greyerr.Error{Code: greyerr.Unavailable, Message: "not the leader: restore on the leader", RetryAfter: time.Second}
	}
	if _, busy := restoring.LoadOrStore(e, true); busy {
		return nil, greyerr.New(greyerr.FailedPrecondition, "another snapshot restore is in progress")
	}
	defer restoring.Delete(e)

	st, err := cluster.ReadSnapshot(r, e.node.StageDir())
	if err != nil {
		return nil, err
	}
	defer st.Close()
	info := st.Header.Info()
	info.Tasks, info.Tenants = st.Store.Len(), len(st.Store.Tenants())
	if cur := e.store.ClusterID(); info.ClusterID != cur {
		empty := e.store.Len() == 0 && len(e.store.Tenants()) == 0
		switch {
		case opts.Force:
			info.Forced = true
		case !empty:
			return nil, greyerr.Invalid("force", "the snapshot is from cluster %q, this is cluster %q (which holds %d tasks); pass force=true to replace its state anyway", info.ClusterID, cur, e.store.Len())
		}
	}
	if !e.node.IsLeader() {
		return nil, &greyerr.Error{Code: greyerr.Unavailable, Message: "leadership lost before the restore", RetryAfter: time.Second}
	}

	members := e.currentMembers()
	if err := e.node.RestoreSnapshot(ctx, st); err != nil {
		return nil, err
	}
	e.logger.Warn("state restored from a snapshot", "cluster", info.ClusterID, "snapshot_index", info.Index,
		"snapshot_term", info.Term, "tasks", info.Tasks, "tenants", info.Tenants, "forced", info.Forced)
	// The restore happened: finish the leader's side even if the caller
	// has gone.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	e.afterRestore(actx, members)
	return info, nil
}

// currentMembers returns the registrations to keep across a restore: the
// servers in the Raft configuration and the workers.
func (e *Engine) currentMembers() map[string]state.Node {
	out := map[string]state.Node{}
	servers, err := e.node.Servers()
	if err != nil {
		return out
	}
	inRaft := map[string]bool{}
	for _, s := range servers {
		inRaft[string(s.ID)] = true
	}
	for _, n := range e.store.Nodes() {
		if n.Role == "worker" || inRaft[n.ID] {
			out[n.ID] = n
		}
	}
	return out
}

// afterRestore brings the leader's derived state in line with the restored
// store: node registrations back to the current membership, this server
// registered, the scheduler rebuilt, watchers told to re-read.
func (e *Engine) afterRestore(ctx context.Context, members map[string]state.Node) {
	now := time.Now().UTC()
	for _, n := range e.store.Nodes() {
		if _, ok := members[n.ID]; !ok {
			if _, err := cluster.Apply(ctx, e.node, cluster.NodeRemove(&state.NodeRemoveRequest{Now: now, ID: n.ID})); err != nil {
				e.logger.Warn("restore: forget node of the snapshot", "node", n.ID, "err", err)
			}
		}
	}
	for id, want := range members {
		if got := e.store.Node(id); got != nil && got.APIAddr == want.APIAddr && got.RaftAddr == want.RaftAddr && got.Role == want.Role {
			continue
		}
		if _, err := cluster.Apply(ctx, e.node, cluster.NodeRegister(&state.NodeRegisterRequest{Now: now, Node: want})); err != nil {
			e.logger.Warn("restore: re-register node", "node", id, "err", err)
		}
	}
	e.ensureMembership(ctx)
	e.RebuildScheduler()
	e.hub.resync()
}

// RebuildScheduler rebuilds the leader's queues from the store, as on
// leadership gain (running leases get one TTL of grace). It does nothing on
// a follower or while the leader is still catching up (its leader loop
// builds them when it has).
func (e *Engine) RebuildScheduler() {
	if !e.node.IsLeader() || !e.sched.Enabled() {
		return
	}
	e.sched.Enable(time.Now(), e.cfg.LeaseTTL)
	// Leadership may have gone while rebuilding; the leader loop disables
	// the scheduler on loss, but may have done so before Enable.
	if !e.node.IsLeader() {
		e.sched.Disable()
	}
}

// resync ends every watch stream as if its reader fell behind, so clients
// reconnect and re-read: the store changed under them without a change
// stream (a restore).
func (h *hub) resync() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		w.overflow = true
		h.closeWatcherLocked(w)
	}
}

package server

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/worker"
)

// router is the in-process worker pool's Coordinator: the local engine
// while this server leads, the leader's API (through the Go client, the
// same protocol remote workers speak) while it follows.
type router struct {
	eng   *engine.Engine
	token string
	opts  []client.Option // TLS to the leader, with the node certificate

	mu      sync.Mutex
	clients map[string]*client.Client
}

var (
	_ worker.Coordinator    = (*router)(nil)
	_ worker.PayloadFetcher = (*router)(nil)
)

func newRouter(eng *engine.Engine, token string, opts ...client.Option) *router {
	return &router{eng: eng, token: token, opts: opts, clients: make(map[string]*client.Client)}
}

// While this server leads, the pool calls the engine directly with no
// principal in its context: the node's own workers are trusted, lease every
// tenant's tasks, and their leases record no principal, so that after a
// leader change the same worker id can still report them through the new
// leader's API. On a follower the pool calls the leader's API as this node
// (its node certificate, or http.admin_token without authentication or a
// cluster CA: see Server.peerToken). (docs/AUTH.md, Workers.)

// target returns the coordinator to use now.
func (r *router) target() (worker.Coordinator, error) {
	if r.eng.IsLeader() {
		return r.eng, nil
	}
	addr := r.eng.LeaderAPI()
	if addr == "" {
		// Election in progress: the engine waits within its long poll.
		return r.eng, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.clients[addr]
	if c == nil {
		var err error
		opts := append([]client.Option{}, r.opts...)
		if r.token != "" {
			opts = append(opts, client.WithToken(r.token))
		}
		if c, err = client.New(addr, opts...); err != nil {
			return nil, greyerr.Wrap(greyerr.Internal, err, "client for leader %s", addr)
		}
		r.clients[addr] = c
	}
	return c, nil
}

func (r *router) Lease(ctx context.Context, req *worker.LeaseRequest) (*worker.LeaseResponse, error) {
	t, err := r.target()
	if err != nil {
		return nil, err
	}
	if t == worker.Coordinator(r.eng) && !r.eng.IsLeader() && req.Wait > 0 {
		// Not leading and no leader known: wait up to 200ms for one (this
		// node or another), checking often so the pool asks again as soon
		// as there is one.
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		until := time.Now().Add(200 * time.Millisecond)
		for !r.eng.IsLeader() && r.eng.LeaderAPI() == "" && time.Now().Before(until) {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return &worker.LeaseResponse{}, nil
			}
		}
		return &worker.LeaseResponse{}, nil
	}
	return t.Lease(ctx, req)
}

func (r *router) Heartbeat(ctx context.Context, req *worker.HeartbeatRequest) (*worker.HeartbeatResponse, error) {
	t, err := r.target()
	if err != nil {
		return nil, err
	}
	return t.Heartbeat(ctx, req)
}

func (r *router) Complete(ctx context.Context, req *worker.CompleteRequest) (*worker.CompleteResponse, error) {
	t, err := r.target()
	if err != nil {
		return nil, err
	}
	return t.Complete(ctx, req)
}

// FetchPayload fetches a leased task's payload object from the engine
// while this server leads, else from the leader's API, as the lease was.
func (r *router) FetchPayload(ctx context.Context, req *worker.PayloadRequest) (io.ReadCloser, error) {
	t, err := r.target()
	if err != nil {
		return nil, err
	}
	f, ok := t.(worker.PayloadFetcher)
	if !ok {
		return nil, greyerr.New(greyerr.Internal, "the coordinator cannot fetch payloads")
	}
	return f.FetchPayload(ctx, req)
}

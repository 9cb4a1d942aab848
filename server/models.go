package server

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/ai/modelstore"
	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/greyerr"
)

// openModelRegistry opens a server's model registry: ai.model_registry
// (GREY_MODEL_REGISTRY), default file://<node.data_dir>/models, through
// reg with bopts; ai.max_model_bytes bounds a model and ai.tenant_models
// limits the models a tenant's tasks may name.
func openModelRegistry(ctx context.Context, cfg *config.Config, reg *blobstore.Registry, bopts blobstore.Options) (*modelstore.Store, error) {
	u := cfg.AI.ModelRegistry
	if u == "" {
		var err error
		if u, err = modelstore.DefaultURL(cfg.Node.DataDir); err != nil {
			return nil, err
		}
	}
	if err := reg.Check(u); err != nil {
		return nil, fmt.Errorf("ai.model_registry: %w", err)
	}
	bopts.Name = modelstore.Kind
	store, err := modelstore.Open(ctx, reg, u, modelstore.Options{MaxBytes: cfg.AI.MaxModelBytes, TenantModels: cfg.AI.TenantModels}, bopts)
	if err != nil {
		return nil, fmt.Errorf("ai.model_registry: %w", err)
	}
	return store, nil
}

// ModelRegistry is the server's model registry.
func (s *Server) ModelRegistry() *modelstore.Store { return s.models }

// ModelSource is where the inference kind of this server's in-process
// workers gets models: the registry, then, for a model it lacks (a
// follower whose file:// registry is its own), the leader's API, as the
// task's tenant. A worker-only node uses client.ModelSource instead.
func (s *Server) ModelSource() ai.ModelSource {
	return chainModels(s.models, leaderModels(func() string {
		if s.eng == nil || s.eng.IsLeader() {
			return ""
		}
		return s.eng.LeaderAPI()
	}, s.peerToken(), s.peerOptions()...))
}

// chainModels is a model source that asks first, then, where first answers
// NotFound, next: a follower's registry, then the leader's API (a file://
// registry is local to one server).
func chainModels(first, next ai.ModelSource) ai.ModelSource { return modelChain{first, next} }

type modelChain struct{ first, next ai.ModelSource }

func (c modelChain) Resolve(ctx context.Context, tenant string, ref ai.ModelRef) (ai.Model, error) {
	m, err := c.first.Resolve(ctx, tenant, ref)
	if greyerr.Is(err, greyerr.NotFound) {
		return c.next.Resolve(ctx, tenant, ref)
	}
	return m, err
}

func (c modelChain) Fetch(ctx context.Context, tenant, digest string) (io.ReadCloser, error) {
	r, err := c.first.Fetch(ctx, tenant, digest)
	if greyerr.Is(err, greyerr.NotFound) {
		return c.next.Fetch(ctx, tenant, digest)
	}
	return r, err
}

// leaderModels is an ai.ModelSource over the API at the address leader
// returns ("" means there is none to ask, for example because this server
// leads: NotFound), like leaderSource for wasm modules.
func leaderModels(leader func() string, token string, opts ...client.Option) ai.ModelSource {
	return &leaderModelSource{leader: leader, token: token, opts: opts, clients: map[string]*client.Client{}}
}

type leaderModelSource struct {
	leader  func() string
	token   string
	opts    []client.Option
	mu      sync.Mutex
	clients map[string]*client.Client
}

func (l *leaderModelSource) client() (*client.Client, error) {
	addr := l.leader()
	if addr == "" {
		return nil, greyerr.New(greyerr.NotFound, "model not found (no leader to ask)")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.clients[addr]; c != nil {
		return c, nil
	}
	opts := append([]client.Option{client.WithUserAgent("greyd-inference/1")}, l.opts...)
	if l.token != "" {
		opts = append(opts, client.WithToken(l.token))
	}
	c, err := client.New(addr, opts...)
	if err != nil {
		return nil, err
	}
	l.clients[addr] = c
	return c, nil
}

func (l *leaderModelSource) Resolve(ctx context.Context, tenant string, ref ai.ModelRef) (ai.Model, error) {
	c, err := l.client()
	if err != nil {
		return ai.Model{}, err
	}
	return client.ModelSource(c).Resolve(ctx, tenant, ref)
}

func (l *leaderModelSource) Fetch(ctx context.Context, tenant, digest string) (io.ReadCloser, error) {
	c, err := l.client()
	if err != nil {
		return nil, err
	}
	return client.ModelSource(c).Fetch(ctx, tenant, digest)
}

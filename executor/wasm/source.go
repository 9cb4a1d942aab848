package wasmexec

import (
	"context"
	"sync"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/modules"
)

// Source gives the executing worker a module's bytes. Get returns a
// greyerr NotFound error when the tenant has no such module; any other
// error is treated as transient (the attempt is retried).
type Source interface {
	Get(ctx context.Context, tenant, digest string) ([]byte, error)
}

// SourceFunc adapts a function to Source.
type SourceFunc func(ctx context.Context, tenant, digest string) ([]byte, error)

// Get implements Source.
func (f SourceFunc) Get(ctx context.Context, tenant, digest string) ([]byte, error) {
	return f(ctx, tenant, digest)
}

var _ Source = (*modules.Store)(nil)

// Chain tries each source in turn: the first that has the module answers.
// A source that fails otherwise than NotFound does not stop the search, but
// its error is returned if no later source has the module.
func Chain(sources ...Source) Source {
	return SourceFunc(func(ctx context.Context, tenant, digest string) ([]byte, error) {
		var firstErr error
		for _, s := range sources {
			if s == nil {
				continue
			}
			b, err := s.Get(ctx, tenant, digest)
			if err == nil {
				return b, nil
			}
			if !greyerr.Is(err, greyerr.NotFound) && firstErr == nil {
				firstErr = err
			}
		}
		if firstErr != nil {
			return nil, firstErr
		}
		return nil, greyerr.New(greyerr.NotFound, "module %s not found", digest)
	})
}

// ClientSource fetches modules over the API (GET
// /api/v1/modules/{digest}/content, as the task's tenant): the source of a
// remote worker, which has no access to the servers' module bucket. The
// bytes are checked against the digest.
func ClientSource(c *client.Client) Source {
	return SourceFunc(func(ctx context.Context, tenant, digest string) ([]byte, error) {
		return c.ModuleContentFor(ctx, tenant, digest)
	})
}

// LeaderSource fetches modules from the API at the address leader returns
// (a base URL such as http://10.0.0.1:8080; "" means there is none to ask,
// for example because this server leads, and answers NotFound). A follower
// whose in-process workers cannot read the leader's module bucket (file://
// buckets are local to a server) falls back to it. token is the bearer
// token sent, if any; opts add client options (mutual TLS with the node
// certificate).
func LeaderSource(leader func() string, token string, opts ...client.Option) Source {
	var mu sync.Mutex
	clients := map[string]*client.Client{}
	return SourceFunc(func(ctx context.Context, tenant, digest string) ([]byte, error) {
		addr := leader()
		if addr == "" {
			return nil, greyerr.New(greyerr.NotFound, "module %s not found", digest)
		}
		mu.Lock()
		c := clients[addr]
		if c == nil {
			opts := append([]client.Option{client.WithUserAgent("greyd-wasm/1")}, opts...)
			if token != "" {
				opts = append(opts, client.WithToken(token))
			}
			var err error
			if c, err = client.New(addr, opts...); err != nil {
				mu.Unlock()
				return nil, err
			}
			clients[addr] = c
		}
		mu.Unlock()
		return c.ModuleContentFor(ctx, tenant, digest)
	})
}

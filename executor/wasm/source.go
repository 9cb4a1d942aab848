package wasmexec

import (
	"context"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/modules"
)

// Source gives the executing worker a module's bytes: the module store on
// a server, the API on a worker-only node (greyd supplies those adapters,
// so this package depends on neither configuration nor the API client).
// Get returns a greyerr NotFound error when the tenant has no such module;
// any other error is treated as transient (the attempt is retried).
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

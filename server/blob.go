package server

import (
	"context"
	"maps"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grey-distributed/grey/blobstore"
	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/greyerr"
)

// WithBlobRegistry gives the server the blob drivers it may open (the
// module store, backups): cmd/greyd registers the ones it links. Without
// it no bucket URL opens.
func WithBlobRegistry(reg *blobstore.Registry) Option {
	return func(o *options) { o.blobs = reg }
}

// BlobOptions are the blobstore options every bucket of a node uses: its
// cost tags (tenants.cost.environment as grey-environment, then
// tenants.cost.tags and cloud.cost_tags, the latter winning), the cloud
// context for drivers (region, project, subscription) and the Prometheus
// registerer (nil: none).
func BlobOptions(cfg *config.Config, name string, reg prometheus.Registerer) blobstore.Options {
	tags := map[string]string{}
	maps.Copy(tags, cfg.Tenants.Cost.Tags)
	maps.Copy(tags, cfg.Cloud.CostTags)
	env := cfg.Cloud.Environment
	if env == "" {
		env = cfg.Tenants.Cost.Environment
	}
	return blobstore.Options{
		Name:        name,
		Environment: env,
		CostTags:    tags,
		Registerer:  reg,
		Env:         blobstore.Env{Region: cfg.Cloud.Region, Project: cfg.Cloud.Project, Subscription: cfg.Cloud.SubscriptionID},
	}
}

// blobOptions are BlobOptions with this server's metrics registry.
func (s *Server) blobOptions(name string) blobstore.Options {
	var reg prometheus.Registerer
	if s.registry != nil {
		reg = s.registry
	}
	return BlobOptions(s.cfg, name, reg)
}

// storageQuota is the blob stores' quota check: the tenant's
// max_storage_bytes (the default quota for a tenant not created yet, when
// tenants are created on first use) and every byte the state counts for
// it (payloads and results it holds, and its objects in blob buckets).
func (s *Server) storageQuota(_ context.Context, tenant string) (max, elsewhere int64, err error) {
	if t, err := s.store.Tenant(tenant); err == nil {
		max = t.Quota.MaxStorageBytes
	} else if s.cfg.Tenants.AutoCreate {
		max = s.cfg.Tenants.DefaultQuota.MaxStorageBytes
	}
	if !s.cfg.Tenants.EnforceQuotas {
		max = 0
	}
	return max, s.store.Load(tenant).StoredBytes, nil
}

// blobStorage is the blob stores' byte counter: it replicates a change of
// the tenant's blob bytes, refused (TooLarge) when enforce is set and a
// growth takes the tenant past max_storage_bytes.
func (s *Server) blobStorage(ctx context.Context, tenant string, delta int64, enforce bool) error {
	if s.eng == nil {
		return greyerr.New(greyerr.Unavailable, "the server is starting")
	}
	var max int64
	if enforce && delta > 0 {
		m, _, err := s.storageQuota(ctx, tenant)
		if err != nil {
			return err
		}
		max = m
	}
	return s.eng.AddBlobBytes(ctx, tenant, delta, max)
}

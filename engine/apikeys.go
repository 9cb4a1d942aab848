package engine

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/auth/apikey"
	"github.com/grey-distributed/grey/cluster"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/state"
)

// defaultAPIKeyUseInterval is how stale a key's last-used time may get:
// each key is written at most about once per interval, all of them in one
// Raft entry, never once per request.
const defaultAPIKeyUseInterval = time.Minute

// Limits on a key's free text.
const (
	maxKeyName        = 100
	maxKeyDescription = 1000
)

// CreateAPIKeyRequest asks for a new service-account key.
type CreateAPIKeyRequest struct {
	// Tenant the key acts for (auth.AllTenants for admin keys).
	Tenant string
	// Role the key holds on Tenant.
	Role auth.Role
	// Kinds limits a worker key's task kinds (empty: all).
	Kinds []string
	// Name and Description label the key.
	Name, Description string
	// ExpiresAt is when the key stops working (zero: never).
	ExpiresAt time.Time
}

// CreatedAPIKey is a new key and its token. The token is the only copy of
// the secret: it is shown once and cannot be read again.
type CreatedAPIKey struct {
	// Key is the stored record, without its secret hash.
	Key *apikey.Key
	// Token is grey_<id>_<secret>.
	Token string
}

// CreateAPIKey creates a key for creator, who must be allowed to hand out
// its grant (apikey.MayCreate).
func (e *Engine) CreateAPIKey(ctx context.Context, creator *auth.Principal, req CreateAPIKeyRequest) (*CreatedAPIKey, error) {
	kinds := make([]string, 0, len(req.Kinds))
	for _, k := range req.Kinds {
		if !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	slices.Sort(kinds)
	g := auth.Grant{Tenant: req.Tenant, Role: req.Role, Kinds: kinds}
	if err := apikey.MayCreate(creator, g); err != nil {
		return nil, err
	}
	if len(req.Name) > maxKeyName || strings.ContainsAny(req.Name, "\r\n") {
		return nil, greyerr.Invalid("name", "must be one line of at most %d bytes", maxKeyName)
	}
	if len(req.Description) > maxKeyDescription {
		return nil, greyerr.Invalid("description", "must be at most %d bytes", maxKeyDescription)
	}
	now := time.Now().UTC()
	if !req.ExpiresAt.IsZero() && !req.ExpiresAt.After(now) {
		return nil, greyerr.Invalid("expires_at", "must be in the future")
	}
	tok, err := apikey.Generate()
	if err != nil {
		return nil, err
	}
	k := &apikey.Key{
		ID: tok.ID, Tenant: g.Tenant, Role: g.Role, Kinds: g.Kinds,
		Name: req.Name, Description: req.Description, CreatedBy: creator.Subject,
		CreatedAt: now, SecretHash: tok.Hash(),
	}
	if len(k.Kinds) == 0 {
		k.Kinds = nil
	}
	if !req.ExpiresAt.IsZero() {
		k.ExpiresAt = req.ExpiresAt.UTC()
	}
	res, err := cluster.Apply(ctx, e.node, cluster.APIKeyPut(&state.APIKeyPutRequest{Now: now, Key: k}))
	if err != nil {
		return nil, err
	}
	return &CreatedAPIKey{Key: res, Token: tok.String()}, nil
}

// ListAPIKeys lists the keys of tenant ("" for all tenants) without secret
// hashes.
func (e *Engine) ListAPIKeys(ctx context.Context, tenant string) []*apikey.Key {
	return e.store.APIKeys(tenant)
}

// GetAPIKey returns a key of tenant ("" for any tenant) without its secret
// hash; another tenant's key is NotFound.
func (e *Engine) GetAPIKey(ctx context.Context, tenant, id string) (*apikey.Key, error) {
	k := e.store.APIKey(id)
	if k == nil || (tenant != "" && k.Tenant != tenant) {
		return nil, greyerr.New(greyerr.NotFound, "api key %s not found", id)
	}
	return k.Public(), nil
}

// RevokeAPIKey revokes a key of tenant ("" for any tenant); it stops
// authenticating on each server as soon as that server applied the revocation.
func (e *Engine) RevokeAPIKey(ctx context.Context, tenant, id string) (*apikey.Key, error) {
	if !apikey.ValidID(id) {
		return nil, greyerr.New(greyerr.NotFound, "api key %s not found", id)
	}
	res, err := cluster.Apply(ctx, e.node, cluster.APIKeyRevoke(&state.APIKeyRevokeRequest{Now: time.Now().UTC(), ID: id, Tenant: tenant}))
	if err != nil {
		return nil, err
	}
	return res, nil
}

// LookupAPIKey returns the stored key with its secret hash, for the API key
// authenticator (it reads this server's replica), or NotFound.
func (e *Engine) LookupAPIKey(ctx context.Context, id string) (*apikey.Key, error) {
	if k := e.store.APIKey(id); k != nil {
		return k, nil
	}
	return nil, greyerr.New(greyerr.NotFound, "api key %s not found", id)
}

// APIKeyUsed notes that key id authenticated a request at at. The leader
// writes the latest uses in one batch per interval, and only for keys whose
// stored time is older than the interval, so a busy key costs one Raft
// write a minute, not one per request. Uses seen by a follower are written
// if it becomes the leader.
func (e *Engine) APIKeyUsed(id string, at time.Time) {
	k := e.store.APIKey(id)
	if k == nil || at.Sub(k.LastUsedAt) < e.cfg.APIKeyUseInterval {
		return
	}
	e.keyUses.note(id, at)
}

// keyUses holds the uses not yet written.
type keyUses struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func (u *keyUses) note(id string, at time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = make(map[string]time.Time)
	}
	if at.After(u.m[id]) {
		u.m[id] = at
	}
}

// take empties the pending uses.
func (u *keyUses) take() []state.APIKeyUse {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]state.APIKeyUse, 0, len(u.m))
	for id, at := range u.m {
		out = append(out, state.APIKeyUse{ID: id, At: at.UTC()})
	}
	clear(u.m)
	return out
}

// flushKeyUses writes the pending uses in one command (the leader loop).
func (e *Engine) flushKeyUses(ctx context.Context) {
	uses := e.keyUses.take()
	if len(uses) == 0 {
		return
	}
	slices.SortFunc(uses, func(a, b state.APIKeyUse) int { return strings.Compare(a.ID, b.ID) })
	if _, err := cluster.Apply(ctx, e.node, cluster.APIKeyUsed(&state.APIKeyUsedRequest{Now: time.Now().UTC(), Uses: uses})); err != nil {
		e.logger.Warn("record api key use", "keys", len(uses), "err", err)
		for _, u := range uses {
			e.keyUses.note(u.ID, u.At) // tried again next time
		}
	}
}

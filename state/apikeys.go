package state

import (
	"sort"
	"time"

	"github.com/grey-distributed/grey/auth/apikey"
	"github.com/grey-distributed/grey/greyerr"
)

// APIKey is a stored service-account API key.
type APIKey = apikey.Key

// APIKeyPutRequest stores a new API key (the leader generated its id and
// secret hash, and stamped its times).
type APIKeyPutRequest struct {
	Now time.Time `json:"now"`
	Key *APIKey   `json:"key"`
}

// APIKeyRevokeRequest revokes an API key.
type APIKeyRevokeRequest struct {
	Now time.Time `json:"now"`
	ID  string    `json:"id"`
	// Tenant, when set, must be the key's tenant (otherwise NotFound), so
	// that a tenant's operator cannot revoke another tenant's key.
	Tenant string `json:"tenant,omitempty"`
}

// APIKeyUse is one key's latest use.
type APIKeyUse struct {
	ID string    `json:"id"`
	At time.Time `json:"at"`
}

// APIKeyUsedRequest records when keys were last used, in one batch.
type APIKeyUsedRequest struct {
	Now  time.Time   `json:"now"`
	Uses []APIKeyUse `json:"uses"`
}

// PutAPIKey stores a new key; an existing id is AlreadyExists.
func (s *Store) PutAPIKey(index uint64, req *APIKeyPutRequest) (*APIKey, error) {
	x := s.begin(index, req.Now)
	defer x.commit()
	if req.Key == nil || req.Key.ID == "" {
		return nil, greyerr.Invalid("id", "an api key needs an id")
	}
	if s.apiKeys[req.Key.ID] != nil {
		return nil, greyerr.New(greyerr.AlreadyExists, "api key %s already exists", req.Key.ID)
	}
	k := *req.Key
	s.apiKeys[k.ID] = &k
	return k.Public(), nil
}

// RevokeAPIKey marks a key revoked. Revoking a revoked key keeps the first
// revocation time and succeeds.
func (s *Store) RevokeAPIKey(index uint64, req *APIKeyRevokeRequest) (*APIKey, error) {
	x := s.begin(index, req.Now)
	defer x.commit()
	old := s.apiKeys[req.ID]
	if old == nil || (req.Tenant != "" && old.Tenant != req.Tenant) {
		return nil, greyerr.New(greyerr.NotFound, "api key %s not found", req.ID)
	}
	if old.Revoked() {
		return old.Public(), nil
	}
	k := *old
	k.RevokedAt = req.Now
	s.apiKeys[k.ID] = &k
	return k.Public(), nil
}

// MarkAPIKeysUsed moves keys' last-used times forward; unknown keys (deleted
// since) and older times are ignored. It returns how many keys changed.
func (s *Store) MarkAPIKeysUsed(index uint64, req *APIKeyUsedRequest) int {
	x := s.begin(index, req.Now)
	defer x.commit()
	n := 0
	for _, u := range req.Uses {
		old := s.apiKeys[u.ID]
		if old == nil || !u.At.After(old.LastUsedAt) {
			continue
		}
		k := *old
		k.LastUsedAt = u.At
		s.apiKeys[k.ID] = &k
		n++
	}
	return n
}

// APIKey returns a stored key with its secret hash, for authentication,
// or nil. The record is shared: callers must not modify it.
func (s *Store) APIKey(id string) *APIKey {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.apiKeys[id]
}

// APIKeys lists the keys of tenant ("" for every tenant) without their
// secret hashes, sorted by creation time then id.
func (s *Store) APIKeys(tenant string) []*APIKey {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []*APIKey{}
	for _, k := range s.apiKeys {
		if tenant == "" || k.Tenant == tenant {
			out = append(out, k.Public())
		}
	}
	sortAPIKeys(out)
	return out
}

func sortAPIKeys(ks []*APIKey) {
	sort.Slice(ks, func(i, j int) bool {
		if !ks[i].CreatedAt.Equal(ks[j].CreatedAt) {
			return ks[i].CreatedAt.Before(ks[j].CreatedAt)
		}
		return ks[i].ID < ks[j].ID
	})
}

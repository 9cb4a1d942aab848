package client

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/grey-distributed/grey/apitypes"
	"github.com/grey-distributed/grey/greyerr"
)

// APIKey is a service-account API key as the server lists it: never its
// secret nor the secret's hash.
type APIKey struct {
	// ID is the public key id (the middle of its token).
	ID string `json:"id"`
	// Tenant the key acts for ("*" for admin keys).
	Tenant string `json:"tenant"`
	// Role is admin, operator, viewer or worker.
	Role string `json:"role"`
	// Kinds limits a worker key's task kinds (empty: all).
	Kinds []string `json:"kinds,omitempty"`
	// Name and Description label the key.
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	// CreatedBy is the subject that created the key.
	CreatedBy string `json:"created_by,omitempty"`
	// CreatedAt, ExpiresAt (zero: never), RevokedAt (zero: live) and
	// LastUsedAt (zero: never used; recorded to about a minute).
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// NewAPIKey describes a key to create.
type NewAPIKey = apitypes.CreateAPIKeyRequest

// CreatedAPIKey is a new key and its token, the only copy of its secret:
// store it now, it cannot be read again.
type CreatedAPIKey struct {
	Key   *APIKey `json:"key"`
	Token string  `json:"token"`
}

// CreateAPIKey creates a service-account key. The caller needs the admin
// role, or the operator role on the key's tenant for operator, viewer and
// worker keys.
func (c *Client) CreateAPIKey(ctx context.Context, k NewAPIKey) (*CreatedAPIKey, error) {
	var out CreatedAPIKey
	if err := c.do(ctx, http.MethodPost, "/api/v1/apikeys", nil, &k, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListAPIKeys lists keys without their secrets: those of tenant, or (tenant
// empty) every key for an admin and the client's tenant's keys for an
// operator.
func (c *Client) ListAPIKeys(ctx context.Context, tenant string) ([]*APIKey, error) {
	var q url.Values
	if tenant != "" {
		q = url.Values{"tenant": {tenant}}
	}
	var resp struct {
		APIKeys []*APIKey `json:"api_keys"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/apikeys", q, nil, &resp); err != nil {
		return nil, err
	}
	return resp.APIKeys, nil
}

// RevokeAPIKey revokes a key by id and returns it.
func (c *Client) RevokeAPIKey(ctx context.Context, id string) (*APIKey, error) {
	if id == "" {
		return nil, greyerr.Invalid("id", "an api key id is required")
	}
	var k APIKey
	if err := c.do(ctx, http.MethodDelete, "/api/v1/apikeys/"+url.PathEscape(id), nil, nil, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

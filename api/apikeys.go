package api

import (
	"net/http"
	"time"

	"github.com/grey-distributed/grey/apitypes"
	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/auth/apikey"
	"github.com/grey-distributed/grey/engine"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// The API key routes need auth.PermAPIKeyManage on the request's tenant
// (admin, or the tenant's operator; see the route table); the handlers then
// apply the finer rule of apikey.MayCreate (only an admin creates admin
// keys), list another tenant's keys only for an admin (?tenant=), and answer
// 404 for another tenant's key.

// keysPrincipal returns the caller's principal. The middleware always sets
// one (mode none's is the development principal); without it the caller
// holds nothing, so a handler reached some other way fails closed.
func keysPrincipal(r *http.Request) *auth.Principal {
	if p := auth.FromContext(r.Context()); p != nil {
		return p
	}
	return &auth.Principal{Subject: "anonymous"}
}

// keysTenant is the tenant a non-admin caller's key request is about: the
// ?tenant= query or the request's tenant.
func keysTenant(r *http.Request) (string, error) {
	if t := r.URL.Query().Get("tenant"); t != "" {
		return t, nil
	}
	return tenantOf(r)
}

// createdAPIKeyResponse carries the token: the only time it is shown.
type createdAPIKeyResponse struct {
	Key   *apikey.Key `json:"key"`
	Token string      `json:"token"`
}

type apiKeysResponse struct {
	APIKeys []*apikey.Key `json:"api_keys"`
}

func (s *Server) createAPIKey(w http.ResponseWriter, r *http.Request) {
	var req apitypes.CreateAPIKeyRequest
	if err := s.decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	p := keysPrincipal(r)
	if req.Tenant == "" {
		if auth.Role(req.Role) == auth.RoleAdmin {
			req.Tenant = auth.AllTenants
		} else {
			t, err := tenantOf(r)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			req.Tenant = t
		}
	}
	ereq := engine.CreateAPIKeyRequest{Tenant: req.Tenant, Role: auth.Role(req.Role), Kinds: req.Kinds, Name: req.Name, Description: req.Description}
	switch {
	case req.ExpiresIn != "" && req.ExpiresAt != nil:
		s.writeError(w, r, greyerr.Invalid("expires_in", "give expires_in or expires_at, not both"))
		return
	case req.ExpiresIn != "":
		d, err := apikey.ParseTTL(req.ExpiresIn)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		ereq.ExpiresAt = time.Now().Add(d)
	case req.ExpiresAt != nil:
		ereq.ExpiresAt = *req.ExpiresAt
	}
	out, err := s.eng.CreateAPIKey(r.Context(), p, ereq)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The secret must not stay in caches or proxies.
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, createdAPIKeyResponse{Key: out.Key, Token: out.Token})
}

func (s *Server) listAPIKeys(w http.ResponseWriter, r *http.Request) {
	p := keysPrincipal(r)
	tenant := r.URL.Query().Get("tenant")
	if tenant != "" && tenant != "*" && !task.ValidTenant(tenant) {
		s.writeError(w, r, greyerr.Invalid("tenant", "%q is not a tenant id (or * for every tenant)", tenant))
		return
	}
	if !apikey.IsAdmin(p) {
		t, err := keysTenant(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if !apikey.Manages(p, t) {
			e := greyerr.New(greyerr.PermissionDenied, "listing the api keys of tenant %s needs the operator role on it", t)
			e.Reason = "tenant_not_allowed"
			s.writeError(w, r, e)
			return
		}
		tenant = t
	}
	writeJSON(w, http.StatusOK, apiKeysResponse{APIKeys: s.eng.ListAPIKeys(r.Context(), tenant)})
}

func (s *Server) revokeAPIKey(w http.ResponseWriter, r *http.Request) {
	p := keysPrincipal(r)
	id := r.PathValue("id")
	tenant := ""
	if !apikey.IsAdmin(p) {
		// Keys of tenants the caller does not manage do not exist for it.
		k, err := s.eng.GetAPIKey(r.Context(), "", id)
		if err != nil || !apikey.Manages(p, k.Tenant) {
			s.writeError(w, r, greyerr.New(greyerr.NotFound, "api key %s not found", id))
			return
		}
		tenant = k.Tenant
	}
	k, err := s.eng.RevokeAPIKey(r.Context(), tenant, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, k)
}
